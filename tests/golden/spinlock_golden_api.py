"""The library calls the golden run makes (the only part that follows API moves)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def generate_experiment(config: Path, overrides: dict) -> dict[str, Path]:
    """Run every stage of every partition; returns ``{relative path: file}`` of rollout and feature files."""
    from spinlock_core import pipeline
    from spinlock_core.config import load_config

    cfg = load_config(config, overrides)
    out = Path(cfg.dataset.output_dir)
    files = {}
    for g in cfg.simulation.grid_sizes:
        for b in range(cfg.sampling.num_batches):
            sob = pipeline.sobol_stage(cfg, b)
            specs = pipeline.specs_stage(cfg, sob)
            pipeline.rollout_stage(cfg, sob, specs, g)
            pipeline.features_stage(cfg, b, g)
            p = pipeline.partition_path(cfg, b, g)
            files[p.relative_to(out).as_posix()] = p
            fp = pipeline.features_file(cfg, b, g)
            files[fp.relative_to(out).as_posix()] = fp
    return files


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every generated array of a rollout or feature file (attributes, timings and dates excluded)."""
    from golden_run import ROLLOUT_ARRAYS

    out = {}
    with h5py.File(path, "r") as f:
        if "features" in f and "outputs" not in f:
            sdf = f["features/sdf"]
            names = []
            sdf.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            for n in sorted(names):
                if n.startswith("metadata/"):
                    continue  # extraction times and NaN counts per batch
                out[f"features/sdf/{n}"] = sdf[n][()]
        else:
            for n in ROLLOUT_ARRAYS:
                if n in f:
                    out[n] = f[n][()]
    return out
