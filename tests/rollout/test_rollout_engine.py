"""The batched rollout engine: policies, knobs, realizations, divergence, precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinlock_core.operators import KNOBS, OperatorSpec
from spinlock_core.rollout import policy_coefficients, run_rollouts

torch.set_num_threads(1)


def make_spec(index: int, **kw) -> OperatorSpec:
    params = {k: v.default for k, v in KNOBS.items()}
    params.update({"base_channels": 8, "num_layers": 2})
    params.update(kw)
    return OperatorSpec(index=index, root_seed=3, params=params, ic_type="t", ic_base="t", num_channels=3)


def ics_for(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def roll(specs, ics, m=3, steps=4, **kw):
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def keep(res):
        for j, row in enumerate(res.rows.tolist()):
            out[row] = (res.trajectories[j], res.diverged_step[j])

    stats = run_rollouts(specs, ics, num_realizations=m, num_steps=steps, on_chunk=keep, **kw)
    return [out[i][0] for i in range(len(specs))], [out[i][1] for i in range(len(specs))], stats


def test_shapes_frame_zero_and_final_only():
    specs = [make_spec(0), make_spec(1, num_layers=4)]
    ics = ics_for(2)
    traj, div, stats = roll(specs, ics, m=3, steps=4)
    assert traj[0].shape == (3, 5, 3, 16, 16)  # M, T+1, C, H, W
    for i in range(2):
        assert np.array_equal(traj[i][:, 0], np.broadcast_to(ics[i].numpy(), (3, 3, 16, 16)))
        assert (div[i] == -1).all()
    final, _, _ = roll(specs, ics, m=3, steps=4, store_trajectories=False)
    assert final[0].shape == (3, 1, 3, 16, 16)
    np.testing.assert_array_equal(final[0][:, 0], traj[0][:, -1])
    assert stats.chunks == 2 and stats.num_operators == 2


def test_reproducible_and_realizations_differ():
    specs = [make_spec(i, noise_scale=0.1) for i in range(3)]
    a, _, _ = roll(specs, ics_for(3))
    b, _, _ = roll(specs, ics_for(3))
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()
        assert not np.array_equal(x[0, 1:], x[1, 1:])  # realizations differ after step 1


def test_policies_follow_their_update_rule():
    base = dict(noise_scale=0.05)
    auto = make_spec(0, update_policy="autoregressive", **base)
    res = make_spec(0, update_policy="residual", dt=0.3, **base)
    cvx = make_spec(0, update_policy="convex", alpha=0.7, **base)
    ic = ics_for(1)
    (ta,), _, _ = roll([auto], ic, steps=1)
    (tr,), _, _ = roll([res], ic, steps=1)
    (tc,), _, _ = roll([cvx], ic, steps=1)
    x0, o = ta[:, 0], ta[:, 1]  # autoregressive: X1 = O(X0), same seeds -> same O
    np.testing.assert_allclose(tr[:, 1], x0 + 0.3 * o, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tc[:, 1], 0.7 * x0 + 0.3 * o, rtol=1e-5, atol=1e-5)
    assert policy_coefficients(cvx.params) == pytest.approx((0.7, 0.3))
    with pytest.raises(ValueError, match="allowed"):
        policy_coefficients({**auto.params, "update_policy": "leapfrog"})


KNOB_CHANGES = {
    "num_layers": 4,
    "base_channels": 12,
    "kernel_size": 5,
    "activation": "tanh",
    "normalization": "group",
    "dropout_rate": 0.3,
    "noise_type": "laplace",
    "noise_scale": 0.3,
    "noise_schedule": "annealing",
    "schedule_period": 3.0,
    "spatial_correlation": 0.2,
    "update_policy": "convex",
    "dt": 0.5,
    "alpha": 0.2,
}


def test_knob_table_covers_the_registry():
    assert set(KNOB_CHANGES) == set(KNOBS)


@pytest.mark.parametrize("knob", sorted(KNOB_CHANGES))
def test_every_knob_changes_the_output(knob):
    base = dict(noise_schedule="periodic", schedule_period=5.0, update_policy="residual")
    if knob == "alpha":
        base["update_policy"] = "convex"
    ic = ics_for(1)
    (ref,), _, _ = roll([make_spec(0, **base)], ic, steps=3)
    (alt,), _, _ = roll([make_spec(0, **{**base, knob: KNOB_CHANGES[knob]})], ic, steps=3)
    assert np.abs(ref[:, 1:] - alt[:, 1:]).max() > 1e-4


@pytest.mark.parametrize("noise_type", ["gaussian", "laplace", "multiplicative", "dropout"])
def test_each_noise_type_makes_realizations_differ(noise_type):
    (t,), _, _ = roll([make_spec(0, noise_type=noise_type, noise_scale=0.2)], ics_for(1), m=2, steps=1)
    assert np.abs(t[0, 1] - t[1, 1]).max() > 1e-3


def test_divergence_is_flagged_and_isolated():
    specs = [make_spec(0), make_spec(1), make_spec(2)]
    ics = ics_for(3)
    clean, _, _ = roll(specs, ics)
    bad_ics = ics.clone()
    bad_ics[0, 0, 0, 0] = float("nan")
    traj, div, stats = roll(specs, bad_ics)
    assert (div[0] == 1).all()  # diverged at the first step
    assert np.isnan(traj[0][:, 1:]).all() and np.isnan(traj[0][:, 0]).any()
    for i in (1, 2):  # neighbours in the same bank are untouched
        assert (div[i] == -1).all()
        np.testing.assert_array_equal(traj[i], clean[i])
    assert stats.diverged_operators == 1 and stats.diverged_realizations == 3


def test_explosion_threshold():
    specs = [make_spec(0, update_policy="residual", dt=5.0, normalization="none"), make_spec(1)]
    traj, div, _ = roll(specs, ics_for(2), steps=6, divergence_threshold=3.0)
    d = div[0]
    assert (d >= 1).all()
    for r in range(3):
        assert np.isfinite(traj[0][r, : d[r]]).all() and np.isnan(traj[0][r, d[r] :]).all()


def test_bfloat16_close_to_float32():
    specs = [make_spec(0), make_spec(1, normalization="layer")]
    a, _, _ = roll(specs, ics_for(2), steps=2)
    b, _, _ = roll(specs, ics_for(2), steps=2, precision="bfloat16")
    for x, y in zip(a, b):
        rel = np.sqrt(np.mean((x - y) ** 2) / np.mean(x**2))
        assert 0 < rel < 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="precision"):
        roll([make_spec(0)], ics_for(1), precision="float8")
    with pytest.raises(ValueError, match="initial conditions"):
        roll([make_spec(0)], ics_for(2))


def test_chunks_respect_count_host_and_device_budgets():
    from spinlock_core.rollout.engine import _chunks

    specs = [make_spec(i) for i in range(10)]  # one bucket
    plan, n_buckets = _chunks(specs, 4, 64, 1, 1 << 40, 1, 1 << 40)
    assert n_buckets == 1 and [len(m) for _, m in plan] == [10]
    plan, _ = _chunks(specs, 4, 3, 1, 1 << 40, 1, 1 << 40)  # operators_per_chunk
    assert [len(m) for _, m in plan] == [3, 3, 3, 1]
    plan, _ = _chunks(specs, 4, 64, 100, 400, 1, 1 << 40)  # host trajectory buffer
    assert max(len(m) for _, m in plan) == 4
    per_op = 6 * 8 * 2**1 * 10  # live activations x widest padded width (8 * 2^min(L-1, 2)) x bytes/channel
    plan, _ = _chunks(specs, 4, 64, 1, 1 << 40, 10, 5 * per_op)  # device activation budget
    assert max(len(m) for _, m in plan) == 5
    assert sorted(p for _, m in plan for p in m) == list(range(10))


def test_chunks_computed_in_threads_give_the_same_bytes_in_plan_order():
    """``workers`` threads compute chunks at once: identical data and stats, chunks handed over in plan order."""
    specs = [
        make_spec(i, num_layers=2 + i % 3, base_channels=8 + 4 * (i % 2), noise_scale=0.05 * (1 + i % 4))
        for i in range(11)
    ]
    ics = ics_for(11, seed=5)
    ics[4, 0, 0, 0] = float("nan")  # one diverging operator among them
    runs = {}
    for workers in (1, 3):
        order: list[list[int]] = []
        got: dict[int, tuple[bytes, bytes]] = {}

        def keep(res, order=order, got=got):
            order.append(res.rows.tolist())
            for j, row in enumerate(res.rows.tolist()):
                got[row] = (res.trajectories[j].tobytes(), res.diverged_step[j].tobytes())

        stats = run_rollouts(
            specs, ics, num_realizations=2, num_steps=3, operators_per_chunk=2, workers=workers, on_chunk=keep
        )
        runs[workers] = (order, got, stats)
    (o1, g1, s1), (o3, g3, s3) = runs[1], runs[3]
    assert s1.chunks > 3 and o1 == o3 and g1 == g3
    assert (s1.diverged_operators, s1.diverged_realizations, s1.bucket_sizes) == (
        s3.diverged_operators,
        s3.diverged_realizations,
        s3.bucket_sizes,
    )
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_rollouts(specs, ics, num_realizations=1, num_steps=1, workers=0, on_chunk=lambda r: None)


def test_cpu_workers_from_the_environment_never_exceed_the_cores(monkeypatch):
    from spinlock_core.device import CPU_WORKERS_ENV, available_cpus, cpu_workers

    monkeypatch.delenv(CPU_WORKERS_ENV, raising=False)
    assert cpu_workers(1) == 1
    monkeypatch.setenv(CPU_WORKERS_ENV, "64")
    assert cpu_workers(1) == min(64, available_cpus()) and cpu_workers(10**6) == 1
    monkeypatch.setenv(CPU_WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="SPINLOCK_CPU_WORKERS must be a positive integer, got 'two'"):
        cpu_workers(1)
