"""Parquet export of the feature table: values equal the feature files, metadata, errors before writing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from spinlock_cli.main import run_cli
from spinlock_core.dataset import DatasetLayout, HDF5FeatureReader, open_dataset, read_splits
from spinlock_core.export import ExportError, export_parquet, feature_frame
from spinlock_core.export.parquet import METADATA_COLUMNS, PARAM_PREFIX
from spinlock_core.testing import assert_no_temp_files, assert_one_line_error, build_dataset, copy_dataset


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    _, layout = build_dataset(tmp_path_factory.mktemp("pq") / "ds")
    return layout


def test_the_table_equals_the_feature_files_rollout_params_and_splits(ds, tmp_path):
    res = export_parquet(ds.root, tmp_path / "f.parquet")
    back = pd.read_parquet(res.path)
    with HDF5FeatureReader(ds.root) as fr:
        summary = fr.get_sdf_aggregated()
        names = fr.aggregated_names
        grid, sample = fr.grid_sizes, fr.sample_index
        fhash = fr.config_hash
    with open_dataset(ds.root) as r:
        params = r.params()
        pnames = list(r.param_names)
        assert np.array_equal(r.grid_sizes, grid) and np.array_equal(r.sample_index, sample)  # same row order
    assert list(back.columns) == list(METADATA_COLUMNS) + [PARAM_PREFIX + n for n in pnames] + names
    assert res.rows == len(back) == grid.size and res.feature_columns == len(names) and res.param_columns == len(pnames)
    np.testing.assert_array_equal(back["grid_size"].to_numpy(), grid)
    np.testing.assert_array_equal(back["sample_index"].to_numpy(), sample)
    np.testing.assert_array_equal(back[names].to_numpy(), summary)  # float32 kept bit for bit, NaN included
    assert back[names].dtypes.eq(np.float32).all()
    np.testing.assert_array_equal(back[[PARAM_PREFIX + n for n in pnames]].to_numpy(), params)
    splits = read_splits(DatasetLayout(ds.root))
    for s, name in zip(back["sample_index"], back["split"]):
        assert s in splits.of(name)
    assert back.groupby("sample_index")["split"].nunique().max() == 1  # an operator is in one split at every grid
    meta = json.loads(pq.read_schema(res.path).metadata[b"spinlock"])
    assert meta["features_config_hash"] == fhash and meta["splits_hash"] == splits.hash
    assert meta["experiment"] == "default" and meta["feature_columns"] == len(names)
    assert_no_temp_files(tmp_path)


def test_grid_filter_and_overwrite(ds, tmp_path):
    out = tmp_path / "f.parquet"
    export_parquet(ds.root, out, grid_sizes=[24])
    assert set(pd.read_parquet(out)["grid_size"]) == {24}
    with pytest.raises(ExportError, match="exists; pass --overwrite"):
        export_parquet(ds.root, out)
    export_parquet(ds.root, out, overwrite=True)
    assert set(pd.read_parquet(out)["grid_size"]) == {16, 24}
    assert len(feature_frame(ds.root, grid_sizes=[16])) == 6


def test_cli_export_parquet_and_its_errors(ds, tmp_path):
    out = tmp_path / "sub" / "f.parquet"
    ok = run_cli("export", "--format", "parquet", "--dataset", str(ds.root), "--output", str(out))
    assert ok.returncode == 0, ok.stderr
    assert f"wrote {out}: 12 rows" in ok.stderr and out.is_file()
    assert_one_line_error(
        run_cli("export", "--format", "parquet", "--dataset", str(ds.root), "--output", str(out)), 2, "--overwrite"
    )
    assert_one_line_error(
        run_cli("export", "--format", "parquet", "--dataset", str(ds.root), "--output", str(tmp_path)),
        2,
        "is a directory",
    )
    bad = tmp_path / "bad.parquet"
    assert_one_line_error(
        run_cli("export", "--format", "parquet", "--dataset", str(ds.root), "--output", str(bad), "--grid-size", "8"),
        2,
        "--grid-size 8: the dataset has grid sizes [16, 24]",
    )
    assert_one_line_error(
        run_cli("export", "--format", "xls", "--dataset", str(ds.root), "--output", str(bad)), 2, "invalid choice"
    )
    assert_one_line_error(
        run_cli("export", "--format", "parquet", "--dataset", str(tmp_path / "none"), "--output", str(bad)),
        2,
        "no such dataset directory",
    )
    assert not bad.exists()


def test_data_errors_exit_1_and_write_nothing(ds, tmp_path):
    copy = copy_dataset(ds.root, tmp_path / "copy")
    DatasetLayout(copy).splits.unlink()
    out = tmp_path / "f.parquet"
    err = assert_one_line_error(
        run_cli("export", "--format", "parquet", "--dataset", str(copy), "--output", str(out)), 1, "splits.json"
    )
    assert "spinlock index" in err and not out.exists()
    layout = DatasetLayout(copy)
    for part in layout.feature_partitions():
        layout.features(part).unlink()
    assert_one_line_error(
        run_cli("export", "--format", "parquet", "--dataset", str(copy), "--output", str(out)), 1, "extract-features"
    )
    assert not out.exists()
    assert_no_temp_files(tmp_path)
