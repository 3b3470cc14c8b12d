"""One generated dataset shared by the baselines tests (built once per session, about 10 s on 2 cores).

128 operators of the default experiment at grid 16 with M = 2 realizations and the default
T = 8 steps (spinlock_core.testing.build_dataset), split 75 / 0 / 25 % by operator so the test
split holds 32 operators never trained on (about 440 windows with k = 2): enough for an nRMSE
mean whose spread between datasets (0.47 to 0.63 for persistence over six root seeds) is far
smaller than the margin the tests ask for. Features and renders are skipped: nothing here
reads them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Dotted overrides of the default experiment (on top of spinlock_core.testing.tiny_overrides).
LEARNING_OVERRIDES = {
    "sampling.total_samples": 128,
    "sampling.batch_size": 64,
    "simulation.grid_sizes": [16],
    "simulation.num_realizations": 2,
    "simulation.num_timesteps": 8,
    "splits.train": 0.75,
    "splits.valid": 0.0,
    "splits.test": 0.25,
    "features.extract": False,
    "renders.enabled": False,
}


@pytest.fixture(scope="session")
def learning_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spinlock_core.testing import build_dataset

    root = tmp_path_factory.mktemp("baselines") / "ds"
    build_dataset(root, **LEARNING_OVERRIDES)
    return root
