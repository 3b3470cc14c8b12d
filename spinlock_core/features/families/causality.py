"""Causality family: directed dependence between channels and time-arrow statistics.

Granularity ``trajectory``: ``x [S, Ts, C, H, W] -> [S]`` per feature.

Series: the spatial mean ``m_c(t) = mean_xy u_c`` of each channel (float64, ``t = 0 .. Ts-1`` in
steps), treated as constant where its temporal std is at float32 rounding level
(``<= 1e-6 sqrt(max_t mean_xy u_c^2)``; see ``_series.flatten_rounding_noise``).

Pair features run over channel pairs (they need ``C >= 2``): *ordered* pairs ``j -> i``
(source ``j``, target ``i``, ``C (C-1)`` of them) for transfer entropy and Granger, *unordered*
pairs for asymmetries. Single-series features are averaged over channels.
The spatial-flow features use the full fields.

Autoregressions are least-squares fits with an intercept on the z-scored series (z-scoring
changes no residual-sum-of-squares ratio), solved batched by the normal equations in float64
(:func:`~spinlock_core.features.families._series.ls_rss`). ``delta = 1e-12 * N`` (N fitted
points, z units) is added to residual sums in ratios so that perfectly predictable or constant
series give finite values. A trajectory with any non-finite value gets NaN for every feature.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from pydantic import Field

from spinlock_core.features.families import _series as ts
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.spec import FeatureSpec

__all__ = [
    "CausalityConfig",
    "CausalityFamily",
    "ordered_pairs",
    "pairwise_ar_rss",
    "lagged_corr_asymmetry",
    "spatial_flow",
]


class CausalityConfig(FamilyConfig):
    """Parameters of the causality family."""

    max_lag: int = Field(default=3, ge=1, le=20, description="lagged cross-correlation asymmetry at lags 1..max_lag")
    te_order: int = Field(
        default=1,
        ge=1,
        le=10,
        description="history length p of the Gaussian transfer entropy (AR order of both models)",
    )
    granger_order: int = Field(default=2, ge=1, le=10, description="AR order p of the Granger F test")
    pred_order: int = Field(
        default=2, ge=1, le=10, description="AR order p of the forward/backward prediction-error models"
    )


def ordered_pairs(c: int) -> tuple[list[int], list[int]]:
    """Ordered channel pairs ``(targets, sources)``; entries ``2q`` and ``2q+1`` are the two
    directions ``b -> a`` and ``a -> b`` of the ``q``-th unordered pair ``a < b``."""
    tgt, src = [], []
    for a, b in itertools.combinations(range(c), 2):
        tgt += [a, b]
        src += [b, a]
    return tgt, src


def pairwise_ar_rss(m: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Restricted and full AR(p) residual sums for every ordered pair of ``m [S, C, Ts]``.

    Restricted: ``z_i(t) ~ 1 + z_i(t-1..t-p)``; full: ``+ z_j(t-1..t-p)``, for ``t = p .. Ts-1``
    (``N = Ts - p`` points), ``z`` the z-scored series. Pairs as in :func:`ordered_pairs`.
    Returns ``(rss_restricted [S, P], rss_full [S, P], N)``.
    """
    z = ts.zscore(m)
    tgt, src = ordered_pairs(m.shape[1])
    target, lags = ts.lag_design(z, p)  # [S, C, N], [S, C, N, p]
    rss_r = ts.ls_rss(lags, target)[:, tgt]
    rss_f = ts.ls_rss(torch.cat([lags[:, tgt], lags[:, src]], dim=-1), target[:, tgt])
    return rss_r, rss_f, target.shape[-1]


def lagged_corr_asymmetry(m: torch.Tensor, lag: int) -> torch.Tensor:
    """``A_ab(lag) = corr(m_a(t), m_b(t+lag)) - corr(m_b(t), m_a(t+lag))`` for every unordered
    pair ``a < b`` of ``m [S, C, Ts]`` (Pearson over the ``Ts - lag`` overlapping frames, each
    segment centred on its own mean). Returns ``[S, P/2]``."""
    tgt, src = ordered_pairs(m.shape[1])
    a, b = tgt[1::2], src[1::2]  # a < b
    early, late = m[..., :-lag], m[..., lag:]
    return ts.pearson(early[:, a], late[:, b]) - ts.pearson(early[:, b], late[:, a])


def _central_diff(u: torch.Tensor, dim: int) -> torch.Tensor:
    """Periodic ``u[j+1] - u[j-1]`` along ``dim`` (-1 or -2), by slices (faster than two rolls).
    Twice :func:`~spinlock_core.features.ops.grad_xy`'s derivative; the factor does not matter
    for correlations."""
    g = torch.empty_like(u)
    n = u.shape[dim]
    torch.sub(u.narrow(dim, 2, n - 2), u.narrow(dim, 0, n - 2), out=g.narrow(dim, 1, n - 2))
    torch.sub(u.narrow(dim, 1, 1), u.narrow(dim, n - 1, 1), out=g.narrow(dim, 0, 1))
    torch.sub(u.narrow(dim, 0, 1), u.narrow(dim, n - 2, 1), out=g.narrow(dim, n - 1, 1))
    return g


def spatial_flow(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-averaged spatial correlations ``(cx, cy) [S, C]`` (float64) between the periodic
    gradient of ``u(t)`` (central differences along x = last axis and y) and the increment
    ``u(t+1) - u(t)``: Pearson over the ``H x W`` pixels, averaged over ``t = 0 .. Ts-2``.
    0 where the gradient or the centred increment is spatially constant (norm <= 1e-6 |u(t)|,
    float32 rounding level). Fields of more than ``1e15`` in
    magnitude are divided by their max first (correlations are scale-free). Frames are
    processed in cache-sized chunks of time steps."""
    xf = x.to(torch.float32)
    sc = ts.field_scale(xf)
    if bool((sc != 1).any()):
        xf = xf / sc
    n_s, n_t, n_c, h, w = x.shape
    if w < 3 or h < 3:
        z = torch.zeros(n_s, n_c, dtype=torch.float64, device=x.device)
        return z, z.clone()
    npix = h * w
    step = ts.chunk_fields(n_t - 1, n_s * n_c * npix, x.device)  # time steps per chunk (all samples at once)
    acc: list[list[torch.Tensor]] = [[], []]  # [x, y] correlation chunks, each [S, chunk, C]
    for t0 in range(0, n_t - 1, step):
        t1 = min(t0 + step, n_t - 1)
        u = xf[:, t0:t1]
        d = xf[:, t0 + 1 : t1 + 1] - u
        d.sub_(d.mean(dim=(-2, -1), keepdim=True))
        dn = torch.linalg.vector_norm(d, dim=(-2, -1)).to(torch.float64)
        tiny = 1e-6 * torch.linalg.vector_norm(u, dim=(-2, -1)).to(torch.float64)  # float32 rounding level
        for k, dim in enumerate((-1, -2)):
            g = _central_diff(u, dim)
            gm = g.mean(dim=(-2, -1)).to(torch.float64)
            gv = torch.linalg.vector_norm(g, dim=(-2, -1)).to(torch.float64).square() - npix * gm * gm
            cov = g.mul_(d).sum(dim=(-2, -1)).to(torch.float64)  # sum (g - gbar) * d = sum g * d as sum d = 0
            den = (gv.clamp_min(0.0)).sqrt() * dn
            ok = (den > 0) & (dn > tiny) & (gv.clamp_min(0.0).sqrt() > tiny)
            acc[k].append(
                torch.where(ok, cov / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den)).clamp(
                    -1.0, 1.0
                )
            )
    cx, cy = (torch.cat(a, dim=1).mean(1) for a in acc)
    return cx, cy


@register_family
class CausalityFamily(Family[CausalityConfig]):
    """Lead-lag asymmetry, transfer entropy, Granger, time irreversibility, spatial flow."""

    name = "causality"
    granularity = "trajectory"
    config_model = CausalityConfig
    description = (
        "Directed dependence between the channels' spatial-mean series (lagged cross-correlation "
        "asymmetry, Gaussian transfer entropy, Granger F), time-arrow statistics of each channel "
        "(increment skewness, reversal asymmetry, forward vs backward prediction error) and the "
        "correlation of spatial gradients with temporal increments (spatial information flow)."
    )

    def catalogue(self, cfg: CausalityConfig) -> list[FeatureSpec]:
        flag = "causality.enabled"

        def spec(name: str, desc: str, units: str, conv: str, min_frames: int, min_channels: int = 1) -> FeatureSpec:
            return FeatureSpec(
                name=name,
                family=self.name,
                granularity=self.granularity,
                description=desc,
                units=units,
                convention=conv,
                flag=flag,
                min_frames=min_frames,
                min_channels=min_channels,
            )

        L, pt, pg, pp = cfg.max_lag, cfg.te_order, cfg.granger_order, cfg.pred_order
        lag_conv = "Pearson correlations over the Ts - lag overlapping frames, each segment centred on its own mean; A is antisymmetric, so |A| is aggregated"
        out: list[FeatureSpec] = []
        for k in range(1, L + 1):
            out.append(
                spec(
                    f"causality_lag_asym_mean_lag{k}",
                    f"Mean over unordered channel pairs of |A_ab({k})|, A_ab(lag) = corr(m_a(t), m_b(t+lag)) - corr(m_b(t), m_a(t+lag)).",
                    "dimensionless",
                    lag_conv,
                    k + 4,
                    2,
                )
            )
            out.append(
                spec(
                    f"causality_lag_asym_max_lag{k}",
                    f"Max over unordered channel pairs of |A_ab({k})| (lead-lag asymmetry of the spatial means), in [0, 2].",
                    "dimensionless",
                    lag_conv,
                    k + 4,
                    2,
                )
            )
        out += [
            spec(
                "causality_lag_asym_dominant_lag",
                f"Lag in 1..{L} with the largest mean |A_ab(lag)| over pairs (the dominant lead-lag).",
                "steps",
                lag_conv + "; ties -> smallest lag",
                L + 4,
                2,
            ),
            spec(
                "causality_time_irreversibility",
                "Skewness of the increments of m_c: <dm^3> / <dm^2>^(3/2) (raw moments, dm = m(t+1) - m(t)), mean over channels; flips sign under time reversal.",
                "dimensionless",
                "0 for a constant channel",
                4,
            ),
            spec(
                "causality_time_reversal_asymmetry",
                "Time-reversal asymmetry statistic mean_t(z(t+2)^2 z(t+1) - z(t+1) z(t)^2) of the z-scored m_c (lag 1), mean over channels; exactly antisymmetric under reversal.",
                "dimensionless",
                "population z-score; 0 for a constant channel",
                4,
            ),
            spec(
                "causality_transfer_entropy_mean",
                f"Mean over ordered channel pairs j -> i of the Gaussian transfer entropy TE = 0.5 ln(RSS_restricted / RSS_full) with history {pt}.",
                "nats",
                f"closed form for Gaussian processes (Barnett-Barrett-Seth): least-squares AR({pt}) of z_i on its own past (restricted) and on its and z_j's past (full), intercept included; ratio (RSS + 1e-12 N), clamped >= 0",
                3 * pt + 3,
                2,
            ),
            spec(
                "causality_transfer_entropy_max",
                f"Max over ordered channel pairs of the Gaussian transfer entropy (history {pt}).",
                "nats",
                "as causality_transfer_entropy_mean",
                3 * pt + 3,
                2,
            ),
            spec(
                "causality_transfer_entropy_net_flow",
                "Mean over unordered pairs of |TE(a -> b) - TE(b -> a)|: net directed information flow.",
                "nats",
                "as causality_transfer_entropy_mean",
                3 * pt + 3,
                2,
            ),
            spec(
                "causality_granger_f_mean",
                f"Mean over ordered channel pairs j -> i of the Granger F statistic, order {pg}: F = ((RSS_r - RSS_f) / p) / (RSS_f / (N - 2p - 1)), N = Ts - p.",
                "dimensionless",
                f"least-squares AR({pg}) with intercept (statsmodels grangercausalitytests ssr_ftest for column order [effect, cause]); RSS_f + 1e-12 N in the denominator",
                3 * pg + 3,
                2,
            ),
            spec(
                "causality_granger_f_max",
                f"Max over ordered channel pairs of the Granger F statistic (order {pg}).",
                "dimensionless",
                "as causality_granger_f_mean",
                3 * pg + 3,
                2,
            ),
            spec(
                "causality_granger_asymmetry",
                "Mean over unordered pairs of |F(a -> b) - F(b -> a)| / (F(a -> b) + F(b -> a)), in [0, 1]: directional dominance of Granger causality.",
                "dimensionless",
                "0 when both F are 0",
                3 * pg + 3,
                2,
            ),
            spec(
                "causality_spatial_flow_magnitude",
                "Coherent spatial information flow: sqrt(cx^2 + cy^2), cx = time-mean Pearson corr(du/dx(t), u(t+1) - u(t)) over pixels (cy likewise), mean over channels.",
                "dimensionless",
                "periodic central differences (per pixel), correlations over H x W, averaged over t = 0..Ts-2 before the norm; in [0, sqrt 2]",
                2,
            ),
            spec(
                "causality_spatial_flow_anisotropy",
                "(|cx| - |cy|) / (|cx| + |cy|) of the time-mean gradient-increment correlations, mean over channels, in [-1, 1] (+1: flow along x only).",
                "dimensionless",
                "0 when cx = cy = 0",
                2,
            ),
            spec(
                "causality_pred_error_asymmetry",
                f"0.5 ln(RSS_backward / RSS_forward) of a quadratic autoregression of order {pp} (z(t) ~ 1 + lags + lags^2) predicting z(t) from its past vs from its future, mean over channels; > 0 when the past predicts better (irreversible dynamics).",
                "nats",
                "least squares on the z-scored m_c; backward = forward fit of the reversed series; (RSS + 1e-12 N); exactly negated by time reversal",
                3 * pp + 3,
            ),
            spec(
                "causality_pred_error_asymmetry_linear",
                f"As causality_pred_error_asymmetry with a linear AR({pp}) (z(t) ~ 1 + lags): sensitive to non-stationarity and edge effects rather than nonlinearity.",
                "nats",
                "as causality_pred_error_asymmetry",
                3 * pp + 3,
            ),
            spec(
                "causality_ar_residual_fraction",
                f"Unexplained variance RSS / SS_tot of the forward linear AR({pp}) fit of z(t), mean over channels, in [0, 1] (0: perfectly predictable).",
                "dimensionless",
                "SS_tot about the mean of the fitted targets; 0 for a constant channel",
                3 * pp + 3,
            ),
        ]
        return out

    def compute(self, x: torch.Tensor, cfg: CausalityConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        want = set(names)
        n_c = x.shape[2]
        m, energy, _ = ts.summary_series(x)  # [S, C, Ts]
        m = ts.flatten_rounding_noise(m, energy)
        res: dict[str, torch.Tensor] = {}

        def need(prefix: str) -> bool:
            return any(n.startswith(prefix) for n in want)

        if n_c >= 2 and need("causality_lag_asym"):
            means = []
            for k in range(1, cfg.max_lag + 1):
                a = lagged_corr_asymmetry(m, k).abs()
                res[f"causality_lag_asym_mean_lag{k}"] = a.mean(-1)
                res[f"causality_lag_asym_max_lag{k}"] = a.amax(-1)
                means.append(a.mean(-1))
            res["causality_lag_asym_dominant_lag"] = (torch.argmax(torch.stack(means, -1), dim=-1) + 1).to(m.dtype)

        if need("causality_time_"):
            d = m.diff(dim=-1)
            m2 = d.square().mean(-1)
            m3 = (d * d * d).mean(-1)
            ok = m2 > 0
            m2s = torch.where(ok, m2, torch.ones_like(m2))  # m2^1.5 as a product: pow is batch-dependent
            res["causality_time_irreversibility"] = torch.where(ok, m3 / (m2s * m2s.sqrt()), torch.zeros_like(m2)).mean(
                -1
            )
            z = ts.zscore(m)
            res["causality_time_reversal_asymmetry"] = (
                (z[..., 2:].square() * z[..., 1:-1] - z[..., 1:-1] * z[..., :-2].square()).mean(-1).mean(-1)
            )

        if n_c >= 2 and need("causality_transfer_entropy"):
            rr, rf, n = pairwise_ar_rss(m, cfg.te_order)
            delta = 1e-12 * n
            te = (0.5 * torch.log((rr + delta) / (rf + delta))).clamp_min(0.0)
            res["causality_transfer_entropy_mean"] = te.mean(-1)
            res["causality_transfer_entropy_max"] = te.amax(-1)
            res["causality_transfer_entropy_net_flow"] = (te[:, 0::2] - te[:, 1::2]).abs().mean(-1)

        if n_c >= 2 and need("causality_granger"):
            p = cfg.granger_order
            rr, rf, n = pairwise_ar_rss(m, p)
            df = max(n - 2 * p - 1, 1)
            f = ((rr - rf).clamp_min(0.0) / p) / ((rf + 1e-12 * n) / df)
            res["causality_granger_f_mean"] = f.mean(-1)
            res["causality_granger_f_max"] = f.amax(-1)
            fa, fb = f[:, 0::2], f[:, 1::2]
            tot = fa + fb
            res["causality_granger_asymmetry"] = torch.where(
                tot > 0, (fa - fb).abs() / torch.where(tot > 0, tot, torch.ones_like(tot)), torch.zeros_like(tot)
            ).mean(-1)

        if need("causality_spatial_flow"):
            cx, cy = spatial_flow(x)
            res["causality_spatial_flow_magnitude"] = (cx.square() + cy.square()).sqrt().mean(-1)
            s = cx.abs() + cy.abs()
            res["causality_spatial_flow_anisotropy"] = torch.where(
                s > 1e-12, (cx.abs() - cy.abs()) / s.clamp_min(1e-12), torch.zeros_like(s)
            ).mean(-1)

        if need("causality_pred_error") or need("causality_ar_residual"):
            p = cfg.pred_order
            z = ts.zscore(m)
            tf, lf = ts.lag_design(z, p)
            tb, lb = ts.lag_design(z, p, reverse=True)
            n = tf.shape[-1]
            delta = 1e-12 * n
            lin_f, lin_b = ts.ls_rss(lf, tf), ts.ls_rss(lb, tb)
            q_f = ts.ls_rss(torch.cat([lf, lf.square()], -1), tf)
            q_b = ts.ls_rss(torch.cat([lb, lb.square()], -1), tb)
            res["causality_pred_error_asymmetry"] = (0.5 * torch.log((q_b + delta) / (q_f + delta))).mean(-1)
            res["causality_pred_error_asymmetry_linear"] = (0.5 * torch.log((lin_b + delta) / (lin_f + delta))).mean(-1)
            sst = (tf - tf.mean(-1, keepdim=True)).square().sum(-1)
            frac = torch.where(
                sst > 1e-12 * n, lin_f / torch.where(sst > 0, sst, torch.ones_like(sst)), torch.zeros_like(sst)
            )
            res["causality_ar_residual_fraction"] = frac.clamp(0.0, 1.0).mean(-1)

        bad = ~torch.isfinite(m).all(-1).all(-1)  # diverged (NaN/inf) input -> NaN
        return {
            k: ts.to_output(torch.where(bad, torch.full_like(v, float("nan")), v)) for k, v in res.items() if k in want
        }
