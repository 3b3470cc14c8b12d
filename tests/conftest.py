"""Shared fixtures: a tiny experiment derived from the shipped default config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "configs" / "experiments" / "default.yaml"

torch.set_num_threads(1)


def tiny_overrides(out: Path, **extra) -> dict:
    o = {
        "sampling.total_samples": 6,
        "sampling.batch_size": 3,
        "simulation.grid_sizes": [16, 24],
        "simulation.num_realizations": 2,
        "simulation.num_timesteps": 3,
        "simulation.device": "cpu",
        "dataset.output_dir": str(out),
    }
    o.update(extra)
    return o


@pytest.fixture
def tiny_cfg(tmp_path):
    from spinlock_core.config import load_config

    return load_config(DEFAULT, tiny_overrides(tmp_path / "data"))


@pytest.fixture
def tiny_config_file(tmp_path):
    from spinlock_core.config import load_config, save_config

    cfg = load_config(DEFAULT, tiny_overrides(tmp_path / "data"))
    path = tmp_path / "tiny.yaml"
    save_config(cfg, path)
    return path
