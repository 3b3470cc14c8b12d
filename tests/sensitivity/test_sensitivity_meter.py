"""SensitivityMeter as the rollout engine's probe: outputs untouched, values as measured alone."""

from __future__ import annotations

import numpy as np
import torch

from spinlock_core.features.config import load_features_config
from spinlock_core.operators import KNOBS, OperatorSpec
from spinlock_core.rollout import run_rollouts
from spinlock_core.sensitivity import SensitivityMeter, sensitivity_feature_names, sensitivity_for_specs

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
    meter = SensitivityMeter(params)
    plain, st0 = roll(ics)
    measured, st1 = roll(ics, meter)
    for (t0, d0, s0), (t1, d1, s1) in zip(plain, measured):
        assert t0.tobytes() == t1.tobytes() and np.array_equal(d0, d1)
        assert s0 is None and s1.shape == (len(names),) and s1.dtype == np.float32 and np.isfinite(s1).all()
    assert st0.sensitivity_seconds == 0.0 and st1.sensitivity_seconds > 0.0
    values = np.stack([s for _, _, s in measured])
    # same values as measuring the rebuilt operators outside the rollout (same eval batch = M)
    np.testing.assert_allclose(values, sensitivity_for_specs(SPECS, ics, params, eval_batch=3), rtol=1e-4, atol=1e-6)
    # a 16-bit rollout is measured on a float32 copy of the same weights: same values, own trajectories
    bf_plain, _ = roll(ics, precision="bfloat16")
    bf_meas, _ = roll(ics, meter, precision="bfloat16")
    for (t0, _, _), (t1, _, _) in zip(bf_plain, bf_meas):
        assert t0.tobytes() == t1.tobytes()
    assert np.stack([s for _, _, s in bf_meas]).tobytes() == values.tobytes()
    # a meter of a disabled family measures no column (the rollout stage then passes no probe at all)
    off_params = load_features_config({"operator_sensitivity": {"enabled": False}}).operator_sensitivity
    assert sensitivity_feature_names(off_params, 3) == []
    off, _ = roll(ics, SensitivityMeter(off_params))
    for (t0, d0, _), (t1, d1, s1) in zip(plain, off):
        assert t0.tobytes() == t1.tobytes() and np.array_equal(d0, d1)
        assert s1 is not None and s1.shape == (0,)


def test_the_engine_calls_any_probe_once_per_chunk_with_the_bank_and_m():
    """The engine knows only the probe protocol: its values travel unchanged, one row per operator."""
    ics = torch.randn(len(SPECS), 3, 16, 16, generator=torch.Generator().manual_seed(2))
    calls = []

    class Probe:
        def measure(self, bank, x, draws, eval_batch):
            calls.append((bank.g, tuple(x.shape), eval_batch))
            return torch.tensor([[float(s.index), float(eval_batch)] for s in bank.specs])

    plain, _ = roll(ics)
    probed, stats = roll(ics, Probe())
    assert stats.sensitivity_seconds > 0.0
    assert sum(g for g, _, _ in calls) == len(SPECS) and len(calls) == stats.chunks
    assert all(shape == (g, 3, 16, 16) and m == 3 for g, shape, m in calls)
    for i, ((t0, _, _), (t1, _, s1)) in enumerate(zip(plain, probed)):
        assert t0.tobytes() == t1.tobytes()
        assert s1.dtype == np.float32 and s1.tolist() == [float(SPECS[i].index), 3.0]
