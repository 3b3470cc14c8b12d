"""Causality family: Granger / TE against statsmodels and numpy, direction, time arrow, flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.features.families import _series as ts
from spinlock_core.features.families.causality import lagged_corr_asymmetry, ordered_pairs, pairwise_ar_rss

FAM = FAMILY_REGISTRY["causality"]
CFG = FAM.config_model()
ALL = [s.name for s in FAM.catalogue(CFG)]
PAIR = [s.name for s in FAM.catalogue(CFG) if s.min_channels == 2]


# ----------------------------------------------------------------------------- helpers
def fields(series, noise: float = 0.0, h: int = 4, seed: int = 0) -> torch.Tensor:
    """Series ``[S, C, Ts]`` -> ``[S, Ts, C, h, h]`` whose spatial mean is the series (optional
    zero-mean checkerboard of amplitude ``noise`` times a random per-frame sign)."""
    s = torch.as_tensor(np.asarray(series), dtype=torch.float64)
    x = s.permute(0, 2, 1)[..., None, None].expand(s.shape[0], s.shape[2], s.shape[1], h, h)
    if noise:
        g = torch.Generator().manual_seed(seed)
        ii, jj = torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij")
        amp = noise * torch.randn(s.shape[0], s.shape[2], s.shape[1], 1, 1, generator=g, dtype=torch.float64)
        x = x + amp * ((-1.0) ** (ii + jj)).to(torch.float64)
    return x.to(torch.float32).contiguous()


def run(x, cfg=CFG, names=None):
    return FAM.compute(x, cfg, names or (ALL if x.shape[2] >= 2 else [n for n in ALL if n not in PAIR]))


def coupled(n, rng, c_xy=0.6, c_yx=0.0, burn=100):
    """x -> y with strength c_xy (and y -> x with c_yx), AR(1) each."""
    e = rng.standard_normal((2, n + burn))
    x = np.zeros(n + burn)
    y = np.zeros(n + burn)
    for t in range(1, n + burn):
        x[t] = 0.5 * x[t - 1] + c_yx * y[t - 1] + e[0, t]
        y[t] = 0.3 * y[t - 1] + c_xy * x[t - 1] + e[1, t]
    return np.stack([x[burn:], y[burn:]])


def logistic(n, x0=0.3141, r=4.0):
    y = np.empty(n)
    y[0] = x0
    for t in range(n - 1):
        y[t + 1] = r * y[t] * (1 - y[t])
    return y


def ar1(phi, n, rng, burn=100):
    e = rng.standard_normal(n + burn)
    y = np.zeros(n + burn)
    for t in range(1, n + burn):
        y[t] = phi * y[t - 1] + e[t]
    return y[burn:]


def means(x):
    return ts.summary_series(x)[0].numpy()


def np_rss(y, cols):
    a = np.column_stack([np.ones(len(y))] + cols)
    beta = np.linalg.lstsq(a, y, rcond=None)[0]
    return float(np.sum((y - a @ beta) ** 2))


def np_te_f(target, source, p):
    """Gaussian TE (nats) and Granger F of source -> target by numpy lstsq on the raw series."""
    n = len(target)
    y = target[p:]
    own = [target[p - k : n - k] for k in range(1, p + 1)]
    oth = [source[p - k : n - k] for k in range(1, p + 1)]
    rr, rf = np_rss(y, own), np_rss(y, own + oth)
    return 0.5 * math.log(rr / rf), ((rr - rf) / p) / (rf / (len(y) - 2 * p - 1))


# ----------------------------------------------------------------------------- catalogue
def test_catalogue_and_config():
    cat = FAM.catalogue(CFG)
    assert len(cat) == 20 >= 15 and len(set(ALL)) == 20
    for s in cat:
        assert s.family == "causality" and s.granularity == "trajectory" and s.description and s.convention
        assert s.flag == "causality.enabled" and s.default
    assert set(PAIR) == {n for n in ALL if "lag_asym" in n or "transfer_entropy" in n or "granger" in n}
    spec = {s.name: s for s in cat}
    assert spec["causality_granger_f_mean"].min_frames == 9 and spec["causality_transfer_entropy_max"].min_frames == 6
    assert spec["causality_spatial_flow_magnitude"].min_frames == 2
    cfg = FAM.config_model(max_lag=5, granger_order=4)
    names = [s.name for s in FAM.catalogue(cfg)]
    assert len(names) == 24 and "causality_lag_asym_max_lag5" in names
    assert {s.name: s for s in FAM.catalogue(cfg)}["causality_granger_f_max"].min_frames == 15
    assert len(FAM.selected(FAM.config_model(exclude=("causality_granger_f_max",)))) == 19
    for bad in ({"max_lag": 0}, {"granger_order": 11}, {"other": 1}):
        with pytest.raises(ValidationError):
            FAM.config_model(**bad)


# ----------------------------------------------------------------------------- Granger / TE
def test_granger_matches_statsmodels():
    from statsmodels.tsa.stattools import grangercausalitytests

    rng = np.random.default_rng(0)
    ser = np.stack([coupled(300, rng, 0.6), coupled(300, rng, 0.1, 0.3), coupled(300, rng, 0.0)])
    ser = np.concatenate([ser, rng.standard_normal((3, 1, 300)).cumsum(-1) * 0.1 + ser[:, :1]], axis=1)  # C = 3
    x = fields(ser, noise=0.5)
    m = means(x)
    for p in (1, 2, 3):
        cfg = FAM.config_model(granger_order=p)
        out = run(x, cfg, ["causality_granger_f_mean", "causality_granger_f_max", "causality_granger_asymmetry"])
        tgt, src = ordered_pairs(3)
        for i in range(3):
            f = np.array(
                [
                    grangercausalitytests(np.column_stack([m[i, a], m[i, b]]), maxlag=[p])[p][0]["ssr_ftest"][0]
                    for a, b in zip(tgt, src)
                ]
            )
            assert out["causality_granger_f_mean"][i].item() == pytest.approx(f.mean(), rel=1e-4)
            assert out["causality_granger_f_max"][i].item() == pytest.approx(f.max(), rel=1e-4)
            asym = np.mean(np.abs(f[0::2] - f[1::2]) / (f[0::2] + f[1::2]))
            assert out["causality_granger_asymmetry"][i].item() == pytest.approx(asym, rel=1e-4, abs=1e-6)


def test_transfer_entropy_closed_form_vs_numpy_and_f_identity():
    rng = np.random.default_rng(1)
    ser = np.stack([coupled(400, rng, 0.5), coupled(400, rng, 0.2, 0.4)])
    x = fields(ser)
    m = means(x)
    for p in (1, 2):
        cfg = FAM.config_model(te_order=p, granger_order=p)
        out = run(x, cfg)
        for i in range(2):
            te_yx, f_yx = np_te_f(m[i, 0], m[i, 1], p)  # pair 0: 1 -> 0
            te_xy, f_xy = np_te_f(m[i, 1], m[i, 0], p)  # pair 1: 0 -> 1
            assert out["causality_transfer_entropy_mean"][i].item() == pytest.approx((te_xy + te_yx) / 2, rel=1e-4)
            assert out["causality_transfer_entropy_max"][i].item() == pytest.approx(max(te_xy, te_yx), rel=1e-4)
            assert out["causality_transfer_entropy_net_flow"][i].item() == pytest.approx(abs(te_xy - te_yx), rel=1e-3)
            # identity: TE = 0.5 ln(1 + F p / df_denom), same order, same pair
            df = (400 - p) - 2 * p - 1
            te_from_f = 0.5 * math.log(1 + out["causality_granger_f_max"][i].item() * p / df)
            assert out["causality_transfer_entropy_max"][i].item() == pytest.approx(te_from_f, rel=1e-4)


def test_direction_of_coupling():
    rng = np.random.default_rng(2)
    n = 2000
    ser = np.stack([coupled(n, rng, 0.6), coupled(n, rng, 0.6)[::-1].copy()])  # 0 -> 1 ; 1 -> 0
    x = fields(ser, noise=0.3)
    m = torch.as_tensor(means(x))
    rr, rf, _ = pairwise_ar_rss(m, 1)
    te = 0.5 * torch.log(rr / rf)  # pair 0: 1 -> 0, pair 1: 0 -> 1
    assert te[0, 1] > 0.1 and te[0, 0] < 0.005
    assert te[1, 0] > 0.1 and te[1, 1] < 0.005
    rr, rf, nn = pairwise_ar_rss(m, 2)
    f = ((rr - rf) / 2) / (rf / (nn - 5))
    assert f[0, 1] > 100 and f[0, 0] < 7  # F(2, ~2000) 0.999 quantile ~ 6.9
    out = run(x)
    assert (out["causality_granger_asymmetry"] > 0.9).all()
    torch.testing.assert_close(
        out["causality_transfer_entropy_net_flow"], out["causality_transfer_entropy_max"], rtol=0.05, atol=0.0
    )
    # independent channels: nothing flows
    ind = fields(np.stack([np.stack([ar1(0.5, n, rng), ar1(0.5, n, rng)])]))
    o = run(ind)
    assert o["causality_transfer_entropy_max"].item() < 0.005 and o["causality_granger_f_max"].item() < 8


# ----------------------------------------------------------------------------- lead-lag asymmetry
def test_lag_asymmetry_vs_numpy_and_dominant_lag():
    rng = np.random.default_rng(3)
    n = 400
    a = ar1(0.2, n + 2, rng)
    b = np.concatenate([[0, 0], a[:-2]])[: n + 2] + 0.3 * rng.standard_normal(n + 2)  # b(t) = a(t-2)
    c = rng.standard_normal(n + 2)
    ser = np.stack([np.stack([a, b, c])[:, 2:]])
    x = fields(ser)
    out = run(x)
    m = means(x)[0]

    def corr(u, v):
        return np.corrcoef(u, v)[0, 1]

    for k in (1, 2, 3):
        vals = [abs(corr(m[i][:-k], m[j][k:]) - corr(m[j][:-k], m[i][k:])) for i, j in ((0, 1), (0, 2), (1, 2))]
        assert out[f"causality_lag_asym_mean_lag{k}"].item() == pytest.approx(np.mean(vals), abs=1e-5)
        assert out[f"causality_lag_asym_max_lag{k}"].item() == pytest.approx(np.max(vals), abs=1e-5)
    assert out["causality_lag_asym_dominant_lag"].item() == 2
    assert out["causality_lag_asym_max_lag2"].item() > 0.8
    # antisymmetry: swapping the channels negates A
    ms = torch.as_tensor(m[None])
    torch.testing.assert_close(lagged_corr_asymmetry(ms[:, [1, 0]], 2), -lagged_corr_asymmetry(ms[:, [0, 1]], 2))


# ----------------------------------------------------------------------------- time arrow
def test_time_irreversibility_reference_and_reversal():
    rng = np.random.default_rng(4)
    n = 600
    saw = (np.arange(n) % 20) / 20.0  # slow rise, sudden drop
    ser = np.stack(
        [
            np.stack([saw + 0.01 * rng.standard_normal(n), ar1(0.7, n, rng)]),
            np.stack([logistic(n), np.cumsum(rng.standard_normal(n))]),
        ]
    )
    x = fields(ser)
    xr = x.flip(1)
    out, outr = run(x), run(xr)
    m = means(x)
    for i in range(2):
        sk, tra = [], []
        for c in range(2):
            d = np.diff(m[i, c])
            sk.append(np.mean(d**3) / np.mean(d**2) ** 1.5)
            z = (m[i, c] - m[i, c].mean()) / m[i, c].std()
            tra.append(np.mean(z[2:] ** 2 * z[1:-1] - z[1:-1] * z[:-2] ** 2))
        assert out["causality_time_irreversibility"][i].item() == pytest.approx(np.mean(sk), abs=1e-5)
        assert out["causality_time_reversal_asymmetry"][i].item() == pytest.approx(np.mean(tra), abs=1e-5)
    for k in (
        "causality_time_irreversibility",
        "causality_time_reversal_asymmetry",
        "causality_pred_error_asymmetry",
        "causality_pred_error_asymmetry_linear",
    ):
        torch.testing.assert_close(outr[k], -out[k], atol=1e-5, rtol=1e-4)
    one = run(fields(ser[:1, :1]), names=["causality_time_irreversibility"])  # the sawtooth alone
    assert one["causality_time_irreversibility"].item() < -3


def test_prediction_error_asymmetry():
    rng = np.random.default_rng(5)
    n = 1500
    ser = np.stack([logistic(n)[None], ar1(0.7, n, rng)[None]])
    out = run(fields(ser))
    assert out["causality_pred_error_asymmetry"][0].item() > 2.0  # the past determines the future, not vice versa
    assert abs(out["causality_pred_error_asymmetry"][1].item()) < 0.03  # Gaussian AR: reversible
    assert abs(out["causality_pred_error_asymmetry_linear"][1].item()) < 0.03
    assert out["causality_ar_residual_fraction"][1].item() == pytest.approx(1 - 0.7**2, abs=0.05)
    assert out["causality_ar_residual_fraction"][0].item() > 0.9  # logistic: linearly unpredictable
    # numpy reference of the quadratic forward/backward fits
    m = means(fields(ser))[0, 0]
    z = (m - m.mean()) / m.std()
    p = 2
    fw = np_rss(z[p:], [z[p - k : n - k] for k in (1, 2)] + [z[p - k : n - k] ** 2 for k in (1, 2)])
    zr = z[::-1]
    bw = np_rss(zr[p:], [zr[p - k : n - k] for k in (1, 2)] + [zr[p - k : n - k] ** 2 for k in (1, 2)])
    ref = 0.5 * math.log((bw + 1e-12 * (n - p)) / (fw + 1e-12 * (n - p)))
    assert out["causality_pred_error_asymmetry"][0].item() == pytest.approx(ref, rel=0.05)


# ----------------------------------------------------------------------------- spatial flow
def test_spatial_flow_advected_plane_wave():
    n_t, w, k = 6, 16, 1
    xx = torch.arange(w, dtype=torch.float64)
    wave = torch.sin(2 * math.pi * k * xx / w)[None, :].expand(w, w)
    frames = torch.stack([torch.roll(wave, t, dims=-1) for t in range(n_t)])  # moves +x one pixel per step
    x = torch.stack([frames, 0.5 * frames + 2], dim=1)[None].float()  # [1, Ts, 2, H, W]
    out = run(x)
    assert out["causality_spatial_flow_magnitude"].item() == pytest.approx(math.cos(math.pi * k / w), abs=1e-4)
    assert out["causality_spatial_flow_anisotropy"].item() == pytest.approx(1.0, abs=1e-5)
    oy = run(x.transpose(-1, -2).contiguous())
    assert oy["causality_spatial_flow_anisotropy"].item() == pytest.approx(-1.0, abs=1e-5)
    assert oy["causality_spatial_flow_magnitude"].item() == pytest.approx(math.cos(math.pi * k / w), abs=1e-4)
    # a spatially uniform increment carries no spatial flow (rounding noise is not flow)
    drift = x[:, :1] + 0.37 * torch.arange(n_t, dtype=torch.float32)[None, :, None, None, None]
    assert run(drift)["causality_spatial_flow_magnitude"].item() == 0.0
    noise = torch.randn(1, 40, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    assert run(noise)["causality_spatial_flow_magnitude"].item() < 0.05


# ----------------------------------------------------------------------------- masking / finite / batch
@pytest.mark.parametrize("n_frames,n_ch", [(2, 2), (5, 2), (5, 1), (9, 3), (12, 1)])
def test_short_series_and_single_channel(n_frames, n_ch):
    rng = np.random.default_rng(6)
    s = rng.standard_normal((3, n_ch, n_frames))
    s[1] = 2.0
    s[2, 0] = 0.0
    x = fields(s, noise=0.5)
    x[1] = 2.0
    cat = FAM.catalogue(CFG)
    ok = [sp.name for sp in cat if sp.mask_reason(n_ch, n_frames) is None]
    out = FAM.compute(x, CFG, ok)
    for k in ok:
        assert out[k].shape == (3,) and out[k].dtype == torch.float32 and torch.isfinite(out[k]).all(), k
    if n_frames == 2:
        assert set(ok) == {"causality_spatial_flow_magnitude", "causality_spatial_flow_anisotropy"}
    if n_ch == 1:
        assert not set(ok) & set(PAIR)
        assert all("C >= 2" in sp.mask_reason(1, 100) for sp in cat if sp.name in PAIR)


def diverse(n, rng):
    out = []
    for c_xy, c_yx in ((0.6, 0.0), (0.0, 0.5), (0.3, 0.3), (0.0, 0.0), (0.9, 0.1)):
        out.append(np.concatenate([coupled(n, rng, c_xy, c_yx), ar1(0.9, n, rng)[None]]))
    out.append(np.stack([logistic(n, 0.2), logistic(n, 0.7), np.sin(np.arange(n) / 3.0)]))
    out.append(np.stack([np.cumsum(rng.standard_normal(n)) for _ in range(3)]))
    t = np.arange(n)
    out.append(np.stack([(t % 15) / 15.0, np.sin(2 * np.pi * t / 20), 0.95**t]))
    out.append(np.stack([np.sin(2 * np.pi * t / 20), np.sin(2 * np.pi * (t - 3) / 20), rng.standard_normal(n)]))
    return np.stack(out)


def test_degenerate_and_batch_independence():
    rng = np.random.default_rng(7)
    ser = diverse(80, rng)
    x = fields(ser, noise=0.3)
    x[0] = 1.5  # constant trajectory
    x[1] *= 1e30
    full = run(x)
    for k in ALL:
        assert torch.isfinite(full[k]).all(), k
    for i in (0, 2, 5):
        one = run(x[i : i + 1])
        for k in ALL:
            torch.testing.assert_close(one[k], full[k][i : i + 1], rtol=1e-5, atol=1e-6)
    bad = x.clone()
    bad[3, 10, 1, 0, 0] = float("inf")
    got = run(bad)
    for k in ALL:
        assert torch.isnan(got[k][3]) and torch.equal(got[k][4:], full[k][4:]), k


def test_non_constant_over_diverse_set():
    rng = np.random.default_rng(8)
    ser = diverse(150, rng)
    x = fields(ser, noise=0.5)
    # give a few trajectories real spatial advection so the flow features vary
    w = x.shape[-1]
    xx = torch.arange(w, dtype=torch.float32)
    wave = torch.sin(2 * math.pi * xx / w)
    for i, (_dy, dx) in enumerate(((0, 1), (1, 0), (1, 1))):
        frames = torch.stack(
            [
                torch.roll(wave[None, :].expand(w, w) if dx else wave[:, None].expand(w, w), t, dims=-1 if dx else -2)
                for t in range(x.shape[1])
            ]
        )
        x[i, :, 0] = x[i, :, 0] + frames * (i + 1)
    out = run(x)
    for k in ALL:
        assert torch.isfinite(out[k]).all(), k
        assert out[k].std() > 0, f"{k} constant over the diverse set"
