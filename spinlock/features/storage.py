"""The seed's ``spinlock.features.storage.HDF5FeatureReader`` (a feature file or a dataset directory)."""

from spinlock_core.dataset import HDF5FeatureReader, StoredRegistry

__all__ = ["HDF5FeatureReader", "StoredRegistry"]
