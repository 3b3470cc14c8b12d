"""The features stage takes operator sensitivity from the rollout, or re-measures it when stale."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
from spinlock_fixtures import DEFAULT, tiny_overrides

from spinlock_core import pipeline
from spinlock_core.config import load_config
from spinlock_core.features import HDF5FeatureReader, load_features_config
from spinlock_core.rollout.sensitivity import stored_sensitivity, values_for_partition


def _partition(tmp_path):
    cfg = load_config(
        DEFAULT, tiny_overrides(tmp_path / "data", **{"simulation.grid_sizes": [16], "sampling.total_samples": 3})
    )
    sob = pipeline.sobol_stage(cfg, 0)
    pipeline.rollout_stage(cfg, sob, pipeline.specs_stage(cfg, sob), 16)
    return cfg, pipeline.partition_path(cfg, 0, 16)


def test_stored_sensitivity_is_used_and_a_re_measurement_agrees(tmp_path):
    cfg, part = _partition(tmp_path)
    fcfg = pipeline.features_config(cfg)
    pipeline.features_stage(cfg, 0, 16, features_cfg=fcfg)
    stored, names = stored_sensitivity(part, fcfg.operator_sensitivity)
    with HDF5FeatureReader(pipeline.features_file(cfg, 0, 16)) as r:
        got = r.get_sdf_features("operator_sensitivity")
        cols = r.get_sdf_registry().get_feature_names("operator_sensitivity")
        assert not r.masked("operator_sensitivity")
    np.testing.assert_array_equal(got[:, [cols.index(n) for n in names]], stored)
    # without the stored table the stage re-measures from the specs: same values (float32 rounding)
    bare = tmp_path / "bare.h5"
    shutil.copy(part, bare)
    with h5py.File(bare, "r+") as f:
        del f["operator_sensitivity/values"]
        vals, reason = values_for_partition(f, fcfg.operator_sensitivity, "cpu")
    again = np.stack([vals[n] for n in names], axis=1)
    np.testing.assert_allclose(again, stored, rtol=2e-3, atol=1e-5)


def test_changed_sensitivity_parameters_are_re_measured_not_masked(tmp_path):
    cfg, part = _partition(tmp_path)
    fcfg = load_features_config(None, {"operator_sensitivity.gain_alphas": [0.25, 2.0]})
    with h5py.File(part, "r") as f:
        assert stored_sensitivity(f, fcfg.operator_sensitivity) is None  # measured with other params
    pipeline.features_stage(cfg, 0, 16, features_cfg=fcfg)
    with HDF5FeatureReader(pipeline.features_file(cfg, 0, 16)) as r:
        cols = r.get_sdf_registry().get_feature_names("operator_sensitivity")
        v = r.get_sdf_features("operator_sensitivity")
        assert any("alpha0p25" in c for c in cols) and not r.masked("operator_sensitivity")
        assert np.isfinite(v).all()
