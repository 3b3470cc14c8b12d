"""HDF5 storage: atomic partition files, the whole-dataset virtual index, reader, info, validation.

Layout and conventions: :mod:`spinlock_core.storage.schema` and ``docs/schema.md``.

* :class:`PartitionWriter` writes one ``(batch, grid size)`` partition file atomically;
* :func:`build_index` writes ``index.h5``: the whole dataset as one file of virtual datasets;
* :func:`open_dataset` reads a partition file, the index, or a dataset directory;
* :func:`dataset_info` / :func:`format_info` describe, :func:`validate_structure` checks.
"""

from .index import build_index
from .inspect import dataset_info, format_info, layout_tree
from .reader import DatasetReader, RowSelection, find_partitions, open_dataset
from .schema import DIMS, INDEX_FILENAME, SCHEMA_VERSION, schema_markdown
from .validation import ValidationReport, iter_nonfinite, validate_structure
from .writer import Compression, PartitionWriter, byte_shuffle

__all__ = [
    "SCHEMA_VERSION",
    "DIMS",
    "INDEX_FILENAME",
    "schema_markdown",
    "Compression",
    "PartitionWriter",
    "byte_shuffle",
    "build_index",
    "DatasetReader",
    "RowSelection",
    "open_dataset",
    "find_partitions",
    "dataset_info",
    "format_info",
    "layout_tree",
    "ValidationReport",
    "validate_structure",
    "iter_nonfinite",
]
