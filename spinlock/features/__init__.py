"""The seed's ``spinlock.features``: reading stored features (``spinlock.features.storage``)."""

from . import storage
from .storage import HDF5FeatureReader

__all__ = ["storage", "HDF5FeatureReader"]
