"""xarray and dask: every axis of feature files and index views is a named dim; to_xarray chunks by partition."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest
import xarray as xr

from spinlock_core.dataset import (
    DatasetLayout,
    HDF5FeatureReader,
    find_feature_files,
    open_dataset,
    read_splits,
    to_xarray,
)
from spinlock_core.testing import build_dataset


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    _, layout = build_dataset(tmp_path_factory.mktemp("xr") / "ds")
    return layout


def _tables(node):
    return {k: v for k, v in node.ds.data_vars.items()}


def test_every_group_of_a_feature_file_opens_with_named_dims_and_labelled_columns(ds):
    path = find_feature_files(ds.root)[0]
    tree = xr.open_datatree(path, engine="h5netcdf")  # raises on unlabelled or mixed dims
    with HDF5FeatureReader(path) as fr:
        reg = fr.get_sdf_registry()
        agg_names = fr.aggregated_names
        n = fr.num_samples
        expect = {c: fr.get_sdf_features(c) for c in reg.categories}
        axes = {c: tuple(fr.axes(c)) for c in reg.categories}
        agg = fr.get_sdf_aggregated()
    seen = set()
    for node in tree.subtree:
        for name, var in _tables(node).items():
            assert not any(d.startswith("phony_dim") for d in var.dims), (node.path, name, var.dims)
            assert var.dims[0] == "sample" and var.shape[0] == n, (node.path, name)
        cat = node.path.rsplit("/", 1)[-1]
        if cat in expect:
            seen.add(cat)
            var = node.ds["features"]
            assert list(node.ds["feature"].values) == reg.get_feature_names(cat)
            assert var.dims == axes[cat] and var.dims[-1] == "feature"
            np.testing.assert_array_equal(var.values, expect[cat])
    assert seen == set(reg.categories)
    a = tree["features/sdf/aggregated"].ds
    assert list(a["feature"].values) == agg_names
    np.testing.assert_array_equal(a["features"].values, agg)
    md = tree["features/sdf/metadata"].ds
    assert md["nan_counts"].dims == ("sample", "category")
    assert list(md["category"].values) == reg.categories
    meta = tree["metadata"].ds  # copied from the partition, re-attached to this file's coordinates
    assert meta["diverged_step"].dims == ("sample", "realization")
    np.testing.assert_array_equal(meta["sample_index"].values, tree.ds["sample"].values)


def test_index_feature_views_are_labelled_like_the_files(ds):
    with HDF5FeatureReader(ds.root) as fr:
        reg = fr.get_sdf_registry()
        n_rows = fr.num_samples
        temporal = fr.get_sdf_features("temporal")
    g = xr.open_dataset(ds.index, engine="h5netcdf", group="features/sdf/temporal")
    assert g["features"].dims == ("sample", "realization", "channel", "feature")
    assert g["features"].shape[0] == n_rows
    assert list(g["feature"].values) == reg.get_feature_names("temporal")
    np.testing.assert_array_equal(g["features"].values, temporal)
    a = xr.open_dataset(ds.index, engine="h5netcdf", group="features/sdf/aggregated")
    assert a["features"].dims == ("sample", "feature")


def test_to_xarray_equals_the_reader_and_chunks_never_span_two_partitions(ds):
    g = 24
    view = to_xarray(ds.root, grid_size=g, chunk_bytes=1)  # one sample per chunk
    with open_dataset(ds.root) as r:
        rows = r.rows_for_grid(g)
        paths, which, _ = r.row_sources(rows)
        want = r.trajectories(None, grid_size=g)
        ics = r.inputs(None, grid_size=g)
        params = r.params(rows)
        meta = r.metadata(rows)
    assert view.trajectories.dims == ("sample", "realization", "time", "channel", "y", "x")
    np.testing.assert_array_equal(view.trajectories.values, want)
    np.testing.assert_array_equal(view.initial_conditions.values, ics)
    np.testing.assert_array_equal(view.params.values, params)
    np.testing.assert_array_equal(view.sample.values, meta["sample_index"])
    np.testing.assert_array_equal(view.diverged_step.values, meta["diverged_step"])
    assert view.trajectories.data.chunks[0] == (1,) * rows.size
    big = to_xarray(ds.root, grid_size=g)  # default chunk size: one chunk per partition file here
    bounds = np.cumsum((0,) + big.trajectories.data.chunks[0])
    file_of_row = which
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        assert len(set(file_of_row[lo:hi].tolist())) == 1
    assert len(big.trajectories.data.chunks[0]) == len(paths)
    np.testing.assert_array_equal(view.x.values, (np.arange(g) + 0.5) / g)


def test_to_xarray_graph_runs_in_worker_processes(ds):
    view = to_xarray(ds.root, grid_size=16, chunk_bytes=1)
    with dask.config.set(scheduler="processes", num_workers=2):
        total = float(view.trajectories.sum(dtype="float64").compute())
    with open_dataset(ds.root) as r:
        want = float(r.trajectories(None, grid_size=16).astype(np.float64).sum())
    assert total == pytest.approx(want, rel=1e-12)  # same float64 sums, other association order


def test_to_xarray_split_and_features_match_their_files(ds):
    view = to_xarray(ds.root, grid_size=16)
    splits = read_splits(DatasetLayout(ds.root))
    for s, name in zip(view.sample.values.tolist(), view.split.values.tolist()):
        assert s in splits.of(name)
    with HDF5FeatureReader(ds.root) as fr:
        mine = np.flatnonzero(fr.grid_sizes == 16)
        np.testing.assert_array_equal(view.features.values, fr.get_sdf_aggregated(mine))
        assert list(view.feature.values) == fr.aggregated_names
        np.testing.assert_array_equal(view.sample.values, fr.sample_index[mine])
    assert json.loads(json.dumps(view.attrs["grid_size"])) == 16


def test_to_xarray_refuses_an_ambiguous_or_unknown_grid(ds):
    with pytest.raises(ValueError, match=r"grid_size is required: the dataset has grids \[16, 24\]"):
        to_xarray(ds.root)
    with pytest.raises(ValueError, match="grid_size must be one of"):
        to_xarray(ds.root, grid_size=32)
