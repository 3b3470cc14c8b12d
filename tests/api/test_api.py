"""The Python API (``spinlock``): generate in two lines, the same bytes as the CLI, one error type, seed paths."""

from __future__ import annotations

import os

import numpy as np
import pytest

import spinlock
from spinlock_cli.main import run_cli
from spinlock_core.dataset import dataset_digest, validate_files
from spinlock_core.testing import DEFAULT_CONFIG, tiny_overrides


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "cli_home"))
    return tmp_path


def _one_grid(out):
    return tiny_overrides(out, **{"simulation.grid_sizes": [16]})


def test_generate_writes_the_same_bytes_as_the_cli_and_trains(home):
    root = spinlock.generate(DEFAULT_CONFIG, _one_grid(home / "api"), dagster_home=home / "api_home", quiet=True)
    assert root == home / "api"
    assert os.environ["DAGSTER_HOME"] == str((home / "api_home").resolve())
    assert "SPINLOCK_CPU_WORKERS" not in os.environ  # set for the in-process run only, never left behind
    assert validate_files(root).ok
    os.environ["DAGSTER_HOME"] = str(home / "cli_home")
    o = _one_grid(home / "cli")
    res = run_cli("generate", "--quiet", *_cli_args(o))
    assert res.returncode == 0, res.stderr
    assert dataset_digest(root) == dataset_digest(home / "cli")
    train = spinlock.TrajectoryDataset(root, "train", grid_size=16, normalize=True)
    item = train[0]
    assert item["input_fields"].shape[1:] == (3, 16, 16) and np.isfinite(item["input_fields"].numpy()).all()
    with spinlock.open_dataset(root) as r:
        t = r.trajectories([0], as_tensor=True)
        assert t.dtype.is_floating_point and tuple(t.shape[-2:]) == (16, 16)


def _cli_args(o):
    """``spinlock generate`` arguments for the overrides: the overridden config as a file (in its key order)."""
    from spinlock_core.config import load_config

    path = os.path.join(os.path.dirname(o["dataset.output_dir"]), "cli.yaml")
    with open(path, "w") as fh:
        fh.write(load_config(DEFAULT_CONFIG, o).to_yaml())
    return ["--config", path]


def test_pipeline_class_and_errors_before_anything_is_written(home):
    cfg = spinlock.load_config(DEFAULT_CONFIG, _one_grid(home / "p"))
    pipe = spinlock.DatasetGenerationPipeline(cfg, {"sampling.total_samples": 4000000000}, quiet=True)
    assert pipe.output_dir == home / "p"
    with pytest.raises(spinlock.SpinlockError) as err:
        pipe.generate()
    assert err.value.code == 2 and "cannot generate" in str(err.value)
    with pytest.raises(spinlock.SpinlockError) as err:
        spinlock.generate(DEFAULT_CONFIG, {"sampling.total_sample": 3})
    assert err.value.code == 2 and "total_sample" in str(err.value)
    with pytest.raises(spinlock.SpinlockError) as err:
        spinlock.generate(cfg, executor="threads")
    assert err.value.code == 2 and "executor must be one of" in str(err.value)
    assert not (home / "p").exists()


def test_the_seed_import_paths():
    from spinlock.config import load_config
    from spinlock.dataset import DatasetGenerationPipeline
    from spinlock.features.storage import HDF5FeatureReader

    assert load_config is spinlock.load_config
    assert DatasetGenerationPipeline is spinlock.DatasetGenerationPipeline
    assert HDF5FeatureReader is spinlock.HDF5FeatureReader
