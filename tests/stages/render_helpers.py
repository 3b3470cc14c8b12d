"""Helpers of the render stage tests: tiny experiments generated through the stage functions."""

from __future__ import annotations

from pathlib import Path

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import PartitionId
from spinlock_core.testing import run_stages, tiny_config

#: The stages a render reads from: points, specs and rollouts (no features).
ROLLOUT_STAGES = ("sobol_parameters", "operator_specs", "rollouts_hdf5")


def tiny_render_config(
    out: Path, *, store: bool = True, samples: int = 4, grid: int = 16, m: int = 3, steps: int = 5, **extra
) -> ExperimentConfig:
    """The shipped default experiment shrunk: one batch of ``samples`` operators on one grid."""
    return tiny_config(
        out,
        **{
            "sampling.total_samples": samples,
            "sampling.batch_size": samples,
            "simulation.grid_sizes": [grid],
            "simulation.num_realizations": m,
            "simulation.num_timesteps": steps,
            "dataset.storage.store_trajectories": store,
            **extra,
        },
    )


def generate(cfg: ExperimentConfig, batch: int = 0) -> Path:
    """Points, specs and rollouts of partition (first grid, ``batch``); returns its rollouts file."""
    part = PartitionId(grid=cfg.simulation.grid_sizes[0], batch=batch)
    layout = run_stages(cfg, [part], stages=ROLLOUT_STAGES)
    return layout.rollouts(part)
