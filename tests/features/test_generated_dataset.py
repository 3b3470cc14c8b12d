"""On a generated dataset of diverse operators: every enabled feature is finite and informative."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from spinlock_core.dataset import HDF5FeatureReader, PartitionId
from spinlock_core.testing import build_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """24 samples in 2 batches at g = 32, T = 48: every stage (no renders), then the index."""
    out = tmp_path_factory.mktemp("gen") / "data"
    cfg, layout = build_dataset(
        out,
        **{
            "sampling.total_samples": 24,
            "sampling.batch_size": 12,
            "simulation.grid_sizes": [32],
            "simulation.num_realizations": 2,
            "simulation.num_timesteps": 48,
            "renders.enabled": False,
        },
    )
    assert layout.root == out and layout.index.is_file()
    assert layout.feature_partitions() == [PartitionId(grid=32, batch=0), PartitionId(grid=32, batch=1)]
    return cfg, layout


def test_every_enabled_feature_is_finite_and_varies_across_operators(dataset):
    cfg, layout = dataset
    with HDF5FeatureReader(layout.root) as r:
        reg = r.get_sdf_registry()
        div = None
        with h5py.File(layout.index, "r") as f:
            div = f["metadata/diverged_step"][()]  # [N, M]
        clean = div < 0
        assert clean.sum() >= 0.7 * clean.size, "too many diverged realizations for a meaningful test"
        constant, nonfinite = [], []
        for cat in reg.categories:
            arr = r.get_sdf_features(cat)
            masked = r.masked(cat)
            for j, name in enumerate(reg.get_feature_names(cat)):
                if name in masked:
                    continue
                v = arr[..., j]
                rows = v[clean.any(axis=1)] if v.ndim == 1 else v[clean]  # clean operators / realizations
                if not np.isfinite(rows).all():
                    nonfinite.append(name)
                    continue
                per_op = rows.reshape(rows.shape[0], -1).mean(axis=1) if v.ndim > 1 else rows
                if np.ptp(per_op) <= 1e-9 * max(1.0, float(np.abs(per_op).max())):
                    constant.append(name)
        assert not nonfinite, nonfinite
        assert not constant, constant


def test_only_features_needing_more_frames_or_channels_are_masked(dataset):
    cfg, layout = dataset
    with HDF5FeatureReader(layout.root) as r:
        reg = r.get_sdf_registry()
        ts = int(r.get_sdf_features(reg.categories[0]).shape[2])
        for cat in reg.categories:
            for name, reason in r.masked(cat).items():
                spec = reg.spec(name)  # a StoredFeature: the catalogue fields are in its registry row
                row = spec.to_dict()
                assert row["min_frames"] > ts or row["min_channels"] > 3 or spec.granularity == "operator", (
                    name,
                    reason,
                )


def test_dataframe_view_has_metadata_and_summary_columns(dataset):
    cfg, layout = dataset
    with HDF5FeatureReader(layout.root) as r:
        df = r.to_dataframe()
        assert len(df) == 24 and list(df.columns[:7]) == [
            "sample_index",
            "grid_size",
            "ic_type",
            "ic_base_type",
            "policy",
            "noise_regime",
            "diverged_realizations",
        ]
        assert df["sample_index"].tolist() == list(range(24))
        assert set(df["policy"]) <= {"autoregressive", "residual", "convex"}
        assert df.shape[1] == 7 + len(r.aggregated_names)
        sel = r.select(["spatial_mean", r.aggregated_names[0]])
        assert sel["spatial_mean"].shape == (24, 2, 49, 3) and sel[r.aggregated_names[0]].shape == (24,)


def test_index_view_equals_the_partition_feature_files(dataset):
    cfg, layout = dataset
    with (
        HDF5FeatureReader(layout.index) as a,
        HDF5FeatureReader(layout.features(PartitionId(grid=32, batch=1))) as b,
    ):
        np.testing.assert_array_equal(a.get_sdf_features("spectral")[12:], b.get_sdf_features("spectral"))
        np.testing.assert_array_equal(a.get_sdf_aggregated()[12:], b.get_sdf_aggregated())
        ra, rb = a.get_sdf_registry(), b.get_sdf_registry()
        # StoredRegistry has no value equality: compare what it holds (every feature row, and the stored JSON)
        assert ra.specs == rb.specs and ra.to_json() == rb.to_json()
