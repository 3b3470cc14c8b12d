"""Replay operators from their stored specs: the same initial conditions and rollouts, re-simulated.

Used by validation (seed replay: the stored data must come out of the stored seeds) and by
renders of datasets stored without trajectories. Weights and seeds are device-independent;
noise streams are drawn on the compute device, so a trajectory replays exactly only on the
kind of device that generated it (and, on the CPU, with the same number of torch threads).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from spinlock_core.device import resolve_device
from spinlock_core.ics import generate_ics
from spinlock_core.operators import OperatorSpec
from spinlock_core.rollout import ChunkResult, run_rollouts

__all__ = ["replay_operators", "replay_sample"]


def replay_operators(
    specs: Sequence[OperatorSpec],
    stored_inputs: np.ndarray,
    *,
    num_realizations: int,
    num_steps: int,
    precision: str = "float32",
    divergence_threshold: float = 1e4,
    deterministic: bool = True,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Replay operators from their specs: ``(regenerated ICs [n, C, g, g], trajectories [n, M, T+1, C, g, g])``.

    The rollout starts from ``stored_inputs [n, C, g, g]`` (what the generator started from;
    compare it with the regenerated ICs to check the IC seeds) and keeps all T + 1 frames.
    """
    dev = resolve_device(device, setting="replay device")
    stored_inputs = np.asarray(stored_inputs, dtype=np.float32)
    g, c = stored_inputs.shape[-1], stored_inputs.shape[1]
    ics = generate_ics([(s.ic_base, s.ic_params, s.ic_seed) for s in specs], g, c, dev).cpu().numpy()
    out = np.empty((len(specs), num_realizations, num_steps + 1, c, g, g), dtype=np.float32)

    def take(res: ChunkResult) -> None:
        out[res.rows] = res.trajectories

    run_rollouts(
        list(specs),
        torch.from_numpy(stored_inputs),
        num_realizations=num_realizations,
        num_steps=num_steps,
        device=dev,
        precision=precision,
        divergence_threshold=divergence_threshold,
        store_trajectories=True,
        deterministic=deterministic,
        on_chunk=take,
    )
    return ics, out


def replay_sample(
    spec: OperatorSpec,
    grid_size: int,
    num_realizations: int,
    num_steps: int,
    precision: str,
    store: bool,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Re-simulate one sample alone from its seeds: ``(ic [C, H, W], trajectories [M, Ts, C, H, W])``."""
    dev = resolve_device(device, setting="replay device")
    ic = generate_ics([(spec.ic_base, spec.ic_params, spec.ic_seed)], grid_size, spec.num_channels, dev).cpu()
    out: list[np.ndarray] = []

    def take(r: ChunkResult) -> None:
        out.append(r.trajectories[0])

    run_rollouts(
        [spec],
        ic,
        num_realizations=num_realizations,
        num_steps=num_steps,
        precision=precision,
        device=dev,
        store_trajectories=store,
        on_chunk=take,
    )
    return ic[0].numpy(), out[0]
