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
"""

from __future__ import annotations

import math
from typing import Sequence

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
        (5.0, 25.0, 50.0, 75.0, 95.0),
        description="percentiles (0..100) reported as percentile_<p> columns (12.5 -> percentile_12p5); may be empty",
    )
    histogram_bins: int = Field(16, ge=4, le=256, description="bins B of the value histogram over [min, max]")
    gradient_saturation_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="gradient_saturation_fraction counts pixels with |grad u| >= this * max |grad u|"
    )
    amplitude_saturation_band: float = Field(
        0.05, gt=0.0, le=0.5,
        description="amplitude_saturation_fraction counts values within this fraction of the range of min or max",
    )
    correlation_level: float = Field(
        math.exp(-1.0), gt=0.0, lt=1.0, description="autocorrelation level defining the correlation lengths (1/e)"
    )
    occupied_bin_threshold: float = Field(
        0.01, ge=0.0, lt=1.0, description="opt-in histogram_occupied_bins counts bins holding more than this fraction"
    )
    saddle_tolerance: float = Field(
        1e-5, ge=0.0, le=0.1,
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
    "spatial_std": ("moments", "population standard deviation sqrt(spatial_variance)", "field", "ddof = 0; " + _CONST + "0"),
    "spatial_skewness": (
        "moments", "skewness m3 / m2^1.5 of the pixel values (m_k central population moments)", "dimensionless",
        "= scipy.stats.skew(bias=True); " + _CONST + "0",
    ),
    "spatial_kurtosis": (
        "moments", "excess kurtosis m4 / m2^2 - 3 of the pixel values", "dimensionless",
        "= scipy.stats.kurtosis(fisher=True, bias=True); >= -2; " + _CONST + "0",
    ),
    "spatial_min": ("basic", "minimum pixel value", "field", "over the H*W pixels"),
    "spatial_max": ("basic", "maximum pixel value", "field", "over the H*W pixels"),
    "spatial_range": ("basic", "max - min", "field", _CONST + "0"),
    "spatial_iqr": ("order", "interquartile range q75 - q25", "field", "linear interpolation (numpy default)"),
    "spatial_mad": (
        "order", "median absolute deviation median(|u - median u|)", "field",
        "unscaled (no 1.4826 factor); medians by linear interpolation (mean of the two middle values)",
    ),
    "gradient_magnitude_mean": (
        "gradient", "mean of |grad u| = sqrt(gx^2 + gy^2)", "field/pixel",
        "periodic central differences gx = (u[j+1] - u[j-1]) / 2",
    ),
    "gradient_magnitude_std": ("gradient", "population std of |grad u|", "field/pixel", "periodic central differences; ddof = 0"),
    "gradient_magnitude_max": ("gradient", "max of |grad u|", "field/pixel", "periodic central differences"),
    "gradient_abs_x_mean": ("gradient", "mean |gx| (x = width axis)", "field/pixel", "periodic central differences"),
    "gradient_abs_y_mean": ("gradient", "mean |gy| (y = height axis)", "field/pixel", "periodic central differences"),
    "gradient_anisotropy": (
        "gradient", "(mean gx^2 - mean gy^2) / (mean gx^2 + mean gy^2), in [-1, 1]; > 0: variation mostly along x",
        "dimensionless", "periodic central differences; " + _CONST + "0",
    ),
    "gradient_coherence": (
        "gradient",
        "orientation coherence of the field-averaged structure tensor J = mean [gx gx, gx gy; gx gy, gy gy]: "
        "(l1 - l2) / (l1 + l2) = sqrt((Jxx - Jyy)^2 + 4 Jxy^2) / (Jxx + Jyy), in [0, 1]; 1 = one gradient direction",
        "dimensionless", "global (whole-field) average, no smoothing window; " + _CONST + "0",
    ),
    "gradient_saturation_fraction": (
        "gradient", "fraction of pixels with |grad u| >= theta * max |grad u| (theta = gradient_saturation_threshold)",
        "dimensionless", _CONST + "0",
    ),
    "amplitude_saturation_fraction": (
        "basic",
        "fraction of pixels with u <= min + b (max - min) or u >= max - b (max - min) (b = amplitude_saturation_band): "
        "amplitude limiting / clipping", "dimensionless", _CONST + "1 (every pixel sits at min and max)",
    ),
    "laplacian_std": (
        "curvature", "population std of the periodic 5-point Laplacian N + S + E + W - 4C (its mean is identically 0)",
        "field/pixel^2", "ddof = 0",
    ),
    "laplacian_skewness": (
        "curvature", "skewness m3 / m2^1.5 of the 5-point Laplacian's values: < 0 for sharp maxima on broad minima "
        "(peaks), > 0 for sharp minima", "dimensionless", "population moments as spatial_skewness; " + _CONST + "0",
    ),
    "hessian_det_abs_mean": (
        "curvature", "mean |u_xx u_yy - u_xy^2| of the discrete Hessian (the signed mean integrates to ~0 on a torus)",
        "field^2/pixel^4", "u_xx = u[j+1] - 2u[j] + u[j-1]; u_xy = central y-difference of the central x-difference",
    ),
    "saddle_fraction": (
        "curvature", "fraction of pixels with det(Hessian) < -tol * mean ||H||_F^2 (saddle points)", "dimensionless",
        "tol = saddle_tolerance; ||H||_F^2 = u_xx^2 + u_yy^2 + 2 u_xy^2; " + _CONST + "0",
    ),
    "effective_rank": (
        "svd", "effective rank exp(-sum p_i ln p_i), p_i = s_i / sum s of the singular values of the mean-removed "
        "field as an H x W matrix; in [1, min(H, W)]", "dimensionless",
        "Roy & Vetterli 2007; torch.linalg.svdvals; natural log; " + _CONST + "1",
    ),
    "svd_participation_ratio": (
        "svd", "participation ratio (sum s_i^2)^2 / sum s_i^4 of the mean-removed field's singular values",
        "dimensionless", "in [1, min(H, W)]; " + _CONST + "1",
    ),
    "svd_top_energy_fraction": (
        "svd", "s_1^2 / sum s_i^2: energy fraction of the leading singular mode of the mean-removed field",
        "dimensionless", "in [1 / min(H, W), 1]; " + _CONST + "1",
    ),
    "correlation_length": (
        "correlation",
        "isotropic correlation length: first distance where the shell-averaged circular autocorrelation "
        "rho(r) falls below correlation_level (1/e)", "domain",
        "rho = irfft2(|rfft2(u - mean)|^2) / rho(0); shells of width 1/max(H, W) over periodic lag distance, at "
        "their mean radius; linear interpolation between shells; capped at (max(H, W) // 2) / max(H, W) = 1/2 for even sizes (when "
        "never below level; also the constant-field value)",
    ),
    "correlation_length_x": (
        "correlation", "first lag dx / W where rho(0, dx) falls below correlation_level (correlation along x)", "domain",
        "same rho; linear interpolation between pixel lags; capped at (W // 2) / W",
    ),
    "correlation_length_y": (
        "correlation", "first lag dy / H where rho(dy, 0) falls below correlation_level (correlation along y)", "domain",
        "same rho; linear interpolation between pixel lags; capped at (H // 2) / H",
    ),
    "correlation_anisotropy": (
        "correlation", "(Lx - Ly) / (Lx + Ly) of correlation_length_x, _y, in [-1, 1]; > 0: structures elongated along x",
        "dimensionless", "from the capped directional lengths; " + _CONST + "0 (both capped, for even H and W)",
    ),
    "histogram_entropy": (
        "histogram", "Shannon entropy -sum p ln p of the B-bin histogram of u over [min, max]", "nats",
        "B = histogram_bins equal bins, last bin closed; in [0, ln B]; " + _CONST + "0",
    ),
    "histogram_peak_fraction": (
        "histogram", "largest bin fraction max p of the B-bin histogram over [min, max]", "dimensionless",
        "in [1/B, 1]; " + _CONST + "1",
    ),
    "histogram_effective_bins": (
        "histogram", "effective number of occupied bins exp(histogram_entropy) (perplexity, not a count)", "count",
        "in [1, B]; " + _CONST + "1",
    ),
    "histogram_occupied_bins": (
        "histogram", "number of bins of the B-bin histogram over [min, max] holding more than a fraction t of the "
        "pixels (t = occupied_bin_threshold; the reference's histogram_effective_bins with t = 0.01)", "count",
        "integer-valued; " + _CONST + "1",
    ),
}
_OPT_IN = ("histogram_occupied_bins",)
_PERCENTILE_AFTER = "correlation_anisotropy"


@register_family
class SpatialFamily(Family):
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
                            name=su.percentile_name(p), family=self.name, granularity=self.granularity,
                            description=f"{p:g}th percentile of the pixel values", units="field",
                            convention="linear interpolation at position p/100 (HW - 1) of the sorted values "
                            "(numpy.percentile default)",
                            flag="spatial.enabled", extra={"percentile": p},
                        )
                    )
        for name in _OPT_IN:
            _, desc, units, conv = _FEATURES[name]
            specs.append(self._spec(name, desc, units, conv, cfg, default=False))
        return specs

    def _spec(self, name: str, desc: str, units: str, conv: str, cfg: SpatialConfig, default: bool) -> FeatureSpec:
        extra = {
            "gradient_saturation_fraction": {"threshold": cfg.gradient_saturation_threshold},
            "amplitude_saturation_fraction": {"band": cfg.amplitude_saturation_band},
            "saddle_fraction": {"tolerance": cfg.saddle_tolerance},
            "histogram_entropy": {"bins": cfg.histogram_bins},
            "histogram_peak_fraction": {"bins": cfg.histogram_bins},
            "histogram_effective_bins": {"bins": cfg.histogram_bins},
            "histogram_occupied_bins": {"bins": cfg.histogram_bins, "threshold": cfg.occupied_bin_threshold},
        }.get(name, {})
        if name.startswith("correlation_length"):
            extra = {"level": cfg.correlation_level}
        return FeatureSpec(
            name=name, family=self.name, granularity=self.granularity, description=desc, units=units,
            convention=conv, flag="spatial.enabled" if default else f"spatial.include: {name}", default=default,
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

        u, finite = su.sanitize(x)
        flat = ops.flatten_fields(u)
        out: dict[str, torch.Tensor] = {}

        # Shifted, scaled copy v = (u - u[0, 0]) / s, s = max |u - u[0, 0]|: |v| <= 1, exact zeros
        # for a constant field (s = 0).
        pivot = flat[..., :1]
        u0 = flat - pivot
        s = u0.abs().amax(-1)
        const = s == 0
        v = u0 * torch.where(const, torch.ones_like(s), 1.0 / torch.where(const, torch.ones_like(s), s)).unsqueeze(-1)
        vc = v - v.mean(-1, keepdim=True)
        zero = torch.zeros_like(s)
        one = torch.ones_like(s)

        def scaled_sq(msq: torch.Tensor) -> torch.Tensor:
            """s^2 * msq without overflowing before the result itself would."""
            return (s * msq.sqrt()).square()

        if "moments" in groups:
            m2 = vc.square().mean(-1)
            ok = m2 > 0
            z = vc / torch.where(ok, m2.sqrt(), one).unsqueeze(-1)
            out["spatial_mean"] = pivot[..., 0] + u0.mean(-1)  # exact for a constant field
            out["spatial_variance"] = scaled_sq(m2)
            out["spatial_std"] = s * m2.sqrt()
            out["spatial_skewness"] = torch.where(ok, z.pow(3).mean(-1), zero)
            out["spatial_kurtosis"] = torch.where(ok, z.pow(4).mean(-1) - 3.0, zero)

        if "basic" in groups:
            umin, umax = flat.amin(-1), flat.amax(-1)
            out["spatial_min"], out["spatial_max"], out["spatial_range"] = umin, umax, umax - umin
            vmin, vmax = v.amin(-1, keepdim=True), v.amax(-1, keepdim=True)
            band = cfg.amplitude_saturation_band * (vmax - vmin)
            sat = ((v <= vmin + band) | (v >= vmax - band)).float().mean(-1)
            out["amplitude_saturation_fraction"] = torch.where(const, one, sat)

        if "order" in groups:
            srt = torch.sort(flat, dim=-1).values
            qs = [p / 100.0 for p in cfg.percentiles] + [0.25, 0.5, 0.75]
            qv = su.quantiles_from_sorted(srt, torch.tensor(qs, dtype=torch.float64))
            for i, name in enumerate(pct):
                out[name] = qv[..., i]
            q25, med, q75 = qv[..., -3], qv[..., -2], qv[..., -1]
            out["spatial_iqr"] = q75 - q25
            dev = torch.sort((flat - med.unsqueeze(-1)).abs(), dim=-1).values
            out["spatial_mad"] = su.quantiles_from_sorted(dev, torch.tensor([0.5], dtype=torch.float64))[..., 0]

        v2 = v.reshape(u.shape)
        if "gradient" in groups:
            gy, gx = ops.grad_xy(v2)
            gx, gy = ops.flatten_fields(gx), ops.flatten_fields(gy)
            mag = torch.sqrt(gx.square() + gy.square())
            mmax = mag.amax(-1)
            out["gradient_magnitude_mean"] = s * mag.mean(-1)
            out["gradient_magnitude_std"] = s * (mag - mag.mean(-1, keepdim=True)).square().mean(-1).sqrt()
            out["gradient_magnitude_max"] = s * mmax
            out["gradient_abs_x_mean"] = s * gx.abs().mean(-1)
            out["gradient_abs_y_mean"] = s * gy.abs().mean(-1)
            jxx, jyy, jxy = gx.square().mean(-1), gy.square().mean(-1), (gx * gy).mean(-1)
            tr = jxx + jyy
            okt = tr > 0
            trs = torch.where(okt, tr, one)
            out["gradient_anisotropy"] = torch.where(okt, (jxx - jyy) / trs, zero)
            coh = torch.sqrt((jxx - jyy).square() + 4.0 * jxy.square()) / trs
            out["gradient_coherence"] = torch.where(okt, coh.clamp(0.0, 1.0), zero)
            hit = (mag >= cfg.gradient_saturation_threshold * mmax.unsqueeze(-1)).float().mean(-1)
            out["gradient_saturation_fraction"] = torch.where(mmax > 0, hit, zero)
            del gx, gy, mag

        if "curvature" in groups:
            vxx, vyy, vxy = (ops.flatten_fields(t) for t in su.hessian(v2))
            lap = vxx + vyy
            lc = lap - lap.mean(-1, keepdim=True)
            l2 = lc.square().mean(-1)
            okl = l2 > 0
            out["laplacian_std"] = s * l2.sqrt()
            lz = lc / torch.where(okl, l2.sqrt(), one).unsqueeze(-1)
            out["laplacian_skewness"] = torch.where(okl, lz.pow(3).mean(-1), zero)
            det = vxx * vyy - vxy.square()
            out["hessian_det_abs_mean"] = scaled_sq(det.abs().mean(-1))
            frob = (vxx.square() + vyy.square() + 2.0 * vxy.square()).mean(-1, keepdim=True)
            out["saddle_fraction"] = (det < -cfg.saddle_tolerance * frob).float().mean(-1)
            del vxx, vyy, vxy, lap, lc, lz, det

        vc2 = vc.reshape(u.shape)
        if "svd" in groups:
            er, pr, top = su.singular_value_stats(vc2)
            out["effective_rank"], out["svd_participation_ratio"], out["svd_top_energy_fraction"] = er, pr, top

        if "correlation" in groups:
            iso, lx, ly = su.correlation_lengths(vc2, cfg.correlation_level)
            out["correlation_length"], out["correlation_length_x"], out["correlation_length_y"] = iso, lx, ly
            out["correlation_anisotropy"] = (lx - ly) / (lx + ly).clamp_min(1e-30)

        if "histogram" in groups:
            counts = ops.histogram_counts(v, cfg.histogram_bins, v.amin(-1), v.amax(-1))
            ent = ops.entropy_from_counts(counts)
            out["histogram_entropy"] = ent
            out["histogram_peak_fraction"] = counts.amax(-1) / counts.sum(-1)
            out["histogram_effective_bins"] = ent.exp()
            frac = counts / counts.sum(-1, keepdim=True)
            out["histogram_occupied_bins"] = (frac > cfg.occupied_bin_threshold).float().sum(-1)

        nan = torch.full((), float("nan"), device=u.device)
        return {k: torch.where(finite, t.float(), nan) for k, t in out.items()}
