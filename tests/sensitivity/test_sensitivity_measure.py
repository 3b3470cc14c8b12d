"""Operator-sensitivity measurement: analytic cases, held-fixed noise, batch independence, diversity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from spinlock_core.features.config import load_features_config
from spinlock_core.operators import KNOBS, OperatorBank, OperatorSpec, bucket_key
from spinlock_core.sensitivity import (
    SENSITIVITY_VERSION,
    measure_sensitivity,
    perturbation_direction,
    sensitivity_feature_names,
    sensitivity_for_specs,
    sensitivity_params_hash,
    sensitivity_params_json,
)

torch.set_num_threads(1)

P = "sensitivity_"


def cfg(**over):
    return load_features_config({"operator_sensitivity": dict(over)}).operator_sensitivity


def make_spec(index: int, **kw) -> OperatorSpec:
    params = {k: v.default for k, v in KNOBS.items()}
    params.update({"base_channels": 8, "num_layers": 2})
    params.update(kw)
    return OperatorSpec(index=index, root_seed=11, params=params, ic_type="t", ic_base="t", num_channels=3)


def grf(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth-ish random fields (low-pass filtered white noise), amplitude O(1)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, size, size, generator=g)
    k = torch.fft.fftfreq(size) * size
    filt = torch.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / 8.0)
    x = torch.fft.ifft2(torch.fft.fft2(z) * filt).real
    return x / x.std(dim=(1, 2, 3), keepdim=True)


def col(values: np.ndarray, names: list[str], name: str) -> np.ndarray:
    return values[:, names.index(P + name)]


def forward_alone(spec: OperatorSpec, inputs: list[torch.Tensor], step: int = 1) -> list[torch.Tensor]:
    """Plain reference: the operator alone, one input per forward, with realization 0's draws of ``step``."""
    bank = OperatorBank([spec], bucket_key(spec, 4).width, num_realizations=1, num_steps=1, device="cpu")
    h, w = inputs[0].shape[-2:]
    draws = bank.draw(step, [[spec.noise_seed(0)]], h, w)
    with torch.inference_mode():
        return [bank.forward(v.reshape(1, -1, h, w), draws, 1)[0] for v in inputs]


# ------------------------------------------------------------------------------------- identity
def test_perturbation_direction_is_a_unit_rms_function_of_the_sample():
    a, b = make_spec(0), make_spec(1)
    u = perturbation_direction(a, 3, 16, 16)
    assert u.shape == (3, 16, 16) and u.dtype == np.float32
    assert float(np.sqrt(np.mean(u.astype(np.float64) ** 2))) == pytest.approx(1.0, rel=1e-6)
    assert perturbation_direction(a, 3, 16, 16).tobytes() == u.tobytes()
    # the weight seed alone decides it: the same sample rebuilt from its JSON, another sample differs
    assert perturbation_direction(OperatorSpec.from_json(a.to_json()), 3, 16, 16).tobytes() == u.tobytes()
    assert a.weight_seed != b.weight_seed
    assert not np.allclose(perturbation_direction(b, 3, 16, 16), u)
    assert perturbation_direction(a, 3, 24, 24).shape == (3, 24, 24)


def test_params_json_and_hash_identify_the_measurement():
    c = cfg()
    text = sensitivity_params_json(c)
    assert text == sensitivity_params_json(cfg()) and " " not in text
    assert load_features_config({"operator_sensitivity": json.loads(text)}).operator_sensitivity == c
    h = sensitivity_params_hash(c)
    assert len(h) == 16 and int(h, 16) >= 0 and h == sensitivity_params_hash(cfg())
    assert SENSITIVITY_VERSION and sensitivity_params_hash(cfg(gain_alphas=[0.25, 2.0])) != h
    assert sensitivity_params_hash(cfg(include=[P + "lipschitz_spread"])) != h
    assert sensitivity_params_hash(cfg(enabled=False)) != h


def test_sensitivity_for_specs_pairs_each_spec_with_its_initial_condition():
    c = cfg()
    names = sensitivity_feature_names(c, 3)
    specs = [make_spec(0), make_spec(1, activation="tanh")]
    x = grf(2, seed=5)
    with pytest.raises(ValueError, match="2 specs but 3 initial conditions"):
        sensitivity_for_specs(specs, grf(3, seed=5), c)
    empty = sensitivity_for_specs([], torch.zeros(0, 3, 16, 16), c)
    assert empty.shape == (0, len(names)) and empty.dtype == np.float32
    assert sensitivity_for_specs(specs, x, cfg(enabled=False)).shape == (2, 0)
    # numpy and torch inputs give the same values
    assert sensitivity_for_specs(specs, x.numpy(), c).tobytes() == sensitivity_for_specs(specs, x, c).tobytes()


# ------------------------------------------------------------------------------------- analytic
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_affine_operator_matches_closed_form(norm):
    """activation none + no statistics-based norm + zero noise: O(x) = A x + b exactly."""
    spec = make_spec(0, activation="none", normalization=norm, noise_scale=0.0, kernel_size=5)
    x = grf(1, seed=1)[0]
    c = cfg(include=[P + "lipschitz_spread"])
    names = sensitivity_feature_names(c, 3)
    v = sensitivity_for_specs([spec], x[None], c)
    u = torch.from_numpy(perturbation_direction(spec, 3, 16, 16))
    o_zero, o_u, o_x = forward_alone(spec, [torch.zeros_like(x), 10.0 * u, x])
    au, ax, b = (o_u - o_zero) / 10.0, o_x - o_zero, o_zero  # A u, A x, b
    lip = float(au.norm() / u.norm())
    for e in ("0p001", "0p01", "0p1"):
        assert col(v, names, f"lipschitz_eps{e}")[0] == pytest.approx(lip, rel=2e-3)
    gains = np.array([float((a * ax + b).norm() / (ax + b).norm()) for a in (0.5, 0.75, 1.25, 1.5)])
    got = np.array([col(v, names, f"gain_alpha{t}")[0] for t in ("0p5", "0p75", "1p25", "1p5")])
    np.testing.assert_allclose(got, gains, rtol=1e-4)
    assert col(v, names, "base_gain")[0] == pytest.approx(float((ax + b).norm() / x.norm()), rel=1e-5)
    assert col(v, names, "curvature")[0] < 1e-3 and col(v, names, "asymmetry")[0] < 1e-3
    assert abs(col(v, names, "lipschitz_spread")[0]) < 1e-3
    # derived gain-curve features from their formulas on the measured gains
    al, gl = np.array([0.5, 0.75, 1.25, 1.5, 1.0]), np.append(got, 1.0).astype(np.float64)
    slope, icpt = np.polyfit(al, gl, 1)
    r2 = 1 - np.sum((gl - (slope * al + icpt)) ** 2) / max(np.sum((gl - gl.mean()) ** 2), 5 * 0.01**2)
    assert col(v, names, "gain_linearity_r2")[0] == pytest.approx(r2, abs=1e-5)
    assert col(v, names, "gain_exponent")[0] == pytest.approx(
        np.polyfit(np.log(al), np.log(gl), 1)[0], rel=1e-4, abs=1e-6
    )
    assert col(v, names, "compression")[0] == pytest.approx((got[0] / 0.5) / (got[-1] / 1.5), rel=1e-5)
    assert col(v, names, "saturation")[0] == pytest.approx(1 - (got[-1] - 1) / 0.5, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("act", ["gelu", "relu"])
def test_instance_normalised_operator_is_scale_invariant(act):
    """Instance norm removes the first conv's per-channel bias: O(alpha x) = O(x) up to eps/var."""
    spec = make_spec(1, normalization="instance", activation=act, noise_scale=0.1)
    c = cfg()
    names = sensitivity_feature_names(c, 3)
    v = sensitivity_for_specs([spec], grf(1, seed=2), c)
    for t in ("0p5", "0p75", "1p25", "1p5"):
        assert abs(col(v, names, f"gain_alpha{t}")[0] - 1) < 1e-3
    assert abs(col(v, names, "gain_exponent")[0]) < 2e-3
    assert col(v, names, "gain_linearity_r2")[0] > 0.9999  # flat gain: a line fits
    assert col(v, names, "compression")[0] == pytest.approx(3.0, rel=3e-3)
    assert col(v, names, "saturation")[0] == pytest.approx(1.0, abs=3e-3)


def test_noise_held_fixed_is_stable_redrawn_noise_blows_up():
    spec = make_spec(2, noise_type="gaussian", noise_scale=0.2, normalization="group", activation="silu")
    x = grf(1, seed=3)[0]
    c = cfg()
    names = sensitivity_feature_names(c, 3)
    v = sensitivity_for_specs([spec], x[None], c)
    lips = np.array([col(v, names, f"lipschitz_eps{e}")[0] for e in ("0p001", "0p01", "0p1")])
    assert lips.max() / lips.min() < 2.0  # held fixed: a property of the operator at every scale
    u = torch.from_numpy(perturbation_direction(spec, 3, 16, 16))
    s = float(x.square().mean().sqrt())
    redrawn = []
    for e in (1e-3, 1e-1):
        xp = x + e * s * u
        (o_x,) = forward_alone(spec, [x], step=1)
        (o_p,) = forward_alone(spec, [xp], step=2)  # another noise draw for the perturbed input
        redrawn.append(float((o_p - o_x).norm() / (xp - x).norm()))
    assert redrawn[0] / redrawn[1] > 30  # ~ 1/eps: the noise difference dominates
    assert redrawn[0] > 30 * lips[0]


# ------------------------------------------------------------------------------------- batching
BUCKET = [  # one bucket (2 layers, k=3, width 8, no dropout), diverse otherwise
    dict(activation="relu", normalization="batch", noise_type="gaussian", noise_scale=0.05),
    dict(activation="tanh", normalization="none", noise_type="laplace", noise_scale=0.1, spatial_correlation=0.1),
    dict(activation="gelu", normalization="group", noise_type="multiplicative", noise_scale=0.3),
    dict(activation="silu", normalization="instance", noise_type="dropout", noise_scale=0.2),
    dict(activation="none", normalization="layer", noise_type="gaussian", noise_scale=0.0),
]


def test_batched_bank_equals_plain_per_operator_loop():
    specs = [make_spec(10 + i, **kw) for i, kw in enumerate(BUCKET)]
    assert len({bucket_key(s, 4) for s in specs}) == 1
    x = grf(len(specs), seed=4)
    c = cfg()
    names = sensitivity_feature_names(c, 3)
    bank = OperatorBank(specs, bucket_key(specs[0], 4).width, num_realizations=3, num_steps=5, device="cpu")
    with torch.inference_mode():
        draws = bank.draw(1, [[s.noise_seed(r) for r in range(3)] for s in specs], 16, 16)
        batched = measure_sensitivity(bank, x, draws, c).numpy()
    assert batched.shape == (5, len(names)) and batched.dtype == np.float32
    for i, s in enumerate(specs):
        xi = x[i]
        u = torch.from_numpy(perturbation_direction(s, 3, 16, 16))
        rms = float(xi.square().mean().sqrt())
        ins = [xi] + [xi + e * rms * u for e in (1e-3, 1e-2, 1e-1)] + [a * xi for a in (0.5, 0.75, 1.25, 1.5)]
        outs = forward_alone(s, ins)
        for k, e in enumerate(("0p001", "0p01", "0p1")):
            ref = float((outs[1 + k] - outs[0]).norm() / (ins[1 + k] - xi).norm())
            assert batched[i, names.index(P + f"lipschitz_eps{e}")] == pytest.approx(ref, rel=1e-4)
        for j, t in enumerate(("0p5", "0p75", "1p25", "1p5")):
            ref = float(outs[4 + j].norm() / outs[0].norm())
            assert batched[i, names.index(P + f"gain_alpha{t}")] == pytest.approx(ref, rel=1e-5)
    # the same operators alone, in other chunkings and in another order: same values
    alone = np.concatenate([sensitivity_for_specs([s], x[i : i + 1], c) for i, s in enumerate(specs)])
    # float32 rounding differs with the bank's layout; the eps = 1e-3 difference resolves ~1e-4 relative
    np.testing.assert_allclose(alone, batched, rtol=1e-4, atol=1e-6)
    perm = [3, 0, 4, 1, 2]
    shuffled = sensitivity_for_specs([specs[p] for p in perm], x[perm], c, operators_per_chunk=2)
    np.testing.assert_allclose(shuffled, batched[perm], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------- diversity
def test_diverse_generated_operators_finite_informative_reproducible(tmp_path):
    from spinlock_core.ics import generate_ics
    from spinlock_core.stages import load_batch, sobol_stage, specs_stage
    from spinlock_core.testing import tiny_config

    exp = tiny_config(tmp_path, **{"sampling.total_samples": 24, "sampling.batch_size": 24})
    sobol_stage(exp, 0)
    specs_stage(exp, 0)
    _, specs = load_batch(exp, 0)
    ics = generate_ics([(s.ic_base, s.ic_params, s.ic_seed) for s in specs], 16, 3, "cpu")
    c = cfg(include=[P + "lipschitz_spread"])
    names = sensitivity_feature_names(c, 3)
    v = sensitivity_for_specs(specs, ics, c)
    assert v.shape == (24, 16) and v.dtype == np.float32
    assert np.isfinite(v).all()
    for j, n in enumerate(names):  # every feature varies across operators
        assert np.ptp(v[:, j]) > 1e-4 * (1 + abs(float(np.mean(v[:, j])))), n
    assert (col(v, names, "lipschitz_eps0p01") > 0).all()
    for n in ("gain_linearity_r2", "asymmetry", "channel_consistency"):
        assert ((col(v, names, n) >= 0) & (col(v, names, n) <= 1)).all(), n
    assert (col(v, names, "curvature") >= 0).all()
    again = sensitivity_for_specs(specs, ics, c)
    assert again.tobytes() == v.tobytes()
    assert math.isclose(float(np.nanmax(np.abs(v))), float(np.abs(v).max()))
