"""Exports of a Spinlock dataset to the formats other tools read (reads through :mod:`spinlock_core.dataset`).

* :func:`export_parquet`: the feature table (one row per grid size x sample: identity, split,
  IC type, policy, noise regime, Sobol parameters, summary features) as Apache Parquet;
* :func:`export_the_well`: the trajectories in the_well's HDF5 layout (``OUT/grid_G/data/<split>/*.h5``
  and ``stats.yaml``; one trajectory per never-diverged sample x realization), for ``WellDataset``;

Every exporter writes under a temporary name and renames when complete, refuses an existing
output unless asked to replace it, and raises :class:`ExportError` (bad argument, exit 2) or
:class:`~spinlock_core.dataset.DatasetError` (bad data, exit 1) before writing anything.
"""

from .errors import ExportError
from .parquet import ParquetExport, export_parquet, feature_frame
from .the_well import WellExport, export_the_well

__all__ = ["ExportError", "ParquetExport", "WellExport", "export_parquet", "export_the_well", "feature_frame"]
