"""Several HDF5 files read as one table of rows ordered by ``(grid size, global sample index)``.

The base of the rollout reader (:class:`~spinlock_core.dataset.DatasetReader`) and the feature
reader (:class:`~spinlock_core.dataset.HDF5FeatureReader`): it opens the files, orders their
rows by ``/metadata/grid_sizes`` then ``/metadata/sample_index``, resolves row selections and
gathers per-row arrays across files, reading only the rows asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from . import hdf5 as H
from . import schema as S
from .codec import decode_strings
from .errors import DatasetError

__all__ = ["RowSelection", "RowIndexedFiles", "tensor_or_array"]

RowSelection = int | slice | Sequence[int] | np.ndarray | None


def tensor_or_array(a: np.ndarray, as_tensor: bool) -> Any:
    """``a`` itself, or (``as_tensor``) a CPU ``torch.Tensor`` over the same memory (torch imported only then)."""
    if not as_tensor:
        return a
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


class RowIndexedFiles:
    """Open files as one row table (see module docstring); a context manager.

    Subclasses call :meth:`_open` in ``__init__`` with a setup callback; after it,
    ``sample_index``, ``grid_sizes`` (row order), ``grids`` and ``num_samples`` are set.
    """

    _files: list[H.File]

    def _open(self, paths: Sequence[Path], setup: Callable[[], None], root: Path | None = None) -> None:
        """Open ``paths`` read-only (refusing references outside ``root``), run ``setup()``, index
        the rows; close everything on failure.

        Raises:
            DatasetError: a file is unreadable, foreign or malformed (named in the message).
        """
        self._files = []
        current: Path | None = None
        try:
            for p in paths:
                current = Path(p)
                self._files.append(H.open_read(p, root=root))
            current = None
            setup()
            self._index_rows()
        except DatasetError:
            self.close()
            raise
        except Exception as exc:  # a malformed file: one clear error naming it, never a traceback
            self.close()
            where = current if current is not None else (paths[0] if len(paths) == 1 else Path(paths[0]).parent)
            raise DatasetError(where, f"not a readable Spinlock file ({type(exc).__name__}: {exc})") from None
        except BaseException:
            self.close()
            raise

    def _index_rows(self) -> None:
        counts = [f[S.META.SAMPLE_INDEX].shape[0] for f in self._files]
        part = np.concatenate([np.full(n, i) for i, n in enumerate(counts)])
        local = np.concatenate([np.arange(n) for n in counts])
        sample = np.concatenate([f[S.META.SAMPLE_INDEX][()] for f in self._files]).astype(np.int64)
        grid = np.concatenate([f[S.META.GRID_SIZES][()] for f in self._files]).astype(np.int64)
        order = np.lexsort((sample, grid))
        self._part, self._local = part[order], local[order]
        self.sample_index: np.ndarray = sample[order]
        self.grid_sizes: np.ndarray = grid[order]
        self.grids: list[int] = sorted({int(g) for g in self.grid_sizes})
        self.num_samples: int = int(order.size)

    # ------------------------------------------------------------------ rows
    @staticmethod
    def _select(rows: RowSelection, n: int) -> tuple[np.ndarray, bool]:
        """Row numbers of a selection (int, slice, ints, boolean mask, None = all) and "was it an int"."""
        if rows is None:
            return np.arange(n), False
        if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool):
            i = int(rows) + (n if rows < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"row {rows} out of range for {n} rows")
            return np.array([i]), True
        if isinstance(rows, slice):
            return np.arange(n)[rows], False
        arr = np.asarray(rows)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise IndexError(f"boolean row mask must have shape ({n},), got {arr.shape}")
            return np.flatnonzero(arr), False
        if arr.size and arr.dtype.kind not in "iu":
            raise IndexError(f"rows must be ints, a slice or a boolean mask, got dtype {arr.dtype}")
        arr = arr.astype(np.int64).reshape(-1)
        arr = np.where(arr < 0, arr + n, arr)
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise IndexError(f"rows out of range for {n} rows")
        return arr, False

    @staticmethod
    def _read_rows(dset: H.Dataset, local: np.ndarray) -> np.ndarray:
        """``dset[local]`` for any local row numbers (reads each needed row once, in file order)."""
        uniq, inv = np.unique(local, return_inverse=True)
        contiguous = uniq.size and uniq[-1] - uniq[0] + 1 == uniq.size
        first = slice(int(uniq[0]), int(uniq[-1]) + 1) if contiguous else uniq
        return dset[first][inv]

    def _small(self, path: str, rows: RowSelection) -> np.ndarray:
        """Per-row dataset ``path`` (leading axis = rows of each file) for ``rows``; strings decoded."""
        sel, scalar = self._select(rows, self.num_samples)
        parts, locs = self._part[sel], self._local[sel]
        if any(path not in f for f in self._files):
            bad = next(i for i, f in enumerate(self._files) if path not in f)
            raise self._read_error(bad, path, KeyError("no such dataset"))
        first = self._files[0][path]
        out = np.empty((sel.size, *first.shape[1:]), dtype=first.dtype)
        for p in np.unique(parts).tolist():
            mine = parts == p
            try:
                out[mine] = self._read_rows(self._files[p][path], locs[mine])
            except Exception as exc:  # a damaged or malformed file: one error naming it
                raise self._read_error(p, path, exc) from None
        if first.dtype.kind == "O" or H.is_string_dtype(first.dtype):
            out = decode_strings(out)
        return out[0] if scalar else out

    def _read_error(self, p: int, path: str, exc: BaseException) -> DatasetError:
        name = self._files[p].filename
        return DatasetError(
            name,
            f"cannot read /{path} ({type(exc).__name__}: {exc})",
            "spinlock validate names every damaged file; re-materialize this partition",
        )

    # ------------------------------------------------------------------ lifecycle
    @property
    def filenames(self) -> list[Path]:
        return [Path(f.filename) for f in self._files]

    def close(self) -> None:
        for f in self._files:
            try:
                f.close()
            except Exception:  # pragma: no cover
                pass
        self._files = []

    def __enter__(self):
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
