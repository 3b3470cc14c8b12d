"""The whole-dataset virtual index: padded rows, per-grid views, row order, relocation, errors."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from spinlock_core.dataset import (
    DatasetError,
    DatasetLayout,
    PartitionId,
    build_index,
    index_problems,
    open_dataset,
    validate_files,
    validate_structure,
)
from spinlock_core.testing import WrittenPartition, assert_no_temp_files, corrupt, write_partition

G = 16


def _expected(
    written: list[WrittenPartition],
) -> tuple[list[tuple[int, int]], dict[tuple[int, int], tuple[WrittenPartition, int]]]:
    """Row order [(grid, sample)] and where each (grid, sample) lives (partition, row)."""
    where = {(w.traj.shape[-1], int(s)): (w, i) for w in written for i, s in enumerate(w.sample_index)}
    return sorted(where), where


def test_index_rows_padding_and_metadata(four_partitions: tuple[Path, list[WrittenPartition]]) -> None:
    root, written = four_partitions
    summary = build_index(root)
    index = summary.path
    assert index == root / "index.h5" and index_problems(DatasetLayout(root)) == []
    assert (summary.partitions, summary.rows, summary.grid_sizes, summary.missing) == (4, 12, [8, 16], [])
    assert not summary.features and "4 of 4 partitions have no features" in summary.features_note
    order, where = _expected(written)
    assert order == [(8, s) for s in range(6)] + [(16, s) for s in range(6)]
    with h5py.File(index, "r") as f:
        out, inp = f["outputs/fields"], f["inputs/fields"]
        assert out.is_virtual and inp.is_virtual
        assert out.shape == (12, 2, 4, 2, G, G) and inp.shape == (12, 2, G, G)
        full = out[()]
        for row, key in enumerate(order):
            w, i = where[key]
            g = key[0]
            pad = (G - g) // 2
            np.testing.assert_array_equal(full[row, ..., pad : pad + g, pad : pad + g], w.traj[i])
            ring = full[row].copy()
            ring[..., pad : pad + g, pad : pad + g] = 0
            assert not ring.any()  # zero padding outside the centre
            np.testing.assert_array_equal(inp[row, :, pad : pad + g, pad : pad + g], w.inputs[i])
            np.testing.assert_array_equal(f["parameters/params"][row], w.params[i])
            assert f["metadata/ic_types"][row].decode() == w.meta["ic_types"][i]
            assert f["metadata/weight_seeds"][row] == w.meta["weight_seeds"][i]
            assert f["metadata/source_row"][row] == i
            assert (root / f["metadata/source_file"][row].decode()).resolve() == w.path.resolve()
        np.testing.assert_array_equal(f["metadata/sample_index"][()], [s for _, s in order])
        np.testing.assert_array_equal(f["metadata/grid_sizes"][()], [8] * 6 + [16] * 6)
        # a g=8 sample's pixel (0, 0) sits at (4, 4) of the 16 x 16 canvas
        w0, _ = where[(8, 0)]
        assert full[0, 0, 0, 0, 4, 4] == w0.traj[0, 0, 0, 0, 0, 0] != 0
        # per-grid unpadded views
        for g in (8, 16):
            keys = [k for k in order if k[0] == g]
            view = f[f"grids/{g}/outputs/fields"]
            assert view.is_virtual and view.shape == (6, 2, 4, 2, g, g)
            np.testing.assert_array_equal(view[()], np.stack([where[k][0].traj[where[k][1]] for k in keys]))
            np.testing.assert_array_equal(
                f[f"grids/{g}/inputs/fields"][()], np.stack([where[k][0].inputs[where[k][1]] for k in keys])
            )
            np.testing.assert_array_equal(f[f"grids/{g}/sample"][()], range(6))
            np.testing.assert_array_equal(f[f"grids/{g}"].attrs["rows"], [order.index(k) for k in keys])
        assert f.attrs["kind"] == "index" and f.attrs["padding"] == "centre" and f.attrs["grid_size"] == G
        assert all(not os.path.isabs(vs.file_name) for vs in out.virtual_sources())  # relative sources only
    report = validate_structure(index)
    assert report.ok, report.format()


def test_index_survives_moving_the_directory(
    four_partitions: tuple[Path, list[WrittenPartition]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, written = four_partitions
    build_index(root)
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(str(root), str(moved))
    assert not root.exists()
    monkeypatch.chdir(tmp_path / "elsewhere")  # a working directory unrelated to the sources
    order, where = _expected(written)
    with open_dataset(moved / "index.h5") as r:
        assert r.kind == "index"
        w, i = where[(16, 4)]
        np.testing.assert_array_equal(r.trajectories(order.index((16, 4))), w.traj[i])  # g = G: no padding
        w, i = where[(8, 4)]
        np.testing.assert_array_equal(r.trajectories(order.index((8, 4)))[..., 4:12, 4:12], w.traj[i])
        np.testing.assert_array_equal(r.inputs(4, grid_size=8), w.inputs[i])
    assert index_problems(DatasetLayout(moved)) == []  # still current: it records paths relative to the dataset
    assert validate_structure(moved / "index.h5").ok
    report = validate_files(moved)
    assert report.ok and any("index.h5 is current" in c for c in report.checks), report.format()


def test_xarray_opens_index_root_and_grid_groups(four_partitions: tuple[Path, list[WrittenPartition]]) -> None:
    root, written = four_partitions
    index = build_index(root).path
    order, where = _expected(written)
    with xr.open_dataset(index, engine="h5netcdf") as ds:
        t = ds["trajectories"]
        assert t.dims == ("sample", "realization", "time", "channel", "y", "x") and t.shape == (12, 2, 4, 2, G, G)
        np.testing.assert_array_equal(ds["sample"].values, [s for _, s in order])
        w, i = where[(16, 2)]
        np.testing.assert_array_equal(t.isel(sample=order.index((16, 2))).values, w.traj[i])
        np.testing.assert_array_equal(ds["grid_sizes"].values, [8] * 6 + [16] * 6)
    with xr.open_dataset(index, engine="h5netcdf", group="grids/8") as ds:
        assert ds["trajectories"].dims == ("sample", "realization", "time", "channel", "y", "x")
        np.testing.assert_allclose(ds["y"].values, (np.arange(8) + 0.5) / 8)
        w, i = where[(8, 5)]
        np.testing.assert_array_equal(ds["trajectories"].sel(sample=5).values, w.traj[i])  # unique within a grid


def test_reader_directory_without_index_matches_index(four_partitions: tuple[Path, list[WrittenPartition]]) -> None:
    root, _ = four_partitions
    copy = root.parent / "copy"
    shutil.copytree(root, copy)
    build_index(root)
    with open_dataset(root) as a, open_dataset(copy) as b:
        assert a.kind == "index" and b.kind == "partitions"
        assert a.shape_info == b.shape_info and a.num_samples == 12
        sel = [11, 0, 3, 7, 3]
        np.testing.assert_array_equal(a.trajectories(sel), b.trajectories(sel))
        np.testing.assert_array_equal(a.inputs(), b.inputs())
        np.testing.assert_array_equal(a.inputs(slice(1, 4), grid_size=16), b.inputs(slice(1, 4), grid_size=16))
        np.testing.assert_array_equal(a.trajectories(grid_size=8), b.trajectories(grid_size=8))
        np.testing.assert_array_equal(a.params(), b.params())
        ma, mb = a.metadata(), b.metadata()
        for key in mb:
            np.testing.assert_array_equal(ma[key], mb[key])
        assert a.specs() == b.specs()
        assert a.attrs["config_hash"] == b.attrs["config_hash"] == "cafe"
        np.testing.assert_array_equal(a.rows_for_grid(16), range(6, 12))


def test_missing_partition_is_reported(four_partitions: tuple[Path, list[WrittenPartition]]) -> None:
    root, written = four_partitions
    index = build_index(root).path
    written[1].path.unlink()  # HDF5 alone would read zeros silently
    assert index_problems(DatasetLayout(root)) == ["partitions/grid_0016/batch_0000.h5 is gone"]
    # the index named directly is stale: one error naming the gone file and the fix
    with pytest.raises(DatasetError, match="stale index: partitions/grid_0016/batch_0000.h5 is gone") as exc:
        open_dataset(index)
    assert exc.value.path == str(index) and "spinlock index --dataset" in exc.value.fix
    assert "\n" not in str(exc.value)
    # the directory is read through the partition files left (no manifest: nothing is expected)
    with open_dataset(root) as r:
        assert r.kind == "partitions" and r.num_samples == 9
        np.testing.assert_array_equal(r.rows_for_grid(16), range(6, 9))
        np.testing.assert_array_equal(r.sample_index[6:], [3, 4, 5])
    report = validate_structure(index)
    assert not report.ok and "missing partition files" in report.errors[0]
    assert "grid_0016/batch_0000.h5" in report.errors[0]
    report = validate_files(root)
    assert any("index.h5 is stale" in e and "partitions/grid_0016/batch_0000.h5 is gone" in e for e in report.errors)


def test_cross_grid_disagreement_is_reported(four_partitions: tuple[Path, list[WrittenPartition]]) -> None:
    root, _ = four_partitions
    index = build_index(root).path
    with h5py.File(index, "r+") as f:
        f["metadata/ic_seeds"][7] += np.uint64(1)  # row 7 = sample 1 at g = 16
    errors = validate_structure(index).errors
    assert any("sample 1" in e and "ic_seeds" in e for e in errors), errors


@pytest.mark.parametrize(
    "change,match",
    [
        ({"m": 3}, "M \\(num_realizations\\)"),
        ({"time_steps": [0, 1, 2, 4]}, "time coordinate"),
        ({"c": 1}, "C \\(num_channels\\)"),
        ({"config_hash": "beef"}, "config_hash"),
        ({"start": 1, "g": 8}, "sample 1 at grid 8 appears in both"),
    ],
)
def test_disagreeing_partitions_are_rejected(tmp_path: Path, change: dict, match: str) -> None:
    layout = DatasetLayout(tmp_path)
    write_partition(layout.rollouts(PartitionId(grid=8, batch=0)), start=0, n=3)
    kwargs = {"start": 0, "n": 3, "g": 16, "seed": 9}
    kwargs.update(change)
    # a second grid of batch 0, or (same grid) batch 1
    other = PartitionId(grid=kwargs["g"], batch=0 if kwargs["g"] != 8 else 1)
    write_partition(layout.rollouts(other), **kwargs)
    with pytest.raises(DatasetError, match="cannot index: .*" + match) as exc:
        build_index(tmp_path)
    assert exc.value.path == str(tmp_path)
    assert not layout.index.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "partitions"]  # no temporary file left either
    report = validate_files(tmp_path)
    assert not report.ok
    assert any("partitions inconsistent" in e and re.search(match, e) for e in report.errors), report.errors


@pytest.mark.parametrize(
    "how,kw",
    [
        ("truncated", {}),
        ("empty", {}),
        ("garbage", {}),
        ("header_bitflip", {}),
        ("dataset_removed", {"dataset": "metadata/sample_index"}),
        ("dataset_removed", {"dataset": "parameters/params"}),
        ("shape_changed", {"dataset": "metadata/ic_types"}),
        ("dataset_removed", {"dataset": "inputs/fields"}),
    ],
    ids=[
        "truncated",
        "empty",
        "garbage",
        "header_bitflip",
        "no_sample_index",
        "no_params",
        "short_ic_types",
        "no_inputs",
    ],
)
def test_damaged_partition_is_refused_with_one_error(
    four_partitions: tuple[Path, list[WrittenPartition]], how: str, kw: dict
) -> None:
    root, written = four_partitions
    corrupt(written[1].path, how, **kw)  # grid 16, batch 0
    with pytest.raises(DatasetError) as exc:
        build_index(root)
    assert "grid_0016/batch_0000.h5" in str(exc.value) and "\n" not in str(exc.value)
    assert not (root / "index.h5").exists()
    assert_no_temp_files(root)


@pytest.mark.parametrize("where", ["partitions_removed", "index_copied_alone"])
def test_index_without_its_partition_files_is_refused(
    four_partitions: tuple[Path, list[WrittenPartition]], tmp_path: Path, where: str
) -> None:
    root, _ = four_partitions
    index = build_index(root).path
    if where == "index_copied_alone":
        (tmp_path / "alone").mkdir()
        index = Path(shutil.copy(index, tmp_path / "alone" / "index.h5"))
    else:
        shutil.rmtree(root / "partitions")
    assert index_problems(DatasetLayout(index.parent))  # stale: every file it reads is gone
    assert not validate_structure(index).ok  # the validator sees it
    with pytest.raises(DatasetError) as exc:  # one error naming the index, never rows of zeros
        open_dataset(index)
    assert exc.value.path == str(index)
