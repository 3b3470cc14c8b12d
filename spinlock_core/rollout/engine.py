"""Batched rollouts of many operators × realizations × steps.

Conventions:
    * ``num_steps`` T operator steps; the stored time axis has T+1 frames, frame 0 is the
      initial condition (shared by all M realizations), frame t the state after step t. With
      ``store_trajectories=False`` only frame T is kept (time coordinate ``[T]``).
    * A realization whose state becomes non-finite or exceeds ``divergence_threshold`` in
      absolute value is *diverged* at that step: its ``diverged_step`` is recorded, every
      stored frame from that step on is NaN, and its state is reset to zero so it costs
      nothing and cannot disturb anything else (operators never share statistics anyway).
    * Precision: convolutions, normalisation and activations run in ``precision``; states,
      updates and stored frames are float32. On CUDA, float32 convolutions may use TF32
      tensor cores (PyTorch's default).

Execution: operators are grouped into buckets of identical layer structure
(:func:`~spinlock_core.operators.bank.bucket_key`), buckets are cut into chunks of at most
``operators_per_chunk`` operators (and a bounded host buffer), and each chunk runs as one
:class:`~spinlock_core.operators.bank.OperatorBank`: one pass per layer for all its
operators and realizations. Finished chunks are handed to ``on_chunk`` (e.g. a writer thread),
in plan order, while the next chunk computes. On the CPU, ``workers`` threads compute that many
chunks at once (each with the process's torch threads; PyTorch releases the GIL in its kernels):
a chunk's numbers do not depend on the thread that computes it (every random stream is an
explicit generator seeded by position), so the data are identical for any ``workers``.

Operator sensitivity (``sensitivity=probe``, a :class:`SensitivityProbe`, e.g.
:class:`spinlock_core.sensitivity.SensitivityMeter`): each chunk's bank is measured before it
steps (``probe.measure``,
realization 0's step-1 draws held fixed, at most M perturbed inputs per forward pass) and the
values travel in :attr:`ChunkResult.sensitivity`. The measurement runs in float32 with TF32 off
(a 16-bit rollout is measured on a float32 copy of the same weights) and never touches the
rollout's state or random streams, so trajectories are bit-identical with and without it; the
step-1 draws are drawn once and shared by the measurement and the first step.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from spinlock_core.operators.bank import OperatorBank, StochasticDraws, bucket_key
from spinlock_core.operators.spec import OperatorSpec
from spinlock_core.rollout.policies import policy_coefficients

__all__ = ["ChunkResult", "RolloutStats", "SensitivityProbe", "run_rollouts", "PRECISIONS", "time_axis"]

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class SensitivityProbe(Protocol):
    """Measures a bank's operators before they step (:class:`spinlock_core.sensitivity.SensitivityMeter`).

    ``measure(bank, ics [g, C, H, W], draws, eval_batch)`` returns ``[g, F]`` values; it must not
    touch the bank's state or random streams (trajectories do not depend on it).
    """

    def measure(
        self, bank: OperatorBank, ics: torch.Tensor, draws: StochasticDraws, eval_batch: int
    ) -> torch.Tensor: ...


def time_axis(num_steps: int, store_trajectories: bool) -> list[int]:
    """Step number of each stored frame."""
    return list(range(num_steps + 1)) if store_trajectories else [num_steps]


@dataclass
class ChunkResult:
    """Finished trajectories of one chunk of operators."""

    rows: np.ndarray  # [g] positions of the operators in the input list
    trajectories: np.ndarray  # [g, M, Ts, C, H, W] float32
    diverged_step: np.ndarray  # [g, M] int32, -1 = never
    sensitivity: np.ndarray | None = None  # [g, F] float32 operator-sensitivity values (None: not measured)


@dataclass
class RolloutStats:
    num_operators: int
    num_realizations: int
    num_steps: int
    device: str
    conv_mode: str
    seconds: float = 0.0
    buckets: int = 0
    chunks: int = 0
    diverged_realizations: int = 0
    diverged_operators: int = 0
    build_seconds: float = 0.0  # constructing banks (weights drawn on the device)
    host_seconds: float = 0.0  # device→host transfer wait and trajectory layout on the host
    sensitivity_seconds: float = 0.0  # operator-sensitivity measurement (incl. step 1's draws, reused by the rollout)
    bucket_sizes: list[int] = field(default_factory=list)


#: Live activation tensors of the widest layer assumed per bank when sizing chunks.
_LIVE_ACTIVATIONS = 6


def activation_budget(dev: torch.device) -> int:
    """Bytes a bank's activations may use: 40% of the GPU's total memory, or 4 GiB on the CPU.

    Depends only on the kind of device (not on what happens to be free), so chunking, and hence
    the data, is the same on every run.
    """
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev).total_memory * 0.4)
    return 4 << 30


def _chunks(specs, quantum, per_chunk, frame_bytes, max_bytes, act_bytes_per_channel, budget):
    """Split operators into buckets, and buckets into chunks bounded by count, host and device memory."""
    buckets: dict = {}
    for pos, s in enumerate(specs):
        buckets.setdefault(bucket_key(s, quantum), []).append(pos)
    out = []
    for key in sorted(buckets):
        widest = key.width * 2 ** min(key.num_layers - 1, 2)
        per_op_act = _LIVE_ACTIVATIONS * widest * act_bytes_per_channel
        cap = max(1, min(per_chunk, max_bytes // max(frame_bytes, 1), budget // max(per_op_act, 1)))
        members = sorted(
            buckets[key],
            key=lambda p: (str(specs[p].params["activation"]), str(specs[p].params["noise_type"]), p),
        )
        for i in range(0, len(members), cap):
            out.append((key, members[i : i + cap]))
    return out, len(buckets)


def run_rollouts(
    specs: Sequence[OperatorSpec],
    ics: torch.Tensor,
    *,
    num_realizations: int,
    num_steps: int,
    device: torch.device | str = "cpu",
    precision: str = "float32",
    divergence_threshold: float = 1e4,
    store_trajectories: bool = True,
    operators_per_chunk: int = 64,
    conv_mode: str = "auto",
    width_quantum: int | None = None,
    max_chunk_bytes: int = 1 << 30,
    deterministic: bool = True,
    sensitivity: SensitivityProbe | None = None,
    workers: int = 1,
    on_chunk: Callable[[ChunkResult], None],
) -> RolloutStats:
    """Roll out every operator from its initial condition for M realizations and T steps.

    Args:
        specs: n operator specs (any mix of architectures).
        ics: ``[n, C, H, W]`` float32 initial conditions, ``ics[i]`` for ``specs[i]``.
        num_realizations: M.
        num_steps: T ≥ 1.
        device: where to compute.
        precision: "float32", "bfloat16" or "float16".
        divergence_threshold: max |x| above which a realization is diverged.
        store_trajectories: keep all T+1 frames, else only the final one.
        operators_per_chunk: most operators executed together.
        conv_mode: "auto", "grouped" or "loop" (see :class:`OperatorBank`).
        width_quantum: base widths are padded to a multiple of it (default 4 on CPU, 16 on CUDA).
        max_chunk_bytes: bound on a chunk's host trajectory buffer.
        deterministic: deterministic cuDNN algorithms on CUDA (bit-identical reruns).
        sensitivity: None, or a :class:`SensitivityProbe` (``spinlock_core.sensitivity``):
            measure every operator before it steps (see the module docstring); the values
            arrive as :attr:`ChunkResult.sensitivity`. Trajectories do not depend on it.
        workers: chunks computed at once by threads on the CPU (>= 1; ignored on CUDA, where one
            chunk fills the device); the data do not depend on it.
        on_chunk: called with each finished :class:`ChunkResult` (in bucket order).

    Returns:
        :class:`RolloutStats`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if num_steps < 1 or num_realizations < 1:
        raise ValueError(f"need num_steps >= 1 and num_realizations >= 1, got {num_steps}, {num_realizations}")
    n, c, h, w = ics.shape
    if n != len(specs):
        raise ValueError(f"got {len(specs)} specs but {n} initial conditions")
    dev = torch.device(device)
    dtype = PRECISIONS[precision]
    quantum = width_quantum or (16 if dev.type == "cuda" else 4)
    mode = conv_mode if conv_mode != "auto" else ("grouped" if dev.type == "cuda" else "loop")
    steps = time_axis(num_steps, store_trajectories)
    ts = len(steps)
    m = num_realizations
    stats = RolloutStats(n, m, num_steps, str(dev), mode)
    t0 = time.perf_counter()
    act_bytes = m * h * w * (torch.finfo(dtype).bits // 8 + 4)  # compute-dtype activation + float32 temporaries
    plan, stats.buckets = _chunks(
        specs, quantum, operators_per_chunk, m * ts * c * h * w * 4, max_chunk_bytes, act_bytes, activation_budget(dev)
    )
    ics_dev = ics.to(device=dev, dtype=torch.float32)
    local = threading.local()  # one (pinned on CUDA) host buffer per computing thread, reused across chunks
    flags = dict(
        enabled=True,
        benchmark=torch.backends.cudnn.benchmark,
        deterministic=deterministic,
        allow_tf32=torch.backends.cudnn.allow_tf32,
    )

    def compute(members: list[int], width: int) -> tuple[ChunkResult, RolloutStats]:
        own = RolloutStats(len(members), m, num_steps, str(dev), mode)  # this chunk's timings
        if not hasattr(local, "buffers"):
            local.buffers = {}
        with torch.inference_mode(), torch.backends.cudnn.flags(**flags):  # thread-local: set in each thread
            result = _run_chunk(
                [specs[p] for p in members],
                ics_dev[members],
                width,
                m,
                num_steps,
                dev,
                dtype,
                mode,
                float(divergence_threshold),
                store_trajectories,
                ts,
                local.buffers,
                own,
                sensitivity,
            )
        result.rows = np.asarray(members, dtype=np.int64)
        return result, own

    def finish(result: ChunkResult, own: RolloutStats) -> None:
        stats.build_seconds += own.build_seconds
        stats.host_seconds += own.host_seconds
        stats.sensitivity_seconds += own.sensitivity_seconds
        stats.chunks += 1
        stats.bucket_sizes.append(len(result.rows))
        div = result.diverged_step
        stats.diverged_realizations += int((div >= 0).sum())
        stats.diverged_operators += int((div >= 0).any(axis=1).sum())
        on_chunk(result)

    threads = workers if dev.type == "cpu" else 1
    if threads == 1 or len(plan) == 1:
        for key, members in plan:
            finish(*compute(members, key.width))
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="spinlock-rollout") as pool:
            pending: deque[Future[tuple[ChunkResult, RolloutStats]]] = deque()
            try:
                for key, members in plan:
                    pending.append(pool.submit(compute, members, key.width))
                    if len(pending) > threads:  # bounded memory: at most threads + 1 chunks in flight
                        finish(*pending.popleft().result())
                while pending:
                    finish(*pending.popleft().result())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    stats.seconds = time.perf_counter() - t0
    return stats


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _measure(specs, ics, bank, seeds, width, m, num_steps, dev, dtype, mode, probe: SensitivityProbe, stats):
    """Sensitivity of the chunk's operators; returns (values [g, F] numpy, step-1 draws of ``bank`` or None)."""
    t0 = time.perf_counter()
    _, _, h, w = ics.shape
    if dtype == torch.float32:
        draws1 = bank.draw(1, seeds, h, w)
        vals = probe.measure(bank, ics, draws1, m)
    else:  # 16-bit rollout: measure a float32 copy (same weights, realization 0's draws)
        draws1 = None
        twin = OperatorBank(
            specs, width, num_realizations=1, num_steps=num_steps, device=dev, dtype=torch.float32, conv_mode=mode
        )
        vals = probe.measure(twin, ics, twin.draw(1, [[s[0]] for s in seeds], h, w), m)
        del twin
    out = vals.cpu().numpy().astype(np.float32)
    stats.sensitivity_seconds += time.perf_counter() - t0
    return out, draws1


def _run_chunk(
    specs, ics, width, m, num_steps, dev, dtype, mode, threshold, store, ts, buffers, stats, sensitivity=None
) -> ChunkResult:
    g = len(specs)
    _, c, h, w = ics.shape
    t0 = time.perf_counter()
    bank = OperatorBank(specs, width, num_realizations=m, num_steps=num_steps, device=dev, dtype=dtype, conv_mode=mode)
    seeds = [[s.noise_seed(r) for r in range(m)] for s in specs]
    coef = torch.tensor([policy_coefficients(s.params) for s in specs], device=dev, dtype=torch.float32)
    a = coef[:, 0].repeat_interleave(c).view(1, g * c, 1, 1)
    cc = coef[:, 1].repeat_interleave(c).view(1, g * c, 1, 1)
    pin = dev.type == "cuda"
    shape = (ts, m, g, c, h, w)
    numel = ts * m * g * c * h * w
    if "flat" not in buffers or buffers["flat"].numel() < numel:  # grow only: pinning is slow
        buffers["flat"] = torch.empty(numel, dtype=torch.float32, pin_memory=pin)
    frames = buffers["flat"][:numel].view(shape)
    _sync(dev)
    stats.build_seconds += time.perf_counter() - t0
    sens, draws1 = None, None
    if sensitivity is not None:
        sens, draws1 = _measure(specs, ics, bank, seeds, width, m, num_steps, dev, dtype, mode, sensitivity, stats)
    x = ics.reshape(1, g * c, h, w)
    f = 0
    if store:
        frames[0].copy_(ics.unsqueeze(0).expand(m, g, c, h, w))
        f = 1
    div = torch.full((m, g), -1, dtype=torch.int32, device=dev)
    for t in range(1, num_steps + 1):
        draws = draws1 if t == 1 and draws1 is not None else bank.draw(t, seeds, h, w)
        out = bank.forward(x, draws, t)
        x = a * x + cc * out  # [M, G·C, H, W]
        xv = x.view(m, g, c * h * w)
        peak = xv.abs().amax(dim=-1)
        bad = ~(peak <= threshold)  # catches NaN and inf too
        div = torch.where(bad & (div < 0), torch.full_like(div, t), div)
        x = torch.where(bad.repeat_interleave(c, dim=1).view(m, g * c, 1, 1), torch.zeros_like(x), x)
        if store or t == num_steps:
            frames[f].copy_(x.view(m, g, c, h, w), non_blocking=pin)
            f += 1
    t1 = time.perf_counter()
    _sync(dev)
    div_np = div.cpu().numpy().T.copy()  # [G, M]
    # [G, M, Ts, C, H, W]; always a copy: the host buffer is reused by the next chunk
    traj = frames.numpy().transpose(2, 1, 0, 3, 4, 5).copy(order="C")
    step_of_frame = np.asarray(time_axis(num_steps, store))
    for gi, mi in zip(*np.nonzero(div_np >= 0)):
        traj[gi, mi, step_of_frame >= div_np[gi, mi]] = np.nan
    stats.host_seconds += time.perf_counter() - t1
    return ChunkResult(
        rows=np.empty(0, dtype=np.int64), trajectories=traj, diverged_step=div_np.astype(np.int32), sensitivity=sens
    )
