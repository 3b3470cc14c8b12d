"""The operator knob registry: every parameter a config may sample, its domain and default.

This is the single source of truth for what ``parameter_space`` may declare. Config
validation checks declared parameters against it (unknown names, choices outside the
allowed set, bounds outside the domain); the spec builder fills undeclared knobs with the
documented ``default`` and records the value used in every operator spec, so nothing is a
silent default.

Conventions:
    * ``spatial_correlation`` is a correlation length as a fraction of the domain side.
    * ``schedule_period`` is in rollout steps.
    * ``dt`` and ``alpha`` are dimensionless (see :mod:`spinlock_core.rollout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Knob", "KNOBS", "KNOB_GROUPS", "NOISE_REGIME_THRESHOLDS", "noise_regime"]

KnobKind = Literal["integer", "continuous", "choice"]


@dataclass(frozen=True)
class Knob:
    """One operator knob.

    Attributes:
        name: parameter name used in ``parameter_space``.
        group: the parameter-space group it conventionally belongs to.
        kind: "integer", "continuous" or "choice" (a categorical knob).
        default: value used when the config does not declare the knob.
        low, high: inclusive domain for numeric knobs (``None`` = unbounded).
        choices: allowed values of a categorical knob (numeric knobs may still be declared
            as ``type: choice`` with values inside ``[low, high]``).
        odd_only: integer values must be odd (kernel sizes).
        description: one line for docs and error messages.
    """

    name: str
    group: str
    kind: KnobKind
    default: object
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    odd_only: bool = False
    low_exclusive: bool = False
    high_exclusive: bool = False

    def check_value(self, value: object) -> str | None:
        """Return an error message if ``value`` is outside the knob's domain, else None."""
        if self.kind == "choice":
            if value not in self.choices:
                return f"{value!r} is not allowed for {self.name} (allowed: {', '.join(map(str, self.choices))})"
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{self.name} must be a number, got {value!r}"
        if self.kind == "integer" and float(value) != int(value):
            return f"{self.name} must be an integer, got {value!r}"
        lo_ok = self.low is None or (value > self.low if self.low_exclusive else value >= self.low)
        hi_ok = self.high is None or (value < self.high if self.high_exclusive else value <= self.high)
        if not (lo_ok and hi_ok):
            lo_b = "(" if self.low_exclusive else "["
            hi_b = ")" if self.high_exclusive else "]"
            return f"{value!r} is outside the domain of {self.name} {lo_b}{self.low}, {self.high}{hi_b}"
        if self.odd_only and int(value) % 2 == 0:
            return f"{self.name} must be odd, got {value!r}"
        return None


_K = Knob
KNOBS: dict[str, Knob] = {
    k.name: k
    for k in [
        # architecture
        _K("num_layers", "architecture", "integer", 3, "number of hidden blocks (residual blocks when > 3)", 1, 8),
        _K(
            "base_channels",
            "architecture",
            "integer",
            16,
            "width of the first hidden block; block i has base*2^min(i,2)",
            1,
            256,
        ),
        _K("kernel_size", "architecture", "integer", 3, "square convolution kernel size (odd)", 1, 9, odd_only=True),
        _K(
            "activation",
            "architecture",
            "choice",
            "gelu",
            "pointwise nonlinearity",
            choices=("relu", "gelu", "silu", "tanh", "none"),
        ),
        _K(
            "normalization",
            "architecture",
            "choice",
            "instance",
            "normalisation after every convolution",
            choices=("instance", "group", "layer", "batch", "none"),
        ),
        _K(
            "dropout_rate",
            "architecture",
            "continuous",
            0.0,
            "channel-dropout probability after every hidden block, redrawn per realization and step",
            0.0,
            0.9,
        ),
        # stochastic
        _K(
            "noise_type",
            "stochastic",
            "choice",
            "gaussian",
            "stochastic element on the last hidden feature map",
            choices=("gaussian", "laplace", "multiplicative", "dropout"),
        ),
        _K(
            "noise_scale",
            "stochastic",
            "continuous",
            0.05,
            "noise amplitude (std for gaussian/multiplicative, scale b for laplace, drop probability for dropout)",
            0.0,
            0.95,
        ),
        _K(
            "noise_schedule",
            "stochastic",
            "choice",
            "constant",
            "how the noise scale varies with the rollout step",
            choices=("constant", "annealing", "periodic"),
        ),
        _K("schedule_period", "stochastic", "continuous", 10.0, "period of the periodic schedule, in steps", 1.0, None),
        _K(
            "spatial_correlation",
            "stochastic",
            "continuous",
            0.0,
            "Gaussian correlation length of the noise as a fraction of the domain side (0 = white)",
            0.0,
            0.5,
        ),
        # rollout
        _K(
            "update_policy",
            "rollout",
            "choice",
            "residual",
            "how a step combines the state and the operator output",
            choices=("autoregressive", "residual", "convex"),
        ),
        _K(
            "dt",
            "rollout",
            "continuous",
            0.1,
            "residual step size: X_t = X_{t-1} + dt * O",
            0.0,
            10.0,
            low_exclusive=True,
        ),
        _K(
            "alpha",
            "rollout",
            "continuous",
            0.5,
            "convex weight: X_t = alpha X_{t-1} + (1-alpha) O",
            0.0,
            1.0,
            high_exclusive=True,
        ),
    ]
}

#: Parameter-space groups in declaration (= Sobol dimension) order; ``evolution`` is an alias of ``rollout``.
KNOB_GROUPS: tuple[str, ...] = ("architecture", "stochastic", "operator", "rollout")

#: ``noise_scale`` thresholds for the recorded noise regime: < 0.01 low, < 0.1 medium, else high.
NOISE_REGIME_THRESHOLDS: tuple[float, float] = (0.01, 0.1)


def noise_regime(noise_scale: float) -> str:
    """Classify a noise scale as "low", "medium" or "high" (see :data:`NOISE_REGIME_THRESHOLDS`)."""
    lo, hi = NOISE_REGIME_THRESHOLDS
    if noise_scale < lo:
        return "low"
    if noise_scale < hi:
        return "medium"
    return "high"
