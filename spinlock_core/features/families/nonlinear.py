"""``nonlinear``: recurrence quantification, correlation dimension and permutation entropy of
the spatial-mean series of each channel.

Granularity ``trajectory_channel``: ``x [S, Ts, C, H, W]`` -> each value ``[S, C]``.

The series is ``m(t) = mean_{H,W} u(t)`` (float64 mean), t = 0 .. Ts-1, **subsampled** as
``m[::f]`` with ``f = max(subsample_factor, ceil(Ts / max_points))`` (defaults 1 and 256: every
frame is used up to Ts = 256, so Ts = 101 keeps all 101 points). All measures run batched over the
``S * C`` series (:mod:`._nonlinear_util`).

* A series whose std over time is at most ``constant_rtol`` times the RMS of the channel's field
  values over the trajectory is treated as **exactly constant** (float rounding of a conserved
  mean is not dynamics): RR = LAM = 1, DET = 1 - 2/(n(n-1)) (the two corner points are lines
  of length 1), L_max/(n-1) = 1, trapping time = n f frames, diagonal entropy = ln(n - l_min)
  (one line of each length l_min..n-1 per triangle), correlation dimension = 0, permutation
  entropy = 0 (n = embedded points).
* RQA (pyunicorn 1.0 conventions by default, cross-checked in the tests): delay embedding of
  dimension ``rqa_embedding_dim`` and delay ``rqa_delay`` (subsampled steps); distances by
  ``rqa_metric`` (euclidean default; supremum, manhattan); ``R_ij = D_ij < thr`` with ``thr`` from
  ``rqa_threshold_mode``: ``"std"`` (default) ``rqa_threshold`` x the population std of the
  series (pyunicorn ``threshold_std``; default 0.5), ``"max_distance"`` that fraction of the
  largest distance, ``"recurrence_rate"`` the distance quantile giving that recurrence rate
  (pyunicorn ``recurrence_rate``); RR counts the line of identity, diagonal lines exclude it,
  a Theiler window ``rqa_theiler_window = w >= 1`` removes ``|i - j| < w`` everywhere;
  ``rqa_l_min`` / ``rqa_v_min`` minimal diagonal / vertical line lengths.
* Correlation dimension (Grassberger-Procaccia): euclidean delay embedding (``corr_dim_embedding_dim``,
  ``corr_dim_delay``); ``C(r)`` = fraction of distinct pairs closer than or at ``r`` at
  ``corr_dim_num_radii`` log-spaced radii from ``corr_dim_r_min`` to ``corr_dim_r_max`` times the
  sample std (ddof = 1) of the series; slope of ln C vs ln r by least squares over radii with
  C > 0 (nolds ``corr_dim(..., fit="poly")`` with the same ``rvals``; nolds 0.6.2 also counts the
  n self-pairs: ``corr_dim_self_pairs=True`` reproduces it exactly).
* Permutation entropy (Bandt-Pompe): order ``perm_order`` (3), delay ``perm_delay`` (1), ties
  ordered by position (antropy), Shannon entropy of the ordinal-pattern frequencies divided by
  ``ln(order!)`` (dimensionless in [0, 1], the same in any log base).

Lengths (trapping time, average diagonal line) are reported in **frames** (embedded points x f).
A (sample, channel) whose trajectory holds NaN/Inf gives NaN in every feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, model_validator

from spinlock_core.features.families import _nonlinear_util as nu
from spinlock_core.features.families._series import field_chunks
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.spec import FeatureSpec

__all__ = ["NonlinearConfig", "NonlinearFamily", "spatial_mean_series"]


class NonlinearConfig(FamilyConfig):
    """Parameters of the ``nonlinear`` family."""

    subsample_factor: int = Field(
        default=1, ge=1, le=100, description="keep every f-th frame of m(t) (at least; see max_points)"
    )
    max_points: int = Field(
        default=256,
        ge=32,
        le=2048,
        description="cap on the subsampled length: f = max(subsample_factor, ceil(Ts / max_points))",
    )
    constant_rtol: float = Field(
        default=1e-6,
        ge=0.0,
        le=1e-2,
        description="m(t) with std <= constant_rtol * RMS of the channel's values counts as exactly constant",
    )
    rqa_embedding_dim: int = Field(default=3, ge=1, le=10, description="RQA delay-embedding dimension")
    rqa_delay: int = Field(default=1, ge=1, le=20, description="RQA embedding delay (subsampled steps)")
    rqa_threshold_mode: Literal["std", "max_distance", "recurrence_rate"] = Field(
        default="std",
        description="how the recurrence threshold is set: std (x std of m), max_distance (x max D), "
        "recurrence_rate (fixed RR: rqa_recurrence_rate is then nearly constant by construction)",
    )
    rqa_threshold: float = Field(
        default=0.5,
        gt=0.0,
        le=10.0,
        description="threshold parameter: multiple of the std, fraction of the max distance, or target RR (<= 1)",
    )
    rqa_metric: Literal["euclidean", "supremum", "manhattan"] = Field(
        default="euclidean", description="phase-space distance"
    )
    rqa_theiler_window: int = Field(
        default=0,
        ge=0,
        le=50,
        description="exclude |i - j| < w from every RQA measure (0: pyunicorn, only DET etc. skip the LOI)",
    )
    rqa_l_min: int = Field(default=2, ge=2, le=20, description="minimal diagonal line length")
    rqa_v_min: int = Field(default=2, ge=2, le=20, description="minimal vertical line length")
    corr_dim_embedding_dim: int = Field(default=4, ge=1, le=10, description="correlation-dimension embedding dimension")
    corr_dim_delay: int = Field(
        default=1, ge=1, le=20, description="correlation-dimension embedding delay (subsampled steps)"
    )
    corr_dim_r_min: float = Field(
        default=0.1, gt=0.0, le=10.0, description="smallest radius in units of the series' std (ddof 1)"
    )
    corr_dim_r_max: float = Field(
        default=1.0, gt=0.0, le=10.0, description="largest radius in units of the series' std (ddof 1)"
    )
    corr_dim_num_radii: int = Field(
        default=16, ge=3, le=128, description="log-spaced radii between r_min and r_max (inclusive)"
    )
    corr_dim_self_pairs: bool = Field(
        default=False, description="count the n self-pairs in C(r) like nolds 0.6.2 (biased)"
    )
    perm_order: int = Field(default=3, ge=2, le=7, description="permutation-entropy order (pattern length)")
    perm_delay: int = Field(default=1, ge=1, le=20, description="permutation-entropy delay (subsampled steps)")

    @model_validator(mode="after")
    def _check(self) -> NonlinearConfig:
        if self.rqa_threshold_mode == "recurrence_rate" and self.rqa_threshold > 1.0:
            raise ValueError("rqa_threshold is a recurrence rate in (0, 1] when rqa_threshold_mode='recurrence_rate'")
        if self.corr_dim_r_min >= self.corr_dim_r_max:
            raise ValueError("corr_dim_r_min must be < corr_dim_r_max")
        need = max(_need_len(self, g) for g in ("rqa", "corr_dim", "perm"))
        if self.max_points < 2 * need:
            raise ValueError(
                f"max_points must be >= {2 * need} (twice the shortest usable series) for these embeddings"
            )
        return self


def _need_len(cfg: NonlinearConfig, group: str) -> int:
    """Shortest subsampled series a group of features accepts."""
    if group == "rqa":
        return nu.MIN_POINTS + (cfg.rqa_embedding_dim - 1) * cfg.rqa_delay
    if group == "corr_dim":
        return nu.MIN_POINTS + (cfg.corr_dim_embedding_dim - 1) * cfg.corr_dim_delay
    return max(nu.MIN_POINTS, math.factorial(cfg.perm_order)) + (cfg.perm_order - 1) * cfg.perm_delay


def _min_frames(cfg: NonlinearConfig, group: str) -> int:
    return (_need_len(cfg, group) - 1) * cfg.subsample_factor + 1


def spatial_mean_series(x: torch.Tensor) -> torch.Tensor:
    """``x [S, Ts, C, H, W] -> m [S*C, Ts]``: float64 spatial means, one series per (sample, channel)."""
    s, ts, c, h, w = x.shape
    m = torch.cat([u.mean(dim=(-2, -1), dtype=torch.float64) for u in field_chunks(x.reshape(-1, h, w))])
    return m.reshape(s, ts, c).permute(0, 2, 1).reshape(s * c, ts)


_RQA_CONV = (
    "pyunicorn conventions: delay embedding (rqa_embedding_dim, rqa_delay), rqa_metric distance, R = D < thr "
    "(rqa_threshold_mode, rqa_threshold), Theiler window rqa_theiler_window"
)
# name -> (group, result key, description, units, convention, default)
_FEATURES: dict[str, tuple[str, str, str, str, str, bool]] = {
    "rqa_recurrence_rate": (
        "rqa",
        "rr",
        "recurrence rate RR = sum R_ij / n^2 of the recurrence plot of m(t) (line of identity included)",
        "dimensionless",
        _RQA_CONV + "; = pyunicorn recurrence_rate()",
        True,
    ),
    "rqa_determinism": (
        "rqa",
        "det",
        "determinism DET = sum_{l >= l_min} l P(l) / sum_l l P(l) over diagonal lines (LOI excluded)",
        "dimensionless",
        _RQA_CONV + "; = pyunicorn determinism(l_min); 0 without off-diagonal recurrences",
        True,
    ),
    "rqa_laminarity": (
        "rqa",
        "lam",
        "laminarity LAM = sum_{v >= v_min} v P(v) / sum_v v P(v) over vertical lines (LOI included)",
        "dimensionless",
        _RQA_CONV + "; = pyunicorn laminarity(v_min)",
        True,
    ),
    "rqa_diag_entropy": (
        "rqa",
        "entr",
        "Shannon entropy -sum p(l) ln p(l) of the lengths l >= l_min of diagonal lines",
        "nats",
        _RQA_CONV + "; = pyunicorn diag_entropy(l_min); 0 without such lines",
        True,
    ),
    "rqa_trapping_time": (
        "rqa",
        "tt",
        "trapping time: mean length of vertical lines with v >= v_min, times the subsampling factor f",
        "frames",
        _RQA_CONV + "; = pyunicorn trapping_time(v_min) * f; 0 without such lines",
        True,
    ),
    "rqa_max_diag_norm": (
        "rqa",
        "l_max",
        "longest diagonal line L_max (LOI excluded) divided by the longest possible n - max(1, w)",
        "dimensionless",
        _RQA_CONV + "; L_max = pyunicorn max_diaglength(); in [0, 1] (1/value = normalised divergence)",
        True,
    ),
    "correlation_dimension": (
        "corr_dim",
        "cd",
        "Grassberger-Procaccia correlation dimension: LS slope of ln C(r) vs ln r",
        "dimensionless",
        "euclidean embedding (corr_dim_embedding_dim, corr_dim_delay); C(r) = #{i != j: |X_i - X_j| <= r} / (n (n-1)); "
        "radii log-spaced in [corr_dim_r_min, corr_dim_r_max] x std(m, ddof=1); radii with C = 0 dropped; "
        "= nolds.corr_dim(fit='poly') with the same rvals (with corr_dim_self_pairs); 0 if < 2 radii usable or m constant",
        True,
    ),
    "permutation_entropy": (
        "perm",
        "pe",
        "normalised permutation entropy -sum p ln p / ln(order!) of the ordinal patterns of m(t)",
        "dimensionless",
        "order perm_order, delay perm_delay; ties ordered by position; base-free (= antropy.perm_entropy(normalize=True))",
        True,
    ),
    "rqa_avg_diag_length": (
        "rqa",
        "avg_diag",
        "mean length of diagonal lines with l >= l_min, times the subsampling factor f",
        "frames",
        _RQA_CONV + "; = pyunicorn average_diaglength(l_min) * f; 0 without such lines",
        False,
    ),
    "rqa_max_vert_norm": (
        "rqa",
        "v_max",
        "longest vertical line V_max divided by n",
        "dimensionless",
        _RQA_CONV + "; V_max = pyunicorn max_vertlength(); in [0, 1]",
        False,
    ),
}


@register_family
class NonlinearFamily(Family[NonlinearConfig]):
    """RQA, correlation dimension and permutation entropy of each channel's spatial-mean series."""

    name = "nonlinear"
    granularity = "trajectory_channel"
    config_model = NonlinearConfig
    description = (
        "Nonlinear dynamics of the spatial-mean series m(t) of each channel (subsampled): recurrence quantification "
        "(RR, DET, LAM, diagonal-line entropy, trapping time, normalised L_max; pyunicorn conventions), "
        "Grassberger-Procaccia correlation dimension and normalised permutation entropy."
    )

    def catalogue(self, cfg: NonlinearConfig) -> list[FeatureSpec]:
        specs = []
        params = {
            "rqa": f"dim={cfg.rqa_embedding_dim}, delay={cfg.rqa_delay}, {cfg.rqa_threshold_mode}={cfg.rqa_threshold:g}, "
            f"metric={cfg.rqa_metric}, theiler={cfg.rqa_theiler_window}, l_min={cfg.rqa_l_min}, v_min={cfg.rqa_v_min}",
            "corr_dim": f"dim={cfg.corr_dim_embedding_dim}, delay={cfg.corr_dim_delay}, r in [{cfg.corr_dim_r_min:g}, "
            f"{cfg.corr_dim_r_max:g}] std, {cfg.corr_dim_num_radii} radii, self_pairs={cfg.corr_dim_self_pairs}",
            "perm": f"order={cfg.perm_order}, delay={cfg.perm_delay}",
        }
        sub = f"m(t) = spatial mean, subsampled by f = max({cfg.subsample_factor}, ceil(Ts/{cfg.max_points}))"
        for name, (group, _key, desc, units, conv, default) in _FEATURES.items():
            specs.append(
                FeatureSpec(
                    name=name,
                    family=self.name,
                    granularity=self.granularity,
                    description=desc,
                    units=units,
                    convention=f"{conv}; {params[group]}; {sub}",
                    flag=f"{self.name}.enabled" if default else f"{self.name}.include: {name}",
                    default=default,
                    min_frames=_min_frames(cfg, group),
                    extra={"group": group},
                )
            )
        return specs

    def compute(self, x: torch.Tensor, cfg: NonlinearConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        specs = {s.name: s for s in self.catalogue(cfg)}
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise KeyError(f"not features of {self.name} under this config: {unknown}")
        n_s, n_t, n_c = x.shape[:3]
        short = [n for n in names if specs[n].min_frames > n_t]
        if short:
            raise ValueError(f"{short} need more than Ts = {n_t} frames")
        groups = {specs[n].extra["group"] for n in names}
        x = x.float()
        f = nu.effective_factor(n_t, cfg.subsample_factor, cfg.max_points)
        m_full = spatial_mean_series(x)  # float64: finite iff every value of the trajectory is finite
        finite = torch.isfinite(m_full).all(-1)  # [S*C]
        m = m_full[:, ::f]
        m = torch.where(finite.unsqueeze(-1), m, torch.zeros_like(m))
        h, w = x.shape[-2:]
        msq = torch.cat([u.square().mean(dim=(-2, -1), dtype=torch.float64) for u in field_chunks(x.reshape(-1, h, w))])
        rms = msq.reshape(n_s, n_t, n_c).mean(1).sqrt().reshape(-1)
        const = m.std(-1, correction=0) <= cfg.constant_rtol * rms
        m = torch.where(const.unsqueeze(-1), m[:, :1].expand_as(m), m)

        vals: dict[str, torch.Tensor] = {}
        if "rqa" in groups:
            res = nu.rqa(
                m,
                cfg.rqa_embedding_dim,
                cfg.rqa_delay,
                cfg.rqa_threshold_mode,
                cfg.rqa_threshold,
                cfg.rqa_metric,
                cfg.rqa_theiler_window,
                cfg.rqa_l_min,
                cfg.rqa_v_min,
            )
            n_emb = m.shape[-1] - (cfg.rqa_embedding_dim - 1) * cfg.rqa_delay
            res["tt"] = res["tt"] * f
            res["avg_diag"] = res["avg_diag"] * f
            res["l_max"] = res["l_max"] / float(n_emb - max(1, cfg.rqa_theiler_window))
            res["v_max"] = res["v_max"] / float(n_emb)
            res["entr"] = res["entr"] + 0.0  # no -0.0
            vals.update(res)
        if "corr_dim" in groups:
            sd = m.std(-1, correction=1)
            rv = torch.exp(
                torch.linspace(
                    math.log(cfg.corr_dim_r_min),
                    math.log(cfg.corr_dim_r_max),
                    cfg.corr_dim_num_radii,
                    dtype=torch.float64,
                    device=m.device,
                )
            ).unsqueeze(0) * sd.unsqueeze(-1)
            cd = nu.correlation_dimension(
                m, cfg.corr_dim_embedding_dim, cfg.corr_dim_delay, rv.clamp_min(1e-300), cfg.corr_dim_self_pairs
            )
            vals["cd"] = torch.where(sd > 0, cd, torch.zeros_like(cd))
        if "perm" in groups:
            vals["pe"] = nu.permutation_entropy(m, cfg.perm_order, cfg.perm_delay)

        nan = torch.tensor(float("nan"), dtype=torch.float32, device=x.device)
        out = {}
        for name in specs:
            key = _FEATURES[name][1]
            if key in vals:
                out[name] = torch.where(finite, vals[key].float(), nan).reshape(n_s, n_c)
        return out
