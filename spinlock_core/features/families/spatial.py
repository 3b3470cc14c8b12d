"""``spatial``: one-point statistics and spatial structure of a single field ``[H, W]``.

Granularity ``timestep_channel``: ``x [N, C, H, W]`` -> each value ``[N, C]``.

Conventions:

* moments are **population** (ddof = 0) moments over the ``H W`` pixels; skewness
  ``m3 / m2^1.5`` and excess kurtosis ``m4 / m2^2 - 3`` equal ``scipy.stats.skew`` /
  ``scipy.stats.kurtosis`` with their defaults (``bias=True``, ``fisher=True``);
* percentiles, IQR and median use linear interpolation between order statistics (numpy's
  default ``method="linear"``); the MAD is unscaled (``scipy.stats.median_abs_deviation(scale=1)``);
* derivatives are periodic central differences in **grid units** (per pixel), as in
  :mod:`spinlock_core.features.ops`; lengths (correlation lengths) are in **domain units**
  (the periodic unit square has side 1);
* entropies are in **nats**;
* scale-free features (skewness, kurtosis, anisotropies, coherence, SVD, correlation lengths,
  fractions, histogram) are computed on the field shifted by its first pixel and divided by its
  largest absolute deviation from it, so they never overflow and are exactly defined for a
  constant field; the value stated for a constant field is returned for it;
* a field holding any NaN/Inf gives NaN in every feature (never a crash, never a made-up value).

Implementation (CPU): percentiles, median and MAD are exact order statistics found by selection
(a fine binning locates each rank, only the values of those bins are sorted) instead of full
sorts; the histogram shares that binning; the batch of SVDs is spread over the torch threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import Field, field_validator

from spinlock_core.features import ops
from spinlock_core.features.families import _spatial_util as su
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.spec import FeatureSpec

__all__ = ["SpatialConfig", "SpatialFamily"]


class SpatialConfig(FamilyConfig):
    """Parameters of the ``spatial`` family."""

    percentiles: tuple[float, ...] = Field(
        default=(5.0, 25.0, 50.0, 75.0, 95.0),
        description="percentiles (0..100) reported as percentile_<p> columns (12.5 -> percentile_12p5); may be empty",
    )
    histogram_bins: int = Field(default=16, ge=4, le=256, description="bins B of the value histogram over [min, max]")
    gradient_saturation_threshold: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="gradient_saturation_fraction counts pixels with |grad u| >= this * max |grad u|",
    )
    amplitude_saturation_band: float = Field(
        default=0.05,
        gt=0.0,
        le=0.5,
        description="amplitude_saturation_fraction counts values within this fraction of the range of min or max",
    )
    correlation_level: float = Field(
        default=math.exp(-1.0),
        gt=0.0,
        lt=1.0,
        description="autocorrelation level defining the correlation lengths (1/e)",
    )
    occupied_bin_threshold: float = Field(
        default=0.01,
        ge=0.0,
        lt=1.0,
        description="opt-in histogram_occupied_bins counts bins holding more than this fraction",
    )
    saddle_tolerance: float = Field(
        default=1e-5,
        ge=0.0,
        le=0.1,
        description="a pixel is a saddle when det(Hessian) < -tol * mean ||Hessian||_F^2 (ignores rounding noise)",
    )

    @field_validator("percentiles")
    @classmethod
    def _check_percentiles(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        bad = [p for p in v if not 0.0 <= p <= 100.0]
        if bad:
            raise ValueError(f"percentiles must lie in [0, 100], got {bad}")
        names = [su.percentile_name(p) for p in v]
        if len(set(names)) != len(names):
            raise ValueError(f"percentiles must be distinct, got {list(v)}")
        return tuple(float(p) for p in v)


# name -> (group, description, units, convention); column order = this order, percentiles
# inserted after correlation_anisotropy, opt-ins last.
_CONST = "constant field: "
_FEATURES: dict[str, tuple[str, str, str, str]] = {
    "spatial_mean": ("moments", "mean of u over the pixels", "field", "arithmetic mean over the H*W pixels"),
    "spatial_variance": ("moments", "population variance mean((u - mean u)^2)", "field^2", "ddof = 0; " + _CONST + "0"),
    "spatial_std": (
        "moments",
        "population standard deviation sqrt(spatial_variance)",
        "field",
        "ddof = 0; " + _CONST + "0",
    ),
    "spatial_skewness": (
        "moments",
        "skewness m3 / m2^1.5 of the pixel values (m_k central population moments)",
        "dimensionless",
        "= scipy.stats.skew(bias=True); " + _CONST + "0",
    ),
    "spatial_kurtosis": (
        "moments",
        "excess kurtosis m4 / m2^2 - 3 of the pixel values",
        "dimensionless",
        "= scipy.stats.kurtosis(fisher=True, bias=True); >= -2; " + _CONST + "0",
    ),
    "spatial_min": ("basic", "minimum pixel value", "field", "over the H*W pixels"),
    "spatial_max": ("basic", "maximum pixel value", "field", "over the H*W pixels"),
    "spatial_range": ("basic", "max - min", "field", _CONST + "0"),
    "spatial_iqr": ("order", "interquartile range q75 - q25", "field", "linear interpolation (numpy default)"),
    "spatial_mad": (
        "order",
        "median absolute deviation median(|u - median u|)",
        "field",
        "unscaled (no 1.4826 factor); medians by linear interpolation (mean of the two middle values)",
    ),
    "gradient_magnitude_mean": (
        "gradient",
        "mean of |grad u| = sqrt(gx^2 + gy^2)",
        "field/pixel",
        "periodic central differences gx = (u[j+1] - u[j-1]) / 2",
    ),
    "gradient_magnitude_std": (
        "gradient",
        "population std of |grad u|",
        "field/pixel",
        "periodic central differences; ddof = 0",
    ),
    "gradient_magnitude_max": ("gradient", "max of |grad u|", "field/pixel", "periodic central differences"),
    "gradient_abs_x_mean": ("gradient", "mean |gx| (x = width axis)", "field/pixel", "periodic central differences"),
    "gradient_abs_y_mean": ("gradient", "mean |gy| (y = height axis)", "field/pixel", "periodic central differences"),
    "gradient_anisotropy": (
        "gradient",
        "(mean gx^2 - mean gy^2) / (mean gx^2 + mean gy^2), in [-1, 1]; > 0: variation mostly along x",
        "dimensionless",
        "periodic central differences; " + _CONST + "0",
    ),
    "gradient_coherence": (
        "gradient",
        "orientation coherence of the field-averaged structure tensor J = mean [gx gx, gx gy; gx gy, gy gy]: "
        "(l1 - l2) / (l1 + l2) = sqrt((Jxx - Jyy)^2 + 4 Jxy^2) / (Jxx + Jyy), in [0, 1]; 1 = one gradient direction",
        "dimensionless",
        "global (whole-field) average, no smoothing window; " + _CONST + "0",
    ),
    "gradient_saturation_fraction": (
        "gradient",
        "fraction of pixels with |grad u| >= theta * max |grad u| (theta = gradient_saturation_threshold)",
        "dimensionless",
        _CONST + "0",
    ),
    "amplitude_saturation_fraction": (
        "basic",
        "fraction of pixels with u <= min + b (max - min) or u >= max - b (max - min) (b = amplitude_saturation_band): "
        "amplitude limiting / clipping",
        "dimensionless",
        _CONST + "1 (every pixel sits at min and max)",
    ),
    "laplacian_std": (
        "curvature",
        "population std of the periodic 5-point Laplacian N + S + E + W - 4C (its mean is identically 0)",
        "field/pixel^2",
        "ddof = 0",
    ),
    "laplacian_skewness": (
        "curvature",
        "skewness m3 / m2^1.5 of the 5-point Laplacian's values: < 0 for sharp maxima on broad minima "
        "(peaks), > 0 for sharp minima",
        "dimensionless",
        "population moments as spatial_skewness; " + _CONST + "0",
    ),
    "hessian_det_abs_mean": (
        "curvature",
        "mean |u_xx u_yy - u_xy^2| of the discrete Hessian (the signed mean integrates to ~0 on a torus)",
        "field^2/pixel^4",
        "u_xx = u[j+1] - 2u[j] + u[j-1]; u_xy = central y-difference of the central x-difference",
    ),
    "saddle_fraction": (
        "curvature",
        "fraction of pixels with det(Hessian) < -tol * mean ||H||_F^2 (saddle points)",
        "dimensionless",
        "tol = saddle_tolerance; ||H||_F^2 = u_xx^2 + u_yy^2 + 2 u_xy^2; " + _CONST + "0",
    ),
    "effective_rank": (
        "svd",
        "effective rank exp(-sum p_i ln p_i), p_i = s_i / sum s of the singular values of the mean-removed "
        "field as an H x W matrix; in [1, min(H, W)]",
        "dimensionless",
        "Roy & Vetterli 2007; torch.linalg.svdvals; natural log; " + _CONST + "1",
    ),
    "svd_participation_ratio": (
        "svd",
        "participation ratio (sum s_i^2)^2 / sum s_i^4 of the mean-removed field's singular values",
        "dimensionless",
        "in [1, min(H, W)]; " + _CONST + "1",
    ),
    "svd_top_energy_fraction": (
        "svd",
        "s_1^2 / sum s_i^2: energy fraction of the leading singular mode of the mean-removed field",
        "dimensionless",
        "in [1 / min(H, W), 1]; " + _CONST + "1",
    ),
    "correlation_length": (
        "correlation",
        "isotropic correlation length: first distance where the shell-averaged circular autocorrelation "
        "rho(r) falls below correlation_level (1/e)",
        "domain",
        "rho = irfft2(|rfft2(u - mean)|^2) / rho(0); shells of width 1/max(H, W) over periodic lag distance, at "
        "their mean radius; linear interpolation between shells; capped at (max(H, W) // 2) / max(H, W) = 1/2 for even sizes (when "
        "never below level; also the constant-field value)",
    ),
    "correlation_length_x": (
        "correlation",
        "first lag dx / W where rho(0, dx) falls below correlation_level (correlation along x)",
        "domain",
        "same rho; linear interpolation between pixel lags; capped at (W // 2) / W",
    ),
    "correlation_length_y": (
        "correlation",
        "first lag dy / H where rho(dy, 0) falls below correlation_level (correlation along y)",
        "domain",
        "same rho; linear interpolation between pixel lags; capped at (H // 2) / H",
    ),
    "correlation_anisotropy": (
        "correlation",
        "(Lx - Ly) / (Lx + Ly) of correlation_length_x, _y, in [-1, 1]; > 0: structures elongated along x",
        "dimensionless",
        "from the capped directional lengths; " + _CONST + "0 (both capped, for even H and W)",
    ),
    "histogram_entropy": (
        "histogram",
        "Shannon entropy -sum p ln p of the B-bin histogram of u over [min, max]",
        "nats",
        "B = histogram_bins equal bins, last bin closed; in [0, ln B]; " + _CONST + "0",
    ),
    "histogram_peak_fraction": (
        "histogram",
        "largest bin fraction max p of the B-bin histogram over [min, max]",
        "dimensionless",
        "in [1/B, 1]; " + _CONST + "1",
    ),
    "histogram_effective_bins": (
        "histogram",
        "effective number of occupied bins exp(histogram_entropy) (perplexity, not a count)",
        "count",
        "in [1, B]; " + _CONST + "1",
    ),
    "histogram_occupied_bins": (
        "histogram",
        "number of bins of the B-bin histogram over [min, max] holding more than a fraction t of the "
        "pixels (t = occupied_bin_threshold; the reference's histogram_effective_bins with t = 0.01)",
        "count",
        "integer-valued; " + _CONST + "1",
    ),
}
_OPT_IN = ("histogram_occupied_bins",)
_PERCENTILE_AFTER = "correlation_anisotropy"


@register_family
class SpatialFamily(Family[SpatialConfig]):
    """One-point statistics, gradients, curvature, rank, correlation lengths and histogram of a field."""

    name = "spatial"
    granularity = "timestep_channel"
    config_model = SpatialConfig
    description = (
        "Per-field statistics: moments, order statistics, gradients, curvature, SVD effective "
        "dimensionality, saturation, autocorrelation lengths and value histogram."
    )

    # ------------------------------------------------------------------ catalogue
    def catalogue(self, cfg: SpatialConfig) -> list[FeatureSpec]:
        specs: list[FeatureSpec] = []
        for name, (_, desc, units, conv) in _FEATURES.items():
            if name in _OPT_IN:
                continue
            specs.append(self._spec(name, desc, units, conv, cfg, default=True))
            if name == _PERCENTILE_AFTER:
                for p in cfg.percentiles:
                    specs.append(
                        FeatureSpec(
                            name=su.percentile_name(p),
                            family=self.name,
                            granularity=self.granularity,
                            description=f"{p:g}th percentile of the pixel values",
                            units="field",
                            convention="linear interpolation at position p/100 (HW - 1) of the sorted values "
                            "(numpy.percentile default)",
                            flag="spatial.enabled",
                            extra={"percentile": p},
                        )
                    )
        for name in _OPT_IN:
            _, desc, units, conv = _FEATURES[name]
            specs.append(self._spec(name, desc, units, conv, cfg, default=False))
        return specs

    def _spec(self, name: str, desc: str, units: str, conv: str, cfg: SpatialConfig, default: bool) -> FeatureSpec:
        by_name: dict[str, dict[str, Any]] = {
            "gradient_saturation_fraction": {"threshold": cfg.gradient_saturation_threshold},
            "amplitude_saturation_fraction": {"band": cfg.amplitude_saturation_band},
            "saddle_fraction": {"tolerance": cfg.saddle_tolerance},
            "histogram_entropy": {"bins": cfg.histogram_bins},
            "histogram_peak_fraction": {"bins": cfg.histogram_bins},
            "histogram_effective_bins": {"bins": cfg.histogram_bins},
            "histogram_occupied_bins": {"bins": cfg.histogram_bins, "threshold": cfg.occupied_bin_threshold},
        }
        extra = by_name.get(name, {})
        if name.startswith("correlation_length"):
            extra = {"level": cfg.correlation_level}
        return FeatureSpec(
            name=name,
            family=self.name,
            granularity=self.granularity,
            description=desc,
            units=units,
            convention=conv,
            flag="spatial.enabled" if default else f"spatial.include: {name}",
            default=default,
            extra=extra,
        )

    # ------------------------------------------------------------------ compute
    def compute(self, x: torch.Tensor, cfg: SpatialConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        pct = {su.percentile_name(p): p for p in cfg.percentiles}
        groups: set[str] = set()
        for n in names:
            if n in pct:
                groups.add("order")
            elif n in _FEATURES:
                groups.add(_FEATURES[n][0])
            else:
                raise KeyError(f"spatial: unknown feature {n!r}")
        if "correlation_anisotropy" in names:
            groups.add("correlation")

        *lead, h, w = x.shape
        k = h * w
        flat = x.float().reshape(-1, k)  # [B, K]
        umin, umax = flat.amin(-1), flat.amax(-1)  # NaN/Inf propagate into them
        finite = torch.isfinite(umin) & torch.isfinite(umax)
        flat = ops.zero_rows(flat, finite)  # diverged fields: zeros here, NaN at the end
        umin, umax = torch.where(finite, umin, 0.0), torch.where(finite, umax, 0.0)
        out: dict[str, torch.Tensor] = {}

        # Shifted, scaled copy v = (u - u[0, 0]) / s, s = max |u - u[0, 0]|: |v| <= 1, exact zeros
        # for a constant field (s = 0). Extremes by monotonicity of rounding: max |u - p| is attained
        # at max u or min u, and v's extremes at u's.
        pivot = flat[:, :1]
        p0 = pivot[:, 0]
        s = torch.maximum(umax - p0, p0 - umin)
        const = s == 0
        zero = torch.zeros_like(s)
        one = torch.ones_like(s)
        inv = torch.where(const, one, 1.0 / torch.where(const, one, s))
        v = flat - pivot
        u0_mean = v.mean(-1) if "moments" in groups else None
        v.mul_(inv.unsqueeze(-1))
        vmin, vmax = (umin - p0) * inv, (umax - p0) * inv  # = v.amin(-1), v.amax(-1)
        vc = v - v.mean(-1, keepdim=True) if groups & {"moments", "svd", "correlation"} else None

        def scaled_sq(msq: torch.Tensor) -> torch.Tensor:
            """s^2 * msq without overflowing before the result itself would."""
            return (s * msq.sqrt()).square()

        def frac(mask: torch.Tensor) -> torch.Tensor:
            return ops.count_true(mask).float() / k

        if "moments" in groups:
            assert u0_mean is not None and vc is not None  # both computed for "moments"
            sq = vc.square()
            m2 = sq.mean(-1)
            ok = m2 > 0
            sd = torch.where(ok, m2.sqrt(), one)
            m3 = sq.mul(vc).mean(-1)
            m4 = sq.square_().mean(-1)
            del sq
            out["spatial_mean"] = p0 + u0_mean  # exact for a constant field
            out["spatial_variance"] = scaled_sq(m2)
            out["spatial_std"] = s * m2.sqrt()
            # products, not pow: Tensor.pow(k) rounds differently in vectorised and scalar code, so a
            # sample's value depended on its batch
            m2s = torch.where(ok, m2, one)
            out["spatial_skewness"] = torch.where(ok, m3 / (m2s * sd), zero)
            out["spatial_kurtosis"] = torch.where(ok, m4 / (m2s * m2s) - 3.0, zero)

        if "basic" in groups:
            out["spatial_min"], out["spatial_max"], out["spatial_range"] = umin, umax, umax - umin
            band = (cfg.amplitude_saturation_band * (vmax - vmin)).unsqueeze(-1)
            sat = frac((v <= vmin.unsqueeze(-1) + band) | (v >= vmax.unsqueeze(-1) - band))
            out["amplitude_saturation_fraction"] = torch.where(const, one, sat)

        counts = None
        if groups & {"order", "histogram"}:
            # nested fine binning of v: label >> m is the histogram bin (power-of-two refinement is exact)
            m_fine = max(0, math.ceil(math.log2(1024 / cfg.histogram_bins)))
            n_fine = cfg.histogram_bins << m_fine
            fine = ops.histogram_labels(v, n_fine, vmin, vmax, offset=True)  # + row * n_fine
            counts = ops.offset_bincount(fine, fine.shape[0], n_fine, dtype=torch.int64)

        if "order" in groups:
            qs = [p / 100.0 for p in cfg.percentiles] + [0.25, 0.5, 0.75]
            qv = su.quantiles(flat, fine, n_fine, torch.tensor(qs, dtype=torch.float64), const, counts)
            for i, name in enumerate(pct):
                out[name] = qv[..., i]
            q25, med, q75 = qv[..., -3], qv[..., -2], qv[..., -1]
            out["spatial_iqr"] = q75 - q25
            dev = (flat - med.unsqueeze(-1)).abs_()
            dmax = torch.maximum(umax - med, med - umin)  # = dev.amax(-1)
            dlab = None  # (accelerators sort instead of selecting)
            if dev.device.type == "cpu":
                scale = torch.where(dmax > 0, 1024.0 / torch.where(dmax > 0, dmax, one), zero)
                dlab = ops.offset_labels((dev * scale.unsqueeze(-1)).clamp_(0, 1023), 1024)  # monotone in dev
            half = torch.tensor([0.5], dtype=torch.float64)
            out["spatial_mad"] = su.quantiles(dev, dlab, 1024, half, dmax == 0)[..., 0]
            del dev, dlab

        v2 = v.view(-1, h, w)
        dx = None
        if "gradient" in groups or "curvature" in groups:
            dx = ops.central_diff(v2, -1)  # 2 gx (exact: the 0.5 is a power of two)
        if "gradient" in groups:
            assert dx is not None  # computed for "gradient"
            dy = ops.central_diff(v2, -2)  # 2 gy
            fx, fy = dx.view(-1, k), dy.view(-1, k)
            mag2 = fx * fx
            jxx = mag2.mean(-1)  # 4 J (scale-free ratios)
            sqy = fy * fy
            jyy = sqy.mean(-1)
            mag2.add_(sqy).sqrt_()  # 2 |grad v|
            del sqy
            jxy = (fx * fy).mean(-1)
            mmax = mag2.amax(-1)
            mmean = mag2.mean(-1)
            out["gradient_magnitude_mean"] = s * (0.5 * mmean)
            out["gradient_magnitude_max"] = s * (0.5 * mmax)
            hit = frac(mag2 >= cfg.gradient_saturation_threshold * mmax.unsqueeze(-1))
            out["gradient_saturation_fraction"] = torch.where(mmax > 0, hit, zero)
            out["gradient_magnitude_std"] = s * (0.5 * mag2.sub_(mmean.unsqueeze(-1)).square_().mean(-1).sqrt())
            out["gradient_abs_x_mean"] = s * (0.5 * fx.abs().mean(-1))
            out["gradient_abs_y_mean"] = s * (0.5 * fy.abs().mean(-1))
            tr = jxx + jyy
            okt = tr > 0
            trs = torch.where(okt, tr, one)
            out["gradient_anisotropy"] = torch.where(okt, (jxx - jyy) / trs, zero)
            coh = torch.sqrt((jxx - jyy).square() + 4.0 * jxy.square()) / trs
            out["gradient_coherence"] = torch.where(okt, coh.clamp(0.0, 1.0), zero)
            del dy, mag2, fx, fy

        if "curvature" in groups:
            assert dx is not None  # computed for "curvature"
            vxx = ops._neighbour_sum(v2, -1).sub_(v2, alpha=2.0).view(-1, k)
            vyy = ops._neighbour_sum(v2, -2).sub_(v2, alpha=2.0).view(-1, k)
            dxy = ops.central_diff(dx, -2).view(-1, k)  # 4 v_xy
            lc = vxx + vyy
            lc.sub_(lc.mean(-1, keepdim=True))
            sq = lc.square()
            l2 = sq.mean(-1)
            okl = l2 > 0
            out["laplacian_std"] = s * l2.sqrt()
            l3 = sq.mul_(lc).mean(-1)
            l2s = torch.where(okl, l2, one)
            out["laplacian_skewness"] = torch.where(okl, l3 / (l2s * l2s.sqrt()), zero)  # products, not pow
            del sq, lc
            det = vxx * vyy
            det.addcmul_(dxy, dxy, value=-1.0 / 16.0)  # vxx vyy - vxy^2
            out["hessian_det_abs_mean"] = scaled_sq(det.abs().mean(-1))
            frob = vxx.square().mean(-1) + vyy.square().mean(-1) + dxy.square().mean(-1) / 8.0
            out["saddle_fraction"] = frac(det < (-cfg.saddle_tolerance * frob).unsqueeze(-1))
            del vxx, vyy, dxy, det
        del dx

        if "svd" in groups:
            assert vc is not None  # computed for "svd"
            er, pr, top = su.singular_value_stats(vc.view(-1, h, w))
            out["effective_rank"], out["svd_participation_ratio"], out["svd_top_energy_fraction"] = er, pr, top

        if "correlation" in groups:
            assert vc is not None  # computed for "correlation"
            iso, lx, ly = su.correlation_lengths(vc.view(-1, h, w), cfg.correlation_level)
            out["correlation_length"], out["correlation_length_x"], out["correlation_length_y"] = iso, lx, ly
            out["correlation_anisotropy"] = (lx - ly) / (lx + ly).clamp_min(1e-30)

        if "histogram" in groups:
            assert counts is not None  # computed for "histogram"
            hc = counts.view(-1, cfg.histogram_bins, 1 << m_fine).sum(-1).float()
            ent = ops.entropy_from_counts(hc)
            out["histogram_entropy"] = ent
            out["histogram_peak_fraction"] = hc.amax(-1) / hc.sum(-1)
            out["histogram_effective_bins"] = ent.exp()
            frac_b = hc / hc.sum(-1, keepdim=True)
            out["histogram_occupied_bins"] = (frac_b > cfg.occupied_bin_threshold).float().sum(-1)

        nan = torch.full((), float("nan"), device=flat.device)
        return {key: torch.where(finite, t.float(), nan).reshape(lead) for key, t in out.items()}
