"""Shared test helpers (a uniquely named module: several test folders have a conftest.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "configs" / "experiments" / "default.yaml"
FEATURES_DEFAULT = ROOT / "configs" / "features" / "default.yaml"


def tiny_overrides(out: Path, **extra) -> dict:
    o = {
        "sampling.total_samples": 6,
        "sampling.batch_size": 3,
        "simulation.grid_sizes": [16, 24],
        "simulation.num_realizations": 2,
        "simulation.num_timesteps": 3,
        "simulation.device": "cpu",
        "dataset.output_dir": str(out),
        "features.config": str(FEATURES_DEFAULT),
    }
    o.update(extra)
    return o
