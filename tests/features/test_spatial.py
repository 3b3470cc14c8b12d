"""The ``spatial`` family: library cross-checks, analytic fields, identities, robustness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from pydantic import ValidationError
from scipy import ndimage
from scipy.optimize import brentq
from scipy.special import j0

from spinlock_core.features.families import FAMILY_REGISTRY

FAM = FAMILY_REGISTRY["spatial"]
CFG = FAM.config_model()
ALL = [s.name for s in FAM.catalogue(CFG)]


def run(x: torch.Tensor, cfg=CFG, names=ALL) -> dict[str, torch.Tensor]:
    return FAM.compute(x, cfg, names)


def grf(n: int, h: int, w: int, lx: float, ly: float, seed: int = 0) -> torch.Tensor:
    """Gaussian random fields with covariance ~ exp(-(dx/lx)^2/2 - (dy/ly)^2/2) (domain units), [n, H, W]."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, h, w, generator=g, dtype=torch.float64)
    ky = torch.fft.fftfreq(h, 1.0 / h, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(w, 1.0 / w, dtype=torch.float64)[None, :]
    filt = torch.exp(-(math.pi**2) * (lx**2 * kx**2 + ly**2 * ky**2))
    return torch.fft.ifft2(torch.fft.fft2(z) * filt).real.float()


def wave(h: int, w: int, kx: int, ky: int, phase: float = 0.0) -> torch.Tensor:
    """cos(2 pi (kx x + ky y) + phase) on the H x W periodic grid (float64 -> float32)."""
    y = torch.arange(h, dtype=torch.float64)[:, None] / h
    x = torch.arange(w, dtype=torch.float64)[None, :] / w
    return torch.cos(2 * math.pi * (kx * x + ky * y) + phase).float()


def diverse() -> torch.Tensor:
    """A varied set of 64 x 64 fields [N, 1, H, W]: GRFs, anisotropic GRFs, waves, noise, transforms."""
    g = torch.Generator().manual_seed(7)
    f = [grf(1, 64, 64, ls, ls, seed=i)[0] * (1 + i) + i for i, ls in enumerate((0.01, 0.03, 0.06, 0.12))]
    f += [grf(1, 64, 64, 0.1, 0.02, seed=11)[0], grf(1, 64, 64, 0.02, 0.1, seed=12)[0]]
    f += [wave(64, 64, 1, 0), wave(64, 64, 3, 2, 0.4) * 2 - 1, wave(64, 64, 0, 5) + 0.3 * wave(64, 64, 2, 0)]
    f += [torch.randn(64, 64, generator=g), torch.rand(64, 64, generator=g) * 5]
    base = grf(3, 64, 64, 0.05, 0.05, seed=13)
    f += [torch.exp(base[0] / base[0].std()), torch.tanh(4 * base[1] / base[1].std()), torch.sign(base[2] - 0.3)]
    f += [torch.outer(torch.randn(64, generator=g), torch.randn(64, generator=g))]
    f += [torch.linspace(-1, 2, 4096).reshape(64, 64)]
    return torch.stack(f)[:, None]


# ---------------------------------------------------------------- catalogue and config
def test_catalogue_contents():
    cat = FAM.catalogue(CFG)
    names = [s.name for s in cat]
    assert len(names) == len(set(names))
    default = [s for s in cat if s.default]
    assert len(default) == 38 >= 34
    assert [s.name for s in cat if not s.default] == ["histogram_occupied_bins"]
    for s in cat:
        assert s.family == "spatial" and s.granularity == "timestep_channel"
        assert s.description and s.units and s.convention, s.name
        assert s.flag == ("spatial.enabled" if s.default else f"spatial.include: {s.name}")
    for want in ("percentile_5", "percentile_95", "histogram_entropy", "effective_rank", "correlation_length"):
        assert want in names
    for degenerate in ("laplacian_mean", "gradient_x_mean", "gradient_y_mean"):
        assert degenerate not in names


def test_config_changes_catalogue():
    cfg = FAM.config_model(percentiles=(0, 12.5, 100), include=("histogram_occupied_bins",), exclude=("spatial_mad",))
    names = [s.name for s in FAM.selected(cfg)]
    assert [n for n in names if n.startswith("percentile_")] == ["percentile_0", "percentile_12p5", "percentile_100"]
    assert "histogram_occupied_bins" in names and "spatial_mad" not in names
    assert "histogram_occupied_bins" not in [s.name for s in FAM.selected(CFG)]
    assert len(FAM.selected(FAM.config_model(percentiles=()))) == 33
    assert FAM.selected(FAM.config_model(enabled=False)) == []
    assert FAM.unknown_names(FAM.config_model(include=("nope",))) == ["nope"]
    for bad in (
        {"histogram_bins": 3},
        {"histogram_bins": 257},
        {"percentiles": (101,)},
        {"percentiles": (5, 5.0)},
        {"gradient_saturation_threshold": 1.0},
        {"amplitude_saturation_band": 0.0},
        {"bogus": 1},
    ):
        with pytest.raises(ValidationError):
            FAM.config_model(**bad)


# ---------------------------------------------------------------- library cross-checks
def test_moments_and_order_statistics_match_scipy_numpy():
    g = torch.Generator().manual_seed(0)
    x = torch.stack(
        [
            torch.randn(48, 40, generator=g) * 3 + 1,
            torch.empty(48, 40).exponential_(generator=g) - 2,
            torch.rand(48, 40, generator=g) * 10,
            torch.randn(48, 40, generator=g).pow(3),
        ]
    )[:, None]
    ps = (0.0, 5.0, 12.5, 25.0, 50.0, 75.0, 95.0, 100.0)
    cfg = FAM.config_model(percentiles=ps)
    out = FAM.compute(x, cfg, [s.name for s in FAM.catalogue(cfg)])
    for i in range(x.shape[0]):
        a = x[i, 0].double().numpy().ravel()
        sc = np.abs(a).max()
        ref = {
            "spatial_mean": a.mean(),
            "spatial_variance": a.var(),
            "spatial_std": a.std(),
            "spatial_min": a.min(),
            "spatial_max": a.max(),
            "spatial_range": np.ptp(a),
            "spatial_iqr": st.iqr(a),
            "spatial_mad": st.median_abs_deviation(a, scale=1.0),
        }
        for name, val in ref.items():
            tol = 1e-5 * (sc**2 if name == "spatial_variance" else sc)
            assert abs(out[name][i, 0].item() - val) <= tol, (name, i)
        assert abs(out["spatial_skewness"][i, 0].item() - st.skew(a)) < 1e-4
        assert abs(out["spatial_kurtosis"][i, 0].item() - st.kurtosis(a)) < 1e-4
        pv = np.percentile(a, ps)
        for p, val in zip(("0", "5", "12p5", "25", "50", "75", "95", "100"), pv):
            assert abs(out[f"percentile_{p}"][i, 0].item() - val) <= 1e-6 * sc
    assert out["spatial_kurtosis"].std() > 1.0  # kurtosis varies (uniform -1.2 ... cubed normal >> 0)


def test_svd_and_histogram_match_numpy():
    x = torch.stack(
        [grf(1, 32, 48, 0.05, 0.05, seed=3)[0], torch.randn(32, 48, generator=torch.Generator().manual_seed(1))]
    )
    out = run(x[:, None], names=ALL)
    for i in range(2):
        a = x[i].double().numpy()
        s = np.linalg.svd(a - a.mean(), compute_uv=False)
        p = s / s.sum()
        assert out["effective_rank"][i, 0].item() == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-4)
        assert out["svd_participation_ratio"][i, 0].item() == pytest.approx((s**2).sum() ** 2 / (s**4).sum(), rel=1e-4)
        assert out["svd_top_energy_fraction"][i, 0].item() == pytest.approx(s[0] ** 2 / (s**2).sum(), rel=1e-4)
        counts, _ = np.histogram(a, bins=16, range=(a.min(), a.max()))
        q = counts[counts > 0] / counts.sum()
        ent = -(q * np.log(q)).sum()
        assert out["histogram_entropy"][i, 0].item() == pytest.approx(ent, abs=2e-3)
        assert out["histogram_effective_bins"][i, 0].item() == pytest.approx(np.exp(ent), rel=3e-3)
        assert out["histogram_peak_fraction"][i, 0].item() == pytest.approx(counts.max() / counts.sum(), abs=2e-3)
        assert out["histogram_occupied_bins"][i, 0].item() == (counts / counts.sum() > 0.01).sum()


def test_laplacian_skewness_matches_scipy_and_detects_peaks():
    y = torch.arange(64.0)[:, None]
    xx = torch.arange(64.0)[None, :]
    bumps = torch.exp(-((xx - 20) ** 2 + (y - 30) ** 2) / 18) + torch.exp(-((xx - 45) ** 2 + (y - 10) ** 2) / 32)
    g = grf(1, 64, 64, 0.05, 0.05, seed=4)[0]
    x = torch.stack([bumps, -bumps, torch.exp(g / g.std()), wave(64, 64, 2, 1)])
    out = run(x[:, None], names=["laplacian_skewness", "laplacian_std"])
    for i in range(4):
        lap = ndimage.laplace(x[i].double().numpy(), mode="wrap")
        assert out["laplacian_skewness"][i, 0].item() == pytest.approx(st.skew(lap.ravel()), abs=1e-3)
        assert out["laplacian_std"][i, 0].item() == pytest.approx(lap.std(), rel=1e-4)
    sk = out["laplacian_skewness"][:, 0]
    assert sk[0] < -1 and sk[1] > 1 and sk[2] < -1 and abs(sk[3]) < 1e-3


# ---------------------------------------------------------------- analytic fields
@pytest.mark.parametrize("k", [1, 3, 8])
def test_plane_wave_along_x(k):
    h, w = 48, 64
    u = wave(h, w, k, 0)
    out = run(u[None, None])
    v = {n: t[0, 0].item() for n, t in out.items()}
    th = 2 * math.pi * k / w
    ssin = np.abs(np.sin(th * np.arange(w)))  # |gx| = sin(th) |sin(th j)| exactly
    assert abs(v["spatial_mean"]) < 1e-6
    assert v["spatial_variance"] == pytest.approx(0.5, abs=1e-6)
    assert v["spatial_skewness"] == pytest.approx(0.0, abs=1e-4)
    assert v["spatial_kurtosis"] == pytest.approx(-1.5, abs=1e-4)  # cos: m4 / m2^2 = (3/8) / (1/4)
    assert v["gradient_magnitude_mean"] == pytest.approx(math.sin(th) * ssin.mean(), rel=1e-5)
    assert v["gradient_magnitude_std"] == pytest.approx(math.sin(th) * ssin.std(), rel=1e-4)
    assert v["gradient_magnitude_max"] == pytest.approx(math.sin(th) * ssin.max(), rel=1e-5)
    assert v["gradient_abs_x_mean"] == pytest.approx(v["gradient_magnitude_mean"], rel=1e-6)
    assert v["gradient_abs_y_mean"] == 0.0
    assert v["gradient_anisotropy"] == pytest.approx(1.0, abs=1e-6)
    assert v["gradient_coherence"] == pytest.approx(1.0, abs=1e-6)
    sat = (ssin >= 0.5 * ssin.max() - 1e-9).mean()
    assert v["gradient_saturation_fraction"] == pytest.approx(sat, abs=1.5 / w)
    assert v["laplacian_std"] == pytest.approx((2 - 2 * math.cos(th)) / math.sqrt(2), rel=1e-4)
    assert v["hessian_det_abs_mean"] == 0.0 and v["saddle_fraction"] == 0.0
    assert v["effective_rank"] == pytest.approx(1.0, abs=1e-3)
    assert v["svd_participation_ratio"] == pytest.approx(1.0, abs=1e-5)
    assert v["svd_top_energy_fraction"] == pytest.approx(1.0, abs=1e-5)
    # rho(dx) = cos(2 pi k dx / W): the estimator (linear interpolation between pixel lags) exactly, and the
    # continuous 1/e crossing arccos(1/e) / (2 pi k) to the interpolation error; along y never (cap 1/2)
    rho = np.cos(th * np.arange(w // 2 + 1))
    k1 = int(np.argmax(rho < math.exp(-1)))
    exact = (k1 - 1 + (rho[k1 - 1] - math.exp(-1)) / (rho[k1 - 1] - rho[k1])) / w
    assert v["correlation_length_x"] == pytest.approx(exact, rel=1e-5)
    assert v["correlation_length_x"] == pytest.approx(math.acos(math.exp(-1)) / (2 * math.pi * k), rel=0.03)
    assert v["correlation_length_y"] == 0.5
    # shell average of cos(2 pi k r cos phi) = J0(2 pi k r) (on a square grid, where shells are well sampled)
    r_iso = brentq(lambda r: j0(2 * math.pi * k * r) - math.exp(-1), 1e-6, 0.38 / k)
    iso = run(wave(64, 64, k, 0)[None, None], names=["correlation_length"])["correlation_length"].item()
    assert iso == pytest.approx(r_iso, rel=0.01)
    for p, q in (("5", 5), ("50", 50), ("95", 95)):
        assert v[f"percentile_{p}"] == pytest.approx(np.percentile(u.double().numpy(), q), abs=1e-6)


def test_wave_orientations_rank_and_coherence():
    uy = wave(64, 64, 0, 4)
    diag = wave(64, 64, 2, 2, 0.3)
    cross = wave(64, 64, 3, 0) + wave(64, 64, 0, 3)  # two orthogonal equal waves
    egg = wave(64, 64, 1, 0, 0.3) * wave(64, 64, 0, 1, 0.7)  # phases keep the lattice off the det = 0 lines
    out = run(torch.stack([uy, diag, cross, egg])[:, None])
    a = {n: t[:, 0] for n, t in out.items()}
    assert a["gradient_anisotropy"][0].item() == pytest.approx(-1.0, abs=1e-6)
    assert a["gradient_anisotropy"][1].item() == pytest.approx(0.0, abs=1e-5)
    assert a["gradient_coherence"][1].item() == pytest.approx(1.0, abs=1e-5)
    assert a["gradient_coherence"][2].item() == pytest.approx(0.0, abs=1e-5)
    assert a["gradient_anisotropy"][2].item() == pytest.approx(0.0, abs=1e-5)
    # cos(a + b) = cos a cos b - sin a sin b: two equal singular values
    assert a["effective_rank"][1].item() == pytest.approx(2.0, abs=1e-3)
    assert a["svd_participation_ratio"][1].item() == pytest.approx(2.0, abs=1e-3)
    assert a["svd_top_energy_fraction"][1].item() == pytest.approx(0.5, abs=1e-3)
    assert a["saddle_fraction"][1].item() == 0.0  # det H = 0 analytically; rounding stays under the tolerance
    # egg crate cos x cos y: det H < 0 where |tan x tan y| > 1, half of the torus
    assert a["saddle_fraction"][3].item() == pytest.approx(0.5, abs=0.01)
    assert a["effective_rank"][3].item() == pytest.approx(1.0, abs=1e-3)


def test_grf_correlation_length_grows_and_matches_theory():
    means = []
    for ell in (0.02, 0.04, 0.08):
        out = run(grf(8, 64, 64, ell, ell, seed=int(ell * 1000))[:, None], names=["correlation_length"])
        means.append(out["correlation_length"].mean().item())
    assert means[0] < means[1] < means[2]
    # covariance exp(-r^2 / (2 ell^2)) crosses 1/e at sqrt(2) ell (finite-domain mean removal biases low)
    for ell, m in zip((0.02, 0.04), means):
        assert m == pytest.approx(math.sqrt(2) * ell, rel=0.15)


def test_anisotropy_detects_stretched_fields():
    along_x = grf(6, 64, 64, 0.08, 0.02, seed=1)[:, None]
    along_y = along_x.transpose(-1, -2)
    ox, oy = run(along_x), run(along_y)
    assert (ox["correlation_length_x"] > ox["correlation_length_y"]).all()
    assert (ox["correlation_anisotropy"] > 0.3).all() and (oy["correlation_anisotropy"] < -0.3).all()
    assert (ox["gradient_anisotropy"] < -0.5).all() and (oy["gradient_anisotropy"] > 0.5).all()
    assert torch.allclose(ox["correlation_anisotropy"], -oy["correlation_anisotropy"], atol=1e-5)
    iso = run(grf(6, 64, 64, 0.04, 0.04, seed=2)[:, None])
    assert (iso["correlation_anisotropy"].abs() < 0.3).all()


def test_effective_rank_rank1_vs_noise():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    rank1 = torch.outer(a - a.mean(), b - b.mean())
    noise = torch.randn(64, 64, generator=g)
    out = run(torch.stack([rank1, noise])[:, None], names=["effective_rank", "svd_participation_ratio"])
    assert out["effective_rank"][0, 0].item() == pytest.approx(1.0, abs=1e-2)
    assert out["svd_participation_ratio"][0, 0].item() == pytest.approx(1.0, abs=1e-4)
    assert out["effective_rank"][1, 0].item() > 40 and out["svd_participation_ratio"][1, 0].item() > 20


def test_histogram_ramp_and_two_level():
    ramp = torch.linspace(0, 1, 64 * 64).reshape(64, 64)
    two = (wave(64, 64, 1, 0) > 0).float() * 3 - 1
    for bins in (8, 16, 64):
        cfg = FAM.config_model(histogram_bins=bins)
        out = FAM.compute(
            torch.stack([ramp, two])[:, None],
            cfg,
            [
                "histogram_entropy",
                "histogram_effective_bins",
                "histogram_peak_fraction",
                "amplitude_saturation_fraction",
            ],
        )
        assert out["histogram_entropy"][0, 0].item() == pytest.approx(math.log(bins), abs=1e-3)
        assert out["histogram_effective_bins"][0, 0].item() == pytest.approx(bins, rel=1e-3)
        assert out["histogram_entropy"][1, 0].item() == pytest.approx(math.log(2), abs=1e-6)
        assert out["histogram_peak_fraction"][1, 0].item() == pytest.approx(0.5, abs=1e-6)
        assert out["amplitude_saturation_fraction"][1, 0].item() == 1.0
        assert out["amplitude_saturation_fraction"][0, 0].item() == pytest.approx(0.1, abs=2e-3)
    cfg = FAM.config_model(amplitude_saturation_band=0.2, gradient_saturation_threshold=0.9)
    spec = {s.name: s for s in FAM.catalogue(cfg)}
    assert spec["amplitude_saturation_fraction"].extra == {"band": 0.2}
    out = FAM.compute(
        torch.stack([ramp, wave(64, 64, 1, 0)])[:, None],
        cfg,
        ["amplitude_saturation_fraction", "gradient_saturation_fraction"],
    )
    assert out["amplitude_saturation_fraction"][0, 0].item() == pytest.approx(0.4, abs=2e-3)
    ssin = np.abs(np.sin(2 * math.pi * np.arange(64) / 64))
    assert out["gradient_saturation_fraction"][1, 0].item() == pytest.approx(
        (ssin >= 0.9 * ssin.max() - 1e-9).mean(), abs=1.5 / 64
    )


# ---------------------------------------------------------------- identities and robustness
def test_affine_and_sign_identities():
    x = diverse()
    out = run(x, names=ALL)
    out2 = run(3.0 * x - 7.0, names=ALL)
    neg = run(-x, names=["spatial_skewness", "laplacian_skewness"])
    free = [
        "spatial_skewness",
        "spatial_kurtosis",
        "gradient_anisotropy",
        "gradient_coherence",
        "effective_rank",
        "svd_participation_ratio",
        "svd_top_energy_fraction",
        "correlation_length",
        "correlation_length_x",
        "correlation_length_y",
        "histogram_entropy",
        "histogram_peak_fraction",
        "saddle_fraction",
        "laplacian_skewness",
    ]
    for n in free:
        assert torch.allclose(out[n], out2[n], rtol=1e-3, atol=2e-3), n
    assert torch.allclose(out2["spatial_variance"], 9 * out["spatial_variance"], rtol=1e-4)
    assert torch.allclose(out2["hessian_det_abs_mean"], 9 * out["hessian_det_abs_mean"], rtol=1e-4)
    assert torch.allclose(out2["gradient_magnitude_mean"], 3 * out["gradient_magnitude_mean"], rtol=1e-4)
    assert torch.allclose(neg["spatial_skewness"], -out["spatial_skewness"], atol=1e-5)
    assert torch.allclose(neg["laplacian_skewness"], -out["laplacian_skewness"], atol=1e-4)
    big = run(x * 1e15, names=["spatial_variance", "spatial_kurtosis", "hessian_det_abs_mean"])
    assert torch.isfinite(big["spatial_variance"]).all()
    assert torch.allclose(big["spatial_kurtosis"], out["spatial_kurtosis"], rtol=1e-4, atol=1e-4)
    assert torch.allclose(big["spatial_variance"], out["spatial_variance"] * 1e30, rtol=1e-4)


def test_every_feature_varies_and_is_finite():
    names = ALL
    out = run(diverse(), names=names)
    for n in names:
        t = out[n][:, 0]
        assert torch.isfinite(t).all(), n
        assert len(torch.unique(t)) >= 4, (n, t)


def test_constant_fields_have_defined_values():
    x = torch.stack([torch.full((32, 32), c) for c in (0.0, 3.7, -1e6, 1e30)])[:, None]
    out = run(x, names=ALL)
    for n, t in out.items():
        assert torch.isfinite(t).all(), n
    want = {
        "spatial_variance": 0,
        "spatial_skewness": 0,
        "spatial_kurtosis": 0,
        "spatial_range": 0,
        "spatial_iqr": 0,
        "spatial_mad": 0,
        "gradient_magnitude_max": 0,
        "gradient_anisotropy": 0,
        "gradient_coherence": 0,
        "gradient_saturation_fraction": 0,
        "amplitude_saturation_fraction": 1,
        "laplacian_std": 0,
        "hessian_det_abs_mean": 0,
        "saddle_fraction": 0,
        "effective_rank": 1,
        "svd_participation_ratio": 1,
        "svd_top_energy_fraction": 1,
        "correlation_length": 0.5,
        "correlation_length_x": 0.5,
        "correlation_length_y": 0.5,
        "correlation_anisotropy": 0,
        "histogram_entropy": 0,
        "histogram_peak_fraction": 1,
        "histogram_effective_bins": 1,
        "histogram_occupied_bins": 1,
        "laplacian_skewness": 0,
    }
    for n, val in want.items():
        assert (out[n] == val).all(), (n, out[n])
    assert torch.equal(out["spatial_mean"][:, 0], x[:, 0, 0, 0])
    assert torch.equal(out["percentile_50"][:, 0], x[:, 0, 0, 0])


def test_batch_independence_and_nonfinite_fields():
    x = diverse()[:8].reshape(4, 2, 64, 64).clone()
    full = run(x)
    for i in range(4):
        one = run(x[i : i + 1])
        for n in ALL:
            assert torch.allclose(full[n][i], one[n][0], rtol=1e-5, atol=1e-6), n
    bad = x.clone()
    bad[1, 0, 3, 4] = float("nan")
    bad[2, 1, 0, 0] = float("inf")
    out = run(bad)
    for n in ALL:
        assert torch.isnan(out[n][1, 0]) and torch.isnan(out[n][2, 1]), n
        keep = torch.ones(4, 2, dtype=torch.bool)
        keep[1, 0] = keep[2, 1] = False
        assert torch.allclose(out[n][keep], full[n][keep], rtol=1e-5, atol=1e-6), n


def test_dtype_device_shape_and_subset():
    x = diverse()[:6].reshape(2, 3, 64, 64).double()
    out = run(x, names=["spatial_mean", "percentile_50", "correlation_anisotropy"])
    assert {"spatial_mean", "percentile_50", "correlation_anisotropy"} <= set(out)
    for t in out.values():
        assert t.shape == (2, 3) and t.dtype == torch.float32 and t.device == x.device
    with pytest.raises(KeyError):
        run(x, names=["no_such_feature"])
