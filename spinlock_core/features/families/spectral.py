"""Spectral family: Fourier-power statistics of one channel of one frame.

Conventions (every feature):

* spectrum: ``P(k) = |fft2(u - mean(u), norm="ortho")|^2`` on the **full** plane
  (:func:`~spinlock_core.features.ops.power_spectrum`; Parseval: ``sum_k P = sum_x u^2``), so the
  power of one mode of white noise of variance ``s^2`` is ``s^2`` whatever the grid;
* wavenumbers are integers in cycles per domain, ``|k| = sqrt(kx^2 + ky^2)``; kx runs along the
  width axis (x), ky along the height axis (y); Nyquist radius ``k_N = min(H, W) / 2``;
* the DC mode (the mean) is **excluded** from every statistic; ``E = sum_{k != 0} P(k)`` is the
  non-DC power (= ``H W`` times the population variance) and ``p(k) = P(k) / E``;
* log-spaced bands ``e_i = k_N^(i/S)``, integer shells ``round(|k|) = n``: see
  :mod:`._spectral_util`;
* a field without non-DC power (constant up to float rounding: mean-removed, max-normalised
  non-DC energy below 1e-3) gets 0 for every feature.

Shape statistics are computed on the field divided by ``max|u - mean|`` (scale free); absolute
powers are scaled back.

Implementation: the power is computed by ``rfft2`` and every full-plane sum is taken over the
stored half plane with conjugate multiplicities (:class:`._spectral_util.HalfPlane`); all linear
statistics (band and shell sums, centroid, orientation tensor) come from one matrix product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field, model_validator

from spinlock_core.features.families._spectral_util import half_plane, half_plane_matrix, linear_dtype
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.ops import atan2, half_plane_power, linear_fit, zero_rows
from spinlock_core.features.spec import FeatureSpec

__all__ = ["SpectralConfig", "SpectralFamily"]

_SPECTRUM = 'P = |fft2(u - mean, norm="ortho")|^2 on the full plane, DC excluded'
#: non-DC energy of the max-normalised field below which the field counts as constant
_CONST_TOL = 1e-3


class SpectralConfig(FamilyConfig):
    """Parameters of the spectral family."""

    num_bands: int = Field(
        default=5, ge=1, le=10, description="number S of log-spaced radial bands between |k| = 1 and the Nyquist radius"
    )
    low_cutoff: float = Field(
        default=0.25,
        gt=0.0,
        lt=1.0,
        description="low/mid boundary of the power ratios, as a fraction of the Nyquist radius min(H,W)/2",
    )
    high_cutoff: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="mid/high boundary of the power ratios, as a fraction of the Nyquist radius",
    )
    rolloff_fraction: float = Field(
        default=0.85, gt=0.0, lt=1.0, description="fraction of non-DC power below the roll-off wavenumber"
    )
    harmonic_half_width: float = Field(
        default=0.5,
        ge=0.05,
        le=4.0,
        description="half-width in cycles/domain of the radial shells at n*k0 used by THD and purity",
    )
    flatness_floor: float = Field(
        default=1e-10,
        gt=0.0,
        le=1e-2,
        description="floor added to shell powers in flatness and slope, relative to the mean shell power",
    )

    @model_validator(mode="after")
    def _cutoffs_ordered(self):
        if not self.low_cutoff < self.high_cutoff:
            raise ValueError(f"low_cutoff ({self.low_cutoff}) must be < high_cutoff ({self.high_cutoff})")
        return self


def _spec(name, desc, units="dimensionless", conv="", default=True):
    flag = "spectral.enabled" if default else f"spectral.include: {name}"
    return FeatureSpec(
        name=name,
        family="spectral",
        granularity="timestep_channel",
        description=desc,
        units=units,
        convention=conv,
        flag=flag,
        default=default,
    )


def _band_names(i: int) -> tuple[str, str, str]:
    return (f"spectral_band{i}_power_fraction", f"spectral_band{i}_mean_power", f"spectral_band{i}_max_power")


@register_family
class SpectralFamily(Family[SpectralConfig]):
    """Radial bands, peak, moments, ratios, flatness, entropy, roll-off, slope, anisotropy, harmonics."""

    name = "spectral"
    granularity = "timestep_channel"
    config_model = SpectralConfig
    description = "Fourier power of each channel of each frame: scales, peak, shape, orientation, harmonics."

    def catalogue(self, cfg: SpectralConfig) -> list[FeatureSpec]:
        S = cfg.num_bands
        edges = "e_i = k_N^(i/S), i=0..S (1 to the Nyquist radius k_N = min(H,W)/2, cycles/domain)"
        out: list[FeatureSpec] = []
        for i in range(S):
            f, m, x = _band_names(i)
            rng = f"band {i} of {S}: e_{i} <= |k| < e_{i + 1} ({edges}; the last band includes k_N; corners |k| > k_N in no band)"
            out += [
                _spec(
                    f, f"fraction of non-DC power in {rng}: sum_band P / E", conv=f"{_SPECTRUM}; 0 for an empty band"
                ),
                _spec(
                    m,
                    f"mean power per mode in {rng}: sum_band P / #modes",
                    "field^2",
                    f"{_SPECTRUM}; per-mode power of white noise = its variance; 0 for an empty band",
                ),
                _spec(x, f"largest single-mode power in {rng}", "field^2", f"{_SPECTRUM}; 0 for an empty band"),
            ]
        lo, hi = cfg.low_cutoff, cfg.high_cutoff
        hw = cfg.harmonic_half_width
        out += [
            _spec(
                "spectral_dominant_k",
                "|k| of the non-DC mode of largest power",
                "cycles/domain",
                f"{_SPECTRUM}; argmax over modes, ties -> first in fft order",
            ),
            _spec(
                "spectral_dominant_kx",
                "|kx| of the non-DC mode of largest power (folded, >= 0)",
                "cycles/domain",
                _SPECTRUM,
            ),
            _spec(
                "spectral_dominant_ky",
                "|ky| of the non-DC mode of largest power (folded, >= 0)",
                "cycles/domain",
                _SPECTRUM,
            ),
            _spec(
                "spectral_dominant_power_fraction",
                "(P(k*) + P(-k*)) / E: share of the peak mode and its conjugate",
                conv=f"{_SPECTRUM}; a self-conjugate peak (Nyquist) is counted once; 1 for a plane wave",
            ),
            _spec(
                "spectral_centroid",
                "power-weighted mean wavenumber sum_k p(k) |k|",
                "cycles/domain",
                f"{_SPECTRUM}; p = P/E",
            ),
            _spec(
                "spectral_bandwidth",
                "power-weighted std of |k|: sqrt(sum_k p(k) (|k| - centroid)^2)",
                "cycles/domain",
                f"{_SPECTRUM}; population (p-weighted) std",
            ),
            _spec(
                "spectral_low_ratio",
                f"fraction of non-DC power with |k| < {lo} k_N",
                conv=f"{_SPECTRUM}; k_N = min(H,W)/2",
            ),
            _spec(
                "spectral_mid_ratio",
                f"fraction of non-DC power with {lo} k_N <= |k| < {hi} k_N",
                conv=f"{_SPECTRUM}; k_N = min(H,W)/2",
            ),
            _spec(
                "spectral_high_ratio",
                f"fraction of non-DC power with |k| >= {hi} k_N (corners included)",
                conv=f"{_SPECTRUM}; the three ratios sum to 1",
            ),
            _spec(
                "spectral_flatness",
                "Wiener entropy of the shell spectrum: exp(mean_n ln Ebar_n) / mean_n Ebar_n, "
                "Ebar_n = mean power of the modes of integer shell n = round(|k|), n = 1..floor(k_N)",
                conv=f"{_SPECTRUM}; Ebar_n + floor, floor = {cfg.flatness_floor:g} * mean_n Ebar_n; shell means, not "
                "single modes (a periodogram's per-mode flatness is biased to exp(-gamma) = 0.56 for white noise); "
                "~0.98 for white noise at 64^2, -> 0 for a line spectrum",
            ),
            _spec(
                "spectral_entropy",
                "normalised spectral entropy -sum_k p ln p / ln(H W - 1) over non-DC modes",
                conv=f"{_SPECTRUM}; nats / ln(number of non-DC modes); white noise: E ~ 1 - (1 - gamma)/ln(HW-1) (0.949 at 64^2)",
            ),
            _spec(
                "spectral_rolloff",
                f"smallest |k| such that the modes with |k'| <= |k| hold {cfg.rolloff_fraction:g} of the non-DC power",
                "cycles/domain",
                f"{_SPECTRUM}; modes ordered by |k| (a wavenumber, not a bin fraction)",
            ),
            _spec(
                "spectral_slope",
                "least-squares slope of ln Ebar_n against ln n over shells n = 1..floor(k_N) "
                "(power-law exponent of the per-mode radial spectrum; 0 for white noise)",
                conv=f"{_SPECTRUM}; Ebar_n as in spectral_flatness with the same floor; unweighted fit",
            ),
            _spec(
                "spectral_anisotropy",
                "(sum P kx^2 - sum P ky^2) / sum P |k|^2, in [-1, 1]; +1: all power along kx "
                "(variation along x), -1: along ky",
                conv=_SPECTRUM,
            ),
            _spec(
                "spectral_orientation_coherence",
                "coherence of the spectral structure tensor J = sum_k P k k^T: "
                "sqrt((Jxx - Jyy)^2 + 4 Jxy^2) / (Jxx + Jyy), in [0, 1]; 1 for a plane wave, ~0 for an isotropic field",
                conv=f"{_SPECTRUM}; |k|^2 weighting (gradient-energy orientation)",
            ),
            _spec(
                "spectral_thd",
                f"total harmonic distortion (power ratio): sum_(n>=2) P_shell(n k0) / P_shell(k0), "
                f"shells ||k| - n k0| <= {hw:g} with n = round(|k|/k0), harmonics n >= 2 up to n k0 <= k_N, k0 = spectral_dominant_k",
                conv=f"{_SPECTRUM}; power (not amplitude) ratio: a square wave gives sum over odd n >= 3 of 1/n^2; 0 for a sinusoid",
            ),
            _spec(
                "spectral_fundamental_purity",
                f"share of non-DC power in the fundamental shell ||k| - k0| <= {hw:g}: P_shell(k0) / E",
                conv=_SPECTRUM,
            ),
            # opt-ins
            _spec(
                "spectral_orientation_angle",
                "principal orientation of the wavevectors, 0.5 atan2(2 Jxy, Jxx - Jyy), "
                "in degrees (-90, 90]; 0 = wavevectors along x",
                "degrees",
                f"{_SPECTRUM}; J as in spectral_orientation_coherence; circular, ill-defined when the coherence is ~0",
                default=False,
            ),
            _spec(
                "spectral_energy_peak_k",
                "integer shell n = round(|k|) holding the most power (sum, not mean, over the shell)",
                "cycles/domain",
                f"{_SPECTRUM}; shells 1..floor(k_N); ties -> lowest n",
                default=False,
            ),
        ]
        return out

    def compute(self, x: torch.Tensor, cfg: SpectralConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        n, c, h, w = x.shape
        u = x.reshape(n * c, h * w).to(torch.float32)
        umax, umin = u.amax(1), u.amin(1)  # NaN/Inf propagate
        finite = torch.isfinite(umax) & torch.isfinite(umin)
        u = zero_rows(u, finite)
        umax, umin = torch.where(finite, umax, 0.0), torch.where(finite, umin, 0.0)
        mean = u.mean(1, keepdim=True)
        u = u - mean
        scale = torch.maximum(umax - mean[:, 0], mean[:, 0] - umin)  # = max |u - mean| (monotone rounding)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        v = u.div_(scale.view(-1, 1)).view(-1, h, w)
        nan = torch.full((), float("nan"), device=u.device)
        if h * w < 2:  # a single pixel has no non-DC mode
            zero = torch.where(finite, 0.0, nan).reshape(n, c)
            return {k: zero.clone() for k in (names or [s.name for s in self.catalogue(cfg)])}
        hp = half_plane(h, w, cfg.num_bands, u.device)
        geo = hp.geo
        P = half_plane_power(v).flatten(1)  # [B, M] stored modes; full-plane sums via hp.weight / hp.sym
        del u, v
        S = cfg.num_bands
        # all linear statistics sum_k P g(k) in one product (float64 on accelerators: immune to TF32)
        lin_dt = linear_dtype(P.device)
        lin64 = P.to(lin_dt) @ half_plane_matrix(hp, "sym", lin_dt)  # [B, 5 + S + n_shells]
        lin = lin64.to(torch.float32)
        E = lin[:, 0]
        valid = E > _CONST_TOL
        Es = torch.where(valid, E, torch.ones_like(E))
        s2 = scale.square()
        out: dict[str, torch.Tensor] = {}
        wp = P * hp.weight  # full-plane share of each stored mode (DC: 0)

        # ---- log-spaced bands (ranges of the |k| order)
        ws = wp.index_select(1, hp.order)  # [B, M-1] by |k|
        cnt = geo.band_count
        for i in range(S):
            f, m, mx = _band_names(i)
            bsum = lin[:, 5 + i]
            out[f] = bsum / Es
            out[m] = (bsum / cnt[i] if cnt[i] > 0 else torch.zeros_like(E)) * s2
            a, b = hp.band_range[i]
            out[mx] = (P.index_select(1, hp.order[a:b]).amax(1) if b > a else torch.zeros_like(E)) * s2

        # ---- dominant mode (ties -> first in full-plane fft order)
        Pn = torch.where(hp.weight > 0, P, torch.full_like(P, -1.0))
        top = Pn.amax(1, keepdim=True)
        k_idx = torch.where(Pn == top, hp.tie_key, torch.full_like(hp.tie_key, geo.h * geo.w)).argmin(1)
        k0 = hp.kmag[k_idx]
        out["spectral_dominant_k"] = k0
        out["spectral_dominant_kx"] = hp.kx[k_idx].abs()
        out["spectral_dominant_ky"] = hp.ky[k_idx].abs()
        p_peak = P.gather(1, k_idx[:, None]).squeeze(1) / Es
        p_mir = P.gather(1, hp.mirror[k_idx][:, None]).squeeze(1) / Es
        out["spectral_dominant_power_fraction"] = p_peak + torch.where(
            hp.self_conj[k_idx], torch.zeros_like(p_mir), p_mir
        )

        # ---- moments, ratios
        cen = lin[:, 1] / Es
        out["spectral_centroid"] = cen
        dk = hp.kmag - cen.unsqueeze(1)
        out["spectral_bandwidth"] = (dk.square_().mul_(wp).sum(1) / Es).clamp_min(0).sqrt()
        del dk
        c1, c2 = cfg.low_cutoff * geo.k_nyq, cfg.high_cutoff * geo.k_nyq
        kmag = hp.kmag
        ratios = (wp.to(lin_dt) @ half_plane_matrix(hp, "regions", lin_dt, (c1, c2))).to(torch.float32) / Es.unsqueeze(
            1
        )
        out["spectral_low_ratio"] = ratios[:, 0]
        out["spectral_mid_ratio"] = ratios[:, 1]
        out["spectral_high_ratio"] = ratios[:, 2]

        # ---- shell spectrum: flatness, slope, energy peak
        if geo.n_shells >= 1:
            ssum = lin[:, 5 + S :]  # [B, n_shells]
            ebar = ssum / geo.shell_count[1 : geo.n_shells + 1].clamp_min(1.0)
            amean = ebar.mean(1)
            floor = cfg.flatness_floor * amean + 1e-30
            lg = (ebar + floor.unsqueeze(1)).log()
            out["spectral_flatness"] = (lg.mean(1).exp() / (amean + floor)).clamp(0.0, 1.0)
            out["spectral_energy_peak_k"] = (ssum.argmax(1) + 1).to(torch.float32)
        else:  # degenerate grid (a side of 1 pixel): no shell
            out["spectral_flatness"] = out["spectral_energy_peak_k"] = torch.zeros_like(E)
        if geo.n_shells >= 2:
            t = torch.arange(1, geo.n_shells + 1, device=P.device, dtype=torch.float32).log()
            out["spectral_slope"] = linear_fit(lg, t)[0]
        else:
            out["spectral_slope"] = torch.zeros_like(E)

        # ---- entropy, roll-off
        m_modes = max(h * w - 1, 2)
        p = P / Es.unsqueeze(1)
        plogp = p.clamp_min(1e-38).log_().mul_(p)  # p ln p, 0 at p = 0
        out["spectral_entropy"] = (
            -(plogp.to(lin_dt) @ half_plane_matrix(hp, "weight", lin_dt)).float() / math.log(m_modes)
        ).clamp(0.0, 1.0)
        del p, plogp
        cs = ws.cumsum(1)
        r_idx = (cs < (cfg.rolloff_fraction * Es).unsqueeze(1)).sum(1).clamp_max(cs.shape[1] - 1)
        out["spectral_rolloff"] = hp.kmag_sorted[r_idx]
        del cs, ws

        # ---- orientation
        # in float64: Jxx - Jyy cancels, and float32 rounding of the sums would leak into the angle
        E64 = torch.where(valid, lin64[:, 0], torch.ones_like(lin64[:, 0]))
        jxx, jyy, jxy = lin64[:, 2] / E64, lin64[:, 3] / E64, lin64[:, 4] / E64
        tr = (jxx + jyy).clamp_min(1e-30)
        out["spectral_anisotropy"] = ((jxx - jyy) / tr).clamp(-1.0, 1.0).float()
        out["spectral_orientation_coherence"] = (
            (torch.sqrt((jxx - jyy).square() + 4 * jxy.square()) / tr).clamp(0.0, 1.0).float()
        )
        out["spectral_orientation_angle"] = torch.rad2deg(0.5 * atan2(2 * jxy, jxx - jyy)).float()

        # ---- harmonics around k0
        k0c = k0.clamp_min(1.0).unsqueeze(1)
        nh = torch.round(kmag.unsqueeze(0) / k0c)
        near = (kmag.unsqueeze(0) - nh * k0c).abs() <= cfg.harmonic_half_width
        fund = (wp * (near & (nh == 1))).sum(1) / Es
        harm = (wp * (near & (nh >= 2) & (nh * k0c <= geo.k_nyq + 1e-6))).sum(1) / Es
        out["spectral_thd"] = harm / fund.clamp_min(1e-30)
        out["spectral_fundamental_purity"] = fund

        # ---- constant fields -> 0, non-finite -> NaN; [B] -> [N, C]
        res = {}
        for k in names if names else out.keys():
            val = torch.where(valid, out[k], torch.zeros_like(out[k]))
            res[k] = torch.where(finite, val, nan).to(torch.float32).reshape(n, c)
        return res
