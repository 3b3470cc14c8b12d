"""``spinlock export``: both formats through the command line, one-line errors with the right exit codes."""

from __future__ import annotations

import pytest

from spinlock_cli.main import run_cli
from spinlock_core.dataset import DatasetLayout
from spinlock_core.testing import assert_no_temp_files, assert_one_line_error, build_dataset, copy_dataset


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    _, layout = build_dataset(tmp_path_factory.mktemp("export_cli") / "ds")
    return layout


def test_the_well_export_prints_counts_and_how_to_load_it(ds, tmp_path):
    out = tmp_path / "well"
    res = run_cli(
        "export", "--format", "the_well", "--dataset", str(ds.root), "--output", str(out), "--grid-size", "16"
    )
    assert res.returncode == 0, res.stderr
    assert f"wrote {out / 'grid_0016'}: trajectories train " in res.stderr
    assert f"WellDataset(path='{out / 'grid_0016'}', well_split_name='train')" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["grid_0016", "spinlock_export.json"]
    assert sorted(p.name for p in (out / "grid_0016" / "data").iterdir()) == ["test", "train", "valid"]
    again = run_cli("export", "--format", "the_well", "--dataset", str(ds.root), "--output", str(out))
    assert_one_line_error(again, 2, "--overwrite")
    assert_no_temp_files(tmp_path)


def test_the_well_export_errors(ds, tmp_path):
    out = tmp_path / "well"
    bad_grid = run_cli(
        "export", "--format", "the_well", "--dataset", str(ds.root), "--output", str(out), "--grid-size", "7"
    )
    assert_one_line_error(bad_grid, 2, "7")
    copy = copy_dataset(ds.root, tmp_path / "copy")
    DatasetLayout(copy).stats.unlink()
    no_stats = run_cli("export", "--format", "the_well", "--dataset", str(copy), "--output", str(out))
    assert_one_line_error(no_stats, 1, "stats.json", "spinlock index")
    assert not out.exists()
    assert_no_temp_files(tmp_path)
