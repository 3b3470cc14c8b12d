"""``invariant_drift``: how norms of the field drift along a trajectory, at three scales, plus
scale-resolved energy dissipation.

Granularity ``trajectory_channel``: ``x [S, Ts, C, H, W]`` -> each value ``[S, C]``.

Norms (per field, i.e. per sample, frame and channel), all **per-pixel means** so that they do
not scale with the grid size:

* ``l1`` = mean |u|, ``l2`` = sqrt(mean u^2), ``linf`` = max |u| (units of the field);
* ``entropy`` = Shannon entropy (nats) of the ``entropy_bins``-bin histogram of the field's values
  over its own [min, max] (equal bins, last bin closed; a constant field has entropy 0);
* ``tv`` = total variation mean sqrt(gx^2 + gy^2), periodic central differences converted to
  **domain units** (gx = W (u[j+1] - u[j-1]) / 2; the periodic unit square has side 1), so a
  resolved field has the same value on any grid (cos(2 pi k x) -> ~4 k).

Scales: ``raw``; ``lowpass`` = periodic Gaussian filter of standard deviation ``lowpass_sigma``
(**domain units**), applied in Fourier space (multiplication by exp(-2 pi^2 sigma^2 |k|^2), k in
cycles/domain: an exact periodic convolution with the wrapped Gaussian, no zero padding);
``highpass`` = raw - lowpass. The spatial mean is removed (float64 mean) before filtering and
added back to the lowpass, so a uniform field has lowpass = itself and highpass = 0 exactly.

Drift metrics of each norm series s(t), t = 0 .. Ts-1 (steps), increments ds = s(t+1) - s(t):

* ``mean_drift`` = mean ds = (s_T - s_0) / (Ts - 1) (norm units per step; Ts >= 2);
* ``drift_variance`` = unbiased (ddof = 1) variance of ds (Ts >= 3);
* ``log_ratio`` = ln((s_T + eps) / (s_0 + eps)), eps = ``log_ratio_eps`` * max_t s(t) + 1e-30
  (norms are >= 0; bounded by about +-ln(1/log_ratio_eps) even when s_0 = 0; 0 for s == 0);
* ``monotonicity`` = mean sign(ds) in [-1, 1], exact-zero increments count 0.

Dissipation (power spectrum |fft2(u - mean u, norm="ortho")|^2 / (H W) per mode, DC excluded,
|k| in cycles/domain, bands by |k| relative to the Nyquist radius k_N = min(H, W) / 2 with
``band_edges`` = (e1, e2): low 0 < |k| <= e1 k_N, mid e1 k_N < |k| <= e2 k_N, high |k| > e2 k_N
(the corners beyond k_N included)):

* ``band_energy_decay_rate_{low,mid,high}`` = -(least-squares slope of ln(E_band(t) + eps) per
  step), E_band = mean-square energy in the band, eps = ``band_energy_eps`` * max_t mean (u - mean
  u)^2 + 1e-30; positive = decay; a mode decaying as exp(-g t) in amplitude gives 2 g;
* ``spectral_cascade_rate`` = least-squares slope per step of the power-weighted mean wavenumber
  k_bar(t) = sum |k| P / sum P (DC excluded; 0 for a uniform field): > 0 forward cascade (energy
  moves to small scales), < 0 inverse cascade.

Opt-ins: ``enstrophy_decay_rate`` (-slope of ln mean |grad u|^2, domain units),
``high_band_fraction_rate`` (slope of E_high / sum of the band energies).

A (sample, channel) whose trajectory holds any NaN/Inf gives NaN in every feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import torch
from pydantic import Field, field_validator

from spinlock_core.features import ops
from spinlock_core.features.families._series import chunk_fields
from spinlock_core.features.families._spectral_util import half_plane
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.spec import FeatureSpec

__all__ = [
    "InvariantDriftConfig",
    "InvariantDriftFamily",
    "gaussian_lowpass",
    "norm_series",
    "drift_metrics",
    "NORMS",
    "SCALES",
    "METRICS",
]

NormName = Literal["l1", "l2", "linf", "entropy", "tv"]
ScaleName = Literal["raw", "lowpass", "highpass"]

NORMS: tuple[NormName, ...] = ("l1", "l2", "linf", "entropy", "tv")
SCALES: tuple[ScaleName, ...] = ("raw", "lowpass", "highpass")
METRICS: tuple[str, ...] = ("mean_drift", "drift_variance", "log_ratio", "monotonicity")
BANDS: tuple[str, ...] = ("low", "mid", "high")
_FMAX = float(torch.finfo(torch.float32).max)


class InvariantDriftConfig(FamilyConfig):
    """Parameters of the ``invariant_drift`` family."""

    norms: tuple[NormName, ...] = Field(
        default=NORMS, description="norms tracked over time (subset of l1, l2, linf, entropy, tv)"
    )
    scales: tuple[ScaleName, ...] = Field(
        default=SCALES, description="scales the norms are taken at (subset of raw, lowpass, highpass)"
    )
    lowpass_sigma: float = Field(
        default=1.0 / 32.0,
        gt=0.0,
        le=0.5,
        description="standard deviation of the periodic Gaussian low-pass in domain units (side of the unit square = 1; "
        "1/32 = 2 pixels on a 64 x 64 grid)",
    )
    entropy_bins: int = Field(default=32, ge=2, le=1024, description="bins of the value histogram of the entropy norm")
    log_ratio_eps: float = Field(
        default=1e-6,
        gt=0.0,
        le=0.1,
        description="relative epsilon of log_ratio: eps = log_ratio_eps * max_t s(t) (+1e-30)",
    )
    band_edges: tuple[float, float] = Field(
        default=(0.125, 0.5),
        description="inner edges (e1, e2) of the low/mid/high wavenumber bands as fractions of the Nyquist radius min(H, W)/2",
    )
    band_energy_eps: float = Field(
        default=1e-12,
        gt=0.0,
        le=1e-3,
        description="relative epsilon inside ln(E_band + eps): eps = band_energy_eps * max_t spatial variance (+1e-30)",
    )

    @field_validator("norms", "scales")
    @classmethod
    def _check_subset(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(v) == 0:
            raise ValueError("must name at least one entry")
        if len(set(v)) != len(v):
            raise ValueError(f"entries must be distinct, got {list(v)}")
        return v

    @field_validator("band_edges")
    @classmethod
    def _check_edges(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < v[0] < v[1] < 1.0:
            raise ValueError(f"band_edges must satisfy 0 < e1 < e2 < 1, got {v}")
        return v


# --------------------------------------------------------------------------- descriptions
_NORM_DOC: dict[str, tuple[str, str, str]] = {
    # norm -> (definition, units, convention)
    "l1": ("L1 norm mean |u|", "field", "per-pixel mean"),
    "l2": ("L2 norm sqrt(mean u^2)", "field", "per-pixel mean (RMS)"),
    "linf": ("Linf norm max |u|", "field", "over the pixels"),
    "entropy": (
        "Shannon entropy -sum p ln p of the B-bin histogram of u over [min u, max u]",
        "nats",
        "B = entropy_bins equal bins, last bin closed; constant field -> 0",
    ),
    "tv": (
        "total variation mean sqrt(gx^2 + gy^2)",
        "field/domain",
        "periodic central differences in domain units gx = W (u[j+1] - u[j-1]) / 2; per-pixel mean",
    ),
}
_SCALE_DOC: dict[str, str] = {
    "raw": "of the raw field",
    "lowpass": "of the lowpass field (periodic Gaussian, sigma = lowpass_sigma domain units, applied in Fourier space)",
    "highpass": "of the highpass field (raw - lowpass)",
}
_METRIC_DOC: dict[str, tuple[str, str, str, int]] = {
    # metric -> (definition, units template, convention, min_frames)
    "mean_drift": ("mean increment mean_t (s(t+1) - s(t)) = (s_T - s_0)/(Ts - 1)", "{u}/step", "", 2),
    "drift_variance": ("variance of the increments s(t+1) - s(t)", "({u}/step)^2", "unbiased (ddof = 1)", 3),
    "log_ratio": (
        "ln((s_T + eps)/(s_0 + eps)) of the last over the first frame",
        "dimensionless",
        "eps = log_ratio_eps * max_t s(t) + 1e-30 (bounded; 0 when s == 0)",
        2,
    ),
    "monotonicity": (
        "mean sign(s(t+1) - s(t)) in [-1, 1]",
        "dimensionless",
        "exact-zero increments count 0",
        2,
    ),
}
_DISSIPATION_CONV = (
    "P = |fft2(u - mean u, norm='ortho')|^2 / (H W) (DC excluded), |k| in cycles/domain, bands by |k| / (min(H, W)/2) "
    "with band_edges (e1, e2): low (0, e1], mid (e1, e2], high > e2 (corners included); least-squares slope over t = 0..Ts-1"
)
_EXTRA_FEATURES: dict[str, tuple[str, str, str, bool]] = {
    # name -> (description, units, convention, default)
    "spectral_cascade_rate": (
        "least-squares slope per step of the power-weighted mean wavenumber k_bar(t) = sum |k| P / sum P: "
        "> 0 forward cascade (energy to small scales), < 0 inverse cascade",
        "cycles/domain/step",
        _DISSIPATION_CONV + "; k_bar = 0 for a uniform field",
        True,
    ),
    "enstrophy_decay_rate": (
        "-(least-squares slope per step of ln(mean |grad u|^2 + eps)): decay rate of the gradient energy",
        "1/step",
        "periodic central differences in domain units; eps = band_energy_eps * max_t mean |grad u|^2 + 1e-30",
        False,
    ),
    "high_band_fraction_rate": (
        "least-squares slope per step of the high-band energy fraction E_high / (E_low + E_mid + E_high)",
        "1/step",
        _DISSIPATION_CONV + "; fraction 0 for a uniform field",
        False,
    ),
}


# --------------------------------------------------------------------------- building blocks
def gaussian_lowpass(u: torch.Tensor, sigma: float) -> torch.Tensor:
    """Periodic Gaussian low-pass of ``u [..., H, W]`` with standard deviation ``sigma`` (domain units).

    Multiplies ``rfft2(u - mean u)`` by ``exp(-2 pi^2 sigma^2 |k|^2)`` (k in cycles/domain) and adds
    the mean back: the exact circular convolution with the wrapped Gaussian kernel (no padding).
    The mean is taken in float64, so a uniform field comes back unchanged bit for bit.
    """
    h, w = u.shape[-2], u.shape[-1]
    mean = u.mean(dim=(-2, -1), keepdim=True, dtype=torch.float64).to(u.dtype)
    spec = torch.fft.rfft2(u - mean)
    return _lowpass_from(spec, mean, sigma, h, w)


def _lowpass_from(spec: torch.Tensor, mean: torch.Tensor, sigma: float, h: int, w: int) -> torch.Tensor:
    """:func:`gaussian_lowpass` from ``spec = rfft2(u - mean)`` (``spec`` is consumed)."""
    gain = _lowpass_gain(h, w, float(sigma), str(spec.device)).to(spec.real.dtype)
    return torch.fft.irfft2(spec.mul_(gain), s=(h, w)).add_(mean)


def _scale_field(x: torch.Tensor, scale: str, sigma: float) -> torch.Tensor:
    """``x`` at one scale: raw, lowpass (:func:`gaussian_lowpass`) or highpass (raw - lowpass)."""
    if scale == "raw":
        return x
    low = gaussian_lowpass(x, sigma)
    return low if scale == "lowpass" else x - low


def norm_series(u: torch.Tensor, norm: str, bins: int = 32) -> torch.Tensor:
    """The norm ``norm`` of every field of ``u [..., H, W]`` -> ``[...]`` (float32; see module docstring)."""
    return _field_norm(u, norm, bins)


def _field_norm(
    u: torch.Tensor,
    norm: str,
    bins: int,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
    g2: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`norm_series` with the fields' min/max (``lo``/``hi`` ``[...]``) and squared domain-unit
    gradient ``g2`` when at hand."""
    h, w = u.shape[-2], u.shape[-1]
    if norm == "l1":
        return u.abs().mean(dim=(-2, -1))
    if norm == "l2":
        return u.square().mean(dim=(-2, -1)).sqrt()
    if norm == "l1l2":  # both from one |u| buffer (|u|^2 == u^2 exactly)
        a = u.abs()
        return torch.stack([a.mean(dim=(-2, -1)), a.square_().mean(dim=(-2, -1)).sqrt()])
    if norm in ("linf", "entropy"):
        lo = u.amin(dim=(-2, -1)) if lo is None else lo
        hi = u.amax(dim=(-2, -1)) if hi is None else hi
        if norm == "linf":
            return torch.maximum(hi, -lo)  # = max |u| (exact)
        v = ops.flatten_fields(u).reshape(-1, h * w)
        lab = ops.histogram_labels(v, bins, lo.reshape(-1), hi.reshape(-1), offset=True)
        counts = ops.offset_bincount(lab, v.shape[0], bins)
        return ops.entropy_from_counts(counts).reshape(u.shape[:-2])
    if norm == "tv":
        g2 = _grad_sq(u) if g2 is None else g2
        return g2.sqrt().mean(dim=(-2, -1))
    raise ValueError(f"unknown norm {norm!r}")


def _grad_sq(u: torch.Tensor) -> torch.Tensor:
    """``(W gx)^2 + (H gy)^2`` (domain-unit squared gradient) with gx, gy of :func:`ops.grad_xy`, bit for bit."""
    h, w = u.shape[-2], u.shape[-1]
    gx = ops.central_diff(u, -1).mul_(0.5 * w).square_()  # (0.5 d) * w == d * (0.5 w) exactly
    return gx.add_(ops.central_diff(u, -2).mul_(0.5 * h).square_())


def drift_metrics(s: torch.Tensor, eps_rel: float = 1e-6) -> dict[str, torch.Tensor]:
    """Drift metrics of norm series ``s [..., T]`` (T >= 2; ``drift_variance`` needs T >= 3), float64."""
    s = s.double()
    ds = s[..., 1:] - s[..., :-1]
    out = {"mean_drift": ds.mean(-1), "monotonicity": torch.sign(ds).mean(-1)}
    if ds.shape[-1] >= 2:
        out["drift_variance"] = ds.var(-1, correction=1)
    eps = eps_rel * s.abs().amax(-1) + 1e-30
    out["log_ratio"] = torch.log((s[..., -1] + eps) / (s[..., 0] + eps))
    return out


def _band_weights(h: int, w: int, edges: tuple[float, float], device: torch.device) -> torch.Tensor:
    """``[H*W, 5]`` weights: band masks low, mid, high, the all-non-DC mask and |k| (non-DC)."""
    ky, kx = ops.wavenumber_grid(h, w, device=device, dtype=torch.float32)
    kmag = torch.sqrt(ky.square() + kx.square()).reshape(-1)
    kn = min(h, w) / 2.0
    nondc = kmag > 0
    low = nondc & (kmag <= edges[0] * kn)
    mid = (kmag > edges[0] * kn) & (kmag <= edges[1] * kn)
    high = kmag > edges[1] * kn
    return torch.stack([low, mid, high, nondc, nondc], dim=-1).float() * torch.stack(
        [torch.ones_like(kmag)] * 4 + [kmag], dim=-1
    )


@lru_cache(maxsize=32)
def _half_band_weights(h: int, w: int, edges: tuple[float, float], device: str) -> torch.Tensor:
    """:func:`_band_weights` on the ``rfft2`` half plane times the conjugate multiplicity, float64 ``[M, 5]``."""
    hp = half_plane(h, w, 1, device)
    full = _band_weights(h, w, edges, torch.device(device)).double()
    return full[hp.full_index] * hp.weight.double().unsqueeze(1)


@lru_cache(maxsize=32)
def _lowpass_gain(h: int, w: int, sigma: float, device: str) -> torch.Tensor:
    """``exp(-2 pi^2 sigma^2 |k|^2)`` on the ``rfft2`` half plane (float32 ``[H, W//2 + 1]``)."""
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=device, dtype=torch.float64).reshape(h, 1)
    kx = torch.fft.rfftfreq(w, d=1.0 / w, device=device, dtype=torch.float64).reshape(1, w // 2 + 1)
    return torch.exp(-2.0 * math.pi**2 * sigma**2 * (ky.square() + kx.square())).float()


def _neg_log_slope(e: torch.Tensor, eps_rel: float, ref: torch.Tensor) -> torch.Tensor:
    """-(LS slope of ln(e + eps)) along the last axis, eps = eps_rel * ref + 1e-30 (``ref [...]``)."""
    eps = (eps_rel * ref + 1e-30).unsqueeze(-1)
    slope, _, _ = ops.linear_fit(torch.log(e + eps))
    return -slope


# --------------------------------------------------------------------------- family
@register_family
class InvariantDriftFamily(Family[InvariantDriftConfig]):
    """Drift of L1/L2/Linf/entropy/TV norms at raw/lowpass/highpass scales, and band-resolved dissipation."""

    name = "invariant_drift"
    granularity = "trajectory_channel"
    config_model = InvariantDriftConfig
    description = (
        "Drift along the trajectory (mean increment, increment variance, log end/start ratio, monotonicity) of "
        "per-pixel L1, L2, Linf, histogram-entropy and total-variation norms at raw, Gaussian-lowpass and highpass "
        "scales; energy decay rates in low/mid/high wavenumber bands and the spectral cascade direction."
    )

    def catalogue(self, cfg: InvariantDriftConfig) -> list[FeatureSpec]:
        specs: list[FeatureSpec] = []
        flag = f"{self.name}.enabled"
        for norm in (n for n in NORMS if n in cfg.norms):
            ndef, nunits, nconv = _NORM_DOC[norm]
            for metric in METRICS:
                mdef, munits, mconv, min_frames = _METRIC_DOC[metric]
                for scale in (s for s in SCALES if s in cfg.scales):
                    conv = "; ".join(c for c in (nconv, mconv) if c)
                    if scale != "raw":
                        conv += f"; lowpass_sigma = {cfg.lowpass_sigma:g} domain units"
                    specs.append(
                        FeatureSpec(
                            name=f"{norm}_{metric}_{scale}",
                            family=self.name,
                            granularity=self.granularity,
                            description=f"{mdef} of s(t) = {ndef} {_SCALE_DOC[scale]}",
                            units=munits.format(u=nunits),
                            convention=conv,
                            flag=flag,
                            min_frames=min_frames,
                            extra={"norm": norm, "metric": metric, "scale": scale},
                        )
                    )
        for band in BANDS:
            specs.append(
                FeatureSpec(
                    name=f"band_energy_decay_rate_{band}",
                    family=self.name,
                    granularity=self.granularity,
                    description=f"-(least-squares slope per step of ln(E_{band}(t) + eps)), E_{band} = mean-square energy of "
                    "the modes in the band: energy decay rate (> 0 decay, < 0 growth; amplitude ~ exp(-g t) gives 2 g)",
                    units="1/step",
                    convention=_DISSIPATION_CONV + "; eps = band_energy_eps * max_t mean (u - mean u)^2 + 1e-30; "
                    f"band_edges = {cfg.band_edges}",
                    flag=flag,
                    min_frames=2,
                    extra={"band": band},
                )
            )
        for name, (desc, units, conv, default) in _EXTRA_FEATURES.items():
            specs.append(
                FeatureSpec(
                    name=name,
                    family=self.name,
                    granularity=self.granularity,
                    description=desc,
                    units=units,
                    convention=conv,
                    flag=flag if default else f"{self.name}.include: {name}",
                    default=default,
                    min_frames=2,
                )
            )
        return specs

    def compute(self, x: torch.Tensor, cfg: InvariantDriftConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        specs = {s.name: s for s in self.catalogue(cfg)}
        unknown = [n for n in names if n not in specs]
        if unknown:
            raise KeyError(f"not features of {self.name} under this config: {unknown}")
        x = x.float()
        n_s, n_t, n_c, h, w = x.shape
        short = [n for n in names if specs[n].min_frames > n_t]
        if short:
            raise ValueError(f"{short} need more than Ts = {n_t} frames")
        out: dict[str, torch.Tensor] = {}

        # norm drift: only the (scale, norm) pairs that are asked for
        wanted: dict[str, set[str]] = {}
        for n in names:
            e = specs[n].extra
            if "norm" in e:
                wanted.setdefault(e["scale"], set()).add(e["norm"])
        spectral = [
            n
            for n in names
            if n.startswith("band_energy_decay_rate_") or n in ("spectral_cascade_rate", "high_band_fraction_rate")
        ]
        need_ens = "enstrophy_decay_rate" in names
        need_low = "lowpass" in wanted or "highpass" in wanted

        # per-field quantities, in cache-sized chunks of fields (a field's values never mix with another's)
        fields = x.reshape(-1, h, w)
        keys = [(sc, nm) for sc in SCALES if sc in wanted for nm in NORMS if nm in wanted[sc]]
        vals: dict[tuple[str, str], list[torch.Tensor]] = {k: [] for k in keys}
        fin, band, ens = [], [], []
        step = chunk_fields(fields.shape[0], h * w, fields.device)
        for lo in range(0, fields.shape[0], step):
            u = fields[lo : lo + step]
            umax, umin = u.amax(dim=(-2, -1)), u.amin(dim=(-2, -1))  # NaN/Inf propagate
            ok = torch.isfinite(umax) & torch.isfinite(umin)
            u = ops.zero_rows(
                u, ok
            )  # non-finite fields are zeroed here and their (sample, channel) set to NaN at the end
            umax, umin = torch.where(ok, umax, 0.0), torch.where(ok, umin, 0.0)
            fin.append(ok)
            spec = None
            if need_low or spectral:
                mean = u.mean(dim=(-2, -1), keepdim=True, dtype=torch.float64).to(u.dtype)
                spec = torch.fft.rfft2(u - mean)
            if spectral:
                assert spec is not None  # computed for spectral features
                re, im = spec.real, spec.imag
                p = (re * re).addcmul_(im, im).flatten(1).double() / float(h * w) ** 2  # ortho power / (H W)
                # float64 product: exact band sums whatever the TF32 setting
                band.append(p @ _half_band_weights(h, w, tuple(cfg.band_edges), str(x.device)))  # [f, 5]
                del p
            low = None
            if need_low:
                assert spec is not None  # computed for need_low
                low = _lowpass_from(spec, mean, cfg.lowpass_sigma, h, w)
            g2_raw = _grad_sq(u) if (need_ens or "tv" in wanted.get("raw", ())) else None
            if need_ens:
                assert g2_raw is not None  # computed for need_ens
                ens.append(g2_raw.mean(dim=(-2, -1), dtype=torch.float64))
            for scale in (sc for sc in SCALES if sc in wanted):
                flo: torch.Tensor | None
                fhi: torch.Tensor | None
                if scale == "raw":
                    f, flo, fhi, g2 = u, umin, umax, g2_raw
                else:
                    assert low is not None  # need_low: lowpass or highpass is wanted
                    f = low if scale == "lowpass" else u - low
                    flo = fhi = g2 = None
                todo = [nm for nm in NORMS if nm in wanted[scale]]
                if "l1" in todo and "l2" in todo:
                    l1, l2 = _field_norm(f, "l1l2", cfg.entropy_bins)
                    vals[(scale, "l1")].append(l1)
                    vals[(scale, "l2")].append(l2)
                    todo = [nm for nm in todo if nm not in ("l1", "l2")]
                for norm in todo:
                    vals[(scale, norm)].append(_field_norm(f, norm, cfg.entropy_bins, flo, fhi, g2))
            del low, g2_raw, spec

        def series(parts: list[torch.Tensor]) -> torch.Tensor:  # [F, ...] -> [S, C, ..., Ts]
            t = torch.cat(parts).reshape(n_s, n_t, n_c, *parts[0].shape[1:])
            return t.movedim(1, -1)

        finite = series(fin).all(-1)  # [S, C]
        for scale, norm in keys:
            for metric, val in drift_metrics(series(vals[(scale, norm)]), cfg.log_ratio_eps).items():
                out[f"{norm}_{metric}_{scale}"] = val

        if spectral:
            sums = series(band)  # [S, C, 5, Ts]
            bands, total, kw = sums[:, :, :3], sums[:, :, 3], sums[:, :, 4]
            ref = total.amax(-1)
            for i, bd in enumerate(BANDS):
                out[f"band_energy_decay_rate_{bd}"] = _neg_log_slope(bands[:, :, i], cfg.band_energy_eps, ref)
            kbar = torch.where(total > 0, kw / torch.where(total > 0, total, 1.0), torch.zeros_like(total))
            out["spectral_cascade_rate"] = ops.linear_fit(kbar)[0]
            bsum = bands.sum(2)
            frac = torch.where(bsum > 0, bands[:, :, 2] / torch.where(bsum > 0, bsum, 1.0), torch.zeros_like(bsum))
            out["high_band_fraction_rate"] = ops.linear_fit(frac)[0]
        if need_ens:
            es = series(ens)
            out["enstrophy_decay_rate"] = _neg_log_slope(es, cfg.band_energy_eps, es.amax(-1))

        nan = torch.tensor(float("nan"), device=x.device, dtype=torch.float32)
        return {k: torch.where(finite, v.clamp(-_FMAX, _FMAX).float(), nan) for k, v in out.items()}
