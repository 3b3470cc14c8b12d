"""`spinlock extract-features` and `spinlock features` (spinlock_cli.features)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from spinlock_cli.main import main
from spinlock_core.dataset import DatasetLayout, HDF5FeatureReader, index_problems
from spinlock_core.features import FeatureRegistry, features_config_hash, load_features_config
from spinlock_core.stages import stored_features_hash
from spinlock_core.testing import assert_no_temp_files, assert_one_line_error, run_stages, tiny_config

GEN = ("sobol_parameters", "operator_specs", "rollouts_hdf5")


@pytest.fixture
def rollouts(tmp_path):
    """A tiny dataset with rollouts only (2 batches x grids 16, 24), no features, no index."""
    run_stages(tiny_config(tmp_path / "data"), stages=GEN)
    return tmp_path / "data"


def test_extract_features_writes_every_partition_then_only_stale_ones(rollouts, capsys, tmp_path):
    assert main(["extract-features", "--dataset", str(rollouts), "--quiet", "--batch-size", "2"]) == 0
    files = sorted((rollouts / "features").glob("grid_*/batch_*.h5"))
    assert len(files) == 4
    assert_no_temp_files(rollouts)
    default_hash = features_config_hash(load_features_config())
    assert all(stored_features_hash(p) == default_hash for p in files)
    with h5py.File(rollouts / "index.h5", "r") as f:
        assert f["features/sdf/aggregated/features"].shape[0] == 12 and f["features/sdf/aggregated/features"].is_virtual
    assert index_problems(DatasetLayout(rollouts)) == []  # the index was rebuilt over the new files
    err = capsys.readouterr().err
    assert "4 of 4 partitions" in err and "index" in err
    mtimes = [p.stat().st_mtime_ns for p in files]
    assert main(["extract-features", "--dataset", str(rollouts), "--quiet"]) == 0
    assert "0 of 4 partitions" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    other = tmp_path / "f.yaml"
    other.write_text("aggregation:\n  realization: [mean, max]\n")
    assert main(["extract-features", "--dataset", str(rollouts), "--config", str(other), "--quiet", "--verbose"]) == 0
    out = capsys.readouterr().err
    assert "4 of 4 partitions" in out and "features," in out
    with h5py.File(files[0], "r") as f:
        names = json.loads(f["features/sdf/aggregated/features"].attrs["names"])
    assert names[0].endswith("__rmean") and names[1].endswith("__rmax")
    assert all(stored_features_hash(p) == features_config_hash(load_features_config(other)) for p in files)
    assert index_problems(DatasetLayout(rollouts)) == []
    # --force re-extracts current partitions too
    mtimes = [p.stat().st_mtime_ns for p in files]
    assert main(["extract-features", "--dataset", str(rollouts), "--config", str(other), "--quiet", "--force"]) == 0
    assert "4 of 4 partitions" in capsys.readouterr().err
    assert all(a != b for a, b in zip(mtimes, [p.stat().st_mtime_ns for p in files]))


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--dataset", "/nonexistent/x"], "not a dataset directory"),
        (["--config", "{cfg}"], "spatial.bogus"),
        (["--device", "tpu"], "device"),
        (["--batch-size", "0"], "batch_size"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(rollouts, tmp_path, capsys, args, msg):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spatial:\n  bogus: 1\n")
    argv = ["extract-features", "--dataset", str(rollouts), "--quiet"]
    argv += [a.replace("{cfg}", str(bad)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("spinlock: error:") and msg in err and "Traceback" not in err
    assert not (rollouts / "features").exists() and not (rollouts / "index.h5").exists()


def test_a_dataset_without_partitions_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "spinlock_cli", "extract-features", "--dataset", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_one_line_error(res, 2, "no partition files")


def test_features_command_lists_the_registry(capsys):
    assert main(["features"]) == 0
    out = capsys.readouterr()
    n = len(FeatureRegistry.from_config(load_features_config()))
    assert len(out.out.strip().splitlines()) == n and f"{n} enabled" in out.err
    assert main(["features", "--list"]) == 0  # the seed's flag, named in configs/features/default.yaml
    assert capsys.readouterr().out == out.out
    assert main(["features", "--format", "json", "--all"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sum(r["enabled"] for r in rows) == n and all(r["description"] for r in rows)
    assert len(rows) >= n
    assert main(["features", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "### spatial" in md and "`spatial_mean`" in md


def test_index_features_survive_moving_the_dataset_folder(rollouts, tmp_path):
    assert main(["extract-features", "--dataset", str(rollouts), "--quiet"]) == 0
    with HDF5FeatureReader(rollouts / "index.h5") as r:
        before = r.get_sdf_aggregated()
    moved = tmp_path / "elsewhere"
    shutil.move(str(rollouts), moved)
    with HDF5FeatureReader(moved / "index.h5") as r:
        np.testing.assert_array_equal(r.get_sdf_aggregated(), before)
    assert np.isfinite(before).any() and before.shape[0] == 12
