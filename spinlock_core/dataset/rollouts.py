"""Read a Spinlock dataset: one partition file, the index file, or a dataset directory.

Whatever the input, the reader presents the index's view of the data:

* rows ordered by ``(grid size, global sample index)``;
* ``trajectories(rows)`` -> ``[r, M, Ts, C, G, G]`` and ``inputs(rows)`` -> ``[r, C, G, G]``,
  smaller grids zero-padded in the centre (``pad = (G - g) // 2``), ``G`` = largest grid;
* with ``grid_size=g``, rows are positions among the ``g``-grid rows and arrays are unpadded
  ``g x g``.

A directory is read through ``<dir>/index.h5`` while that is current, else through the partition
files ``<dir>/partitions/grid_*/batch_*.h5`` (``*.tmp`` leftovers of killed writers are never
taken); expected partitions that are missing are an error unless ``allow_missing=True``
(:mod:`.sources`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from . import hdf5 as H
from . import schema as S
from .codec import decode_attr
from .errors import DatasetError
from .rows import RowIndexedFiles, RowSelection, tensor_or_array
from .sources import resolve

__all__ = ["DatasetReader", "open_dataset", "RowSelection", "stored_sensitivity"]


class DatasetReader(RowIndexedFiles):
    """Read-only access to a dataset (see module docstring). Use :func:`open_dataset`."""

    def __init__(self, path: str | Path, *, allow_missing: bool = False) -> None:
        self.path = Path(path)
        res = resolve(self.path, allow_missing=allow_missing)
        self._open(res.files, lambda: self._setup(res.mode), root=res.root)
        first = self._files[0]
        self.grid_size: int = self.grids[-1] if self.grids else int(first[S.OUTPUTS_FIELDS].shape[-1])

    def _setup(self, mode: str) -> None:
        first = self._files[0]
        kinds = {decode_attr(f.attrs.get("kind", "")) for f in self._files}
        if len(kinds) != 1 or not kinds <= {S.KIND_PARTITION, S.KIND_INDEX}:
            raise DatasetError(
                self.path, f"not a Spinlock rollouts or index file (root attribute kind = {sorted(kinds)})"
            )
        self.kind: str = "partitions" if mode == "partitions" else kinds.pop()
        shapes = {f[S.OUTPUTS_FIELDS].shape[1:4] for f in self._files}
        if len(shapes) != 1:
            raise DatasetError(self.path, f"partitions disagree on (M, Ts, C): {sorted(shapes)}")
        self.num_realizations, self.num_time_steps, self.num_channels = (int(v) for v in shapes.pop())
        self.time_steps: np.ndarray = first[S.DIM_TIME][()].astype(np.int64)
        self.param_names: list[str] = decode_attr(first[S.PARAMS].attrs["names"])

    # ------------------------------------------------------------------ info
    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes (for several partitions: those equal in all of them)."""
        per_file = [{k: decode_attr(v) for k, v in f.attrs.items()} for f in self._files]
        out = per_file[0]
        if len(per_file) > 1:
            out = {
                k: v
                for k, v in out.items()
                if all(json.dumps(p.get(k), default=str) == json.dumps(v, default=str) for p in per_file)
            }
            out["kind"] = "partitions"
        return out

    @property
    def metadata_attrs(self) -> dict[str, Any]:
        """``/metadata`` attributes with ``config`` and ``sampling_metrics`` parsed from JSON."""
        out = {k: decode_attr(v) for k, v in self._files[0][S.GROUP_METADATA].attrs.items()}
        for key in ("config", "sampling_metrics"):
            if isinstance(out.get(key), str) and out[key]:
                out[key] = json.loads(out[key])
        return out

    @property
    def config(self) -> dict[str, Any]:
        return self.metadata_attrs.get("config", {})

    @property
    def sampling_metrics(self) -> dict[str, Any]:
        return self.metadata_attrs.get("sampling_metrics", {})

    @property
    def shape_info(self) -> dict[str, Any]:
        m, ts, c, g = self.num_realizations, self.num_time_steps, self.num_channels, self.grid_size
        return {
            "num_samples": self.num_samples,
            "num_realizations": m,
            "num_time_steps": ts,
            "num_channels": c,
            "grid_size": g,
            "grid_sizes": list(self.grids),
            "num_params": len(self.param_names),
            "trajectories": (self.num_samples, m, ts, c, g, g),
            "inputs": (self.num_samples, c, g, g),
            "params": (self.num_samples, len(self.param_names)),
        }

    def rows_for_grid(self, grid_size: int) -> np.ndarray:
        """Row numbers (in this reader's order) of the samples on a ``grid_size`` grid."""
        if grid_size not in self.grids:
            raise ValueError(f"grid_size must be one of {self.grids}, got {grid_size}")
        return np.flatnonzero(self.grid_sizes == grid_size)

    def row_sources(self, rows: RowSelection = None) -> tuple[list[Path], np.ndarray, np.ndarray]:
        """Where each row's data lives: ``(partition files, file number [r], row in that file [r])``.

        Always partition files (through the index: its ``source_file`` / ``source_row``), so a
        reader of single rows never goes through the index's virtual datasets.
        """
        sel, _ = self._select(rows, self.num_samples)
        if self.kind == S.KIND_INDEX:
            base = Path(self._files[0].filename).parent
            names = np.asarray(self._small(S.META.SOURCE_FILE, sel), dtype=object).reshape(-1)
            local = np.asarray(self._small(S.META.SOURCE_ROW, sel), dtype=np.int64).reshape(-1)
            uniq, which = np.unique(names.astype(str), return_inverse=True)
            return [base / str(n) for n in uniq.tolist()], which.astype(np.int64), local
        used, which = np.unique(self._part[sel], return_inverse=True)
        paths = [Path(self._files[int(i)].filename) for i in used.tolist()]
        return paths, which.astype(np.int64), self._local[sel].astype(np.int64)

    # ------------------------------------------------------------------ data
    def _fields(self, path: str, rows: RowSelection, grid_size: int | None) -> np.ndarray:
        if grid_size is None:
            subset = np.arange(self.num_samples)
            side = self.grid_size
        else:
            subset = self.rows_for_grid(grid_size)
            side = grid_size
        sel, scalar = self._select(rows, subset.size)
        global_rows = subset[sel]
        inner = (
            (self.num_realizations, self.num_time_steps, self.num_channels)
            if path == S.OUTPUTS_FIELDS
            else (self.num_channels,)
        )
        out = np.zeros((global_rows.size, *inner, side, side), dtype=np.float32)
        mid = (slice(None),) * len(inner)
        keys = (
            np.stack([self._part[global_rows], self.grid_sizes[global_rows]], axis=1)
            if global_rows.size
            else np.zeros((0, 2), int)
        )
        for p, g in {tuple(k) for k in keys.tolist()}:
            ks = np.flatnonzero((keys[:, 0] == p) & (keys[:, 1] == g))
            try:
                dset = self._files[p][path]
                o = (dset.shape[-1] - g) // 2
                d = (side - g) // 2
                uniq, inv = np.unique(self._local[global_rows[ks]], return_inverse=True)
                contiguous = uniq[-1] - uniq[0] + 1 == uniq.size
                first: slice | np.ndarray = slice(int(uniq[0]), int(uniq[-1]) + 1) if contiguous else uniq
                block = dset[(first, *mid, slice(o, o + g), slice(o, o + g))]
                dst: tuple[Any, ...] = (ks, *mid, slice(d, d + g), slice(d, d + g))
                out[dst] = block[inv]
            except Exception as exc:  # a damaged chunk or a malformed file: one error naming it
                raise self._read_error(p, path, exc) from None
        return out[0] if scalar else out

    def trajectories(self, rows: RowSelection = None, *, grid_size: int | None = None, as_tensor: bool = False) -> Any:
        """Trajectories ``[r, M, Ts, C, S, S]`` float32 (S = G padded, or ``grid_size`` unpadded).

        ``as_tensor=True``: a CPU ``torch.Tensor`` sharing the array's memory (no copy).
        """
        return tensor_or_array(self._fields(S.OUTPUTS_FIELDS, rows, grid_size), as_tensor)

    def inputs(self, rows: RowSelection = None, *, grid_size: int | None = None, as_tensor: bool = False) -> Any:
        """Initial conditions ``[r, C, S, S]`` float32 (S as in :meth:`trajectories`; ``as_tensor`` likewise)."""
        return tensor_or_array(self._fields(S.INPUTS_FIELDS, rows, grid_size), as_tensor)

    def params(self, rows: RowSelection = None, *, as_tensor: bool = False) -> Any:
        """Unit-cube points ``[r, P]`` float64 (columns: :attr:`param_names`; ``as_tensor`` likewise)."""
        return tensor_or_array(self._small(S.PARAMS, rows), as_tensor)

    def param_values(self, rows: RowSelection = None) -> list[dict[str, Any]]:
        """Mapped knob values of each row (parsed JSON)."""
        vals = self._small(S.PARAM_VALUES, rows)
        return [json.loads(v) for v in np.atleast_1d(vals).tolist()]

    def metadata(self, rows: RowSelection = None) -> dict[str, np.ndarray]:
        """Per-sample metadata arrays keyed by short name (``ic_types``, ``diverged_step``, ...)."""
        out = {}
        for spec in S.DATASETS:
            if spec.path.startswith(S.GROUP_METADATA + "/") and spec.path in self._files[0]:
                out[spec.path.rsplit("/", 1)[-1]] = self._small(spec.path, rows)
        return out

    def specs(self, rows: RowSelection = None) -> list[dict[str, Any]]:
        """Operator specifications of each row (parsed JSON)."""
        vals = self._small(S.META.OPERATOR_SPECS, rows)
        return [json.loads(v) for v in np.atleast_1d(vals).tolist()]

    def __repr__(self) -> str:
        return f"DatasetReader({str(self.path)!r}, kind={self.kind!r}, N={getattr(self, 'num_samples', '?')}, grids={getattr(self, 'grids', '?')})"


def open_dataset(path: str | Path, *, allow_missing: bool = False) -> DatasetReader:
    """Open a partition file, the index file or a dataset directory (see module docstring).

    Raises:
        DatasetError: missing, stale, corrupt or foreign files (one line naming the file and the fix).
    """
    return DatasetReader(Path(path), allow_missing=allow_missing)


def stored_sensitivity(f: H.File) -> tuple[np.ndarray, list[str], str] | None:
    """``(values [n, F] float32, column names, params_hash)`` of an open partition file, or None.

    None when the file holds no ``/operator_sensitivity/values``.
    """
    d = f.get(S.OPERATOR_SENSITIVITY)
    if not H.is_dataset(d):
        return None
    names = json.loads(decode_attr(d.attrs["names"]))
    return (
        np.asarray(d[()], dtype=np.float32),
        [str(n) for n in names],
        str(decode_attr(d.attrs.get("params_hash", ""))),
    )
