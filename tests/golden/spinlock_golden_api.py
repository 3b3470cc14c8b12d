"""The library calls the golden run makes (the only part that follows API moves)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def generate_experiment(config: Path, overrides: dict) -> dict[str, Path]:
    """Run every stage of every partition; returns ``{relative path: file}`` of rollout and feature files."""
    from spinlock_core.config import load_config
    from spinlock_core.dataset import PartitionId
    from spinlock_core.device import torch_threads
    from spinlock_core.stages import features_stage, layout_of, rollout_stage, sobol_stage, specs_stage

    cfg = load_config(config, overrides)
    layout = layout_of(cfg)
    files = {}
    with torch_threads(cfg.simulation.cpu_threads):  # as the pipeline's steps run: the numbers depend on it
        for g in cfg.simulation.grid_sizes:
            for b in range(cfg.sampling.num_batches):
                part = PartitionId(grid=g, batch=b)
                sobol_stage(cfg, b)
                specs_stage(cfg, b)
                rollout_stage(cfg, part)
                features_stage(cfg, part)
                for p in (layout.rollouts(part), layout.features(part)):
                    files[p.relative_to(layout.root).as_posix()] = p
    return files


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every generated array of a rollout or feature file (attributes, timings and dates excluded)."""
    from golden_run import ROLLOUT_ARRAYS

    out = {}
    with h5py.File(path, "r") as f:
        if "features" in f and "outputs" not in f:
            sdf = f["features/sdf"]
            names = []
            # computed arrays only: the column labels (dimension scales, feature names) are layout
            sdf.visititems(
                lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and not h5py.h5ds.is_scale(o.id) else None
            )
            for n in sorted(names):
                if n.startswith("metadata/"):
                    continue  # extraction times and NaN counts per batch
                out[f"features/sdf/{n}"] = sdf[n][()]
        else:
            for n in ROLLOUT_ARRAYS:
                if n in f:
                    out[n] = f[n][()]
    return out
