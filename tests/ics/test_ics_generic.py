"""Properties every registered IC type must have (shape, dtype, seeding, batch independence, RMS)."""

from __future__ import annotations

import pytest
import torch

from spinlock_core.ics import IC_REGISTRY, generate_ics
from spinlock_core.seeding import Stream, derive_seed

N, C = 32, 3
CPU = torch.device("cpu")
NAMES = sorted(IC_REGISTRY)
SEEDS = [derive_seed(7, Stream.IC, i) for i in range(6)]


def _gen(name, seeds, n=N, c=C, **params):
    ic = IC_REGISTRY[name]
    return ic.fn(list(seeds), n, c, CPU, ic.parse_params(params))


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_finite(name):
    x = _gen(name, SEEDS[:4])
    assert x.shape == (4, C, N, N)
    assert x.dtype == torch.float32
    assert x.device == CPU
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_and_seed_dependent(name):
    a = _gen(name, SEEDS[:3])
    b = _gen(name, SEEDS[:3])
    assert torch.equal(a, b)
    c = _gen(name, SEEDS[3:6])
    for i in range(3):
        assert not torch.allclose(a[i], c[i], atol=1e-3), "different seeds gave the same field"
    # two samples of one batch differ too
    assert not torch.allclose(a[0], a[1], atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_sample_independent_of_batch(name):
    batch = _gen(name, SEEDS)
    for i in (0, 3, 5):
        alone = _gen(name, [SEEDS[i]])
        torch.testing.assert_close(alone[0], batch[i], rtol=1e-5, atol=1e-5)
    # reversed order and a different companion set
    rev = _gen(name, SEEDS[::-1])
    torch.testing.assert_close(rev.flip(0), batch, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_default_rms_order_one(name):
    x = _gen(name, [derive_seed(3, Stream.IC, i) for i in range(16)], n=64)
    rms = x.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert 0.3 <= float(rms.mean()) <= 3.0, f"{name}: mean RMS {float(rms.mean()):.3g}"
    assert (rms > 0.1).all() and (rms < 10).all()


@pytest.mark.parametrize("name", NAMES)
def test_channel_counts(name):
    for c in (1, 2, 5):
        x = _gen(name, SEEDS[:2], c=c)
        assert x.shape == (2, c, N, N)
        assert torch.isfinite(x).all()


def test_generate_ics_mixed_types_batch_independent():
    reqs = [
        ("gaussian_random_field", {"length_scale": 0.2}, 11),
        ("structured", {}, 12),
        ("gaussian_random_field", {"length_scale": 0.2}, 13),
        ("composite", {"pattern": "grid"}, 14),
        ("gaussian_random_field", {"length_scale": 0.05}, 15),
        ("mixed", None, 16),
        ("heavy_tailed", {"alpha": 2.0}, 17),
        ("localized", {"num_blobs": 2}, 18),
        ("multiscale_grf", {}, 19),
    ]
    batch = generate_ics(reqs, N, C, CPU)
    assert batch.shape == (len(reqs), C, N, N) and batch.dtype == torch.float32
    for i, req in enumerate(reqs):
        alone = generate_ics([req], N, C, CPU)
        torch.testing.assert_close(alone[0], batch[i], rtol=1e-5, atol=1e-5)
    # matches a direct generator call
    ic = IC_REGISTRY["gaussian_random_field"]
    direct = ic.fn([11, 13], N, C, CPU, ic.parse_params({"length_scale": 0.2}))
    torch.testing.assert_close(batch[[0, 2]], direct, rtol=1e-5, atol=1e-5)
    # different params in the same type give different fields for the same seed
    a = generate_ics(
        [("gaussian_random_field", {"length_scale": 0.2}, 5), ("gaussian_random_field", {"length_scale": 0.05}, 5)],
        N,
        C,
    )
    assert not torch.allclose(a[0], a[1], atol=1e-3)


def test_generate_ics_groups_one_call_per_group(monkeypatch):
    from spinlock_core.ics import registry as reg

    ic = IC_REGISTRY["gaussian_random_field"]
    calls = []

    def counting(seeds, n, c, device, params):
        calls.append((list(seeds), params.length_scale))
        return ic.fn(seeds, n, c, device, params)

    monkeypatch.setitem(
        reg.IC_REGISTRY,
        "gaussian_random_field",
        reg.ICType(ic.name, ic.tier, ic.domain, ic.description, ic.params_model, counting),
    )
    # equal params spelled differently (int vs float, omitted default) share a group
    reqs = [
        ("gaussian_random_field", {"length_scale": 0.1}, 1),
        ("gaussian_random_field", {"length_scale": 0.2}, 2),
        ("gaussian_random_field", {}, 3),
        ("gaussian_random_field", {"variance": 1, "length_scale": 0.1}, 4),
    ]
    generate_ics(reqs, 16, 1)
    assert sorted(calls, key=lambda t: t[1]) == [([1, 3, 4], 0.1), ([2], 0.2)]


def test_generate_ics_dtype_and_empty():
    x = generate_ics([("localized", {}, 1)], 16, 2, dtype=torch.float64)
    assert x.dtype == torch.float64
    assert generate_ics([], 16, 2).shape == (0, 2, 16, 16)


def test_generate_ics_errors():
    with pytest.raises(ValueError, match="unknown IC type 'nope'.*gaussian_random_field"):
        generate_ics([("nope", {}, 1)], 16, 1)
    with pytest.raises(ValueError, match="grid_size"):
        generate_ics([("localized", {}, 1)], 1, 1)
    with pytest.raises(ValueError, match="num_channels"):
        generate_ics([("localized", {}, 1)], 16, 0)
    with pytest.raises(ValueError, match="seed must be non-negative"):
        generate_ics([("localized", {}, -1)], 16, 1)
