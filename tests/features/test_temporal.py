"""Temporal family: analytic values, library cross-checks, masking, batching."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.features.families import _series as ts

FAM = FAMILY_REGISTRY["temporal"]
CFG = FAM.config_model()
ALL = [s.name for s in FAM.catalogue(CFG)]


# ----------------------------------------------------------------------------- helpers
def fields(series, amp=None, h: int = 4) -> torch.Tensor:
    """Series ``[S, C, Ts]`` -> trajectories ``[S, Ts, C, h, h]`` whose spatial mean is the series;
    ``amp [S, C, Ts]`` adds a zero-mean checkerboard of that amplitude (spatial variance amp^2)."""
    s = torch.as_tensor(np.asarray(series), dtype=torch.float64)
    x = s.permute(0, 2, 1)[..., None, None].expand(*s.shape[:1], s.shape[2], s.shape[1], h, h)
    if amp is not None:
        a = torch.as_tensor(np.asarray(amp), dtype=torch.float64).permute(0, 2, 1)[..., None, None]
        ii, jj = torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij")
        x = x + a * ((-1.0) ** (ii + jj)).to(torch.float64)
    return x.to(torch.float32).contiguous()


def mean_series(x: torch.Tensor) -> np.ndarray:
    return ts.summary_series(x)[0].numpy()


def run(x, cfg=CFG, names=None):
    return FAM.compute(x, cfg, names or ALL)


def ar1(phi, n, rng, burn=200):
    e = rng.standard_normal(n + burn)
    y = np.zeros(n + burn)
    for t in range(1, n + burn):
        y[t] = phi * y[t - 1] + e[t]
    return y[burn:]


def ar2(a1, a2, n, rng, burn=200):
    e = rng.standard_normal(n + burn)
    y = np.zeros(n + burn)
    for t in range(2, n + burn):
        y[t] = a1 * y[t - 1] + a2 * y[t - 2] + e[t]
    return y[burn:]


def logistic(n, x0=0.3141, r=4.0):
    y = np.empty(n)
    y[0] = x0
    for t in range(n - 1):
        y[t + 1] = r * y[t] * (1 - y[t])
    return y


def diverse_series(n: int, rng) -> np.ndarray:
    t = np.arange(n)
    out = [
        ar1(0.2, n, rng),
        ar1(0.7, n, rng),
        ar1(0.95, n, rng),
        ar2(1.2, -0.5, n, rng),
        np.cumsum(rng.standard_normal(n)),
        np.cumsum(rng.standard_normal(n)) + 0.1 * t,
        logistic(n, 0.21),
        logistic(n, 0.77),
        logistic(n, 0.4, r=3.7),
        np.sin(2 * np.pi * t / 13.0),
        2 + np.sin(2 * np.pi * t / 31.0 + 1) + 0.1 * rng.standard_normal(n),
        3 * 0.9**t + 1,
        -2 * 0.97**t * np.cos(2 * np.pi * t / 9.0),
        np.exp(0.03 * t),
        0.5 * t + rng.standard_normal(n),
        rng.standard_normal(n),
        rng.standard_t(2, n),
        np.where((t // 7) % 2 == 0, 1.0, -1.0) + 0.2 * rng.standard_normal(n),
        np.sqrt(t + 1.0),
        np.tanh((t - n / 2) / 5.0) + 0.05 * rng.standard_normal(n),
    ]
    return np.stack(out)


# ----------------------------------------------------------------------------- catalogue
def test_catalogue_default_and_metadata():
    cat = FAM.catalogue(CFG)
    names = [s.name for s in cat]
    assert len(names) == 52 >= 44 and len(set(names)) == len(names)
    assert len(FAM.selected(CFG)) == 52
    for s in cat:
        assert s.family == "temporal" and s.granularity == "trajectory_channel"
        assert s.description and s.units and s.convention and s.flag == "temporal.enabled"
        assert s.default and s.min_channels == 1 and s.min_frames >= 2
    assert [n for n in names if n.startswith("pacf")] == [f"pacf_lag_{k}" for k in range(1, 11)]
    assert sum(n.startswith("rolling_w") for n in names) == 18
    assert "ldbiased" in FAM.catalogue(CFG)[names.index("pacf_lag_1")].convention


def test_config_changes_catalogue():
    cfg = FAM.config_model(pacf_max_lag=3, rolling_window_fractions=(0.1, 0.025))
    names = [s.name for s in FAM.catalogue(cfg)]
    assert [n for n in names if n.startswith("pacf")] == ["pacf_lag_1", "pacf_lag_2", "pacf_lag_3"]
    assert "rolling_w10_mean" in names and "rolling_w2p5_std_variability" in names and "rolling_w5_mean" not in names
    assert len(names) == 24 + 12 + 3
    sel = FAM.selected(FAM.config_model(exclude=("smoothness", "pacf_lag_10")))
    assert len(sel) == 50 and "smoothness" not in {s.name for s in sel}
    assert FAM.unknown_names(FAM.config_model(exclude=("nope",))) == ["nope"]
    assert FAM.selected(FAM.config_model(enabled=False)) == []
    # min_frames follow the parameters
    spec = {s.name: s for s in FAM.catalogue(FAM.config_model(pacf_max_lag=20, divergence_horizon=9))}
    assert spec["pacf_lag_20"].min_frames == 42 and spec["divergence_rate"].min_frames == 9 + 2 + 6
    for bad in (
        {"rolling_window_fractions": (0.7,)},
        {"rolling_window_fractions": (0.05, 0.0500000001)},
        {"pacf_max_lag": 0},
        {"bogus": 1},
        {"event_threshold_std": -1.0},
    ):
        with pytest.raises(ValidationError):
            FAM.config_model(**bad)


# ----------------------------------------------------------------------------- shapes
def test_shapes_dtype_subset():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((3, 2, 40)).cumsum(-1)
    x = fields(s, amp=np.abs(s) + 0.1).to(torch.float64)
    out = run(x)
    assert set(ALL) <= set(out)
    for v in out.values():
        assert v.shape == (3, 2) and v.dtype == torch.float32 and torch.isfinite(v).all()
    sub = run(x, names=["smoothness", "pacf_lag_2"])
    assert set(sub) == {"smoothness", "pacf_lag_2"}
    torch.testing.assert_close(sub["smoothness"], out["smoothness"])


# ----------------------------------------------------------------------------- memory: PACF / ACF
def test_pacf_matches_statsmodels_ldbiased():
    from statsmodels.tsa.stattools import pacf

    rng = np.random.default_rng(1)
    n = 250
    ser = np.stack(
        [
            ar2(1.3, -0.6, n, rng),
            ar1(0.5, n, rng),
            np.cumsum(rng.standard_normal(n)),
            np.sin(np.arange(n) / 4.0) + 0.3 * rng.standard_normal(n),
            logistic(n),
        ]
    )[:, None]
    x = fields(ser)
    out = run(x, names=[f"pacf_lag_{k}" for k in range(1, 11)])
    m = mean_series(x)
    for i in range(ser.shape[0]):
        ref = pacf(m[i, 0], nlags=10, method="ldbiased")[1:]
        got = np.array([out[f"pacf_lag_{k}"][i, 0].item() for k in range(1, 11)])
        np.testing.assert_allclose(got, ref, atol=2e-6)


def test_pacf_ar1_cutoff():
    rng = np.random.default_rng(2)
    n, phi = 2000, 0.7
    out = run(fields(ar1(phi, n, rng)[None, None]), names=[f"pacf_lag_{k}" for k in range(1, 11)])
    assert abs(out["pacf_lag_1"].item() - phi) < 0.04
    for k in range(2, 11):
        assert abs(out[f"pacf_lag_{k}"].item()) < 3 / math.sqrt(n)


def _acf_decay_ref(y, cap):
    y = y - y.mean()
    n = len(y)
    acov = np.array([np.dot(y[: n - k], y[k:]) / n for k in range(cap + 1)])
    rho = acov / acov[0]
    thr = math.exp(-1)
    for k in range(1, cap + 1):
        if rho[k] < thr:
            return k - 1 + (rho[k - 1] - thr) / (rho[k - 1] - rho[k])
    return float(cap)


def test_autocorr_decay_time_reference_and_ar1():
    rng = np.random.default_rng(3)
    ser = diverse_series(150, rng)[:, None]
    x = fields(ser)
    got = run(x, names=["autocorr_decay_time"])["autocorr_decay_time"][:, 0].numpy()
    m = mean_series(x)
    ref = np.array([_acf_decay_ref(m[i, 0], 50) for i in range(len(ser))])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # cap = min(autocorr_max_lag, Ts - 1): a linear ramp never decorrelates within 10 lags
    ramp = fields(np.arange(300.0)[None, None])
    cfg = FAM.config_model(autocorr_max_lag=10)
    assert run(ramp, cfg, ["autocorr_decay_time"])["autocorr_decay_time"].item() == 10.0
    # AR(1): decay time ~ -1 / ln(phi) (averaged over 6 realisations, 10 %)
    for phi in (0.5, 0.7, 0.9):
        s = np.stack([ar1(phi, 3000, rng) for _ in range(6)])[:, None]
        v = run(fields(s), names=["autocorr_decay_time"])["autocorr_decay_time"].mean().item()
        assert abs(v - (-1 / math.log(phi))) < 0.1 * (-1 / math.log(phi)), (phi, v)


# ----------------------------------------------------------------------------- divergence
def test_divergence_rate_logistic_decay_sine_and_nolds():
    t = np.arange(60)
    decays = np.stack([1 + 3 * r**t for r in (0.8, 0.9, 0.95)])
    out = run(fields(decays[:, None]), names=["divergence_rate"])["divergence_rate"][:, 0].numpy()
    np.testing.assert_allclose(out, np.log([0.8, 0.9, 0.95]), atol=0.01)
    ser = np.stack([logistic(1000), logistic(1000, 0.6), np.sin(2 * np.pi * np.arange(1000) / 37.3)])[:, None]
    x = fields(ser)
    got = run(x, names=["divergence_rate"])["divergence_rate"][:, 0].numpy()
    assert abs(got[0] - math.log(2)) < 0.05 and abs(got[1] - math.log(2)) < 0.05
    assert abs(got[2]) < 0.02
    # cross-check: nolds 0.6.2 Rosenstein (same embedding, Theiler window, horizon; exact NN search)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nolds
    m = mean_series(x)
    rng = np.random.default_rng(4)
    extra = np.stack([0.98 ** np.arange(400) * np.sin(2 * np.pi * np.arange(400) / 17.3), ar1(0.6, 400, rng)])[:, None]
    got2 = run(fields(extra), names=["divergence_rate"])["divergence_rate"][:, 0].numpy()
    m2 = mean_series(fields(extra))
    for y, g in [(m[0, 0], got[0]), (m[1, 0], got[1]), (m2[0, 0], got2[0]), (m2[1, 0], got2[1])]:
        ref = nolds.lyap_r(y, emb_dim=2, lag=1, min_tsep=1, trajectory_len=6, fit="poly")
        assert abs(g - ref) < 0.06, (g, ref)


# ----------------------------------------------------------------------------- shape of path
def test_monotone_series():
    t = np.arange(80.0)
    ser = np.stack([2 * t - 5, np.exp(0.02 * t), np.sqrt(t + 1), -np.log(t + 20)])[:, None]
    out = run(fields(ser))
    np.testing.assert_array_equal(out["regime_switches"][:, 0].numpy(), 0)
    assert (out["trend_strength"][:, 0] > 0.9).all()
    assert abs(out["trend_strength"][0, 0].item() - 1) < 1e-6 and abs(out["smoothness"][0, 0].item() - 1) < 1e-6
    assert abs(out["mean_trend_slope"][0, 0].item() - 2) < 1e-5
    assert out["detrended_variance"][0, 0].item() < 1e-6
    np.testing.assert_array_equal(out["num_zero_crossings"][:, 0].numpy(), 1)
    assert out["mean_final_initial_change"][0, 0].item() == pytest.approx((153 + 5) / (153 + 5), abs=1e-6)
    a, b = -math.log(20), -math.log(99)
    assert out["mean_final_initial_change"][3, 0].item() == pytest.approx((b - a) / (abs(a) + abs(b)), abs=1e-6)


def test_smoothness_bounds_and_alternating():
    n = 50
    alt = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    out = run(fields(np.stack([alt, np.zeros(n) + 3.0])[:, None]), names=["smoothness", "regime_switches"])
    assert out["smoothness"][0, 0].item() == pytest.approx(1 / (n - 1), abs=1e-6)
    assert out["smoothness"][1, 0].item() == 1.0  # constant
    assert out["regime_switches"][0, 0].item() == n - 2
    sm = run(fields(diverse_series(100, np.random.default_rng(5))[:, None]), names=["smoothness"])["smoothness"]
    assert ((sm >= 0) & (sm <= 1)).all()


def test_sine_frequency_period_amplitude():
    n, f, a = 200, 5 / 200, 1.5
    t = np.arange(n)
    ser = np.stack([3 + a * np.sin(2 * np.pi * f * t + 0.3), a * np.cos(2 * np.pi * 0.1 * t) + 0.01 * t])[:, None]
    out = run(fields(ser))
    assert out["temporal_dominant_frequency"][0, 0].item() == pytest.approx(f, abs=1e-7)
    assert out["oscillation_period"][0, 0].item() == pytest.approx(1 / f, abs=1e-4)
    assert out["oscillation_amplitude"][0, 0].item() == pytest.approx(a, rel=0.03)
    assert out["oscillation_power_fraction"][0, 0].item() > 0.95
    assert out["temporal_spectral_entropy"][0, 0].item() < 0.15
    assert out["temporal_dominant_frequency"][1, 0].item() == pytest.approx(0.1, abs=1e-7)
    assert out["oscillation_period"][1, 0].item() == pytest.approx(10.0, abs=1e-4)
    # ACF of a sine: cos(2 pi f k) = 1/e at k = acos(1/e) / (2 pi f) (biased ACF lowers it slightly)
    assert out["autocorr_decay_time"][0, 0].item() == pytest.approx(math.acos(math.exp(-1)) / (2 * np.pi * f), abs=0.3)
    # a straight line has no oscillation
    line = run(fields((0.5 * t - 2)[None, None]))
    assert line["temporal_dominant_frequency"].item() == 0 and line["oscillation_period"].item() == n
    # white noise: flat spectrum, high entropy
    noise = run(fields(np.random.default_rng(6).standard_normal((1, 1, 512))))
    assert noise["temporal_spectral_entropy"].item() > 0.85


def test_growth_rates_and_time_to_event():
    n = 41
    t = np.arange(n)
    gam = np.array([0.05, -0.04, 0.0])
    amp = np.exp(gam[:, None] * t)[:, None]  # spatial std e^{gamma t}, mean 0
    out = run(fields(np.zeros_like(amp), amp=amp))
    np.testing.assert_allclose(out["energy_growth_rate"][:, 0].numpy(), 2 * gam, atol=1e-5)
    np.testing.assert_allclose(out["variance_growth_rate"][:, 0].numpy(), 2 * gam, atol=1e-5)
    np.testing.assert_allclose(out["energy_growth_accel"][:, 0].numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(out["energy_log_ratio"][:, 0].numpy(), 2 * gam * (n - 1), atol=1e-4)
    # E = e^{2 gamma t}: doubling at the first t with 2 gamma t > ln 2, halving likewise
    t_dbl = math.floor(math.log(2) / (2 * 0.05)) + 1
    t_half = math.floor(math.log(2) / (2 * 0.04)) + 1
    assert out["time_to_energy_double"][0, 0].item() == pytest.approx(t_dbl / (n - 1))
    assert out["time_to_energy_half"][1, 0].item() == pytest.approx(t_half / (n - 1))
    assert out["time_to_energy_half"][0, 0].item() == 1.0 and out["time_to_energy_double"][2, 0].item() == 1.0
    # quadratic log-energy ln E = 2 c t^2 -> accel 4 c
    c = 1e-3
    q = run(fields(np.zeros((1, 1, n)), amp=np.exp(c * t**2)[None, None]), names=["energy_growth_accel"])
    assert q["energy_growth_accel"].item() == pytest.approx(4 * c, rel=1e-4)


# ----------------------------------------------------------------------------- numpy references
def _ref_sign_changes(d):
    last, k = 0, 0
    for v in d:
        s = np.sign(v)
        if s != 0:
            if last != 0 and s != last:
                k += 1
            last = s
    return k


def _ref_events(m, cfg):
    mu, sd = m.mean(), m.std()
    if sd <= 1e-12 * np.sqrt((m**2).mean()):
        return 0, 0, 0
    hi = m > mu + cfg.event_threshold_std * sd
    spikes = int(np.sum(hi[1:] & ~hi[:-1]))
    ab = m > mu + cfg.burst_threshold_std * sd
    bursts, run_len = 0, 0
    for v in list(ab) + [False]:
        if v:
            run_len += 1
        else:
            bursts += run_len >= cfg.burst_min_length
            run_len = 0
    return spikes, bursts, _ref_sign_changes(m - mu)


def _ref_time_to(m, e):
    n = len(m)
    sd = m.std()

    def first(c):
        idx = np.nonzero(c[1:])[0]
        return (idx[0] + 1) / (n - 1) if len(idx) else 1.0

    dev = np.abs(m - m[0])
    return [first(e < 0.5 * e[0]), first(e > 2 * e[0]), first(dev > 0.5 * sd), first(dev > 2 * sd)]


def test_events_switches_time_to_vs_reference():
    rng = np.random.default_rng(7)
    ser = diverse_series(120, rng)[:, None]
    amp = np.abs(diverse_series(120, rng))[:, None] + 0.1
    x = fields(ser, amp=amp)
    out = run(x)
    m, e, _ = (v.numpy() for v in ts.summary_series(x))
    for i in range(ser.shape[0]):
        sp, bu, zc = _ref_events(m[i, 0], CFG)
        assert out["num_spikes"][i, 0].item() == sp
        assert out["num_bursts"][i, 0].item() == bu
        assert out["num_zero_crossings"][i, 0].item() == zc
        assert out["regime_switches"][i, 0].item() == _ref_sign_changes(np.diff(m[i, 0]))
        got = [
            out[k][i, 0].item()
            for k in (
                "time_to_energy_half",
                "time_to_energy_double",
                "time_to_mean_shift_0p5std",
                "time_to_mean_shift_2std",
            )
        ]
        np.testing.assert_allclose(got, _ref_time_to(m[i, 0], e[i, 0]), rtol=1e-6)
    # hand-made: 3 isolated spikes, bursts of 4 and 5 frames (and a run of 2 that is not one)
    s = np.zeros(100)
    s[[10, 40, 70]] = 30.0
    s[20:24] = 8.0
    s[50:55] = 8.0
    s[80:82] = 8.0
    o = run(fields(s[None, None]), names=["num_spikes", "num_bursts"])
    assert o["num_spikes"].item() == 3 and o["num_bursts"].item() == 2 + 0  # spikes are single frames


def test_regime_switches_ignore_exact_zeros():
    s = np.array([0.0, 1, 1, 2, 2, 1, 1, 1, 3, 3])  # increments +,0,+,0,-,0,0,+,0
    assert run(fields(s[None, None]), names=["regime_switches"])["regime_switches"].item() == 2


def test_rolling_vs_numpy():
    from numpy.lib.stride_tricks import sliding_window_view

    rng = np.random.default_rng(8)
    ser = diverse_series(100, rng)[:, None]
    x = fields(ser)
    out = run(x)
    m = mean_series(x)
    for f in (0.05, 0.10, 0.20):
        w = max(2, int(math.floor(f * 100 + 1e-9)))
        win = sliding_window_view(m[:, 0], w, axis=-1)
        wm, wsd = win.mean(-1), win.std(-1)
        ref = {
            "mean": wm.mean(-1),
            "std": wsd.mean(-1),
            "max": win.max(-1).mean(-1),
            "min": win.min(-1).mean(-1),
            "mean_variability": wm.std(-1),
            "std_variability": wsd.std(-1),
        }
        tag = {0.05: "5", 0.10: "10", 0.20: "20"}[f]
        for st, r in ref.items():
            np.testing.assert_allclose(out[f"rolling_w{tag}_{st}"][:, 0].numpy(), r, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- short series, masking
@pytest.mark.parametrize("n_frames", [2, 3, 5, 9])
def test_short_series_masking_and_finite(n_frames):
    rng = np.random.default_rng(9)
    s = rng.standard_normal((4, 2, n_frames))
    s[1] = 1.0  # constant
    s[2] = 0.0  # zero field
    amp = np.abs(rng.standard_normal((4, 2, n_frames)))
    amp[1:3] = 0.0
    x = fields(s, amp=amp)
    cat = FAM.catalogue(CFG)
    ok = [sp.name for sp in cat if sp.mask_reason(2, n_frames) is None]
    masked = [sp for sp in cat if sp.mask_reason(2, n_frames) is not None]
    assert all("Ts >=" in sp.mask_reason(2, n_frames) for sp in masked)
    out = run(x, names=ok)
    for k in ok:
        assert torch.isfinite(out[k]).all(), k
    if n_frames == 2:
        assert set(ok) == {
            "energy_growth_rate",
            "variance_growth_rate",
            "mean_trend_slope",
            "energy_log_ratio",
            "mean_final_initial_change",
        }


def test_degenerate_fields_finite():
    n = 64
    x = torch.zeros(4, n, 1, 4, 4)
    x[1] = 2.5
    x[2] = 1e30 * torch.randn(n, 1, 4, 4)
    x[3, :, :, 0, 0] = torch.linspace(0, 1, n)[:, None]
    out = run(x)
    for k in ALL:
        assert torch.isfinite(out[k]).all(), k
    nan = x.clone()
    nan[0, 5, 0, 1, 1] = float("nan")
    got = run(nan)
    for k in ALL:  # a diverged (non-finite) trajectory gets NaN, the others are untouched
        assert torch.isnan(got[k][0]).all() and torch.equal(got[k][1:], out[k][1:]), k


def test_mean_at_rounding_level_is_constant():
    """A mean-conserving rollout: m(t) moves only at float32 rounding level of the field, so its
    features take the constant-series values instead of describing rounding noise."""
    rng = np.random.default_rng(12)
    n = 64
    amp = (1.0 + np.abs(rng.standard_normal(n)))[None, None]
    tiny = 1e-8 * rng.standard_normal((1, 1, n))
    out = run(fields(tiny, amp=amp))
    const = run(fields(np.zeros((1, 1, n)), amp=amp))
    for k in (
        "regime_switches",
        "num_zero_crossings",
        "num_spikes",
        "trend_strength",
        "pacf_lag_1",
        "divergence_rate",
        "temporal_dominant_frequency",
        "smoothness",
        "rolling_w10_std",
    ):
        assert out[k].item() == const[k].item(), k
    assert out["energy_growth_rate"].item() != 0.0  # the energy still moves


def test_batch_independence():
    rng = np.random.default_rng(10)
    s = diverse_series(90, rng)[:6].reshape(3, 2, 90)
    amp = np.abs(rng.standard_normal((3, 2, 90))) + 0.2
    x = fields(s, amp=amp)
    full = run(x)
    for i in range(3):
        one = run(x[i : i + 1])
        for k in ALL:
            torch.testing.assert_close(one[k], full[k][i : i + 1], rtol=1e-5, atol=1e-6)


def test_non_constant_over_diverse_series():
    rng = np.random.default_rng(11)
    ser = diverse_series(160, rng)[:, None]
    amp = np.abs(diverse_series(160, rng))[::-1][:, None] * 0.5 + 0.05
    out = run(fields(ser, amp=amp.copy()))
    for k in ALL:
        v = out[k]
        assert torch.isfinite(v).all(), k
        assert v.std() > 0, f"{k} constant over the diverse set"
