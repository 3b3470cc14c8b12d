"""HDF5 storage: atomic partition files, the whole-dataset virtual index, reader, info, validation.

Layout and conventions: :mod:`spinlock_core.storage.schema` and ``docs/schema.md``.
"""

from .index import INDEX_FILENAME, build_index
from .schema import DIMS, SCHEMA_VERSION
from .writer import PartitionWriter, byte_shuffle

__all__ = [
    "SCHEMA_VERSION",
    "DIMS",
    "INDEX_FILENAME",
    "PartitionWriter",
    "byte_shuffle",
    "build_index",
]
