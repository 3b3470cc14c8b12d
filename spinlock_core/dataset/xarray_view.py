"""A dataset's rollouts at one grid size as a labelled, dask-chunked :class:`xarray.Dataset`.

``xarray.open_dataset(index.h5, engine="h5netcdf")`` names every dim, but the index's big arrays
are HDF5 *virtual* datasets, which have no chunks: dask then sees each as one array-sized chunk
read by one task. :func:`to_xarray` builds the same view from the partition files instead, one
dask chunk per run of rows of one partition file (at most ``chunk_bytes``), so a dask scheduler
with several workers reads partitions in parallel (processes or a distributed cluster: h5py
holds a global lock, so threads of one process read one at a time).

Variables (``n`` samples of grid ``g``, ``M`` realizations, ``Ts`` frames, ``C`` channels)::

    trajectories        float32 (sample, realization, time, channel, y, x)   dask, lazy
    initial_conditions  float32 (sample, channel, y, x)                      dask, lazy
    params              float64 (sample, param)          unit-cube Sobol point
    diverged_step       int64   (sample, realization)    -1 = never diverged
    ic_type, ic_base_type, policy, noise_regime  str (sample)
    split               str     (sample)                 from splits.json ("" when absent)
    features            float32 (sample, feature)        summary features (when extracted)

Coordinates: ``sample`` (global sample index), ``realization``, ``time`` (step numbers),
``channel``, ``y``/``x`` (pixel centres on the unit square, ``(i + 0.5) / g``), ``param``
(Sobol dimension names), ``feature`` (summary column names).

Each chunk's task opens its partition file through :func:`hdf5.open_read` (containment checks
included), reads its rows and closes it: graphs pickle, and no file handle crosses processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import hdf5 as H
from . import schema as S
from .errors import DatasetError
from .layout import DatasetLayout

__all__ = ["to_xarray", "CHUNK_BYTES"]

#: Largest dask chunk (bytes of float32 data) by default; a chunk never spans two partition files.
CHUNK_BYTES = 128 << 20


@dataclass(frozen=True)
class _Rows:
    """A picklable array-like over rows ``start .. start + count`` of one dataset of one file.

    ``shape`` is ``(count, *row shape)``; indexing opens the file read-only, reads, closes.
    """

    path: str
    root: str
    name: str
    start: int
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        if isinstance(first, slice):
            lo, hi, step = first.indices(self.shape[0])
            first = slice(self.start + lo, self.start + hi, step)
        else:
            first = self.start + int(first)
        with H.open_read(self.path, root=self.root) as f:
            return np.asarray(f[self.name][(first, *rest)])


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _runs(which: np.ndarray, local: np.ndarray) -> list[tuple[int, int, int]]:
    """``(file, first local row, count)`` of maximal runs of consecutive rows of one file."""
    out: list[tuple[int, int, int]] = []
    for w, r in zip(which.tolist(), local.tolist()):
        if out and out[-1][0] == w and out[-1][1] + out[-1][2] == r:
            out[-1] = (w, out[-1][1], out[-1][2] + 1)
        else:
            out.append((w, r, 1))
    return out


def _lazy(
    paths: Sequence[Path], runs: Sequence[tuple[int, int, int]], name: str, row: tuple[int, ...], root: Path, limit: int
) -> Any:
    import dask.array as da

    per_row = max(1, int(np.prod(row)) * 4)
    rows_per_chunk = max(1, limit // per_row)
    blocks = []
    for w, lo, count in runs:
        src = _Rows(str(paths[w]), str(root), name, lo, (count, *row), np.dtype(np.float32))
        chunks = (min(count, rows_per_chunk), *row)
        blocks.append(da.from_array(src, chunks=chunks, name=f"spinlock-{name}-{paths[w].name}-{lo}-{count}"))
    return da.concatenate(blocks, axis=0)


def to_xarray(
    dataset: str | Path,
    *,
    grid_size: int | None = None,
    features: bool = True,
    chunk_bytes: int = CHUNK_BYTES,
    allow_missing: bool = False,
) -> Any:
    """The ``grid_size`` rows of the dataset directory ``dataset`` as an ``xarray.Dataset`` (see module).

    Args:
        dataset: a dataset directory (its index, or its partition files while the index is stale).
        grid_size: which grid; may be omitted only when the dataset has one.
        features: add the summary features (``features (sample, feature)``) when feature files
            are present and current; absent otherwise.
        chunk_bytes: largest dask chunk of the field arrays.
        allow_missing: serve the partitions present when some expected ones are missing.

    Raises:
        ValueError: ``grid_size`` is not one of the dataset's (the message lists them).
        DatasetError: the dataset cannot be read (the message names the file and the fix).
    """
    import xarray as xr

    from .feature_reader import HDF5FeatureReader, find_feature_files
    from .rollouts import open_dataset
    from .splits import read_splits

    root = Path(dataset)
    if not root.is_dir():
        raise DatasetError(root, "to_xarray takes a dataset directory")
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    with open_dataset(root, allow_missing=allow_missing) as r:
        if grid_size is None:
            if len(r.grids) != 1:
                raise ValueError(f"grid_size is required: the dataset has grids {list(r.grids)}")
            grid_size = int(r.grids[0])
        rows = r.rows_for_grid(grid_size)
        paths, which, local = r.row_sources(rows)
        meta = r.metadata(rows)
        params = r.params(rows)
        m, ts, c, g = r.num_realizations, r.num_time_steps, r.num_channels, grid_size
        time_steps, param_names = r.time_steps, list(r.param_names)
    meta = {f"{S.GROUP_METADATA}/{k}": v for k, v in meta.items()}
    samples = np.asarray(meta[S.META.SAMPLE_INDEX], dtype=np.int64)
    runs = _runs(which, local)
    traj = _lazy(paths, runs, S.OUTPUTS_FIELDS, (m, ts, c, g, g), root, chunk_bytes)
    ics = _lazy(paths, runs, S.INPUTS_FIELDS, (c, g, g), root, chunk_bytes)
    sample_dims = ("sample",)
    data: dict[str, Any] = {
        "trajectories": (("sample", "realization", "time", "channel", "y", "x"), traj),
        "initial_conditions": (("sample", "channel", "y", "x"), ics),
        "params": (("sample", "param"), params),
        "diverged_step": (("sample", "realization"), np.asarray(meta[S.META.DIVERGED_STEP], dtype=np.int64)),
    }
    for var, key in (
        ("ic_type", S.META.IC_TYPES),
        ("ic_base_type", S.META.IC_BASE_TYPES),
        ("policy", S.META.ROLLOUT_POLICIES),
        ("noise_regime", S.META.NOISE_REGIMES),
    ):
        if key in meta:
            data[var] = (sample_dims, np.asarray([_text(v) for v in np.asarray(meta[key]).tolist()], dtype=str))
    layout = DatasetLayout(root)
    split = np.full(samples.size, "", dtype=object)
    if layout.splits.is_file():
        for name, members in read_splits(layout).samples.items():
            split[np.isin(samples, members)] = name
    data["split"] = (sample_dims, split.astype(str))
    coords: dict[str, Any] = {
        "sample": samples,
        "realization": np.arange(m, dtype=np.int64),
        "time": np.asarray(time_steps, dtype=np.int64),
        "channel": np.arange(c, dtype=np.int64),
        "y": H.pixel_centres(g),
        "x": H.pixel_centres(g),
        "param": param_names,
    }
    if features and find_feature_files(root):
        with HDF5FeatureReader(root, allow_missing=allow_missing) as fr:
            pos = {int(s): i for i, s in enumerate(fr.sample_index[fr.grid_sizes == grid_size].tolist())}
            mine = np.flatnonzero(fr.grid_sizes == grid_size)
            table = fr.get_sdf_aggregated(mine) if mine.size else np.zeros((0, len(fr.aggregated_names)))
            feats = np.full((samples.size, table.shape[1]), np.nan, dtype=np.float32)
            for i, s in enumerate(samples.tolist()):
                if s in pos:
                    feats[i] = table[pos[s]]
            data["features"] = (("sample", "feature"), feats)
            coords["feature"] = fr.aggregated_names
    attrs = {"grid_size": g, "dataset": str(root)}
    return xr.Dataset(data, coords=coords, attrs=attrs)
