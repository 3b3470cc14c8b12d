"""The dataset contract: every file Spinlock writes or reads, and nothing else.

This package is the only code that knows paths, HDF5 (:mod:`.hdf5` is the only importer of
h5py) and file attributes. Compute packages never import it; stages compose the two.

* layout and identity: :class:`DatasetLayout` (paths of every file kind), :class:`PartitionId`,
  the :class:`Manifest` (expected partitions, hashes), :mod:`.schema` (inside the HDF5 files);
* writers (atomic: temporary name, then rename): :class:`PartitionWriter` (rollouts),
  :class:`FeatureFileWriter`, :func:`write_points` / :func:`write_specs`,
  :func:`write_render_record`, :func:`build_index`;
* readers: :func:`open_dataset` (rollouts), :func:`to_xarray` (one grid as a dask-chunked
  ``xarray.Dataset``), :class:`HDF5FeatureReader`, :func:`read_points`,
  :func:`read_specs`, :func:`read_manifest`; they serve current data or raise one
  :class:`DatasetError` naming the file and the fix (missing partitions, stale index, files
  referring outside the dataset);
* splits (``splits.json``): :func:`assign_splits`, :func:`dataset_splits`,
  :func:`write_splits`, :func:`read_splits`;
* the dataset card (``README.md``, ``card/*.png``): :func:`write_card`;
* statistics (``stats.json``): :func:`compute_stats`, :func:`write_stats`, :func:`read_stats`;
* inspection and validation: :func:`dataset_info`, :func:`validate_files`, the file checks
  behind the Dagster asset checks (:mod:`.quality`).
"""

from spinlock_core.files import remove_stale_temps, write_text_atomic

from . import schema
from .batch_files import PointsFile, SpecsFile, read_points, read_specs, write_points, write_specs
from .card import card_hashes, write_card
from .digest import dataset_digest, file_digest
from .errors import DatasetError
from .feature_reader import HDF5FeatureReader, find_feature_files
from .features import FeatureFileWriter, FeatureTable, StoredRegistry
from .index import IndexSummary, build_index, index_problems
from .inspect import dataset_info, format_info, layout_tree
from .layout import FILE_KINDS, DatasetLayout, PartitionId, batch_key, layout_markdown
from .manifest import Manifest, merge_manifest, read_manifest, write_manifest
from .partition import Compression, PartitionWriter, byte_shuffle
from .quality import CheckOutcome
from .renders import read_render_record, write_render_record
from .report import ValidationReport
from .rollouts import DatasetReader, RowSelection, open_dataset, stored_sensitivity
from .schema import DIMS, SCHEMA_VERSION, schema_markdown
from .sources import missing_partitions
from .splits import Splits, assign_splits, dataset_splits, read_splits, split_counts, write_splits
from .stats import ChannelStats, DatasetStats, compute_stats, read_stats, write_stats
from .validate import validate_files
from .validate_rollouts import iter_nonfinite, validate_structure
from .xarray_view import to_xarray

__all__ = [
    # layout and identity
    "DatasetLayout",
    "PartitionId",
    "batch_key",
    "FILE_KINDS",
    "Manifest",
    "read_manifest",
    "write_manifest",
    "merge_manifest",
    "schema",
    "SCHEMA_VERSION",
    "DIMS",
    "schema_markdown",
    "layout_markdown",
    "DatasetError",
    "dataset_digest",
    "file_digest",
    # writers
    "PartitionWriter",
    "Compression",
    "byte_shuffle",
    "FeatureFileWriter",
    "FeatureTable",
    "PointsFile",
    "SpecsFile",
    "write_points",
    "write_specs",
    "write_render_record",
    "build_index",
    "IndexSummary",
    "write_text_atomic",
    "remove_stale_temps",
    # splits
    "Splits",
    "assign_splits",
    "split_counts",
    "dataset_splits",
    "write_splits",
    "read_splits",
    # card
    "write_card",
    "card_hashes",
    # statistics
    "ChannelStats",
    "DatasetStats",
    "compute_stats",
    "write_stats",
    "read_stats",
    # readers
    "DatasetReader",
    "RowSelection",
    "open_dataset",
    "stored_sensitivity",
    "to_xarray",
    "HDF5FeatureReader",
    "StoredRegistry",
    "find_feature_files",
    "read_points",
    "read_specs",
    "read_render_record",
    "missing_partitions",
    "index_problems",
    # inspection and validation
    "dataset_info",
    "format_info",
    "layout_tree",
    "ValidationReport",
    "validate_files",
    "validate_structure",
    "iter_nonfinite",
    "CheckOutcome",
]
