"""Statistical and geometric properties of the baseline IC types, against analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spinlock_core.ics import IC_REGISTRY
from spinlock_core.ics.types.grf import sinh_tail_transform
from spinlock_core.ics.types.mixed import mixed_choice
from spinlock_core.seeding import Stream, derive_seed, step_seed, torch_generator

CPU = torch.device("cpu")


def _gen(name, n_samples, n, c=1, root=0, **params):
    ic = IC_REGISTRY[name]
    seeds = [derive_seed(root, Stream.IC, i) for i in range(n_samples)]
    return ic.fn(seeds, n, c, CPU, ic.parse_params(params))


def _mode_power(x: torch.Tensor):
    """(|k| in cycles per domain [N, N], mean |FFT|^2 / N^4 per mode [N, N]) over leading dims."""
    n = x.shape[-1]
    f = torch.fft.fft2(x.double())
    p = (f.abs() ** 2).reshape(-1, n, n).mean(0) / n**4
    k = torch.fft.fftfreq(n, 1.0 / n).double()
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    return torch.sqrt(kx**2 + ky**2), p


def _acf_axis(x: torch.Tensor) -> np.ndarray:
    """Normalised circular autocorrelation along the x and y axes, averaged, lags 0..N/2."""
    n = x.shape[-1]
    f = torch.fft.fft2(x.double())
    acf = torch.fft.ifft2(f.abs() ** 2).real.reshape(-1, n, n).mean(0)
    prof = 0.5 * (acf[0, : n // 2 + 1] + acf[: n // 2 + 1, 0])
    return (prof / prof[0]).numpy()


# ---------------------------------------------------------------- gaussian_random_field
@pytest.mark.parametrize("variance", [1.0, 2.5])
def test_grf_variance_and_zero_mean(variance):
    x = _gen("gaussian_random_field", 48, 32, c=2, length_scale=0.1, variance=variance)
    assert abs(float(x.pow(2).mean()) / variance - 1) < 0.06
    # zero mode excluded: every channel of every sample has zero spatial mean
    assert float(x.mean(dim=(-2, -1)).abs().max()) < 1e-5 * math.sqrt(variance)


@pytest.mark.parametrize("ell", [0.05, 0.1])
def test_grf_correlation_length_from_autocorrelation(ell):
    """The ACF crosses exp(-1/2) at r = l (covariance exp(-r^2 / 2 l^2), r in domain units)."""
    n = 64
    prof = _acf_axis(_gen("gaussian_random_field", 48, n, length_scale=ell))
    target = math.exp(-0.5)
    i = int(np.argmax(prof < target))  # first lag below the target
    assert i > 0
    # interpolate log(acf) linearly in r^2 (exact for a Gaussian) between lags i-1 and i
    r0, r1 = (i - 1) ** 2, i**2
    l0, l1 = math.log(prof[i - 1]), math.log(prof[i])
    r_cross = math.sqrt(r0 + (math.log(target) - l0) * (r1 - r0) / (l1 - l0)) / n
    assert abs(r_cross / ell - 1) < 0.15, f"fitted {r_cross:.4f} vs l={ell}"


@pytest.mark.parametrize("ell", [0.1, 0.2])
def test_grf_correlation_length_from_spectrum(ell):
    """log P(k) is linear in |k|^2 with slope -2 pi^2 l^2 (k in cycles per domain)."""
    k, p = _mode_power(_gen("gaussian_random_field", 48, 64, length_scale=ell))
    m = (k > 0) & (2 * math.pi**2 * ell**2 * k**2 < 9.0)
    slope = np.polyfit((k[m] ** 2).numpy(), np.log(p[m].numpy()), 1)[0]
    fitted = math.sqrt(-slope / (2 * math.pi**2))
    assert abs(fitted / ell - 1) < 0.15, f"fitted {fitted:.4f} vs l={ell}"


def test_grf_same_look_at_any_resolution():
    """Lengths are in domain units: the normalised ACF at r = 0.1 matches at 32 and 64 px."""
    a = _acf_axis(_gen("gaussian_random_field", 48, 32, length_scale=0.1))[int(0.1 * 32)]
    b = _acf_axis(_gen("gaussian_random_field", 48, 64, length_scale=0.1))[int(0.1 * 64)]
    assert abs(a - b) < 0.06 and abs(a - math.exp(-0.5)) < 0.08


# ---------------------------------------------------------------- multiscale_grf
@pytest.mark.parametrize("params", [{}, {"scales": [0.05, 0.2], "weights": [3.0, 1.0], "variance": 2.0}])
def test_multiscale_total_variance(params):
    x = _gen("multiscale_grf", 48, 32, c=2, **params)
    assert abs(float(x.pow(2).mean()) / params.get("variance", 1.0) - 1) < 0.06


def test_multiscale_is_mixture_of_spectra():
    """Weights [1, 0] reproduce the single-scale GRF exactly (same seed, same noise)."""
    a = _gen("multiscale_grf", 4, 32, scales=[0.07, 0.2], weights=[1.0, 0.0], variance=1.5)
    b = _gen("gaussian_random_field", 4, 32, length_scale=0.07, variance=1.5)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- heavy_tailed
@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_heavy_tailed_spectral_slope(alpha):
    k, p = _mode_power(_gen("heavy_tailed", 32, 64, alpha=alpha))
    m = (k >= 1) & (k <= 20)
    slope = np.polyfit(np.log(k[m].numpy()), np.log(p[m].numpy()), 1)[0]
    assert abs(slope + alpha) < 0.2, f"slope {slope:.3f} vs -{alpha}"
    # the pointwise transform leaks only a little power below min_wavenumber (k = 0 included)
    assert float(p[k < 1].sum() / p.sum()) < 2e-3
    # ... and the underlying Gaussian field (tail_strength=0) has none there
    k0, p0 = _mode_power(_gen("heavy_tailed", 4, 64, alpha=alpha, tail_strength=0.0))
    assert float(p0[k0 < 1].max()) < 1e-10 * float(p0.sum())


def test_heavy_tailed_variance_and_kurtosis():
    x = _gen("heavy_tailed", 32, 64, c=2, variance=2.0)
    v = float(x.pow(2).mean())
    assert abs(v / 2.0 - 1) < 0.15
    kurt = float(x.double().pow(4).mean()) / v**2
    assert kurt > 4.0, f"kurtosis {kurt:.2f}"
    g = _gen("heavy_tailed", 32, 64, c=2, tail_strength=0.0)
    kg = float(g.double().pow(4).mean() / g.double().pow(2).mean() ** 2)
    assert abs(kg - 3.0) < 0.4


def test_heavy_tailed_min_wavenumber_and_errors():
    k, p = _mode_power(_gen("heavy_tailed", 8, 32, min_wavenumber=4.0, tail_strength=0.0))
    assert float(p[k < 4].max()) < 1e-10 * float(p.sum()) and float(p[k >= 4].min()) > 0
    with pytest.raises(ValueError, match="min_wavenumber"):
        _gen("heavy_tailed", 1, 16, min_wavenumber=100.0)


@pytest.mark.parametrize("tau", [0.3, 0.6, 1.0])
def test_sinh_transform_moments(tau):
    g = torch.randn(400_000, generator=torch_generator(5), dtype=torch.float64)
    y = sinh_tail_transform(g, tau)
    t = tau * tau
    kurt = (math.exp(8 * t) - 4 * math.exp(2 * t) + 3) / (2 * math.expm1(2 * t) ** 2)
    assert abs(float(y.pow(2).mean()) - 1) < 0.03 * (1 + 3 * t)
    emp = float(y.pow(4).mean() / y.pow(2).mean() ** 2)
    assert abs(emp / kurt - 1) < 0.1 + 0.3 * t, (emp, kurt)


# ---------------------------------------------------------------- composite
@pytest.mark.parametrize("pattern", ["waves", "grid", "radial"])
def test_composite_pattern_unit_rms_and_noise_std(pattern):
    clean = _gen("composite", 16, 32, c=2, pattern=pattern, noise_level=0.0)
    rms = clean.pow(2).mean(dim=(-2, -1)).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), rtol=1e-4, atol=1e-4)
    assert torch.equal(clean[:, 0], clean[:, 1])  # pattern shared by channels
    noisy = _gen("composite", 16, 32, c=2, pattern=pattern, noise_level=0.3, noise_length_scale=0.05)
    diff = noisy - clean
    assert abs(float(diff.pow(2).mean().sqrt()) / 0.3 - 1) < 0.08
    assert not torch.allclose(diff[:, 0], diff[:, 1])  # noise independent per channel
    twice = _gen("composite", 16, 32, c=2, pattern=pattern, noise_level=0.3, amplitude=2.0)
    torch.testing.assert_close(twice, 2 * noisy, rtol=1e-5, atol=1e-5)


def test_composite_waves_periodic_single_frequency():
    """A 'waves' pattern is one integer wavevector with |k| in about [min, max] + 0.71."""
    x = _gen("composite", 8, 64, noise_level=0.0, min_frequency=3.0, max_frequency=5.0)
    n = 64
    for s in range(8):
        p = torch.fft.fft2(x[s, 0].double()).abs() ** 2
        top = torch.topk(p.flatten(), 2).indices
        frac = float(p.flatten()[top].sum() / p.sum())
        assert frac > 0.999  # exactly periodic: no leakage
        ky, kx = (int(v) for v in np.unravel_index(int(top[0]), (n, n)))
        ky, kx = (ky + n // 2) % n - n // 2, (kx + n // 2) % n - n // 2
        assert 3.0 - 0.72 <= math.hypot(kx, ky) <= 5.0 + 0.72


# ---------------------------------------------------------------- localized
def test_localized_single_blob_peak_and_width():
    n, sigma = 64, 0.05
    ic = IC_REGISTRY["localized"]
    params = ic.parse_params({"num_blobs": 1, "min_width": sigma, "max_width": sigma})
    for seed in (3, 99, 12345):
        x = ic.fn([seed], n, 2, CPU, params)[0].double()
        centre = torch.rand((1, 2), generator=torch_generator(seed))[0]  # documented first draw
        a = x[0].abs()
        i, j = np.unravel_index(int(a.argmax()), a.shape)
        assert torch.equal(a.argmax(), x[1].abs().argmax())  # channels share the blob
        # sub-pixel centre and width from the log-parabola through 3 pixels along each axis
        for axis, (idx, c0) in enumerate(((j, centre[0]), (i, centre[1]))):
            line = a[i, :] if axis == 0 else a[:, j]
            lm, l0, lp = (math.log(float(line[(idx + d) % n])) for d in (-1, 0, 1))
            curv = lm - 2 * l0 + lp  # = -1 / (sigma N)^2
            fit_sigma = math.sqrt(-1.0 / curv) / n
            offset = 0.5 * (lm - lp) / curv  # pixels
            fit_c = ((idx + offset) / n) % 1.0
            assert abs(fit_sigma / sigma - 1) < 0.02
            d = abs(fit_c - float(c0))
            assert min(d, 1 - d) < 0.05 / n
        torch.testing.assert_close(x.pow(2).mean(), torch.tensor(1.0, dtype=torch.float64), rtol=1e-5, atol=0)


def test_localized_amplitude_and_width_validation():
    x = _gen("localized", 4, 32, c=3, amplitude=2.5)
    rms = x.pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.full_like(rms, 2.5), rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="min_width"):
        IC_REGISTRY["localized"].parse_params({"min_width": 0.2, "max_width": 0.1})


# ---------------------------------------------------------------- structured
@pytest.mark.parametrize("kind", ["circle", "stripe", "blob"])
def test_structured_single_kind(kind):
    x = _gen("structured", 6, 64, c=2, num_structures=1, structure_types=[kind], amplitude=1.5)
    rms = x.pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.full_like(rms, 1.5), rtol=1e-5, atol=0)
    for s in range(6):
        active = [c for c in range(2) if float(x[s, c].abs().max()) > 0]
        assert len(active) == 1  # one structure, one channel
        f = x[s, active[0]].double()
        nz = float((f.abs() > 1e-6 * f.abs().max()).double().mean())
        if kind == "circle":
            # filled disk: constant inside, area pi R^2 with R in [0.05, 0.2]
            assert math.pi * 0.045**2 <= nz <= math.pi * 0.21**2
            inside = float((f.abs() >= f.abs().max() * (1 - 1e-6)).double().mean())
            assert math.pi * 0.045**2 <= inside <= nz
        elif kind == "stripe":
            assert abs(float(f.mean())) < 1e-6 * float(f.abs().max())  # periodic, zero mean
        else:
            # one sign everywhere; log-parabola width at the peak in [0.03, 0.15]
            assert bool((f * f.flatten()[f.abs().argmax()] >= 0).all())
            a = f.abs()
            i, j = np.unravel_index(int(a.argmax()), a.shape)
            lm, l0, lp = (math.log(float(a[i, (j + d) % 64])) for d in (-1, 0, 1))
            assert 0.029 <= math.sqrt(-1.0 / (lm - 2 * l0 + lp)) / 64 <= 0.151


def test_structured_validation():
    ic = IC_REGISTRY["structured"]
    with pytest.raises(ValueError, match="structure_types"):
        ic.parse_params({"structure_types": ["square"]})
    with pytest.raises(ValueError, match="num_structures"):
        ic.parse_params({"num_structures": 0})


# ---------------------------------------------------------------- mixed
def test_mixed_choice_fraction_and_components():
    seeds = [derive_seed(1, Stream.IC, i) for i in range(400)]
    frac = float(np.mean(mixed_choice(seeds, 0.3)))
    assert abs(frac - 0.3) < 0.07
    assert all(mixed_choice(seeds[:20], 1.0)) and not any(mixed_choice(seeds[:20], 0.0))
    ic = IC_REGISTRY["mixed"]
    s = seeds[:8]
    x = ic.fn(s, 32, 2, CPU, ic.parse_params({"length_scale": 0.15}))
    choice = mixed_choice(s, 0.5)
    assert 0 < sum(choice) < 8
    grf, st = IC_REGISTRY["gaussian_random_field"], IC_REGISTRY["structured"]
    for b, is_grf in enumerate(choice):
        sub = [step_seed(s[b], 0)]
        ref = (
            grf.fn(sub, 32, 2, CPU, grf.parse_params({"length_scale": 0.15}))
            if is_grf
            else st.fn(sub, 32, 2, CPU, st.parse_params({}))
        )
        torch.testing.assert_close(x[b], ref[0], rtol=1e-5, atol=1e-5)
