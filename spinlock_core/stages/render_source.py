"""Where rendered trajectories come from: the stored frames, or an exact replay.

A dataset written with ``store_trajectories: true`` holds every frame (time coordinate
``[0, 1, ..., T]``) and is read as stored. One written with ``store_trajectories: false`` holds
only the final state (time coordinate ``[T]``, see docs/schema.md); its selected operators are
then **replayed**: each operator is rebuilt from its stored JSON spec (knob values, weight, IC
and noise seeds), its initial condition is regenerated from its seed and compared with the
stored one, and it is rolled out for the stored T steps with the stored precision, divergence
threshold and M, starting from the stored initial condition. The replay's final frame is
compared with the stored final frame (:attr:`RenderSource.replay_max_abs_diff`).

Exactness: operators never share computations (per-operator convolutions on the CPU, seeded
per-(operator, realization, step) noise streams), so a replay reproduces the stored values bit
for bit on the same kind of device with the same torch build **and the same number of torch
CPU threads** (oneDNN splits convolution reductions by thread count; with another count the
last bits differ, ~1e-6 relative). Partition files record the count they were made with
(root attribute ``torch_num_threads``, from ``simulation.cpu_threads``) and the replay uses it. On another device kind (data made on CUDA, replayed on the
CPU) the noise streams differ and the replay is a different sample of the same operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from spinlock_core.dataset import open_dataset
from spinlock_core.device import torch_threads
from spinlock_core.operators import OperatorSpec
from spinlock_core.stages.replay import replay_operators

__all__ = ["RowLabel", "RenderSource", "select_positions", "frame_positions", "load_source"]


@dataclass(frozen=True)
class RowLabel:
    """What a row shows in its label column."""

    sample: int
    grid_size: int
    ic_type: str
    policy: str
    noise_regime: str
    diverged: int = 0  # realizations that diverged (their frames from then on are non-finite: grey)
    realizations: int = 0
    first_diverged_step: int = -1

    def lines(self) -> list[str]:
        out = [f"sample {self.sample}", self.ic_type, self.policy, f"{self.noise_regime} noise"]
        if self.diverged:
            out.append(f"diverged {self.diverged}/{self.realizations} (step {self.first_diverged_step})")
        return out


@dataclass
class RenderSource:
    """Trajectories of the selected operators, ready to render.

    Attributes:
        fields: per operator ``float32 [M, F, C, g, g]`` (M used realizations, F shown frames).
        steps: ``int64 [F]`` step number of each shown frame.
        labels: per operator.
        replayed: frames come from a replay (the dataset stores the final state only).
        ic_exact: replay only: every regenerated initial condition equals the stored one bit
            for bit.
        replay_max_abs_diff: replay only: max |replayed - stored| over the stored frames (the
            final state, or every frame when stored), non-finite values equal when both are;
            0.0 = bit-identical.
        num_stored_realizations: M stored in the dataset.
        path: the dataset.
    """

    fields: list[np.ndarray]
    steps: np.ndarray
    labels: list[RowLabel]
    replayed: bool = False
    ic_exact: bool | None = None
    replay_max_abs_diff: float | None = None
    num_stored_realizations: int = 0
    path: str = ""
    grid_size: int = 0
    extra: dict = field(default_factory=dict)


def select_positions(
    sample_index: np.ndarray,
    *,
    operator_indices: Sequence[int] | None = None,
    n_operators: int | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Positions (into ``sample_index``) of the operators to show, in display order.

    ``operator_indices`` are global sample indices (the ``sample`` coordinate), shown in the
    given order. Otherwise ``n_operators`` rows (all if None, at most the available number):
    the first ones, or with ``seed`` a uniform draw without replacement by
    ``numpy.random.default_rng(seed)`` (shown in row order).

    Raises:
        ValueError: an index not in the dataset (the message gives the available range), a
            repeated index, or ``n_operators < 1``.
    """
    sample_index = np.asarray(sample_index, dtype=np.int64)
    if operator_indices is not None:
        idx = [int(i) for i in operator_indices]
        if not idx:
            raise ValueError("operator indices: give at least one")
        if len(set(idx)) != len(idx):
            raise ValueError(f"operator indices repeated: {idx}")
        where = {int(s): p for p, s in enumerate(sample_index.tolist())}
        missing = [i for i in idx if i not in where]
        if missing:
            lo, hi = (int(sample_index.min()), int(sample_index.max())) if sample_index.size else (0, -1)
            raise ValueError(
                f"operator indices {missing} are not in the dataset (samples {lo}..{hi}, {sample_index.size} rows)"
            )
        return np.array([where[i] for i in idx], dtype=np.int64)
    n = sample_index.size if n_operators is None else int(n_operators)
    if n < 1:
        raise ValueError(f"n_operators must be >= 1, got {n}")
    n = min(n, sample_index.size)
    if seed is None:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(sample_index.size, size=n, replace=False)).astype(np.int64)


def frame_positions(time_steps: np.ndarray, *, steps: int | None = None, stride: int = 1) -> np.ndarray:
    """Positions of the frames to show: every ``stride``-th frame whose step is ``<= steps``."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if steps is not None and steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    pos = np.arange(len(time_steps))
    if steps is not None:
        pos = pos[np.asarray(time_steps) <= steps]
    return pos[::stride]


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    both_bad = ~np.isfinite(a) & ~np.isfinite(b)
    d = np.abs(np.where(both_bad, 0.0, a.astype(np.float64) - b.astype(np.float64)))
    return float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0


def load_source(
    path: str | Path,
    *,
    grid_size: int | None = None,
    operator_indices: Sequence[int] | None = None,
    n_operators: int | None = 4,
    seed: int | None = None,
    n_realizations: int | None = None,
    steps: int | None = None,
    stride: int = 1,
    device: str | None = None,
    replay: str = "auto",
) -> RenderSource:
    """Read (or replay) the selected operators of a dataset (module docstring).

    Args:
        path: dataset directory, index file or partition file.
        grid_size: which grid's rows (default: the largest grid of the dataset).
        operator_indices, n_operators, seed: the selection (:func:`select_positions`).
        n_realizations: use the first M realizations (default: all stored).
        steps, stride: the shown frames (:func:`frame_positions`).
        device: replay device (default: the device the data was made on when available, else
            the CPU).
        replay: ``"auto"`` (replay only when the dataset stores final states only),
            ``"always"`` or ``"never"`` (then a final-state dataset shows its one frame).

    Raises:
        ValueError: bad selection, grid size, realization count or replay mode.
        FileNotFoundError: no dataset at ``path``.
    """
    if replay not in ("auto", "always", "never"):
        raise ValueError(f"replay must be auto, always or never, got {replay!r}")
    with open_dataset(Path(path), allow_missing=True) as r:
        g = int(grid_size) if grid_size is not None else r.grids[-1]
        rows = r.rows_for_grid(g)  # raises ValueError listing the grids
        m_stored = r.num_realizations
        m = m_stored if n_realizations is None else int(n_realizations)
        if not 1 <= m <= m_stored:
            raise ValueError(f"n_realizations must be in 1..{m_stored} (the dataset has M = {m_stored}), got {m}")
        pos = select_positions(
            r.sample_index[rows], operator_indices=operator_indices, n_operators=n_operators, seed=seed
        )
        meta = r.metadata(rows[pos])
        div = np.asarray(meta["diverged_step"])[:, :m]  # [n, M], -1 = never
        labels = [
            RowLabel(
                int(s),
                g,
                str(ic),
                str(pol),
                str(nr),
                int((d >= 0).sum()),
                m,
                int(d[d >= 0].min()) if (d >= 0).any() else -1,
            )
            for s, ic, pol, nr, d in zip(
                meta["sample_index"], meta["ic_types"], meta["rollout_policies"], meta["noise_regimes"], div
            )
        ]
        time_steps = r.time_steps
        do_replay = replay == "always" or (replay == "auto" and len(time_steps) == 1 and time_steps[0] > 0)
        src = RenderSource(
            fields=[],
            steps=np.zeros(0, np.int64),
            labels=labels,
            replayed=do_replay,
            num_stored_realizations=m_stored,
            path=str(path),
            grid_size=g,
        )
        if not do_replay:
            fpos = frame_positions(time_steps, steps=steps, stride=stride)
            data = r.trajectories(pos, grid_size=g)  # [n, M, Ts, C, g, g]
            src.fields = [np.ascontiguousarray(d[:m][:, fpos]) for d in data]
            src.steps = time_steps[fpos].astype(np.int64)
            return src
        specs = [OperatorSpec.from_dict(d) for d in r.specs(rows[pos])]
        stored_in = r.inputs(pos, grid_size=g)
        stored = r.trajectories(pos, grid_size=g)  # [n, M, Ts, C, g, g]
        attrs, sim = r.attrs, r.config.get("simulation", {})
    made_on = str(attrs.get("device", "cpu"))
    if device is None:
        device = made_on if (not made_on.startswith("cuda") or torch.cuda.is_available()) else "cpu"
    num_steps = int(time_steps[-1])
    threads = attrs.get("torch_num_threads")  # recorded by writers that know it; else this process's setting
    with torch_threads(int(threads) if threads else None):
        ics, traj = replay_operators(
            specs,
            stored_in,
            num_realizations=m_stored,
            num_steps=num_steps,
            precision=str(attrs.get("precision", sim.get("precision", "float32"))),
            divergence_threshold=float(sim.get("divergence_threshold", 1e4)),
            deterministic=bool(sim.get("deterministic", True)),
            device=device,
        )
    src.ic_exact = bool(np.array_equal(ics, stored_in))
    # all frames when they are stored (replay="always"), else the final state
    src.replay_max_abs_diff = _max_abs_diff(traj if stored.shape[2] == traj.shape[2] else traj[:, :, -1:], stored)
    all_steps = np.arange(num_steps + 1, dtype=np.int64)
    fpos = frame_positions(all_steps, steps=steps, stride=stride)
    src.fields = [np.ascontiguousarray(t[:m][:, fpos]) for t in traj]
    src.steps = all_steps[fpos]
    src.extra = {"replay_device": str(device), "made_on": made_on}
    return src
