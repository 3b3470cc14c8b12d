"""``TrajectoryDataset``: windows of a split of a Spinlock dataset as torch tensors.

An item is one window of one realization of one sample (operator) at one grid size: the
frames ``t0, t0 + s, ..., t0 + (k + h - 1) s`` of the stored trajectory (frame 0 is the
initial condition), the first ``k`` as the input, the next ``h`` as the target. Names follow
the_well's ``WellDataset`` where they mean the same (``n_steps_input``, ``n_steps_output``,
``min_dt_stride``, ``max_dt_stride``, ``full_trajectory_mode``, ``input_fields``,
``output_fields``).

Item (a dict; shapes with ``C`` channels on a ``g x g`` grid, ``P`` Sobol dimensions):

=================  ===================  ====================================================
key                dtype, shape         what
=================  ===================  ====================================================
``input_fields``   float32 [k, C, g, g] frames ``t0 .. t0 + (k-1) s``
``output_fields``  float32 [h, C, g, g] the next ``h`` frames
``params``         float32 [P]          the operator's unit-cube Sobol point
``sample_index``   int64 []             global sample (operator) index
``realization``    int64 []             realization number
``step``           int64 []             time step (``time`` units) of frame ``t0``
``dt_stride``      int64 []             ``s``
``ic_type``        int64 []             position in :attr:`TrajectoryDataset.ic_types`
``policy``         int64 []             position in :attr:`TrajectoryDataset.policies`
``noise_regime``   int64 []             position in :attr:`TrajectoryDataset.noise_regimes`
``boundary_conditions`` int64 [2, 2]   per spatial axis (y, x) and end: 2 = periodic (the_well's code)
``input_mask``     bool [k]             (``keep_diverged`` only) frame is before divergence
``output_mask``    bool [h]             (``keep_diverged`` only) likewise
``features``       float32 [F]          (``features=...`` only) the operator's summary features at
                                        this grid size (:attr:`TrajectoryDataset.feature_names`;
                                        NaN where a feature is undefined)
``space_grid``     float32 [g, g, 2]    (``return_grid`` only) (y, x) pixel centres ``(i + 0.5) / g``
``input_time_grid`` float32 [k]         (``return_grid`` only) step numbers of the input frames
``output_time_grid`` float32 [h]        (``return_grid`` only) likewise for the outputs
=================  ===================  ====================================================

Windows never include a frame at or after a realization's divergence step unless
``keep_diverged=True``, which keeps every window and gives masks (non-finite values read as 0).
The split (by operator, from ``splits.json``) decides which samples appear.

Files are opened lazily in the process that reads (each DataLoader worker opens its own
handles; none are pickled), through the partition files. A compressed realization (one HDF5
chunk) is decoded whole once and kept among the most recent (64 MiB per process), so the next
windows of it cost an array slice.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from spinlock_core.config import SPLIT_NAMES
from spinlock_core.dataset import DatasetError, DatasetLayout, HDF5FeatureReader, open_dataset, read_splits, read_stats
from spinlock_core.dataset import hdf5 as H
from spinlock_core.dataset import schema as S

from .normalize import NORMALIZATION_TYPES, NormalizationType, Normalizer

__all__ = ["TrajectoryDataset", "WindowTable", "BOUNDARY_PERIODIC"]

_RECENT_BYTES = 64 << 20  # decoded realizations of compressed files kept per process (most recent first)


#: the_well's boundary code of a periodic axis (``BoundaryCondition.PERIODIC``); Spinlock's grids are periodic.
BOUNDARY_PERIODIC = 2


def _restrict(name: str, value: int | float, total: int) -> int:
    """How many of ``total`` items a ``restrict_num_*`` value keeps (an int count or a fraction)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be an int >= 1 or a fraction in (0, 1], got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{name} must be an int >= 1 or a fraction in (0, 1], got {value}")
        return min(value, total)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be an int >= 1 or a fraction in (0, 1], got {value}")
    return int(round(value * total))


def _feature_rows(
    root: Path, grid_size: int, samples: np.ndarray, which: bool | Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Summary features ``[n, F]`` float32 of ``samples`` at ``grid_size`` and their names."""
    with HDF5FeatureReader(root) as fr:
        names = fr.aggregated_names
        if which is True:
            cols = list(range(len(names)))
        elif isinstance(which, str) or not isinstance(which, Sequence) or not which:
            raise ValueError(f"features must be True, False or a list of summary feature names, got {which!r}")
        else:
            unknown = [n for n in which if n not in names]
            if unknown:
                raise ValueError(
                    f"features: no summary feature {unknown[0]!r} (`spinlock features` lists them; "
                    f"the files have {len(names)})"
                )
            cols = [names.index(n) for n in which]
        mine = np.flatnonzero(fr.grid_sizes == grid_size)
        pos = {int(v): i for i, v in enumerate(fr.sample_index[mine].tolist())}
        missing = [int(v) for v in samples.tolist() if int(v) not in pos]
        if missing:
            raise DatasetError(
                root,
                f"no features for sample {missing[0]} at grid {grid_size}",
                f"extract them: spinlock extract-features --dataset {root}",
            )
        table = fr.get_sdf_aggregated(mine) if mine.size else np.zeros((0, len(names)), dtype=np.float32)
    rows = np.asarray([pos[int(v)] for v in samples.tolist()], dtype=np.int64)
    return [names[j] for j in cols], np.ascontiguousarray(table[rows][:, cols], dtype=np.float32)


@dataclass(frozen=True)
class WindowTable:
    """One row per window: sample row, realization, first frame and stride (int64 arrays [n])."""

    row: np.ndarray
    realization: np.ndarray
    first: np.ndarray
    stride: np.ndarray

    def __len__(self) -> int:
        return int(self.row.size)


def _windows(
    valid_frames: np.ndarray, span_of: dict[int, int], *, full: bool, frames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every window start for rows x realizations with ``valid_frames [n, M]`` usable frames."""
    rows, reals, firsts, strides = [], [], [], []
    n, m = valid_frames.shape
    r_grid, m_grid = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    r_idx, m_idx, valid = r_grid.reshape(-1), m_grid.reshape(-1), valid_frames.reshape(-1)
    for s, span in span_of.items():
        if full:  # one window from frame 0, only where every frame is usable
            ok = valid >= frames
            rows.append(r_idx[ok])
            reals.append(m_idx[ok])
            firsts.append(np.zeros(int(ok.sum()), dtype=np.int64))
            strides.append(np.full(int(ok.sum()), s, dtype=np.int64))
            continue
        count = np.maximum(valid - span + 1, 0)  # starts 0 .. valid - span
        rep = np.repeat(np.arange(r_idx.size), count)
        start = np.arange(rep.size) - np.repeat(np.cumsum(count) - count, count)
        rows.append(r_idx[rep])
        reals.append(m_idx[rep])
        firsts.append(start.astype(np.int64))
        strides.append(np.full(rep.size, s, dtype=np.int64))
    row, real, first, stride = (np.concatenate(a).astype(np.int64) for a in (rows, reals, firsts, strides))
    return row, real, first, stride


class TrajectoryDataset(Dataset[dict[str, torch.Tensor]]):
    """Windows of one split at one grid size (see module docstring).

    Args:
        dataset_dir: a dataset directory (``index.h5`` current, or its partition files).
        split: one of ``train``, ``valid``, ``test``, ``ood`` (``splits.json``).
        grid_size: which grid; may be omitted when the dataset has one.
        n_steps_input, n_steps_output: ``k`` and ``h`` (``h`` ignored in full-trajectory mode).
        min_dt_stride, max_dt_stride: every stride ``s`` in that range gives windows.
        full_trajectory_mode: one window per realization from frame 0 with the stride
            ``min_dt_stride``: ``k`` inputs and every remaining frame as output; only
            realizations that never diverged.
        keep_diverged: keep windows that reach a divergence, with ``input_mask``/``output_mask``.
        features: condition on the operator: ``True`` adds every summary feature of the
            feature files (``features/sdf/aggregated``) as ``item["features"]``, a list of names
            adds those columns (in that order); the files must be current.
        restrict_num_trajectories: keep only the first N (an int) or that fraction (a float in
            (0, 1]) of the split's (sample, realization) trajectories, in dataset order.
        restrict_num_samples: keep only the first N or that fraction of the windows.
        return_grid: add ``space_grid``, ``input_time_grid`` and ``output_time_grid``.
        normalize: return fields normalised per channel with the train split's statistics
            (``stats.json``, :class:`~spinlock_core.data.Normalizer`, also :attr:`normalizer` for
            the inverse); ``normalization_type`` ``robust`` (the default: Spinlock's fields are
            heavy-tailed, a few operators dominate the std), ``zscore`` or ``rms``.

    Raises:
        DatasetError: the dataset or its splits file cannot be read, or is stale.
        ValueError: an argument out of range (naming it and what is allowed).
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str = "train",
        grid_size: int | None = None,
        *,
        n_steps_input: int = 1,
        n_steps_output: int = 1,
        min_dt_stride: int = 1,
        max_dt_stride: int = 1,
        full_trajectory_mode: bool = False,
        keep_diverged: bool = False,
        normalize: bool = False,
        normalization_type: NormalizationType = "robust",
        features: bool | Sequence[str] = False,
        restrict_num_trajectories: int | float | None = None,
        restrict_num_samples: int | float | None = None,
        return_grid: bool = False,
    ) -> None:
        if split not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
        for name, v in (("n_steps_input", n_steps_input), ("n_steps_output", n_steps_output)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if not (
            isinstance(min_dt_stride, int) and isinstance(max_dt_stride, int) and 1 <= min_dt_stride <= max_dt_stride
        ):
            raise ValueError(f"need 1 <= min_dt_stride <= max_dt_stride, got {min_dt_stride}, {max_dt_stride}")
        if normalization_type not in NORMALIZATION_TYPES:
            raise ValueError(
                f"normalization_type must be one of {', '.join(NORMALIZATION_TYPES)}, got {normalization_type!r}"
            )
        if full_trajectory_mode and keep_diverged:
            raise ValueError("full_trajectory_mode takes never-diverged realizations only: keep_diverged must be False")
        self.root = Path(dataset_dir)
        self.split = split
        self.keep_diverged = keep_diverged
        self.full_trajectory_mode = full_trajectory_mode
        splits = read_splits(DatasetLayout(self.root))
        with open_dataset(self.root) as reader:
            if grid_size is None:
                if len(reader.grids) != 1:
                    raise ValueError(f"grid_size: the dataset has grid sizes {reader.grids}; choose one")
                grid_size = reader.grids[0]
            if grid_size not in reader.grids:
                raise ValueError(f"grid_size must be one of {reader.grids}, got {grid_size!r}")
            every = reader.metadata()
            self.ic_types: list[str] = sorted({str(t) for t in every["ic_types"]})
            self.policies: list[str] = sorted({str(t) for t in every["rollout_policies"]})
            self.noise_regimes: list[str] = sorted({str(t) for t in every["noise_regimes"]})
            grid_rows = reader.rows_for_grid(grid_size)
            mine = np.isin(reader.sample_index[grid_rows], splits.of(split))
            rows = grid_rows[mine]
            self._files, self._file_of, self._local = reader.row_sources(rows)
            meta = reader.metadata(rows) if rows.size else {k: v[:0] for k, v in every.items()}
            self.param_names: list[str] = list(reader.param_names)
            self.params: np.ndarray = reader.params(rows).astype(np.float32).reshape(rows.size, len(self.param_names))
            self.time: np.ndarray = reader.time_steps.copy()
            self.num_channels: int = reader.num_channels
            self.num_realizations: int = reader.num_realizations
            data_hash = str(reader.attrs.get("config_hash", ""))
        self.grid_size: int = int(grid_size)
        self.normalizer: Normalizer | None = None
        if normalize:
            stats = read_stats(DatasetLayout(self.root), splits, data_hash)
            self.normalizer = Normalizer.from_stats(stats, self.grid_size, normalization_type)
        self.sample_index: np.ndarray = np.asarray(meta["sample_index"], dtype=np.int64)
        self._codes = {
            "ic_type": np.searchsorted(self.ic_types, np.asarray(meta["ic_types"], dtype=str)),
            "policy": np.searchsorted(self.policies, np.asarray(meta["rollout_policies"], dtype=str)),
            "noise_regime": np.searchsorted(self.noise_regimes, np.asarray(meta["noise_regimes"], dtype=str)),
        }
        diverged = np.asarray(meta["diverged_step"], dtype=np.int64).reshape(rows.size, self.num_realizations)
        frames = int(self.time.size)
        usable = np.where(diverged < 0, frames, np.searchsorted(self.time, diverged, side="left"))
        self._usable = usable  # [n, M] frames before the divergence
        self.n_steps_input = n_steps_input
        if full_trajectory_mode:
            s = min_dt_stride
            n_total = (frames - 1) // s + 1
            if n_total <= n_steps_input:
                raise ValueError(
                    f"full_trajectory_mode: {frames} frames at stride {s} leave no output after {n_steps_input} inputs"
                )
            self.n_steps_output = n_total - n_steps_input
            spans = {s: (n_total - 1) * s + 1}
            need = spans[s]
        else:
            self.n_steps_output = n_steps_output
            spans = {s: (n_steps_input + n_steps_output - 1) * s + 1 for s in range(min_dt_stride, max_dt_stride + 1)}
            need = min(spans.values())
        if need > frames:
            raise ValueError(
                f"n_steps_input + n_steps_output = {n_steps_input + self.n_steps_output} frames at stride "
                f"{min_dt_stride} span {need} frames; the trajectories hold {frames}"
            )
        valid = np.full_like(usable, frames) if keep_diverged else usable
        if restrict_num_trajectories is not None:
            keep = _restrict("restrict_num_trajectories", restrict_num_trajectories, valid.size)
            valid = np.where(np.arange(valid.size).reshape(valid.shape) < keep, valid, 0)
        table = _windows(valid, spans, full=full_trajectory_mode, frames=need)
        if restrict_num_samples is not None:
            keep = _restrict("restrict_num_samples", restrict_num_samples, table[0].size)
            table = tuple(a[:keep] for a in table)  # type: ignore[assignment]
        self.windows = WindowTable(*table)
        self.return_grid = bool(return_grid)
        self.feature_names: list[str] = []
        self._features: np.ndarray | None = None
        if features is not False:
            self.feature_names, self._features = _feature_rows(self.root, self.grid_size, self.sample_index, features)
        self._handles: dict[int, Any] = {}
        self._recent: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._pid = -1

    # ------------------------------------------------------------------ torch Dataset
    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = len(self.windows)
        if not -n <= i < n:
            raise IndexError(f"window {i} out of range ({n} windows)")
        i = int(i) % n
        w = self.windows
        row, m, t0, s = int(w.row[i]), int(w.realization[i]), int(w.first[i]), int(w.stride[i])
        k, h = self.n_steps_input, self.n_steps_output
        frames = self._read(row, m, t0, s, k + h)
        item: dict[str, torch.Tensor] = {}
        if self.keep_diverged:
            ok = (t0 + s * np.arange(k + h)) < self._usable[row, m]
            frames = np.where(np.isfinite(frames), frames, np.float32(0.0))
            item["input_mask"] = torch.from_numpy(ok[:k].copy())
            item["output_mask"] = torch.from_numpy(ok[k:].copy())
        fields = torch.from_numpy(frames)
        if self.normalizer is not None:
            fields = self.normalizer.normalize(fields)
        item["input_fields"] = fields[:k].contiguous()
        item["output_fields"] = fields[k:].contiguous()
        item["params"] = torch.from_numpy(self.params[row])
        item["sample_index"] = torch.tensor(int(self.sample_index[row]))
        item["realization"] = torch.tensor(m)
        item["step"] = torch.tensor(int(self.time[t0]))
        item["dt_stride"] = torch.tensor(s)
        for key, codes in self._codes.items():
            item[key] = torch.tensor(int(codes[row]))
        item["boundary_conditions"] = torch.full((2, 2), BOUNDARY_PERIODIC, dtype=torch.int64)
        if self._features is not None:
            item["features"] = torch.from_numpy(self._features[row])
        if self.return_grid:
            g = H.pixel_centres(self.grid_size).astype(np.float32)
            yy, xx = np.meshgrid(g, g, indexing="ij")
            item["space_grid"] = torch.from_numpy(np.stack([yy, xx], axis=-1))
            steps = self.time[t0 : t0 + (k + h - 1) * s + 1 : s].astype(np.float32)
            item["input_time_grid"] = torch.from_numpy(steps[:k].copy())
            item["output_time_grid"] = torch.from_numpy(steps[k:].copy())
        return item

    # ------------------------------------------------------------------ files
    def _read(self, row: int, m: int, t0: int, s: int, count: int) -> np.ndarray:
        """Frames ``[count, C, g, g]`` float32 of one realization.

        A compressed realization (one HDF5 chunk) is decoded whole once and kept among the most
        recent ones (up to 64 MiB per process), so the next windows of it are array slices; an
        uncompressed one is read slice by slice (cheaper than copying the whole realization).
        """
        if self._pid != os.getpid():  # a new process (DataLoader worker): never reuse a parent's handles
            self._handles, self._recent, self._pid = {}, OrderedDict(), os.getpid()
        frames = slice(t0, t0 + (count - 1) * s + 1, s)
        key = (row, m)
        whole = self._recent.get(key)
        if whole is not None:
            self._recent.move_to_end(key)
            return whole[frames]
        fi = int(self._file_of[row])
        dset = self._handles.get(fi)
        if dset is None:
            f = H.open_read(self._files[fi], root=self.root)
            dset = self._handles[fi] = f[S.OUTPUTS_FIELDS]
        if dset.compression is None:
            return np.asarray(dset[int(self._local[row]), m, frames], dtype=np.float32)
        whole = np.empty(dset.shape[2:], dtype=np.float32)
        dset.read_direct(whole, np.s_[int(self._local[row]), m])
        self._recent[key] = whole
        while len(self._recent) > max(1, _RECENT_BYTES // max(whole.nbytes, 1)):
            self._recent.popitem(last=False)
        return whole[frames]

    def close(self) -> None:
        """Close this process's file handles (reopened on the next read)."""
        for dset in self._handles.values():
            dset.file.close()
        self._handles, self._recent = {}, OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"], state["_recent"], state["_pid"] = {}, OrderedDict(), -1  # never across processes
        return state

    def __repr__(self) -> str:
        return (
            f"TrajectoryDataset({str(self.root)!r}, split={self.split!r}, grid_size={self.grid_size}, "
            f"samples={self.sample_index.size}, windows={len(self)}, "
            f"k={self.n_steps_input}, h={self.n_steps_output})"
        )
