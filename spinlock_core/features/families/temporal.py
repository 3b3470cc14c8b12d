"""Temporal family: dynamics of one channel of one trajectory, from per-frame summary series.

Granularity ``trajectory_channel``: ``x [S, Ts, C, H, W] -> [S, C]`` per feature.

Each frame is first reduced to three summary series over the ``Ts`` frames (``t = 0 .. Ts-1``
in **steps**; frame 0 is the initial condition), see
:func:`~spinlock_core.features.families._series.summary_series` (float32 spatial reductions,
float64 series):

* ``m(t) = mean_xy u`` (spatial mean, field units),
* ``E(t) = mean_xy u^2`` (mean energy per pixel, field^2),
* ``V(t) = mean_xy (u - m)^2`` (population spatial variance, field^2).

``m`` is treated as constant where its temporal std is at the float32 rounding level of a
spatial mean (``<= 1e-6 sqrt(max_t E)``, a mean-conserving rollout), so its features take
their constant-series values instead of describing rounding noise.

Every feature names the series it uses; everything after the reduction is batched float64
over ``[S, C]``. Fits are ordinary least squares against ``t``; temporal std/var are
population (divisor ``Ts``) unless stated. Log series use ``ln(E + eps_E)`` with
``eps_E = 1e-12 * max_t E + 1e-300`` (scale-free; a field that vanishes exactly does not give an
infinite slope). Values are float32 (clamped to the float32 range), finite for finite input; a
channel whose summary series are not all finite (NaN/inf input, a diverged rollout) gets NaN
for every feature.

Short trajectories: every feature declares ``min_frames`` (``Ts`` needed for it to mean
something); with ``Ts = 2`` (T = 1) only the growth rates, the trend slope and the two
initial/final comparisons remain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field, field_validator

from spinlock_core.features import ops
from spinlock_core.features.families import _series as ts
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.spec import FeatureSpec

__all__ = ["TemporalConfig", "TemporalFamily", "fraction_tag"]

_ROLL_STATS = ("mean", "std", "max", "min", "mean_variability", "std_variability")


def fraction_tag(f: float) -> str:
    """Name tag of a rolling-window fraction: percent, ``0.05 -> "5"``, ``0.025 -> "2p5"``."""
    pct = round(f * 100.0, 6)
    if abs(pct - round(pct)) < 1e-9:
        return str(int(round(pct)))
    return f"{pct:g}".replace(".", "p")


class TemporalConfig(FamilyConfig):
    """Parameters of the temporal family (defaults reproduce the documented catalogue)."""

    autocorr_max_lag: int = Field(
        default=50,
        ge=1,
        le=10000,
        description="cap (in steps) of autocorr_decay_time; the effective cap is min(autocorr_max_lag, Ts - 1)",
    )
    pacf_max_lag: int = Field(
        default=10,
        ge=1,
        le=50,
        description="partial autocorrelations at lags 1..pacf_max_lag (Durbin-Levinson on the biased ACF)",
    )
    rolling_window_fractions: tuple[float, ...] = Field(
        default=(0.05, 0.10, 0.20),
        description="rolling-window lengths as fractions of Ts (each in (0, 0.5]); six statistics per window",
    )
    event_threshold_std: float = Field(
        default=2.0, gt=0.0, le=10.0, description="spikes: upward crossings of mean + k * std of m(t)"
    )
    burst_threshold_std: float = Field(
        default=1.0, ge=0.0, le=10.0, description="bursts: runs above mean + k * std of m(t)"
    )
    burst_min_length: int = Field(
        default=3, ge=2, le=1000, description="bursts: minimum run length in consecutive frames"
    )
    divergence_horizon: int = Field(
        default=5,
        ge=1,
        le=50,
        description="divergence_rate: steps over which the mean log neighbour distance is fitted",
    )
    divergence_theiler: int = Field(
        default=1, ge=0, le=100, description="divergence_rate: neighbours must be more than this many steps apart"
    )
    divergence_candidates: int = Field(
        default=8, ge=1, le=64, description="divergence_rate: neighbour candidates on each side in value order"
    )

    @field_validator("rolling_window_fractions")
    @classmethod
    def _check_fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        for f in v:
            if not 0.0 < f <= 0.5:
                raise ValueError(f"rolling window fraction {f} must be in (0, 0.5]")
        tags = [fraction_tag(f) for f in v]
        if len(set(tags)) != len(tags):
            raise ValueError(f"rolling window fractions {v} give duplicate names {tags}")
        return v


def _rolling_min_frames(f: float) -> int:
    # window floor(f * Ts) >= 2 without clamping, and at least 2 windows
    return max(4, math.ceil(2.0 / f - 1e-9))


def _window(f: float, n_frames: int) -> int:
    return max(1, min(n_frames - 1, max(2, int(math.floor(f * n_frames + 1e-9)))))


@register_family
class TemporalFamily(Family[TemporalConfig]):
    """Growth, oscillation, memory, divergence, events and rolling statistics per channel."""

    name = "temporal"
    granularity = "trajectory_channel"
    config_model = TemporalConfig
    description = (
        "Per-channel dynamics of a trajectory from its spatial-mean m(t), energy E(t) = mean u^2 "
        "and spatial-variance V(t) series: growth rates, oscillation, autocorrelation memory, "
        "nearest-neighbour divergence, smoothness, events, time-to-event, rolling windows, PACF."
    )

    # ------------------------------------------------------------------ catalogue
    def catalogue(self, cfg: TemporalConfig) -> list[FeatureSpec]:
        flag = "temporal.enabled"

        def spec(name: str, desc: str, units: str, conv: str, min_frames: int) -> FeatureSpec:
            return FeatureSpec(
                name=name,
                family=self.name,
                granularity=self.granularity,
                description=desc,
                units=units,
                convention=conv,
                flag=flag,
                min_frames=min_frames,
            )

        lnE = "series ln(E + eps_E), eps_E = 1e-12 * max_t E + 1e-300; t = 0..Ts-1"
        h, th, kc = cfg.divergence_horizon, cfg.divergence_theiler, cfg.divergence_candidates
        out = [
            spec(
                "energy_growth_rate",
                "Least-squares slope of ln E(t) against t (E = mean_xy u^2): exponential growth rate of the energy.",
                "1/step",
                lnE,
                2,
            ),
            spec(
                "variance_growth_rate",
                "Least-squares slope of ln V(t) against t (V = population spatial variance).",
                "1/step",
                "series ln(V + eps_V), eps_V = 1e-12 * max_t V + 1e-300",
                2,
            ),
            spec(
                "energy_growth_accel",
                "Curvature of ln E(t): 2 * c2 of the least-squares quadratic fit c0 + c1 t + c2 t^2.",
                "1/step^2",
                lnE + "; c2 from the centred orthogonal quadratic",
                4,
            ),
            spec(
                "mean_trend_slope",
                "Least-squares slope of the spatial mean m(t) against t.",
                "field/step",
                "ordinary least squares, t = 0..Ts-1",
                2,
            ),
            spec(
                "energy_log_ratio",
                "ln((E(T) + eps_E) / (E(0) + eps_E)): net log change of the energy from the IC to the last frame.",
                "nats",
                lnE,
                2,
            ),
            spec(
                "mean_final_initial_change",
                "Bounded normalised change of the spatial mean: (m(T) - m(0)) / (|m(T)| + |m(0)|), in [-1, 1].",
                "dimensionless",
                "0 when m(T) = m(0) = 0 (denominator + 1e-300)",
                2,
            ),
            spec(
                "trend_strength",
                "R^2 of the least-squares line through m(t), in [0, 1].",
                "dimensionless",
                "0 for a constant series",
                3,
            ),
            spec(
                "detrended_variance",
                "Variance of the residuals of the least-squares line through m(t).",
                "field^2",
                "sum of squared residuals / (Ts - 2)",
                4,
            ),
            spec(
                "temporal_dominant_frequency",
                "Frequency of the largest periodogram bin (excluding 0) of the linearly detrended m(t).",
                "cycles/step",
                "rfft of the detrended series (no window, no padding), bins k/Ts for k = 1..Ts//2, resolution 1/Ts; 0 when the detrended series is null (power <= 1e-13 * mean m^2)",
                6,
            ),
            spec(
                "oscillation_amplitude",
                "Amplitude of the dominant oscillation of the detrended m(t): 2 |Y_k| / Ts at the dominant bin (|Y_k| / Ts at Nyquist).",
                "field",
                "a sine of amplitude a on a bin gives a (up to detrending leakage); 0 when there is no oscillation",
                6,
            ),
            spec(
                "oscillation_period",
                "Period of the dominant oscillation of m(t): 1 / temporal_dominant_frequency.",
                "steps",
                "Ts / k for bin k; Ts when there is no oscillation",
                6,
            ),
            spec(
                "oscillation_power_fraction",
                "Fraction of the detrended m(t) variance in the dominant frequency bin, in [0, 1].",
                "dimensionless",
                "one-sided periodogram weights 2 (interior) and 1 (Nyquist); 0 when there is no oscillation",
                6,
            ),
            spec(
                "temporal_spectral_entropy",
                "Normalised Shannon entropy of the one-sided periodogram (k >= 1) of the detrended m(t), in [0, 1].",
                "dimensionless",
                "natural logs divided by ln(Ts//2); 0 when there is no oscillation",
                6,
            ),
            spec(
                "autocorr_decay_time",
                "First lag where the autocorrelation of m(t) falls below 1/e, linearly interpolated between lags.",
                "steps",
                f"biased ACF by zero-padded FFT (divisor Ts at every lag); capped at min(autocorr_max_lag = {cfg.autocorr_max_lag}, Ts - 1) when it never falls below 1/e; a constant series has ACF 0 at lags >= 1",
                4,
            ),
            spec(
                "divergence_rate",
                "Rosenstein-type nearest-neighbour divergence rate of m(t): slope over k = 0..horizon of the mean log distance between neighbouring delay states.",
                "nats/step",
                f"z-scored m, embedding dim 2, delay 1, horizon {h}, Theiler window {th} (|s - t| > {th}), neighbour searched among {kc} candidates per side in value order, eps 1e-6 std; ~ln 2 for the logistic map r = 4, ln r for a decay c + a r^t",
                h + 2 * th + 6,
            ),
            spec(
                "smoothness",
                "Bounded smoothness 1 - sum|d2 m| / (2 sum|d m|) of m(t), in [0, 1] (1 for a straight line, ~0 for an alternating series).",
                "dimensionless",
                "forward differences; 1 for a constant series",
                3,
            ),
            spec(
                "regime_switches",
                "Number of sign changes of the increments d m(t) = m(t+1) - m(t), ignoring exact zeros.",
                "count",
                "a zero increment is skipped (+, 0, - counts one switch)",
                3,
            ),
            spec(
                "num_spikes",
                f"Number of upward crossings of mean + {cfg.event_threshold_std:g} std by m(t): m(t-1) <= thr < m(t).",
                "count",
                "temporal mean and population std of m; 0 for a constant series (std <= 1e-12 * rms)",
                4,
            ),
            spec(
                "num_bursts",
                f"Number of runs of >= {cfg.burst_min_length} consecutive frames with m(t) > mean + {cfg.burst_threshold_std:g} std.",
                "count",
                "temporal mean and population std of m; 0 for a constant series",
                max(4, cfg.burst_min_length + 1),
            ),
            spec(
                "num_zero_crossings",
                "Number of sign changes of m(t) - mean_t m, ignoring exact zeros.",
                "count",
                "0 for a constant series",
                3,
            ),
            spec(
                "time_to_energy_half",
                "First step t >= 1 with E(t) < E(0) / 2, as a fraction t / (Ts - 1); 1 if never.",
                "fraction of T",
                "strict inequality",
                3,
            ),
            spec(
                "time_to_energy_double",
                "First step t >= 1 with E(t) > 2 E(0), as a fraction t / (Ts - 1); 1 if never.",
                "fraction of T",
                "strict inequality",
                3,
            ),
            spec(
                "time_to_mean_shift_0p5std",
                "First step t >= 1 with |m(t) - m(0)| > 0.5 std_t(m), as a fraction t / (Ts - 1); 1 if never.",
                "fraction of T",
                "population std of m over time; 1 for a constant series",
                3,
            ),
            spec(
                "time_to_mean_shift_2std",
                "First step t >= 1 with |m(t) - m(0)| > 2 std_t(m), as a fraction t / (Ts - 1); 1 if never.",
                "fraction of T",
                "population std of m over time; 1 for a constant series",
                3,
            ),
        ]
        roll_desc = {
            "mean": "mean over windows of the window mean of m(t)",
            "std": "mean over windows of the window (population) std of m(t)",
            "max": "mean over windows of the window max of m(t)",
            "min": "mean over windows of the window min of m(t)",
            "mean_variability": "population std over windows of the window means of m(t)",
            "std_variability": "population std over windows of the window stds of m(t)",
        }
        roll_units = {
            "mean": "field",
            "std": "field",
            "max": "field",
            "min": "field",
            "mean_variability": "field",
            "std_variability": "field",
        }
        for f in cfg.rolling_window_fractions:
            tag = fraction_tag(f)
            for st in _ROLL_STATS:
                out.append(
                    spec(
                        f"rolling_w{tag}_{st}",
                        f"Rolling window of {f:g} Ts frames: {roll_desc[st]}.",
                        roll_units[st],
                        f"window w = max(2, floor({f:g} * Ts)) frames, stride 1, Ts - w + 1 windows (Tensor.unfold)",
                        _rolling_min_frames(f),
                    )
                )
        for k in range(1, cfg.pacf_max_lag + 1):
            out.append(
                spec(
                    f"pacf_lag_{k}",
                    f"Partial autocorrelation of m(t) at lag {k}, in [-1, 1].",
                    "dimensionless",
                    "Durbin-Levinson recursion on the biased ACF (statsmodels pacf method='ldbiased'); 0 after a zero prediction-error variance",
                    2 * k + 2,
                )
            )
        return out

    # ------------------------------------------------------------------ compute
    def compute(self, x: torch.Tensor, cfg: TemporalConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        want = set(names)
        m, energy, var = ts.summary_series(x)  # [S, C, Ts] float64
        m = ts.flatten_rounding_noise(m, energy)
        n_t = m.shape[-1]
        res: dict[str, torch.Tensor] = {}
        t = torch.arange(n_t, dtype=m.dtype, device=m.device)

        def need(*keys: str) -> bool:
            return any(k in want for k in keys)

        def log_series(v: torch.Tensor) -> torch.Tensor:
            eps = 1e-12 * v.amax(-1, keepdim=True) + 1e-300
            return torch.log(v.clamp_min(0.0) + eps)

        # -- growth
        if need("energy_growth_rate", "energy_growth_accel", "energy_log_ratio"):
            le = log_series(energy)
            res["energy_growth_rate"] = ops.linear_fit(le, t)[0]
            tc = t - t.mean()
            q = tc * tc - (tc * tc).mean()
            qq = (q * q).sum()
            res["energy_growth_accel"] = 2.0 * (le * q).sum(-1) / qq if qq > 0 else torch.zeros_like(le[..., 0])
            res["energy_log_ratio"] = le[..., -1] - le[..., 0]
        if need("variance_growth_rate"):
            res["variance_growth_rate"] = ops.linear_fit(log_series(var), t)[0]

        # -- trend of m
        slope, icpt, r2 = ops.linear_fit(m, t)
        resid = m - (slope.unsqueeze(-1) * t + icpt.unsqueeze(-1))
        res["mean_trend_slope"] = slope
        res["trend_strength"] = r2
        res["detrended_variance"] = resid.square().sum(-1) / max(n_t - 2, 1)
        m0, mT = m[..., 0], m[..., -1]
        res["mean_final_initial_change"] = (mT - m0) / (mT.abs() + m0.abs() + 1e-300)

        mu = m.mean(-1, keepdim=True)
        sd = (m - mu).square().mean(-1, keepdim=True).sqrt()
        rms = m.square().mean(-1, keepdim=True).sqrt()
        varies = sd > 1e-12 * rms  # not constant up to rounding

        # -- oscillation (periodogram of the detrended mean)
        if need(
            "temporal_dominant_frequency",
            "oscillation_amplitude",
            "oscillation_period",
            "oscillation_power_fraction",
            "temporal_spectral_entropy",
        ):
            res.update(self._oscillation(resid, m, n_t))

        # -- memory
        if need("autocorr_decay_time"):
            cap = min(cfg.autocorr_max_lag, n_t - 1)
            res["autocorr_decay_time"] = (
                ts.acf_decay_time(ts.acf_biased(m, max(cap, 1))) if n_t > 1 else torch.zeros_like(m0)
            )
        pacf_names = [f"pacf_lag_{k}" for k in range(1, cfg.pacf_max_lag + 1)]
        if need(*pacf_names):
            rho = ts.acf_biased(m, cfg.pacf_max_lag)
            if rho.shape[-1] < cfg.pacf_max_lag + 1:
                rho = torch.cat([rho, rho.new_zeros(*rho.shape[:-1], cfg.pacf_max_lag + 1 - rho.shape[-1])], -1)
            pac = ts.pacf_durbin_levinson(rho, cfg.pacf_max_lag)
            for k, nm in enumerate(pacf_names):
                res[nm] = pac[..., k]
        if need("divergence_rate"):
            res["divergence_rate"] = ts.nn_divergence_rate(
                m, cfg.divergence_horizon, cfg.divergence_theiler, cfg.divergence_candidates
            )

        # -- shape of the path
        d1 = m.diff(dim=-1) if n_t > 1 else m[..., :0]
        if need("smoothness"):
            tv = d1.abs().sum(-1)
            rough = d1.diff(dim=-1).abs().sum(-1) if n_t > 2 else torch.zeros_like(tv)
            res["smoothness"] = torch.where(
                tv > 0, 1.0 - rough / (2.0 * torch.where(tv > 0, tv, torch.ones_like(tv))), torch.ones_like(tv)
            ).clamp(0.0, 1.0)
        res["regime_switches"] = ts.count_sign_changes(d1)

        # -- events
        if need("num_spikes", "num_bursts", "num_zero_crossings"):
            thr = mu + cfg.event_threshold_std * sd
            above = (m > thr) & varies
            res["num_spikes"] = (above[..., 1:] & ~above[..., :-1]).sum(-1).to(m.dtype)
            ab = (m > mu + cfg.burst_threshold_std * sd) & varies
            L = cfg.burst_min_length
            if n_t >= L:
                run = ab.to(torch.int8).unfold(-1, L, 1).amin(-1).bool()  # window of L frames all above
                res["num_bursts"] = (run[..., :1].sum(-1) + (run[..., 1:] & ~run[..., :-1]).sum(-1)).to(m.dtype)
            else:
                res["num_bursts"] = torch.zeros_like(m0)
            res["num_zero_crossings"] = torch.where(
                varies.squeeze(-1), ts.count_sign_changes(m - mu), torch.zeros_like(m0)
            )

        # -- time to event
        if need("time_to_energy_half", "time_to_energy_double", "time_to_mean_shift_0p5std", "time_to_mean_shift_2std"):
            denom = float(max(n_t - 1, 1))

            def first(cond: torch.Tensor) -> torch.Tensor:
                c = cond[..., 1:]
                if c.shape[-1] == 0:
                    return torch.ones_like(m0)
                idx = torch.argmax(c.to(torch.int8), dim=-1).to(m.dtype) + 1.0
                return torch.where(c.any(-1), idx / denom, torch.ones_like(idx))

            e0 = energy[..., :1]
            res["time_to_energy_half"] = first(energy < 0.5 * e0)
            res["time_to_energy_double"] = first(energy > 2.0 * e0)
            dev = (m - m[..., :1]).abs()
            res["time_to_mean_shift_0p5std"] = first((dev > 0.5 * sd) & varies)
            res["time_to_mean_shift_2std"] = first((dev > 2.0 * sd) & varies)

        # -- rolling windows
        for f in cfg.rolling_window_fractions:
            tag = fraction_tag(f)
            keys = [f"rolling_w{tag}_{st}" for st in _ROLL_STATS]
            if need(*keys):
                stats = ts.rolling_stats(m, _window(f, n_t))
                for st, key in zip(_ROLL_STATS, keys):
                    res[key] = stats[st]

        bad = ~(torch.isfinite(m).all(-1) & torch.isfinite(energy).all(-1))  # diverged input -> NaN
        return {
            k: ts.to_output(torch.where(bad, torch.full_like(v, float("nan")), v)) for k, v in res.items() if k in want
        }

    @staticmethod
    def _oscillation(resid: torch.Tensor, m: torch.Tensor, n_t: int) -> dict[str, torch.Tensor]:
        """Periodogram features of the detrended series ``resid [..., Ts]``."""
        spec = torch.fft.rfft(resid, dim=-1)[..., 1:]  # bins k = 1..Ts//2
        zero = torch.zeros_like(resid[..., 0])
        if spec.shape[-1] == 0:
            return {
                "temporal_dominant_frequency": zero,
                "oscillation_amplitude": zero,
                "oscillation_period": zero + n_t,
                "oscillation_power_fraction": zero,
                "temporal_spectral_entropy": zero,
            }
        power = spec.real.square() + spec.imag.square()
        k = torch.arange(1, power.shape[-1] + 1, device=m.device)
        weight = torch.where(2 * k == n_t, 1.0, 2.0).to(power.dtype)  # one-sided: Nyquist counted once
        wp = weight * power
        tot = wp.sum(-1)
        null = resid.square().mean(-1) <= 1e-13 * m.square().mean(-1)
        kstar = torch.argmax(power, dim=-1)
        kb = (kstar + 1).to(power.dtype)
        pk = power.gather(-1, kstar.unsqueeze(-1)).squeeze(-1)
        wk = weight.expand_as(power).gather(-1, kstar.unsqueeze(-1)).squeeze(-1)
        amp = wk * pk.sqrt() / n_t
        frac = wk * pk / torch.where(tot > 0, tot, torch.ones_like(tot))
        p = wp / torch.where(tot > 0, tot, torch.ones_like(tot)).unsqueeze(-1)
        ent = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)
        nb = power.shape[-1]
        ent = ent / math.log(nb) if nb > 1 else torch.zeros_like(ent)
        return {
            "temporal_dominant_frequency": torch.where(null, zero, kb / n_t),
            "oscillation_amplitude": torch.where(null, zero, amp),
            "oscillation_period": torch.where(null, zero + n_t, n_t / kb),
            "oscillation_power_fraction": torch.where(null, zero, frac),
            "temporal_spectral_entropy": torch.where(null, zero, ent.clamp(0.0, 1.0)),
        }
