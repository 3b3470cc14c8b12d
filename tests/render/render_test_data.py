"""Helpers of the render tests: tiny generated datasets and synthetic trajectories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from spinlock_fixtures import DEFAULT, tiny_overrides


def tiny_render_config(
    out: Path, *, store: bool = True, samples: int = 4, grid: int = 16, m: int = 3, steps: int = 5, **extra
):
    """The shipped default experiment shrunk: one batch of ``samples`` operators on one grid."""
    from spinlock_core.config import load_config

    o = tiny_overrides(
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
    return load_config(DEFAULT, o)


def generate(cfg, batch: int = 0) -> Path:
    """Run the pipeline stages of partition (batch, first grid); returns the partition file."""
    from spinlock_core import pipeline

    grid = cfg.simulation.grid_sizes[0]
    sob = pipeline.sobol_stage(cfg, batch)
    pipeline.rollout_stage(cfg, sob, pipeline.specs_stage(cfg, sob), grid)
    return pipeline.partition_path(cfg, batch, grid)


def synthetic(n_ops: int = 2, m: int = 3, frames: int = 4, c: int = 3, g: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Random smooth-ish fields ``[M, F, C, g, g]`` per operator, amplitude growing with the operator."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_ops):
        base = rng.standard_normal((1, frames, c, g, g)).astype(np.float32)
        noise = 0.3 * rng.standard_normal((m, frames, c, g, g)).astype(np.float32)
        out.append(((base + noise) * (1.0 + 9.0 * i)).astype(np.float32))
    return out
