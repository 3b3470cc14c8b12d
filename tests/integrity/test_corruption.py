"""Damaged, foreign and outside-pointing files: one clear message naming the file, never a traceback.

Before the fix truncated, bit-flipped, empty and shape-changed files gave tracebacks in
``validate`` (IndexError and friends), feature files were not validated at all, Inf passed the
features check, and readers followed absolute virtual sources and external links out of the
dataset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from integrity_helpers import SPINLOCK, cli_env

from spinlock_cli.main import CliResult, run_cli
from spinlock_core.dataset import DatasetError, HDF5FeatureReader, PartitionId, open_dataset
from spinlock_core.testing import assert_one_line_error, build_dataset, copy_dataset, corrupt

P0 = PartitionId(grid=16, batch=0)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine") / "ds"
    build_dataset(root)
    return root


@pytest.fixture
def ds(pristine, tmp_path):
    return copy_dataset(pristine, tmp_path / "ds")


def _validate(path: Path) -> CliResult:
    """``spinlock validate`` in this process (the subprocess path is checked once below)."""
    return run_cli("validate", "--dataset", str(path), "--replay-samples", "0")


def test_validate_in_a_new_process_is_one_line_too(pristine, tmp_path):
    ds = copy_dataset(pristine, tmp_path / "ds")
    corrupt(ds / "partitions" / "grid_0016" / "batch_0000.h5", "truncated")
    res = subprocess.run(
        [*SPINLOCK, "validate", "--dataset", str(ds), "--replay-samples", "0"],
        env=cli_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_one_line_error(res, 1, "batch_0000.h5")


def test_the_pristine_dataset_is_valid(pristine):
    res = _validate(pristine)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VALID" in res.stdout


FILES = {
    "rollouts": lambda ds: ds / "partitions" / "grid_0016" / "batch_0000.h5",
    "features": lambda ds: ds / "features" / "grid_0016" / "batch_0000.h5",
    "index": lambda ds: ds / "index.h5",
}
BINARY = ("truncated", "empty", "garbage", "header_bitflip")


@pytest.mark.parametrize("kind", sorted(FILES))
@pytest.mark.parametrize("how", BINARY)
def test_binary_damage_is_one_line_naming_the_file(ds, kind, how):
    target = FILES[kind](ds)
    corrupt(target, how)
    res = _validate(ds)
    err = assert_one_line_error(res, 1)
    fails = [line for line in res.stdout.splitlines() if "FAIL" in line]
    assert fails and any(target.name in line for line in fails), res.stdout
    assert "Traceback" not in res.stdout + err


@pytest.mark.parametrize(
    "kind,dataset",
    [
        ("rollouts", "metadata/diverged_step"),
        ("rollouts", "parameters/params"),
        ("features", "features/sdf/spatial/features"),
        ("features", "metadata/sample_index"),
    ],
)
def test_shape_changes_and_removed_datasets_are_reported(ds, kind, dataset):
    for how in ("shape_changed", "dataset_removed"):
        work = ds.parent / f"{how}_{kind}_{dataset.replace('/', '_')}"
        shutil.copytree(ds, work)
        corrupt(FILES[kind](work), how, dataset=dataset)
        res = _validate(work)
        assert_one_line_error(res, 1)
        assert any(FILES[kind](work).name in line for line in res.stdout.splitlines() if "FAIL" in line), res.stdout


def test_flipped_data_bits_in_a_compressed_chunk_are_reported(ds):
    target = FILES["rollouts"](ds)
    corrupt(target, "data_bitflip")
    res = _validate(ds)
    assert_one_line_error(res, 1)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_features_of_clean_realizations_are_caught(ds, value):
    from spinlock_core.dataset.quality import features_nan

    target = FILES["features"](ds)
    corrupt(target, "nonfinite", dataset="features/sdf/spatial/features", value=float(value))
    out = features_nan(target)
    assert not out.passed and out.metadata["nan_values"] >= 1  # Inf counts too
    assert_one_line_error(_validate(ds), 1, "non-finite")


def test_non_finite_trajectory_before_divergence_is_caught(ds):
    corrupt(FILES["rollouts"](ds), "nonfinite", dataset="outputs/fields", value=float("inf"))
    assert_one_line_error(_validate(ds), 1)


@pytest.mark.parametrize("kind", ["points", "specs", "manifest"])
def test_damaged_json_files_are_reported(ds, kind):
    target = {
        "points": ds / "points" / "batch_0000.json",
        "specs": ds / "specs" / "batch_0000.json",
        "manifest": ds / "dataset.json",
    }[kind]
    target.write_text(target.read_text()[: len(target.read_text()) // 2])
    res = _validate(ds)
    assert_one_line_error(res, 1, target.name)


def test_damaged_render_files_are_reported(ds):
    video = ds / "renders" / "grid_0016" / "batch_0000.mp4"
    video.write_bytes(b"")
    res = _validate(ds)
    assert_one_line_error(res, 1, "batch_0000.mp4")


def test_external_link_out_of_the_dataset_is_refused(ds, tmp_path):
    secret = tmp_path / "secret.h5"
    shutil.copy(FILES["rollouts"](ds), secret)
    corrupt(FILES["rollouts"](ds), "external_link", target=secret)
    with pytest.raises(DatasetError, match="external link"):
        open_dataset(FILES["rollouts"](ds)).close()
    assert_one_line_error(_validate(ds), 1, "external link")


def test_absolute_virtual_source_out_of_the_dataset_is_refused(ds, tmp_path):
    outside = tmp_path / "outside.h5"
    shutil.copy(FILES["rollouts"](ds), outside)
    corrupt(FILES["index"](ds), "outside_virtual_source", target=outside)
    with pytest.raises(DatasetError, match="absolute path|outside the dataset"):
        open_dataset(FILES["index"](ds)).close()
    assert_one_line_error(_validate(ds), 1)


def test_relative_virtual_source_escaping_the_dataset_is_refused(ds, tmp_path):
    from spinlock_core.dataset import hdf5 as H

    outside = tmp_path / "elsewhere" / "x.h5"
    outside.parent.mkdir()
    shutil.copy(FILES["rollouts"](ds), outside)
    with H.File(FILES["index"](ds), "r+") as f:
        d = f["outputs/fields"]
        lay = H.VirtualLayout(shape=d.shape, dtype=d.dtype)
        rel = os.path.relpath(outside, FILES["index"](ds).parent)
        assert rel.startswith("..")
        lay[...] = H.VirtualSource(rel, "outputs/fields", shape=d.shape, dtype=d.dtype)
        f.create_virtual_dataset("sneaky", lay, fillvalue=0)
    with pytest.raises(DatasetError, match="outside the dataset"):
        open_dataset(FILES["index"](ds)).close()


def test_redirecting_environment_is_refused(ds, monkeypatch):
    monkeypatch.setenv("HDF5_VDS_PREFIX", "/tmp")
    with pytest.raises(DatasetError, match="HDF5_VDS_PREFIX"):
        open_dataset(ds).close()


def test_feature_reader_reports_damage_as_dataset_error(ds):
    corrupt(FILES["features"](ds), "truncated")
    (ds / "index.h5").unlink()
    with pytest.raises(DatasetError, match="batch_0000.h5"):
        HDF5FeatureReader(ds).close()
