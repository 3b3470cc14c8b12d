"""On a generated dataset of diverse operators: every enabled feature is finite and informative."""

from __future__ import annotations

import numpy as np
import pytest
from spinlock_fixtures import DEFAULT, tiny_overrides

from spinlock_core import pipeline
from spinlock_core.config import load_config
from spinlock_core.features import HDF5FeatureReader


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "data"
    cfg = load_config(
        DEFAULT,
        tiny_overrides(
            out,
            **{
                "sampling.total_samples": 24,
                "sampling.batch_size": 12,
                "simulation.grid_sizes": [32],
                "simulation.num_realizations": 2,
                "simulation.num_timesteps": 48,
            },
        ),
    )
    for b in range(cfg.sampling.num_batches):
        sob = pipeline.sobol_stage(cfg, b)
        pipeline.rollout_stage(cfg, sob, pipeline.specs_stage(cfg, sob), 32)
        pipeline.features_stage(cfg, b, 32)
    pipeline.index_stage(cfg)
    return cfg, out


def test_every_enabled_feature_is_finite_and_varies_across_operators(dataset):
    cfg, out = dataset
    with HDF5FeatureReader(out) as r:
        reg = r.get_sdf_registry()
        div = None
        with __import__("h5py").File(out / "index.h5", "r") as f:
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
    cfg, out = dataset
    with HDF5FeatureReader(out) as r:
        reg = r.get_sdf_registry()
        ts = int(r.get_sdf_features(reg.categories[0]).shape[2])
        for cat in reg.categories:
            for name, reason in r.masked(cat).items():
                spec = reg.spec(name)
                assert spec.min_frames > ts or spec.min_channels > 3 or spec.granularity == "operator", (name, reason)


def test_dataframe_view_has_metadata_and_summary_columns(dataset):
    cfg, out = dataset
    with HDF5FeatureReader(out) as r:
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
    cfg, out = dataset
    with (
        HDF5FeatureReader(out / "index.h5") as a,
        HDF5FeatureReader(out / "features" / "grid_0032" / "batch_0001.h5") as b,
    ):
        np.testing.assert_array_equal(a.get_sdf_features("spectral")[12:], b.get_sdf_features("spectral"))
        np.testing.assert_array_equal(a.get_sdf_aggregated()[12:], b.get_sdf_aggregated())
        assert a.get_sdf_registry() == b.get_sdf_registry()
