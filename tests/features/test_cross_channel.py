"""Cross-channel family: correlation eigen-structure against known covariances and numpy, MI against
sklearn, conditional MI constructions, shell coherence / phase locking against a pixel-domain
reference and analytic expectations, catalogue behaviour, robustness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.metrics import mutual_info_score

from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.features.families._spectral_util import geometry
from spinlock_core.features.families.cross_channel import bin_labels

FAM = FAMILY_REGISTRY["cross_channel"]
CFG = FAM.config_model()
ALL = [s.name for s in FAM.catalogue(CFG)]


def run(x: torch.Tensor, cfg=CFG, names=None) -> dict[str, np.ndarray]:
    out = FAM.compute(x, cfg, names or [s.name for s in FAM.catalogue(cfg)])
    return {k: v.double().numpy() for k, v in out.items()}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def grf(shape, ell, seed):
    """Periodic Gaussian random fields [..., H, W] with Gaussian correlation length ell."""
    h, w = shape[-2:]
    noise = torch.randn(*shape, generator=gen(seed), dtype=torch.float64)
    ky = torch.fft.fftfreq(h, 1.0 / h, dtype=torch.float64).view(h, 1)
    kx = torch.fft.fftfreq(w, 1.0 / w, dtype=torch.float64).view(1, w)
    filt = torch.exp(-2 * math.pi**2 * ell**2 * (kx**2 + ky**2))
    return torch.fft.ifft2(torch.fft.fft2(noise) * filt).real.float()


# ----------------------------------------------------------------------------- catalogue
def test_catalogue():
    cat = FAM.catalogue(CFG)
    names = [s.name for s in cat]
    assert len(names) == len(set(names)) and len(cat) == 20
    assert sum(s.default for s in cat) == 18
    assert all(
        s.granularity == "timestep" and s.family == "cross_channel" and s.description and s.convention for s in cat
    )
    mc = {s.name: s.min_channels for s in cat}
    assert mc["cross_channel_eigen_top_1"] == 2 and mc["cross_channel_eigen_top_3"] == 3
    assert mc["cross_channel_corr_std"] == 3 and mc["cross_channel_cmi_mean"] == 3 and mc["cross_channel_mi_mean"] == 2
    assert all(v >= 2 for v in mc.values())
    cat5 = FAM.catalogue(FAM.config_model(num_eigen=5))
    assert [s.name for s in cat5 if "eigen_top" in s.name] == [f"cross_channel_eigen_top_{i}" for i in range(1, 6)]
    assert {s.name: s.min_channels for s in cat5}["cross_channel_eigen_top_5"] == 5
    sel = [
        s.name
        for s in FAM.selected(FAM.config_model(include=("cross_channel_mi_min",), exclude=("cross_channel_plv",)))
    ]
    assert "cross_channel_mi_min" in sel and "cross_channel_plv" not in sel and "cross_channel_cmi_max" not in sel
    # masking reasons for C = 2: exactly the features that need three channels
    masked = {s.name for s in FAM.selected(CFG) if s.mask_reason(2, 1)}
    assert masked == {"cross_channel_eigen_top_3", "cross_channel_corr_std", "cross_channel_cmi_mean"}


@pytest.mark.parametrize(
    "bad",
    [
        dict(num_eigen=0),
        dict(num_eigen=11),
        dict(mi_bins=1),
        dict(cmi_bins=17),
        dict(coherence_low_cutoff=0.5, coherence_high_cutoff=0.5),
        dict(foo=2),
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValidationError):
        FAM.config_model(**bad)


# ----------------------------------------------------------------------------- eigen-structure
R_TRUE = np.array([[1.0, 0.8, 0.3, 0.0], [0.8, 1.0, 0.4, 0.1], [0.3, 0.4, 1.0, -0.5], [0.0, 0.1, -0.5, 1.0]])


def test_eigen_known_covariance():
    h = 256
    scales = torch.tensor([1.0, 3.0, 0.2, 7.0], dtype=torch.float64)
    L = torch.linalg.cholesky(torch.tensor(R_TRUE)) * scales.view(-1, 1)  # covariance D R D
    noise = torch.randn(2, 4, h * h, generator=gen(1), dtype=torch.float64)
    x = (L @ noise).view(2, 4, h, h).float() + torch.tensor([0.0, 5.0, -2.0, 1.0]).view(1, 4, 1, 1)
    r = run(x, FAM.config_model(num_eigen=4))
    lam_true = np.sort(np.linalg.eigvalsh(R_TRUE))[::-1] / 4
    for b in range(2):
        d = x[b].double().numpy().reshape(4, -1)
        C = np.corrcoef(d)
        lam = np.sort(np.linalg.eigvalsh(C))[::-1] / 4
        got = np.array([r[f"cross_channel_eigen_top_{i}"][b] for i in range(1, 5)])
        assert np.allclose(got, lam, atol=2e-6)  # same sample matrix as numpy
        assert np.allclose(got, lam_true, atol=0.01)  # sampling error ~ lambda sqrt(2/N) / C ~ 0.003
        assert r["cross_channel_participation_ratio"][b] == pytest.approx(1 / (lam**2).sum(), rel=1e-5)
        assert r["cross_channel_eigen_entropy"][b] == pytest.approx(-(lam * np.log(lam)).sum() / math.log(4), rel=1e-5)
        assert r["cross_channel_log_condition"][b] == pytest.approx(math.log10(lam[0] / lam[-1]), rel=1e-4)
        off = C[np.triu_indices(4, 1)]
        for key, val in (
            ("mean", off.mean()),
            ("abs_mean", np.abs(off).mean()),
            ("max", off.max()),
            ("min", off.min()),
            ("std", off.std()),
        ):
            assert r[f"cross_channel_corr_{key}"][b] == pytest.approx(val, abs=2e-6), key


def test_identical_and_scaled_channels():
    u = grf((3, 64, 64), 0.01, 2)  # rough enough that every shell is above float32 rounding noise
    x = torch.stack([u, -2.5 * u + 1.0], 1)  # C = 2: second = scaled (negated) copy
    r = run(x)
    assert np.allclose(r["cross_channel_corr_min"], -1, atol=1e-5)
    assert np.allclose(r["cross_channel_eigen_top_1"], 1.0, atol=1e-5)
    assert np.allclose(r["cross_channel_participation_ratio"], 1.0, atol=1e-4)
    assert np.allclose(r["cross_channel_log_condition"], 6.0, atol=1e-3)  # floor 1e-6
    for g in ("low", "mid", "high"):
        assert np.allclose(r[f"cross_channel_coherence_{g}"], 1.0, atol=1e-4)
    assert np.allclose(r["cross_channel_plv"], 1.0, atol=1e-5)
    y = torch.stack([u, u], 1)
    ry = run(y)
    assert np.allclose(ry["cross_channel_corr_max"], 1, atol=1e-5)
    for b in range(3):  # MI of identical channels = entropy of the binned channel (independent binning via numpy)
        counts, _ = np.histogram(u[b].double().numpy(), bins=16)
        p = counts[counts > 0] / counts.sum()
        assert ry["cross_channel_mi_mean"][b] == pytest.approx(-(p * np.log(p)).sum(), abs=2e-3)
        lab = bin_labels(u[b].reshape(1, -1), 16).numpy().ravel()
        p = np.bincount(lab) / lab.size
        p = p[p > 0]
        assert ry["cross_channel_mi_mean"][b] == pytest.approx(-(p * np.log(p)).sum(), abs=1e-5)


# ----------------------------------------------------------------------------- mutual information
@pytest.mark.parametrize("bins", [4, 16, 37])
def test_mi_equals_sklearn(bins):
    a = grf((2, 48, 64), 0.05, 3)
    b = torch.tanh(2 * a) + 0.3 * grf((2, 48, 64), 0.02, 4)
    c = a**2 + 0.5 * torch.randn(2, 48, 64, generator=gen(5))
    x = torch.stack([a, b, c], 1)
    cfg = FAM.config_model(mi_bins=bins, include=("cross_channel_mi_min",))
    r = run(x, cfg)
    lab = bin_labels(x.reshape(2, 3, -1), bins).numpy()
    for s in range(2):
        mis = [mutual_info_score(lab[s, i], lab[s, j]) for i, j in ((0, 1), (0, 2), (1, 2))]
        assert r["cross_channel_mi_mean"][s] == pytest.approx(np.mean(mis), abs=1e-5)
        assert r["cross_channel_mi_max"][s] == pytest.approx(np.max(mis), abs=1e-5)
        assert r["cross_channel_mi_min"][s] == pytest.approx(np.min(mis), abs=1e-5)
        # labels agree with an independent float64 numpy binning for (almost) every pixel
        v = x[s].double().numpy().reshape(3, -1)
        lo, hi = v.min(1, keepdims=True), v.max(1, keepdims=True)
        ref = np.clip(np.floor((v - lo) / (hi - lo) * bins), 0, bins - 1)
        assert (ref == lab[s]).mean() > 0.999


def test_mi_independent_is_bias_sized():
    n_pix = 64 * 64
    x = torch.randn(8, 2, 64, 64, generator=gen(6))
    mi = run(x)["cross_channel_mi_mean"]
    bias = (16 - 1) ** 2 / (2 * n_pix)  # Miller-Madow bias of the plug-in estimator
    assert 0.5 * bias < mi.mean() < 1.5 * bias


# ----------------------------------------------------------------------------- conditional MI
def cmi_numpy(x, y, z):
    """I(X;Y|Z) in nats from integer labels, by the definition."""
    n = x.size
    from collections import Counter

    cxyz, cxz, cyz, cz = Counter(zip(x, y, z)), Counter(zip(x, z)), Counter(zip(y, z)), Counter(z)
    return sum(c / n * math.log(c * cz[k] / (cxz[(i, k)] * cyz[(j, k)])) for (i, j, k), c in cxyz.items())


def test_conditional_mi():
    h = 64
    g = gen(7)
    z = torch.randint(0, 8, (2, h, h), generator=g).float()  # 8 values -> one per bin: conditioning is exact
    xx = z + 0.7 * torch.randn(2, h, h, generator=g)
    yy = z + 0.7 * torch.randn(2, h, h, generator=g)  # X indep. Y given Z
    cfg = FAM.config_model(include=("cross_channel_cmi_max",))
    x = torch.stack([xx, yy, z], 1)
    r = run(x, cfg)
    lab = bin_labels(x.reshape(2, 3, -1), 8).numpy()
    bias = 8 * 7**2 / (2 * h * h)  # Bz (B-1)^2 / (2N)
    for s in range(2):
        X, Y, Z = lab[s]
        trip = [cmi_numpy(X, Y, Z), cmi_numpy(X, Z, Y), cmi_numpy(Y, Z, X)]
        assert r["cross_channel_cmi_mean"][s] == pytest.approx(np.mean(trip), abs=1e-5)
        assert r["cross_channel_cmi_max"][s] == pytest.approx(np.max(trip), abs=1e-5)
        assert trip[0] < 2 * bias  # I(X;Y|Z) ~ estimator bias only
        assert mutual_info_score(X, Y) > 10 * bias  # while I(X;Y) is large
    # dependence beyond Z: Y = X + small noise -> I(X;Y|Z) clearly > 0
    y2 = xx + 0.2 * torch.randn(2, h, h, generator=g)
    lab2 = bin_labels(torch.stack([xx, y2, z], 1).reshape(2, 3, -1), 8).numpy()
    assert cmi_numpy(*lab2[0]) > 0.4
    r2 = run(torch.stack([xx, y2, z], 1), cfg)
    assert (r2["cross_channel_cmi_max"] > 0.4).all()


# ----------------------------------------------------------------------------- coherence, PLV
def coherence_reference(x: np.ndarray, y: np.ndarray, low=0.25, high=0.5):
    """Pixel-domain reference: squared correlation of the two fields band-passed to each shell."""
    h, w = x.shape
    k = np.hypot(np.fft.fftfreq(h, 1 / h)[:, None], np.fft.fftfreq(w, 1 / w)[None, :])
    X, Y = np.fft.fft2((x - x.mean()) / x.std()), np.fft.fft2((y - y.mean()) / y.std())
    kn = min(h, w) / 2
    coh = []
    for n in range(1, int(kn) + 1):
        m = np.round(k) == n
        xb, yb = np.fft.ifft2(X * m).real, np.fft.ifft2(Y * m).real
        coh.append((xb * yb).sum() ** 2 / ((xb * xb).sum() * (yb * yb).sum()))
    coh, ns = np.array(coh), np.arange(1, int(kn) + 1)
    return [coh[ns < low * kn].mean(), coh[(ns >= low * kn) & (ns < high * kn)].mean(), coh[ns >= high * kn].mean()]


def test_coherence_matches_pixel_reference():
    a = grf((2, 48, 64), 0.03, 8)
    b = 0.6 * a + 0.8 * grf((2, 48, 64), 0.01, 9) + 0.3 * torch.randn(2, 48, 64, generator=gen(10))
    r = run(torch.stack([a, b], 1))
    for s in range(2):
        ref = coherence_reference(a[s].double().numpy(), b[s].double().numpy())
        got = [r[f"cross_channel_coherence_{g}"][s] for g in ("low", "mid", "high")]
        assert np.allclose(got, ref, atol=1e-4)


def test_coherence_and_plv_independent_noise():
    n, h = 16, 64
    x = torch.randn(n, 2, h, h, generator=gen(11))
    r = run(x)
    geo = geometry(h, h, 1, "cpu")
    cnt = geo.shell_count[1 : geo.n_shells + 1].double().numpy()
    ns = np.arange(1, geo.n_shells + 1)
    # E[r^2] of independent isotropic vectors in a d-dimensional subspace is 1/d, d = modes in the shell
    for g, m in (("low", ns < 8), ("mid", (ns >= 8) & (ns < 16)), ("high", ns >= 16)):
        expected = (1 / cnt[m]).mean()
        assert r[f"cross_channel_coherence_{g}"].mean() == pytest.approx(expected, rel=0.25), g
    assert r["cross_channel_coherence_high"].mean() < 0.02
    assert r["cross_channel_plv"].mean() < 0.05


def test_plv_filtered_copy():
    h = 64
    u = torch.randn(3, h, h, generator=gen(12))
    ky = torch.fft.fftfreq(h, 1.0 / h).view(h, 1)
    kx = torch.fft.fftfreq(h, 1.0 / h).view(1, h)
    filt = torch.exp(-((kx**2 + ky**2) / 15.0**2))  # positive real isotropic filter: phases unchanged
    v = torch.fft.ifft2(torch.fft.fft2(u) * filt).real
    r = run(torch.stack([u, v], 1))
    assert np.allclose(r["cross_channel_plv"], 1.0, atol=1e-4)
    assert (r["cross_channel_corr_max"] < 0.85).all()  # correlation sees the amplitude mismatch
    assert (r["cross_channel_coherence_low"] > 0.99).all() and (r["cross_channel_coherence_mid"] > 0.95).all()


# ----------------------------------------------------------------------------- robustness
def diverse_inputs():
    xs = []
    for i, (l1, l2) in enumerate(((0.01, 0.05), (0.03, 0.03), (0.1, 0.02), (0.05, 0.2))):
        a, b = grf((3, 64, 64), l1, 20 + i), grf((3, 64, 64), l2, 30 + i)
        mix = torch.randn(3, 3, generator=gen(40 + i))
        c = torch.tanh(3 * a) * b
        xs.append(torch.einsum("ij,njhw->nihw", mix, torch.stack([a, b, c], 1)))
    y, xg = torch.meshgrid(torch.arange(64) / 64, torch.arange(64) / 64, indexing="ij")
    waves = torch.stack(
        [torch.cos(2 * math.pi * 3 * xg), torch.sin(2 * math.pi * (3 * xg + y)), torch.cos(2 * math.pi * 5 * y) ** 3]
    )
    xs.append(waves.unsqueeze(0) + 0.1 * torch.randn(2, 3, 64, 64, generator=gen(50)))
    xs.append(torch.randn(2, 3, 64, 64, generator=gen(51)) * torch.tensor([1.0, 10.0, 0.1]).view(1, 3, 1, 1))
    return torch.cat(xs)


def test_non_constant_and_finite_on_diverse_inputs():
    cfg = FAM.config_model(include=("cross_channel_mi_min", "cross_channel_cmi_max"))
    x = diverse_inputs()
    out = FAM.compute(x, cfg, ALL)
    for k in ALL:
        v = out[k]
        assert v.shape == (x.shape[0],) and v.dtype == torch.float32 and torch.isfinite(v).all(), k
        assert v.std() > 1e-4, f"{k} constant"


def test_batch_independence_and_dtype():
    x = diverse_inputs()[::2]
    full = FAM.compute(x, CFG, ALL)
    for b in range(x.shape[0]):
        one = FAM.compute(x[b : b + 1], CFG, ALL)
        for k in ALL:
            assert torch.allclose(one[k][0], full[k][b], rtol=1e-5, atol=1e-6), k
    d = FAM.compute(x.double(), CFG, ALL)
    for k in ALL:
        assert d[k].dtype == torch.float32 and torch.allclose(d[k], full[k], rtol=1e-3, atol=1e-4), k


def test_degenerate_inputs():
    x = torch.randn(3, 3, 32, 32, generator=gen(60))
    x[0, 1] = 2.0  # a constant channel: uncorrelated with the rest, no NaN
    x[1] = 0.0  # all constant
    x[2, 0, 3, 3] = float("inf")
    out = FAM.compute(x, CFG, ALL)
    for k in ALL:
        v = out[k]
        assert torch.isfinite(v[:2]).all() and torch.isnan(v[2]), k
    assert out["cross_channel_corr_min"][1] == 0 and out["cross_channel_eigen_top_1"][1] == pytest.approx(1 / 3)
    # fewer channels than a feature needs: still finite (the driver masks these columns)
    for c in (1, 2):
        o = FAM.compute(torch.randn(2, c, 16, 16, generator=gen(61)), CFG, ALL)
        assert set(ALL) <= set(o) and all(torch.isfinite(o[k]).all() for k in ALL)


def test_only_requested_names():
    out = FAM.compute(torch.randn(2, 3, 16, 16), CFG, ["cross_channel_corr_mean"])
    assert set(out) == {"cross_channel_corr_mean"}


@pytest.mark.parametrize("shape", [(1, 1), (1, 8), (2, 2), (3, 5), (7, 9)])
def test_tiny_and_odd_grids_finite(shape):
    out = FAM.compute(torch.randn(2, 4, *shape), CFG, ALL)
    assert all(out[k].shape == (2,) and torch.isfinite(out[k]).all() for k in ALL)
