"""The seed's ``spinlock.dataset``: the generation pipeline and the dataset readers."""

from spinlock_core.dataset import DatasetError, DatasetReader, dataset_info, open_dataset, to_xarray, validate_files

from .api import DatasetGenerationPipeline

__all__ = [
    "DatasetGenerationPipeline",
    "open_dataset",
    "DatasetReader",
    "to_xarray",
    "dataset_info",
    "validate_files",
    "DatasetError",
]
