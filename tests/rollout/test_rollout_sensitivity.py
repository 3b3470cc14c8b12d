"""Operator sensitivity measured inside run_rollouts: outputs untouched, values as measured alone."""

from __future__ import annotations

import numpy as np
import torch

from spinlock_core.features.config import load_features_config
from spinlock_core.operators import KNOBS, OperatorSpec
from spinlock_core.rollout import run_rollouts, sensitivity_feature_names, sensitivity_for_specs

torch.set_num_threads(1)


def make_spec(index: int, **kw) -> OperatorSpec:
    params = {k: v.default for k, v in KNOBS.items()}
    params.update({"base_channels": 8, "num_layers": 2})
    params.update(kw)
    return OperatorSpec(index=index, root_seed=5, params=params, ic_type="t", ic_base="t", num_channels=3)


SPECS = [
    make_spec(0, noise_scale=0.1),
    make_spec(1, num_layers=4, activation="tanh", normalization="batch", noise_type="laplace"),
    make_spec(2, dropout_rate=0.2, noise_type="multiplicative", noise_scale=0.3, update_policy="autoregressive"),
    make_spec(3, activation="relu", normalization="none", spatial_correlation=0.1, update_policy="convex"),
    make_spec(4, noise_type="dropout", noise_scale=0.2, noise_schedule="annealing"),
]


def roll(ics, sensitivity=None, **kw):
    out: dict[int, tuple] = {}

    def keep(res):
        for j, row in enumerate(res.rows.tolist()):
            sens = None if res.sensitivity is None else res.sensitivity[j]
            out[row] = (res.trajectories[j], res.diverged_step[j], sens)

    stats = run_rollouts(
        SPECS, ics, num_realizations=3, num_steps=3, sensitivity=sensitivity, on_chunk=keep, operators_per_chunk=2, **kw
    )
    return [out[i] for i in range(len(SPECS))], stats


def test_rollouts_are_bit_identical_with_and_without_sensitivity():
    ics = torch.randn(len(SPECS), 3, 16, 16, generator=torch.Generator().manual_seed(1))
    params = load_features_config(None).operator_sensitivity
    names = sensitivity_feature_names(params, 3)
    plain, st0 = roll(ics)
    measured, st1 = roll(ics, params)
    for (t0, d0, s0), (t1, d1, s1) in zip(plain, measured):
        assert t0.tobytes() == t1.tobytes() and np.array_equal(d0, d1)
        assert s0 is None and s1.shape == (len(names),) and s1.dtype == np.float32 and np.isfinite(s1).all()
    assert st0.sensitivity_seconds == 0.0 and st1.sensitivity_seconds > 0.0
    values = np.stack([s for _, _, s in measured])
    # same values as measuring the rebuilt operators outside the rollout (same eval batch = M)
    np.testing.assert_allclose(values, sensitivity_for_specs(SPECS, ics, params, eval_batch=3), rtol=1e-4, atol=1e-6)
    # a 16-bit rollout is measured on a float32 copy of the same weights: same values, own trajectories
    bf_plain, _ = roll(ics, precision="bfloat16")
    bf_meas, _ = roll(ics, params, precision="bfloat16")
    for (t0, _, _), (t1, _, _) in zip(bf_plain, bf_meas):
        assert t0.tobytes() == t1.tobytes()
    assert np.stack([s for _, _, s in bf_meas]).tobytes() == values.tobytes()
    # disabled family: nothing measured
    off, st2 = roll(ics, load_features_config({"operator_sensitivity": {"enabled": False}}).operator_sensitivity)
    assert all(s is None for _, _, s in off) and st2.sensitivity_seconds == 0.0
