"""Shared fixtures: a tiny experiment derived from the shipped default config (spinlock_core.testing)."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg(tmp_path):
    from spinlock_core.testing import tiny_config

    return tiny_config(tmp_path / "data")


@pytest.fixture
def tiny_config_file(tmp_path):
    from spinlock_core.config import save_config
    from spinlock_core.testing import tiny_config

    path = tmp_path / "tiny.yaml"
    save_config(tiny_config(tmp_path / "data"), path)
    return path
