"""The batched operator bank against a plain per-operator reference implementation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spinlock_core.operators import KNOBS, OperatorBank, OperatorSpec, init_unit_params, unit_plan
from spinlock_core.operators.bank import bucket_key, schedule_factor
from spinlock_core.operators.layers import (
    EPS,
    gaussian_filter_spectrum,
    laplace_from_normal,
    norm_groups,
)

torch.set_num_threads(1)


def make_spec(index: int, **kw) -> OperatorSpec:
    params = {k: v.default for k, v in KNOBS.items()}
    params.update(kw)
    return OperatorSpec(index=index, root_seed=11, params=params, ic_type="t", ic_base="t", num_channels=3)


def _reference_norm(x: torch.Tensor, kind: str, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Plain per-operator normalisation of x [R, c, H, W] (biased variance, eps 1e-5)."""
    groups = norm_groups(kind, x.shape[1])
    if groups is not None:
        out = torch.empty_like(x)
        gid = torch.tensor(groups)
        for g in gid.unique():
            sel = gid == g
            xs = x[:, sel]
            mean = xs.mean(dim=(1, 2, 3), keepdim=True)
            var = xs.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
            out[:, sel] = (xs - mean) / torch.sqrt(var + EPS)
        x = out
    return x * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def reference_forward(spec: OperatorSpec, x: torch.Tensor, draws, g: int, step: int, num_steps: int) -> torch.Tensor:
    """Operator g of a bank, unpadded, one realization at a time: x [M, C, H, W] -> [M, C, H, W]."""
    p = spec.params
    plan, params = unit_plan(spec), init_unit_params(spec)
    act = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh, "none": lambda v: v}[p["activation"]]

    def unit(v, j):
        u, w = plan[j], params[j]
        k = u.kernel // 2
        v = F.conv2d(F.pad(v, (k, k, k, k), mode="circular") if k else v, w.weight, w.bias)
        if u.role in ("in", "hidden"):
            v = act(_reference_norm(v, u.norm, w.gamma, w.beta))
        return v

    m = x.shape[0]
    h = unit(x, 0)
    j = 1
    for blk in range(int(p["num_layers"])):
        if int(p["num_layers"]) > 3:
            a = unit(unit(h, j), j + 1)
            j += 2
            if plan[j].role == "proj":
                skip = F.conv2d(h, params[j].weight)
                j += 1
            else:
                skip = h
            h = a + skip
        else:
            h = unit(h, j)
            j += 1
        if draws.keep:
            c = h.shape[1]
            cp = draws.keep[blk].shape[1] // len(draws.noise[0])
            h = h * draws.keep[blk].view(m, -1, cp)[:, g, :c].view(m, c, 1, 1)
    c = h.shape[1]
    z = draws.noise[:, g, :c]
    if p["spatial_correlation"] > 0:
        tr = gaussian_filter_spectrum(torch.tensor([p["spatial_correlation"]]), *z.shape[-2:], z.device)
        z = torch.fft.irfft2(torch.fft.rfft2(z) * tr[0], s=z.shape[-2:])
    s = p["noise_scale"] * schedule_factor(p["noise_schedule"], step, num_steps, p["schedule_period"])
    t = p["noise_type"]
    if t == "gaussian":
        h = h + s * z
    elif t == "laplace":
        h = h + s * laplace_from_normal(z)
    elif t == "multiplicative":
        h = h * (1 + s * z)
    else:
        q = math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * s - 1.0))
        h = h * (z >= q).float() / (1 - s)
    return unit(h, j)


SPECS = [
    make_spec(0),
    make_spec(
        1, base_channels=13, activation="tanh", normalization="group", noise_type="laplace", spatial_correlation=0.1
    ),
    make_spec(
        2,
        base_channels=14,
        activation="relu",
        normalization="layer",
        noise_type="multiplicative",
        noise_schedule="periodic",
        schedule_period=3.0,
    ),
    make_spec(3, base_channels=15, activation="silu", normalization="batch", noise_type="dropout", noise_scale=0.3),
    make_spec(4, base_channels=16, activation="none", normalization="none", noise_schedule="annealing"),
]


@pytest.mark.parametrize("mode", ["loop", "grouped"])
@pytest.mark.parametrize("layers,dropout", [(2, 0.0), (4, 0.0), (3, 0.25)])
def test_bank_matches_per_operator_reference(mode, layers, dropout):
    specs = [
        make_spec(s.index, **{**s.params, "num_layers": layers, "dropout_rate": dropout if i % 2 else 0.0})
        for i, s in enumerate(SPECS)
    ]
    keys = {bucket_key(s, 4) for s in specs}
    assert len({(k.num_layers, k.kernel_size, k.width) for k in keys}) == 1
    bank = OperatorBank(specs, 16, num_realizations=3, num_steps=4, device="cpu", conv_mode=mode)
    x = torch.randn(3, len(specs) * 3, 16, 16, generator=torch.Generator().manual_seed(0))
    seeds = [[s.noise_seed(r) for r in range(3)] for s in specs]
    draws = bank.draw(2, seeds, 16, 16)
    out = bank.forward(x, draws, 2).view(3, len(specs), 3, 16, 16)
    for g, s in enumerate(specs):
        ref = reference_forward(s, x.view(3, len(specs), 3, 16, 16)[:, g], draws, g, 2, 4)
        torch.testing.assert_close(out[:, g], ref, rtol=1e-4, atol=1e-4)


def test_shared_trunk_equals_per_realization_trunk():
    specs = SPECS[:3]
    bank = OperatorBank(specs, 16, num_realizations=4, num_steps=3, device="cpu")
    x1 = torch.randn(1, 9, 16, 16, generator=torch.Generator().manual_seed(1))
    seeds = [[s.noise_seed(r) for r in range(4)] for s in specs]
    draws = bank.draw(1, seeds, 16, 16)
    shared = bank.forward(x1, draws, 1)
    expanded = bank.forward(x1.expand(4, -1, -1, -1).contiguous(), draws, 1)
    assert shared.shape == (4, 9, 16, 16)
    torch.testing.assert_close(shared, expanded, rtol=1e-5, atol=1e-5)


def test_draws_are_per_stream_and_reproducible():
    specs = SPECS[:2]
    bank = OperatorBank(specs, 16, num_realizations=2, num_steps=3, device="cpu")
    seeds = [[s.noise_seed(r) for r in range(2)] for s in specs]
    a, b = bank.draw(1, seeds, 8, 8), bank.draw(1, seeds, 8, 8)
    assert torch.equal(a.noise, b.noise)
    c = bank.draw(2, seeds, 8, 8)
    assert not torch.equal(a.noise, c.noise)  # a new step draws new noise
    assert not torch.equal(a.noise[0], a.noise[1])  # realizations differ
    # operator 1's draws do not depend on operator 0 being in the bank
    alone = OperatorBank(specs[1:], 16, num_realizations=2, num_steps=3, device="cpu").draw(1, seeds[1:], 8, 8)
    torch.testing.assert_close(alone.noise[:, 0], a.noise[:, 1])


def test_schedule_factor_values():
    assert schedule_factor("constant", 7, 10, 4.0) == 1.0
    assert schedule_factor("annealing", 1, 10, 4.0) == 1.0
    assert schedule_factor("annealing", 10, 10, 4.0) == pytest.approx(0.1)
    assert schedule_factor("periodic", 1, 10, 4.0) == pytest.approx(1.5)
    assert schedule_factor("periodic", 3, 10, 4.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="allowed"):
        schedule_factor("wobbly", 1, 10, 4.0)


@pytest.mark.parametrize(
    "schedule,expected", [("constant", [1, 1, 1]), ("annealing", [1, 0.6, 0.2]), ("periodic", [1.5, 1.0, 0.5])]
)
def test_schedule_scales_the_realization_spread(schedule, expected):
    """Additive noise enters linearly, so the spread across realizations follows the schedule."""
    spec = make_spec(
        0,
        normalization="instance",
        noise_type="gaussian",
        noise_scale=0.2,
        noise_schedule=schedule,
        schedule_period=4.0,
        base_channels=8,
    )
    bank = OperatorBank([spec], 8, num_realizations=48, num_steps=5, device="cpu")
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    seeds = [[spec.noise_seed(r) for r in range(48)]]
    spreads = []
    for step in (1, 3, 5) if schedule != "periodic" else (1, 2, 3):
        out = bank.forward(x, bank.draw(step, seeds, 16, 16), step)
        spreads.append(float(out.std(dim=0).mean()))
    ratios = [s / spreads[0] * expected[0] for s in spreads]
    assert ratios == pytest.approx(expected, rel=0.08)


def test_filter_preserves_unit_variance():
    z = torch.randn(1024, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    tr = gaussian_filter_spectrum(torch.tensor([0.05, 0.2]), 32, 32, torch.device("cpu"))
    for i, tol in enumerate((0.03, 0.1)):  # few effective modes at the longer length: noisier
        y = torch.fft.irfft2(torch.fft.rfft2(z) * tr[i], s=(32, 32))
        assert float(y.var()) == pytest.approx(1.0, rel=tol)
    # and correlates: neighbouring pixels are more alike for the longer length
    y = torch.fft.irfft2(torch.fft.rfft2(z) * tr[1], s=(32, 32))
    assert float((y * y.roll(1, -1)).mean()) > 0.8


def test_laplace_transform_statistics():
    z = torch.randn(200_000, generator=torch.Generator().manual_seed(2))
    lap = laplace_from_normal(z)
    assert float(lap.var()) == pytest.approx(2.0, rel=0.03)  # Laplace(0, 1)
    assert float(lap.abs().mean()) == pytest.approx(1.0, rel=0.02)
