"""Shared fixtures: a tiny experiment derived from the shipped default config."""

from __future__ import annotations

import pytest
import torch
from spinlock_fixtures import DEFAULT, ROOT, tiny_overrides  # noqa: F401

torch.set_num_threads(1)


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
