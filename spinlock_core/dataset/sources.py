"""What a path given by a user means: which files to read, and whether they are complete and current.

:func:`resolve` turns a dataset directory, an index file or one partition file into the files
a reader opens, after checking what must hold before anything is served:

* a directory with a manifest must hold every expected partition (else one error naming the
  missing ones and how to make them; ``allow_missing=True`` reads what is there);
* its ``index.h5`` is used only while it is current (every file it reads unchanged since it
  was built, no partition added): otherwise the partition files themselves are read, so the
  reader serves the current data;
* an index file given by name must be current, else one error naming the stale file and the
  command that rebuilds it.

The dataset directory is the containment root: no file may refer outside it
(:func:`~spinlock_core.dataset.hdf5.open_read`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError
from .index import index_problems
from .layout import DatasetLayout, PartitionId, dataset_root_of
from .manifest import read_manifest

__all__ = ["Resolved", "resolve", "missing_partitions"]

_LISTED = 5


@dataclass(frozen=True)
class Resolved:
    """Files to read: ``mode`` is ``"index"``, ``"partitions"`` or ``"file"``; ``root`` bounds references."""

    mode: str
    files: list[Path]
    root: Path
    layout: DatasetLayout | None


def _keys(parts: list[PartitionId]) -> str:
    shown = ", ".join(p.key for p in parts[:_LISTED])
    return shown + (f" and {len(parts) - _LISTED} more" if len(parts) > _LISTED else "")


def missing_partitions(layout: DatasetLayout, kind: str = "rollouts") -> tuple[list[PartitionId], int]:
    """``(missing, expected count)`` of ``kind`` files against the manifest (``([], 0)`` without one)."""
    manifest = read_manifest(layout)
    if manifest is None:
        return [], 0
    present = set(layout.rollout_partitions() if kind == "rollouts" else layout.feature_partitions())
    expected = manifest.expected_partitions()
    return [p for p in expected if p not in present], len(expected)


def resolve(path: str | Path, *, allow_missing: bool = False) -> Resolved:
    """The files behind ``path`` (see module docstring).

    Raises:
        DatasetError: nothing there, expected partitions missing, or a stale index named directly.
    """
    path = Path(path)
    if path.is_dir():
        layout = DatasetLayout(path)
        missing, expected = missing_partitions(layout)
        if missing and not allow_missing:
            raise DatasetError(
                path,
                f"{len(missing)} of {expected} expected partitions have no rollouts file: {_keys(missing)}",
                f"materialize them (spinlock generate --config {layout.experiment}) or read the rest "
                "with allow_missing=True",
            )
        files = layout.rollout_files()
        if not files:
            raise DatasetError(
                path,
                "holds no rollouts (partitions/grid_*/batch_*.h5)",
                "generate it first: spinlock generate --config ...",
            )
        if layout.index.is_file() and not index_problems(layout):
            return Resolved("index", [layout.index], path, layout)
        return Resolved("partitions", files, path, layout)
    if not path.is_file():
        raise DatasetError(path, "no such dataset file or directory")
    if path.name == "index.h5":  # an index is only served while it describes the files
        layout = DatasetLayout(path.parent)
        problems = index_problems(layout)
        if problems:
            raise DatasetError(
                path, "stale index: " + "; ".join(problems[:3]), f"rebuild it: spinlock index --dataset {path.parent}"
            )
        return Resolved("index", [path], path.parent, layout)
    root = dataset_root_of(path)
    return Resolved("file", [path], root, DatasetLayout(root) if root != path.parent else None)
