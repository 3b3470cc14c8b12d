"""nonlinear family: RQA vs pyunicorn, permutation entropy vs antropy, correlation dimension vs nolds."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.features.families import _nonlinear_util as nu
from spinlock_core.features.families.nonlinear import NonlinearConfig, spatial_mean_series

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import antropy
    import nolds
    from pyunicorn.timeseries import RecurrencePlot

FAM = FAMILY_REGISTRY["nonlinear"]
CFG = NonlinearConfig()
DEFAULT = [s.name for s in FAM.selected(CFG)]
ALL = [s.name for s in FAM.catalogue(CFG)]
RQA_KEYS = {  # feature -> pyunicorn accessor (before the family's normalisation)
    "rqa_recurrence_rate": lambda rp, lm, vm: rp.recurrence_rate(),
    "rqa_determinism": lambda rp, lm, vm: rp.determinism(l_min=lm),
    "rqa_laminarity": lambda rp, lm, vm: rp.laminarity(v_min=vm),
    "rqa_diag_entropy": lambda rp, lm, vm: rp.diag_entropy(l_min=lm),
    "rqa_trapping_time": lambda rp, lm, vm: rp.trapping_time(v_min=vm),
    "rqa_max_diag_norm": lambda rp, lm, vm: rp.max_diaglength() / (rp.N - 1),
    "rqa_avg_diag_length": lambda rp, lm, vm: rp.average_diaglength(l_min=lm),
    "rqa_max_vert_norm": lambda rp, lm, vm: rp.max_vertlength() / rp.N,
}


# --------------------------------------------------------------------------- series
def _ar1(rng, n, phi=0.8):
    e = rng.standard_normal(n)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def _logistic(n, r=3.9, x0=0.4):
    x = np.empty(n)
    x[0] = x0
    for i in range(1, n):
        x[i] = r * x[i - 1] * (1 - x[i - 1])
    return x


def _sine(rng, n, period=23.7, noise=0.1):
    return np.sin(2 * np.pi * np.arange(n) / period) + noise * rng.standard_normal(n)


def _traj(series: np.ndarray, hw: int = 4) -> torch.Tensor:
    """[B, T] series -> trajectories [B, T, 1, hw, hw] of uniform fields (spatial mean == series exactly)."""
    s = torch.as_tensor(np.asarray(series, dtype=np.float32))
    if s.ndim == 1:
        s = s[None]
    return s[:, :, None, None, None].expand(-1, -1, 1, hw, hw).contiguous()


def _three(n=200, seed=1):
    rng = np.random.default_rng(seed)
    return {"ar1": _ar1(rng, n), "logistic": _logistic(n), "sine": _sine(rng, n)}


def _rp(s32, dim, tau, metric, mode, eps):
    kw = {"std": {"threshold_std": eps}, "recurrence_rate": {"recurrence_rate": eps}}.get(mode)
    if mode == "max_distance":
        emb = RecurrencePlot.embed_time_series(s32, dim, tau).astype(np.float64)
        diff = np.abs(emb[:, None, :] - emb[None, :, :])
        d = {"euclidean": np.sqrt((diff**2).sum(-1)), "supremum": diff.max(-1), "manhattan": diff.sum(-1)}[metric]
        kw = {"threshold": eps * d.max()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RecurrencePlot(s32, dim=dim, tau=tau, metric=metric, silence_level=2, **kw)


# --------------------------------------------------------------------------- catalogue / config
def test_catalogue_counts_metadata_and_min_frames():
    cat = FAM.catalogue(CFG)
    assert len(DEFAULT) == 8 and len(cat) == 10
    assert [s.name for s in cat if not s.default] == ["rqa_avg_diag_length", "rqa_max_vert_norm"]
    for s in cat:
        assert s.granularity == "trajectory_channel" and s.description and s.units and s.convention and s.flag
    mf = {s.name: s.min_frames for s in cat}
    assert mf["rqa_determinism"] == 12  # 10 embedded points with dim 3, delay 1
    assert mf["correlation_dimension"] == 13  # dim 4
    assert mf["permutation_entropy"] == 12  # max(10, 3!) patterns of order 3
    cfg = NonlinearConfig(subsample_factor=2, rqa_embedding_dim=5, perm_order=4)
    mf2 = {s.name: s.min_frames for s in FAM.catalogue(cfg)}
    assert mf2["rqa_determinism"] == (10 + 4 - 1) * 2 + 1
    assert mf2["permutation_entropy"] == (24 + 3 - 1) * 2 + 1
    sel = FAM.selected(NonlinearConfig(include=("rqa_avg_diag_length",), exclude=("correlation_dimension",)))
    assert [s.name for s in sel] == [n for n in DEFAULT if n != "correlation_dimension"] + ["rqa_avg_diag_length"]


@pytest.mark.parametrize(
    "bad",
    [
        {"rqa_threshold_mode": "recurrence_rate", "rqa_threshold": 1.5},
        {"corr_dim_r_min": 1.0, "corr_dim_r_max": 0.5},
        {"max_points": 32, "rqa_embedding_dim": 10, "rqa_delay": 5},
        {"rqa_metric": "cosine"},
        {"perm_order": 9},
        {"rqa_l_min": 1},
        {"unknown": 3},
    ],
)
def test_config_validation(bad):
    with pytest.raises(ValidationError):
        NonlinearConfig(**bad)


def test_subsampling_rule():
    assert nu.effective_factor(101, 1, 256) == 1 and nu.subsampled_length(101, 1, 256) == 101
    assert nu.effective_factor(600, 1, 256) == 3 and nu.subsampled_length(600, 1, 256) == 200
    assert nu.effective_factor(600, 5, 256) == 5
    rng = np.random.default_rng(5)
    s = _ar1(rng, 600)
    capped = FAM.compute(_traj(s), CFG, DEFAULT)
    explicit = FAM.compute(_traj(s), NonlinearConfig(subsample_factor=3), DEFAULT)
    for nm in DEFAULT:
        torch.testing.assert_close(capped[nm], explicit[nm])
    pe = antropy.perm_entropy(s.astype(np.float32).astype(np.float64)[::3], order=3, delay=1, normalize=True)
    assert float(capped["permutation_entropy"]) == pytest.approx(pe, abs=1e-6)


# --------------------------------------------------------------------------- RQA vs pyunicorn
@pytest.mark.parametrize(
    "mode,eps,metric,dim,tau,lmin,vmin",
    [
        ("std", 0.5, "euclidean", 3, 1, 2, 2),  # the defaults
        ("std", 0.8, "supremum", 3, 2, 2, 2),
        ("recurrence_rate", 0.1, "euclidean", 2, 1, 2, 2),
        ("max_distance", 0.15, "manhattan", 4, 1, 3, 3),
    ],
)
def test_rqa_matches_pyunicorn(mode, eps, metric, dim, tau, lmin, vmin):
    cfg = NonlinearConfig(
        rqa_threshold_mode=mode,
        rqa_threshold=eps,
        rqa_metric=metric,
        rqa_embedding_dim=dim,
        rqa_delay=tau,
        rqa_l_min=lmin,
        rqa_v_min=vmin,
    )
    series = _three()
    x = torch.cat([_traj(s) for s in series.values()])
    out = FAM.compute(x, cfg, list(RQA_KEYS))
    for i, (name, s) in enumerate(series.items()):
        rp = _rp(s.astype(np.float32), dim, tau, metric, mode, eps)
        for feat, ref in RQA_KEYS.items():
            expect = float(ref(rp, lmin, vmin))
            assert float(out[feat][i, 0]) == pytest.approx(expect, rel=1e-5, abs=1e-6), (name, feat)
        assert 0.0 < float(out["rqa_recurrence_rate"][i, 0]) < 1.0


def _rqa_reference(r: np.ndarray, l_min: int, v_min: int, w: int) -> dict[str, float]:
    """Independent loop implementation of RQA with a Theiler window (band |i-j| < w removed)."""
    n = r.shape[0]
    r = r.copy()
    ii, jj = np.indices(r.shape)
    if w > 0:
        r[np.abs(ii - jj) < w] = False
    rr = r.sum() / (np.abs(ii - jj) >= w).sum()

    def runs(seq):
        out, k = [], 0
        for v in list(seq) + [False]:
            if v:
                k += 1
            elif k:
                out.append(k)
                k = 0
        return out

    diag = [length for k in range(max(1, w), n) for length in runs(np.diagonal(r, -k))] * 2
    vert = [length for j in range(n) for length in runs(r[:, j])]
    dl = [x for x in diag if x >= l_min]
    vl = [x for x in vert if x >= v_min]
    det = sum(dl) / sum(diag) if diag else 0.0
    lam = sum(vl) / sum(vert) if vert else 0.0
    if dl:
        _, c = np.unique(dl, return_counts=True)
        p = c / c.sum()
        entr = float(-(p * np.log(p)).sum())
    else:
        entr = 0.0
    return {
        "rr": rr,
        "det": det,
        "lam": lam,
        "entr": entr,
        "tt": np.mean(vl) if vl else 0.0,
        "l_max": max(diag, default=0),
        "v_max": max(vert, default=0),
    }


@pytest.mark.parametrize("w", [0, 1, 3])
def test_rqa_theiler_window_against_loop_reference(w):
    rng = np.random.default_rng(7)
    series = np.stack([_ar1(rng, 60, 0.9), _logistic(60, 3.7), _sine(rng, 60, 11.0, 0.05)])
    x = torch.tensor(series)
    got = nu.rqa(x, 3, 1, "std", 0.6, "euclidean", theiler=w, l_min=2, v_min=2)
    r = nu.recurrence_matrix(x, 3, 1, "std", 0.6, "euclidean").numpy()
    for b in range(3):
        ref = _rqa_reference(r[b], 2, 2, w)
        for k, v in ref.items():
            assert float(got[k][b]) == pytest.approx(v, rel=1e-9, abs=1e-12), (b, k)


def test_constant_and_near_constant_series():
    n = 50
    const = np.full(n, 0.37)
    jitter = 0.37 + 1e-9 * np.random.default_rng(0).standard_normal(n)  # below constant_rtol * RMS
    out = FAM.compute(_traj(np.stack([const, jitter])), CFG, ALL)
    ne = n - 2
    for b in range(2):
        assert float(out["rqa_recurrence_rate"][b, 0]) == 1.0
        assert float(out["rqa_laminarity"][b, 0]) == 1.0
        assert float(out["rqa_max_diag_norm"][b, 0]) == 1.0
        assert float(out["rqa_trapping_time"][b, 0]) == ne
        assert float(out["permutation_entropy"][b, 0]) == 0.0
        assert float(out["correlation_dimension"][b, 0]) == 0.0
    # pyunicorn with a positive fixed threshold on a constant series: same line statistics
    rp = _rp(const.astype(np.float32), 3, 1, "euclidean", "max_distance", 0.0)  # threshold 0 -> empty R in pyunicorn
    assert rp.recurrence_rate() == 0.0  # (documented deviation: we raise a zero threshold to the smallest double)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rp = RecurrencePlot(const.astype(np.float32), dim=3, tau=1, metric="euclidean", threshold=1.0, silence_level=2)
    assert float(out["rqa_determinism"][0, 0]) == pytest.approx(rp.determinism(l_min=2), abs=1e-6)
    assert float(out["rqa_diag_entropy"][0, 0]) == pytest.approx(rp.diag_entropy(l_min=2), abs=1e-5)
    assert float(out["rqa_determinism"][0, 0]) == pytest.approx(1 - 2 / (ne * (ne - 1)), abs=1e-6)


# --------------------------------------------------------------------------- permutation entropy
def test_permutation_entropy_analytic_values():
    t = np.arange(3000)
    sine = torch.tensor(np.sin(2 * np.pi * t / 100))[None]
    assert float(nu.permutation_entropy(sine, 3, 1)) == pytest.approx(0.4463, abs=1e-4)  # antropy docs / anchors
    assert float(nu.permutation_entropy(torch.arange(1000.0, dtype=torch.float64)[None], 3, 1)) == 0.0
    assert float(nu.permutation_entropy(-torch.arange(1000.0, dtype=torch.float64)[None], 3, 1)) == 0.0
    noise = torch.tensor(np.random.default_rng(0).standard_normal((1, 3000)))
    assert float(nu.permutation_entropy(noise, 3, 1)) == pytest.approx(1.0, abs=5e-3)


@pytest.mark.parametrize("order,delay", [(3, 1), (4, 1), (3, 2), (5, 1)])
def test_permutation_entropy_matches_antropy(order, delay):
    series = _three(n=250, seed=3)
    series["ties"] = np.round(_sine(np.random.default_rng(1), 250, 17.0, 0.3), 1)  # many ties
    cfg = NonlinearConfig(perm_order=order, perm_delay=delay)
    out = FAM.compute(torch.cat([_traj(s) for s in series.values()]), cfg, ["permutation_entropy"])
    for i, s in enumerate(series.values()):
        ref = antropy.perm_entropy(s.astype(np.float32).astype(np.float64), order=order, delay=delay, normalize=True)
        assert float(out["permutation_entropy"][i, 0]) == pytest.approx(ref, abs=1e-6)


# --------------------------------------------------------------------------- correlation dimension
def _rvals(m: np.ndarray, cfg: NonlinearConfig) -> np.ndarray:
    sd = np.std(m, ddof=1)
    return np.exp(np.linspace(np.log(cfg.corr_dim_r_min), np.log(cfg.corr_dim_r_max), cfg.corr_dim_num_radii)) * sd


@pytest.mark.parametrize("emb_dim", [2, 4])
def test_correlation_dimension_matches_nolds_with_self_pairs(emb_dim):
    cfg = NonlinearConfig(corr_dim_embedding_dim=emb_dim, corr_dim_self_pairs=True)
    series = _three(n=220, seed=4)
    x = torch.cat([_traj(s) for s in series.values()])
    out = FAM.compute(x, cfg, ["correlation_dimension"])
    m = spatial_mean_series(x).numpy()
    for i, name in enumerate(series):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = nolds.corr_dim(m[i], emb_dim, rvals=_rvals(m[i], cfg), fit="poly")
        assert float(out["correlation_dimension"][i, 0]) == pytest.approx(ref, abs=1e-5), name


def test_correlation_dimension_default_excludes_self_pairs():
    cfg = NonlinearConfig()
    series = _three(n=220, seed=6)
    x = torch.cat([_traj(s) for s in series.values()])
    out = FAM.compute(x, cfg, ["correlation_dimension"])
    m = spatial_mean_series(x).numpy()
    d = cfg.corr_dim_embedding_dim
    for i, name in enumerate(series):
        emb = np.stack([m[i][j : len(m[i]) - d + 1 + j] for j in range(d)], axis=1)
        dist = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1))[np.triu_indices(len(emb), 1)]
        r = _rvals(m[i], cfg)
        c = np.array([(dist <= ri).mean() for ri in r])
        keep = c > 0
        ref = np.polyfit(np.log(r[keep]), np.log(c[keep]), 1)[0]
        assert float(out["correlation_dimension"][i, 0]) == pytest.approx(ref, abs=1e-5), name


def test_correlation_dimension_known_attractors():
    rng = np.random.default_rng(0)

    def cd(s, dim, lo, hi):
        x = torch.tensor(s)[None]
        sd = x.std(-1, correction=1)
        r = torch.exp(torch.linspace(math.log(lo), math.log(hi), 16, dtype=torch.float64))[None] * sd[:, None]
        return float(nu.correlation_dimension(x, dim, 1, r))

    assert cd(np.sin(2 * np.pi * np.arange(1000) / 37.3), 4, 0.05, 0.5) == pytest.approx(1.0, abs=0.1)  # limit cycle
    assert cd(_logistic(1000, 4.0, 0.3), 2, 0.05, 0.5) == pytest.approx(1.0, abs=0.15)  # 1-D attractor
    noise = rng.standard_normal(1000)
    for dim in (1, 2, 3):
        assert cd(noise, dim, 0.1, 1.0) == pytest.approx(dim, abs=0.15)  # fills the embedding space


# --------------------------------------------------------------------------- batch, contract, diversity
def _diverse(n=120):
    rng = np.random.default_rng(11)
    out = [_ar1(rng, n, phi) for phi in (0.2, 0.6, 0.95)]
    out += [np.cumsum(rng.standard_normal(n)) for _ in range(2)]
    out += [_logistic(n, r, 0.3) for r in (3.6, 3.83, 3.99)]
    out += [_sine(rng, n, p, nz) for p, nz in ((7.0, 0.05), (31.0, 0.3), (60.0, 0.0))]
    t = np.arange(n)
    out += [np.exp(-0.03 * t) + 0.01 * rng.standard_normal(n), np.exp(0.02 * t) * (1 + 0.05 * rng.standard_normal(n))]
    out += [np.sin(2 * np.pi * t**2 / (4 * n)) + 0.05 * rng.standard_normal(n)]  # chirp
    return np.stack(out)


def test_batch_independence_dtype_shape_and_nan():
    series = _diverse()[:5]
    x = _traj(series)
    x = torch.cat([x, 0.5 * x.flip(0)], dim=2)  # C = 2
    full = FAM.compute(x, CFG, ALL)
    for nm in ALL:
        assert full[nm].shape == (5, 2) and full[nm].dtype == torch.float32
    for i in range(5):
        one = FAM.compute(x[i : i + 1], CFG, ALL)
        for nm in ALL:
            torch.testing.assert_close(one[nm], full[nm][i : i + 1], msg=nm)
    out64 = FAM.compute(x.double(), CFG, ["permutation_entropy"])
    assert out64["permutation_entropy"].dtype == torch.float32
    bad = x.clone()
    bad[2, 7, 1, 0, 0] = float("inf")
    res = FAM.compute(bad, CFG, ALL)
    for nm in ALL:
        assert torch.isnan(res[nm][2, 1]) and torch.isfinite(res[nm][2, 0]), nm
        torch.testing.assert_close(res[nm][[0, 1, 3, 4]], full[nm][[0, 1, 3, 4]], msg=nm)
    with pytest.raises(ValueError):
        FAM.compute(x[:, :11], CFG, ["rqa_determinism"])


def test_every_feature_varies_and_is_finite_on_diverse_series():
    out = FAM.compute(_traj(_diverse()), CFG, ALL)
    for nm in ALL:
        v = out[nm][:, 0]
        assert torch.isfinite(v).all(), nm
        assert v.std() > 1e-3 * (1 + v.abs().mean()), f"{nm} is constant: {v}"
        assert len(torch.unique(v)) >= 5, nm
