"""Spectral family: analytic values (plane waves, white noise, square waves, power laws), identities
(Parseval, fractions summing to 1), a numpy re-implementation, catalogue behaviour, robustness."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.special import digamma

from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.features.families._spectral_util import geometry
from spinlock_core.features.ops import power_spectrum

FAM = FAMILY_REGISTRY["spectral"]
CFG = FAM.config_model()
NAMES = [s.name for s in FAM.catalogue(CFG)]
EULER_GAMMA = 0.5772156649015329


def run(fields: torch.Tensor, cfg=CFG, names=None) -> dict[str, np.ndarray]:
    """fields [B, H, W] (one channel each) -> {name: [B] numpy}."""
    out = FAM.compute(fields.unsqueeze(1), cfg, names or [s.name for s in FAM.catalogue(cfg)])
    return {k: v[:, 0].double().numpy() for k, v in out.items()}


def grid(h, w):
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) / h, torch.arange(w, dtype=torch.float64) / w, indexing="ij"
    )
    return y, x


def plane(h, w, k1, k2, amp=1.0, phase=0.3):
    y, x = grid(h, w)
    return (amp * torch.cos(2 * math.pi * (k1 * x + k2 * y) + phase)).float()


def grf(n, h, w, ell, seed):
    """Periodic Gaussian random fields with Gaussian correlation length ell (domain units)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, h, w, generator=g)
    ky = torch.fft.fftfreq(h, 1.0 / h).view(h, 1)
    kx = torch.fft.fftfreq(w, 1.0 / w).view(1, w)
    filt = torch.exp(-2 * math.pi**2 * ell**2 * (kx**2 + ky**2))
    return torch.fft.ifft2(torch.fft.fft2(noise) * filt).real.float()


# ----------------------------------------------------------------------------- catalogue
def test_catalogue_default_and_params():
    cat = FAM.catalogue(CFG)
    names = [s.name for s in cat]
    assert len(names) == len(set(names))
    default = [s for s in cat if s.default]
    assert len(default) == 32 and len(cat) == 34
    assert all(s.granularity == "timestep_channel" and s.family == "spectral" for s in cat)
    assert all(s.description and s.convention and s.flag for s in cat)
    assert sum(re.match(r"spectral_band\d+_", n) is not None for n in names) == 15
    cfg3 = FAM.config_model(num_bands=3)
    assert sum(re.match(r"spectral_band\d+_", s.name) is not None for s in FAM.catalogue(cfg3)) == 9
    sel = FAM.selected(FAM.config_model(include=("spectral_orientation_angle",), exclude=("spectral_thd",)))
    sel_names = [s.name for s in sel]
    assert "spectral_orientation_angle" in sel_names and "spectral_energy_peak_k" not in sel_names
    assert "spectral_thd" not in sel_names and len(sel) == 32
    assert FAM.unknown_names(FAM.config_model(include=("nope",))) == ["nope"]
    assert FAM.selected(FAM.config_model(enabled=False)) == []


@pytest.mark.parametrize(
    "bad",
    [
        dict(num_bands=0),
        dict(num_bands=11),
        dict(low_cutoff=0.6, high_cutoff=0.5),
        dict(rolloff_fraction=1.0),
        dict(bogus=1),
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValidationError):
        FAM.config_model(**bad)


def test_band_edges_log_spaced():
    geo = geometry(64, 64, 5, "cpu")
    assert np.allclose(geo.band_edges, [1, 2, 4, 8, 16, 32])
    kmag = geo.kmag.numpy()
    band = geo.band.numpy()
    for i in range(5):
        sel = kmag[band == i]
        assert sel.min() >= geo.band_edges[i] - 1e-6 and sel.max() <= geo.band_edges[i + 1] + 1e-6
    assert (band[(kmag > 32) | (kmag == 0)] == 5).all()  # corners and DC: no band


# ----------------------------------------------------------------------------- identities
def test_parseval_and_fractions_sum():
    u = torch.cat([grf(3, 48, 64, 0.05, 1), torch.randn(2, 48, 64)])
    P = power_spectrum(u)
    assert torch.allclose(P.sum((-2, -1)), u.square().sum((-2, -1)), rtol=1e-5)
    r = run(u)
    tot = r["spectral_low_ratio"] + r["spectral_mid_ratio"] + r["spectral_high_ratio"]
    assert np.allclose(tot, 1.0, atol=1e-5)
    # the bands cover every non-DC mode inside the Nyquist disc
    geo = geometry(48, 64, 5, "cpu")
    Pn = P.flatten(1) * geo.nondc
    inside = (Pn * (geo.kmag <= geo.k_nyq)).sum(1) / Pn.sum(1)
    bands = sum(r[f"spectral_band{i}_power_fraction"] for i in range(5))
    assert np.allclose(bands, inside.numpy(), atol=1e-5)


# ----------------------------------------------------------------------------- plane waves
@pytest.mark.parametrize("k1,k2", [(3, -4), (0, 5), (7, 0), (-2, 1), (5, 5), (12, 9), (1, 0)])
def test_plane_wave(k1, k2):
    h = w = 64
    amp = 2.5
    r = run(plane(h, w, k1, k2, amp).unsqueeze(0))
    k = math.hypot(k1, k2)
    assert r["spectral_dominant_k"][0] == pytest.approx(k, abs=1e-5)
    assert r["spectral_dominant_kx"][0] == abs(k1) and r["spectral_dominant_ky"][0] == abs(k2)
    assert r["spectral_dominant_power_fraction"][0] == pytest.approx(1.0, abs=1e-5)
    assert r["spectral_centroid"][0] == pytest.approx(k, abs=1e-4)
    assert r["spectral_bandwidth"][0] < 1e-2
    assert r["spectral_rolloff"][0] == pytest.approx(k, abs=1e-5)
    geo = geometry(h, w, 5, "cpu")
    edges = geo.band_edges
    for i in range(5):
        inside = edges[i] <= k < edges[i + 1] or (i == 4 and k == edges[5])
        assert r[f"spectral_band{i}_power_fraction"][0] == pytest.approx(1.0 if inside else 0.0, abs=1e-5)
        if inside:  # ortho fft: each of +-k carries amp^2 H W / 4
            assert r[f"spectral_band{i}_max_power"][0] == pytest.approx(amp**2 * h * w / 4, rel=1e-4)
            assert r[f"spectral_band{i}_mean_power"][0] == pytest.approx(
                amp**2 * h * w / 2 / geo.band_count[i], rel=1e-4
            )
    aniso = (k1**2 - k2**2) / (k1**2 + k2**2)
    assert r["spectral_anisotropy"][0] == pytest.approx(aniso, abs=1e-5)
    assert np.sign(r["spectral_anisotropy"][0]) == np.sign(aniso) or aniso == 0
    assert r["spectral_orientation_coherence"][0] == pytest.approx(1.0, abs=1e-5)
    assert r["spectral_thd"][0] < 1e-6 and r["spectral_fundamental_purity"][0] == pytest.approx(1.0, abs=1e-5)
    assert r["spectral_entropy"][0] == pytest.approx(math.log(2) / math.log(h * w - 1), abs=1e-4)
    assert r["spectral_flatness"][0] < 1e-6
    assert r["spectral_energy_peak_k"][0] == round(k)
    assert r["spectral_orientation_angle"][0] == pytest.approx(
        math.degrees(math.atan(k2 / k1)) if k1 else 90.0, abs=1e-3
    )
    lo, hi = 0.25 * 32, 0.5 * 32
    region = "low" if k < lo else ("mid" if k < hi else "high")
    assert r[f"spectral_{region}_ratio"][0] == pytest.approx(1.0, abs=1e-5)


def test_non_square_grid_plane_wave():
    r = run(plane(32, 64, 6, -3).unsqueeze(0))
    assert (r["spectral_dominant_kx"][0], r["spectral_dominant_ky"][0]) == (6, 3)
    assert r["spectral_dominant_k"][0] == pytest.approx(math.hypot(6, 3), abs=1e-5)


def test_two_waves_anisotropy_rolloff():
    a, b = 1.0, 0.5
    u = (plane(64, 64, 5, 0, a) + plane(64, 64, 0, 3, b)).unsqueeze(0)
    r = run(u)
    jxx, jyy = a**2 * 25, b**2 * 9
    assert r["spectral_anisotropy"][0] == pytest.approx((jxx - jyy) / (jxx + jyy), abs=1e-5)
    assert r["spectral_orientation_coherence"][0] == pytest.approx(abs(jxx - jyy) / (jxx + jyy), abs=1e-5)
    # power shares: 3 -> 0.2, 5 -> 0.8; roll-off 0.85 -> 5, roll-off 0.15 -> 3
    assert r["spectral_rolloff"][0] == 5 and r["spectral_low_ratio"][0] == pytest.approx(1.0, abs=1e-6)
    r2 = run(u, FAM.config_model(rolloff_fraction=0.15))
    assert r2["spectral_rolloff"][0] == 3
    assert r["spectral_centroid"][0] == pytest.approx(0.2 * 3 + 0.8 * 5, abs=1e-4)
    assert r["spectral_bandwidth"][0] == pytest.approx(math.sqrt(0.2 * 0.8) * 2, abs=1e-4)
    assert r["spectral_dominant_k"][0] == 5 and r["spectral_dominant_power_fraction"][0] == pytest.approx(0.8, abs=1e-5)


# ----------------------------------------------------------------------------- white noise
def test_white_noise():
    n, h = 32, 64
    u = torch.randn(n, h, h, generator=torch.Generator().manual_seed(0))
    r = run(u)
    geo = geometry(h, h, 5, "cpu")
    m = h * h - 1
    # entropy of i.i.d. exponential periodogram ordinates: ln M - (1 - gamma)
    ent_expected = 1 - (1 - EULER_GAMMA) / math.log(m)
    assert abs(r["spectral_entropy"].mean() - ent_expected) < 0.005
    # flatness of shell means: shell n averages count_n / 2 independent exponentials
    counts = geo.shell_count[1 : geo.n_shells + 1].double().numpy()
    dof = counts / 2
    flat_expected = math.exp(np.mean(digamma(dof) - np.log(dof)))
    assert flat_expected > 0.97
    assert abs(r["spectral_flatness"].mean() - flat_expected) < 0.01
    # band fractions ~ mode counts; mean power per mode ~ variance (1)
    for i in range(5):
        c = geo.band_count[i]
        tol = 4 * math.sqrt(2 / c) / math.sqrt(n) + 0.005
        assert r[f"spectral_band{i}_power_fraction"].mean() == pytest.approx(c / m, rel=tol)
        assert r[f"spectral_band{i}_mean_power"].mean() == pytest.approx(1.0, rel=tol)
    kmag = geo.kmag.numpy()
    for reg, sel in (("low", kmag < 8), ("mid", (kmag >= 8) & (kmag < 16)), ("high", kmag >= 16)):
        share = (sel & (kmag > 0)).sum() / m
        assert r[f"spectral_{reg}_ratio"].mean() == pytest.approx(share, rel=0.05)
    assert abs(r["spectral_slope"].mean()) < 0.05
    assert abs(r["spectral_anisotropy"].mean()) < 0.02 and r["spectral_orientation_coherence"].mean() < 0.05


# ----------------------------------------------------------------------------- harmonics
@pytest.mark.parametrize("w,k0,axis", [(64, 2, "x"), (128, 2, "x"), (64, 4, "y"), (128, 1, "y")])
def test_square_wave_thd(w, k0, axis):
    period = w // k0
    s = torch.sign(torch.sin(2 * math.pi * k0 * (torch.arange(w, dtype=torch.float64) + 0.5) / w)).float()
    u = s.view(1, w).expand(w, w) if axis == "x" else s.view(w, 1).expand(w, w)
    r = run(u.unsqueeze(0).contiguous())
    thd = r["spectral_thd"][0]
    # exact for the sampled square wave (all aliases fold onto odd harmonics below Nyquist)
    exact = period**2 * math.sin(math.pi / period) ** 2 / 8 - 1
    assert thd == pytest.approx(exact, abs=2e-4)
    # analytic partial sum of 1/n^2 over odd n >= 3 with n k0 <= Nyquist; the sampled wave exceeds it
    # only by folded (aliased) power, bounded by the continuous tail pi^2/8 - 1 - partial
    nmax = (w // 2) // k0
    partial = sum(1 / n**2 for n in range(3, nmax + 1, 2))
    tail = math.pi**2 / 8 - 1 - partial
    assert partial - 1e-4 <= thd <= partial + tail + 1e-4
    assert r["spectral_fundamental_purity"][0] == pytest.approx(1 / (1 + exact), abs=2e-4)
    assert r["spectral_dominant_k"][0] == k0


def test_harmonic_half_width_param():
    # a mode at |k| = 6.08 (6, 1) next to the 2nd harmonic 6 of k0 = 3 counts only with half-width >= 0.08
    u = (plane(64, 64, 3, 0, 1.0) + plane(64, 64, 6, 1, 0.5)).unsqueeze(0)
    narrow = run(u, FAM.config_model(harmonic_half_width=0.05))["spectral_thd"][0]
    wide = run(u, FAM.config_model(harmonic_half_width=0.5))["spectral_thd"][0]
    assert narrow < 1e-6 and wide == pytest.approx(0.25, abs=1e-5)


# ----------------------------------------------------------------------------- power law, numpy reference
def test_power_law_slope():
    h = 128
    g = torch.Generator().manual_seed(3)
    spec = torch.fft.fft2(torch.randn(h, h, generator=g, dtype=torch.float64))
    ky = torch.fft.fftfreq(h, 1.0 / h, dtype=torch.float64).view(h, 1)
    kx = torch.fft.fftfreq(h, 1.0 / h, dtype=torch.float64).view(1, h)
    kk = torch.sqrt(kx**2 + ky**2)
    for beta in (1.0, 2.5, 4.0):
        amp = torch.where(kk > 0, kk.clamp_min(1e-9) ** (-beta / 2), torch.zeros_like(kk))
        u = torch.fft.ifft2(spec / spec.abs().clamp_min(1e-30) * amp).real.float()
        slope = run(u.unsqueeze(0))["spectral_slope"][0]
        # exact expectation: per-mode power |k|^-beta averaged per shell, fitted in log-log
        k = kk.numpy().ravel()
        n = np.round(k)
        ns = np.arange(1, h // 2 + 1)
        ebar = np.array([np.mean(k[(n == s)] ** (-beta)) for s in ns])
        ref = np.polyfit(np.log(ns), np.log(ebar), 1)[0]
        assert slope == pytest.approx(ref, abs=2e-3)
        assert slope == pytest.approx(-beta, abs=0.1)


def numpy_reference(u: np.ndarray, rolloff=0.85):
    """Independent float64 implementation of a few features of one field."""
    h, w = u.shape
    P = np.abs(np.fft.fft2(u - u.mean(), norm="ortho")) ** 2
    ky = np.fft.fftfreq(h, 1 / h)[:, None] * np.ones((1, w))
    kx = np.fft.fftfreq(w, 1 / w)[None, :] * np.ones((h, 1))
    k = np.hypot(kx, ky).ravel()
    P = P.ravel()
    nd = k > 0
    p = P[nd] / P[nd].sum()
    kn = k[nd]
    cen = (p * kn).sum()
    order = np.argsort(kn, kind="stable")
    cs = np.cumsum(p[order])
    ro = kn[order][min(np.searchsorted(cs, rolloff, side="left"), len(cs) - 1)]
    ent = -(p[p > 0] * np.log(p[p > 0])).sum() / np.log(h * w - 1)
    shells = np.round(k)
    ns = np.arange(1, min(h, w) // 2 + 1)
    ebar = np.array([P[shells == s].mean() for s in ns])
    fl = ebar + 1e-10 * ebar.mean()
    flat = np.exp(np.log(fl).mean()) / fl.mean()
    jxx, jyy = (P * kx.ravel() ** 2).sum(), (P * ky.ravel() ** 2).sum()
    return dict(
        spectral_centroid=cen,
        spectral_bandwidth=np.sqrt((p * (kn - cen) ** 2).sum()),
        spectral_rolloff=ro,
        spectral_entropy=ent,
        spectral_flatness=flat,
        spectral_anisotropy=(jxx - jyy) / (jxx + jyy),
        spectral_dominant_k=kn[np.argmax(P[nd])],
        spectral_slope=np.polyfit(np.log(ns), np.log(fl), 1)[0],
    )


def test_matches_numpy_reference():
    u = torch.cat([grf(3, 48, 64, ell, 7 + i) for i, ell in enumerate((0.02, 0.05, 0.1))])
    u = u + 0.3 * torch.randn(u.shape, generator=torch.Generator().manual_seed(9)) * torch.tensor(
        [0.0, 0.1, 1.0]
    ).repeat_interleave(3).view(-1, 1, 1)
    r = run(u)
    for b in range(u.shape[0]):
        ref = numpy_reference(u[b].double().numpy())
        for key, val in ref.items():
            assert r[key][b] == pytest.approx(val, rel=1e-4, abs=1e-4), key


# ----------------------------------------------------------------------------- robustness
def diverse_fields():
    fs = [grf(4, 64, 64, ell, 11 + i) for i, ell in enumerate((0.01, 0.03, 0.08, 0.2))]
    g = torch.Generator().manual_seed(5)
    fs.append(torch.randn(4, 64, 64, generator=g) * torch.tensor([0.1, 1, 10, 3]).view(-1, 1, 1))
    fs.append(
        torch.stack(
            [
                plane(64, 64, a, b, 1.5) + 0.2 * plane(64, 64, 2 * a, 2 * b)
                for a, b in ((3, 1), (1, 7), (10, -4), (2, 2))
            ]
        )
    )
    anis = grf(4, 64, 128, 0.05, 21)[:, :, ::2] + 5.0  # stretched (anisotropic) GRF with a mean
    fs.append(anis)
    return torch.cat(fs)


def test_non_constant_and_finite_on_diverse_inputs():
    u = diverse_fields()
    names = [s.name for s in FAM.catalogue(CFG)]
    out = FAM.compute(torch.stack([u, u.flip(-1) * 0.5], 1), CFG, names)  # C = 2
    for k in names:
        v = out[k]
        assert v.shape == (u.shape[0], 2) and v.dtype == torch.float32
        assert torch.isfinite(v).all(), k
        assert v.std() > 1e-6 * (1 + v.abs().mean()), f"{k} constant"


def test_batch_independence_and_dtype():
    u = diverse_fields()[::3]
    x = torch.stack([u, u.roll(5, -1)], 1)
    full = FAM.compute(x, CFG, NAMES)
    for b in range(x.shape[0]):
        one = FAM.compute(x[b : b + 1], CFG, NAMES)
        for k in NAMES:
            assert torch.allclose(one[k][0], full[k][b], rtol=1e-5, atol=1e-6), k
    d = FAM.compute(x.double(), CFG, NAMES)
    for k in NAMES:
        assert d[k].dtype == torch.float32 and torch.allclose(d[k], full[k], rtol=1e-4, atol=1e-5), k


def test_constant_and_nonfinite_fields():
    x = torch.stack([torch.full((32, 32), 3.7), torch.zeros(32, 32), plane(32, 32, 2, 1), plane(32, 32, 2, 1)])
    x[3, 4, 4] = float("nan")
    out = FAM.compute(x.view(2, 2, 32, 32), CFG, NAMES)
    for k in NAMES:
        v = out[k].flatten()
        assert (v[:2] == 0).all(), k  # constant fields: no structure
        assert torch.isfinite(v[2]) and torch.isnan(v[3]), k


def test_only_requested_names_needed():
    out = FAM.compute(torch.randn(2, 3, 16, 16), CFG, ["spectral_centroid"])
    assert out["spectral_centroid"].shape == (2, 3)


@pytest.mark.parametrize("S", [1, 3, 10])
def test_band_count_parameter(S):
    cfg = FAM.config_model(num_bands=S)
    names = [s.name for s in FAM.catalogue(cfg)]
    out = FAM.compute(torch.randn(3, 1, 32, 32), cfg, names)
    fr = sum(out[f"spectral_band{i}_power_fraction"] for i in range(S))
    assert all(torch.isfinite(out[k]).all() for k in names)
    assert (fr <= 1 + 1e-5).all() and (fr > 0.5).all()


@pytest.mark.parametrize("shape", [(1, 1), (1, 8), (2, 2), (3, 5), (7, 9)])
def test_tiny_and_odd_grids_finite(shape):
    cfg = FAM.config_model(num_bands=10)
    names = [s.name for s in FAM.catalogue(cfg)]
    out = FAM.compute(torch.randn(2, 3, *shape), cfg, names)
    assert all(out[k].shape == (2, 3) and torch.isfinite(out[k]).all() for k in names)


def test_entropy_matches_periodogram_entropy_on_1d_profile():
    """A field varying along x only: our two-sided entropy = one-sided periodogram entropy + ln 2.

    The reference is antropy's ``spectral_entropy(x, sf, method="fft", normalize=False)`` definition
    (``scipy.signal.periodogram`` one-sided, detrend constant, entropy of the normalised PSD), in
    nats; antropy itself is not imported (its numba start-up costs ~30 s). The one-sided PSD merges
    each +-k pair (Nyquist bin not doubled), so removing the Nyquist component makes the relation exact.
    """
    from scipy.signal import periodogram

    rng = np.random.default_rng(0)
    w, h = 64, 32
    for _ in range(3):
        X = np.fft.fft(rng.standard_normal(w) * rng.uniform(0.1, 3))
        X[w // 2] = 0
        x = np.fft.ifft(X * np.exp(-np.abs(np.fft.fftfreq(w, 1 / w)) / rng.uniform(2, 20))).real
        u = torch.tensor(np.broadcast_to(x, (h, w)).copy(), dtype=torch.float32)
        ours = run(u.unsqueeze(0))["spectral_entropy"][0] * math.log(h * w - 1)
        _, psd = periodogram(x, 1.0)
        q = psd[psd > 0] / psd.sum()
        ref = -(q * np.log(q)).sum() + math.log(2)
        assert ours == pytest.approx(ref, abs=1e-4)
