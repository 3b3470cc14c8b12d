"""Spinlock from Python: generate a dataset in a notebook, then train on it.

Two lines to a dataset (the same validation, Dagster runs, lineage and files as ``spinlock generate``)::

    import spinlock
    root = spinlock.generate("configs/experiments/default.yaml", {"sampling.total_samples": 64})

and five to a training loop::

    from torch.utils.data import DataLoader
    train = spinlock.TrajectoryDataset(root, "train", grid_size=64, normalize=True)
    for batch in DataLoader(train, batch_size=32, shuffle=True, num_workers=2, persistent_workers=True):
        x, y = batch["input_fields"], batch["output_fields"]

The seed's import paths work as they did:

=================================================  ==========================================
seed                                               here
=================================================  ==========================================
``spinlock.config.load_config``                    :func:`spinlock_core.config.load_config`
``spinlock.dataset.DatasetGenerationPipeline``     :class:`DatasetGenerationPipeline` (Dagster)
``spinlock.features.storage.HDF5FeatureReader``    :class:`spinlock_core.dataset.HDF5FeatureReader`
=================================================  ==========================================

Errors are one :class:`SpinlockError` (``str`` = the line the CLI prints, ``.code`` = its exit
code: 2 bad input, nothing written; 1 bad data or a failed run).
"""

from spinlock_core.config import ExperimentConfig, load_config
from spinlock_core.data import Normalizer, TrajectoryDataset
from spinlock_core.dataset import HDF5FeatureReader, open_dataset, to_xarray

from .api import DatasetGenerationPipeline, SpinlockError, generate

__all__ = [
    "generate",
    "DatasetGenerationPipeline",
    "SpinlockError",
    "load_config",
    "ExperimentConfig",
    "TrajectoryDataset",
    "Normalizer",
    "open_dataset",
    "to_xarray",
    "HDF5FeatureReader",
]
