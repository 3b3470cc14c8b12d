"""`spinlock info`, `spinlock validate` and `spinlock index` (spinlock_cli.inspect) on a tiny dataset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from spinlock_cli.main import main
from spinlock_core.dataset import DatasetLayout, PartitionId, index_problems, open_dataset
from spinlock_core.stages import extract_partition, features_config
from spinlock_core.testing import assert_no_temp_files, assert_one_line_error, build_dataset


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "spinlock_cli", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A complete tiny dataset (2 batches x grids 16, 24, features, renders, index); never modified."""
    return build_dataset(tmp_path_factory.mktemp("inspect") / "data")


@pytest.fixture
def copy(dataset, tmp_path):
    """A copy of the dataset to damage."""
    cfg, layout = dataset
    return shutil.copytree(layout.root, tmp_path / "copy")


def test_info_describes_the_dataset(dataset, capsys):
    _, layout = dataset
    assert main(["info", "--dataset", str(layout.root)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Spinlock dataset {layout.root} (index")
    assert "samples N=6 (12 rows over 2 grid sizes)" in text and "realizations M=2" in text
    assert "grids [16, 24]" in text and "partitions 4" in text
    assert "/outputs/fields (12, 2, 4, 3, 24, 24)" in text and "/features/sdf/aggregated/features (12," in text


def test_validate_succeeds(dataset, capsys):
    _, layout = dataset
    assert main(["validate", "--dataset", str(layout.root)]) == 0
    out = capsys.readouterr().out
    assert f"VALID: {layout.root}" in out and "FAIL" not in out
    assert "replays from its seeds" in out


def test_validate_fails_on_a_corrupted_partition(copy, capsys):
    part = copy / "partitions" / "grid_0016" / "batch_0000.h5"
    with h5py.File(part, "r+") as f:
        f["outputs/fields"][0, 0, 1, 0, 0, 0] = np.nan  # NaN in a realization that never diverged
    assert main(["validate", "--dataset", str(part)]) == 1
    assert "INVALID" in capsys.readouterr().err
    assert main(["validate", "--dataset", str(copy)]) == 1
    captured = capsys.readouterr()
    assert "INVALID" in captured.err and "FAIL" in captured.out and "grid_0016/batch_0000.h5" in captured.out


def test_info_and_validate_reject_a_missing_path(tmp_path):
    for cmd in ("info", "validate"):
        assert_one_line_error(_cli(cmd, "--dataset", tmp_path / "nope"), 2, "no such file or directory")


def test_index_rebuilds_a_missing_index(copy, capsys):
    (copy / "index.h5").unlink()
    (copy / "splits.json").unlink()
    assert main(["index", "--dataset", str(copy)]) == 0
    line, splits_line, stats_line = capsys.readouterr().out.strip().splitlines()
    assert line == f"{copy / 'index.h5'}: 4 partitions, 12 rows, grids [16, 24], with features"
    assert splits_line.startswith(f"{copy / 'splits.json'}: samples train 4, valid 1, test 1, ood 0 (hash ")
    assert stats_line == f"{copy / 'stats.json'}: statistics of the train split; {copy / 'README.md'}: the dataset card"
    assert index_problems(DatasetLayout(copy)) == []
    with h5py.File(copy / "index.h5", "r") as f:
        assert f["outputs/fields"].shape[0] == 12 and f["features/sdf/aggregated/features"].shape[0] == 12
    assert_no_temp_files(copy)


def test_index_rebuilds_a_stale_index_after_a_feature_file_changed(dataset, copy):
    cfg, _ = dataset
    layout = DatasetLayout(copy)
    part = PartitionId(grid=24, batch=1)
    before = os.stat(layout.index).st_mtime_ns
    extract_partition(layout.rollouts(part), features_config(cfg), attrs={"batch": 1, "partition_key": part.key})
    problems = index_problems(layout)
    assert problems == ["features/grid_0024/batch_0001.h5 changed after the index was built"]
    with open_dataset(copy) as ds:  # a stale index is not read: the partition files are
        assert ds.num_samples == 12
    res = _cli("index", "--dataset", copy)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"{layout.index}: 4 partitions, 12 rows")
    assert index_problems(layout) == [] and os.stat(layout.index).st_mtime_ns != before


def test_index_names_missing_partitions(copy, capsys):
    for kind in ("partitions", "features"):
        (copy / kind / "grid_0024" / "batch_0001.h5").unlink()
    assert main(["index", "--dataset", str(copy)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert line.startswith(f"{copy / 'index.h5'}: 3 partitions, 9 rows, grids [16, 24], with features")
    assert line.endswith("; MISSING 1 expected partitions: 0001|24")


def test_index_refuses_what_is_not_a_dataset(tmp_path):
    assert_one_line_error(_cli("index", "--dataset", tmp_path / "nope"), 2, "not a dataset directory")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(_cli("index", "--dataset", tmp_path / "empty"), 1, "no rollouts files")
    assert not (tmp_path / "empty" / "index.h5").exists()


def test_index_refuses_a_holdout_that_does_not_fit_before_writing_anything(copy):
    import yaml

    layout = DatasetLayout(copy)
    exp = yaml.safe_load(layout.experiment.read_text())
    exp["splits"] = {"holdout": {"ic_types": ["no_such_ic"]}}
    layout.experiment.write_text(yaml.safe_dump(exp))
    before = {p: os.stat(p).st_mtime_ns for p in (layout.index, layout.splits, layout.stats, layout.card)}
    assert_one_line_error(_cli("index", "--dataset", copy), 1, "holdout.ic_types", "no_such_ic")
    assert {p: os.stat(p).st_mtime_ns for p in before} == before
    assert_no_temp_files(copy)
