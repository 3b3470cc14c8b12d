"""Gaussian-random-field family: ``gaussian_random_field``, ``multiscale_grf``, ``heavy_tailed``.

All three are stationary, periodic, zero-mean fields synthesised by filtering white noise
(:mod:`spinlock_core.ics.spectral`); channels are independent draws. Draw order per sample:
one ``[C, N, N]`` block of standard normals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import torch
from pydantic import Field, model_validator

from ..registry import ICParams, register_ic
from ..spectral import (
    draw_normal,
    filter_noise,
    gaussian_weights,
    grf_from_noise,
    normalise_weights,
    power_law_weights,
    sample_generators,
)

__all__ = [
    "GaussianRandomFieldParams",
    "MultiscaleGRFParams",
    "HeavyTailedParams",
    "gaussian_random_field",
    "multiscale_grf",
    "heavy_tailed",
    "sinh_tail_transform",
]

_DOMAIN = "stochastic fields"


class GaussianRandomFieldParams(ICParams):
    length_scale: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description=("correlation length l, fraction of the domain side: covariance variance*exp(-r^2/(2 l^2))"),
    )
    variance: float = Field(default=1.0, gt=0, description="per-pixel variance E[x^2] of the field")


@register_ic(
    "gaussian_random_field",
    tier="baseline",
    domain=_DOMAIN,
    description="stationary periodic GRF with a Gaussian covariance of length length_scale",
    params_model=GaussianRandomFieldParams,
)
def gaussian_random_field(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: GaussianRandomFieldParams
) -> torch.Tensor:
    """``[B, C, N, N]`` GRF, covariance ``variance * exp(-r^2 / (2 l^2))`` (zero mode removed)."""
    noise = draw_normal(sample_generators(seeds), (num_channels, grid_size, grid_size), device)
    return grf_from_noise(noise, params.length_scale, params.variance)


class MultiscaleGRFParams(ICParams):
    scales: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.02, 0.05, 0.1, 0.2],
        min_length=1,
        description="correlation lengths of the components, fractions of the domain side",
    )
    weights: list[Annotated[float, Field(ge=0)]] | None = Field(
        default=None, description="relative variances of the components (same length as scales); None = equal"
    )
    variance: float = Field(default=1.0, gt=0, description="total per-pixel variance of the sum")

    @model_validator(mode="after")
    def _check(self) -> MultiscaleGRFParams:
        if self.weights is not None:
            if len(self.weights) != len(self.scales):
                raise ValueError(f"weights has {len(self.weights)} entries but scales has {len(self.scales)}")
            if not sum(self.weights) > 0:
                raise ValueError("weights must not all be zero")
        return self


@register_ic(
    "multiscale_grf",
    tier="baseline",
    domain=_DOMAIN,
    description="sum of independent Gaussian-covariance GRFs at several length scales",
    params_model=MultiscaleGRFParams,
)
def multiscale_grf(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: MultiscaleGRFParams
) -> torch.Tensor:
    """Component ``i`` has variance ``variance * weights[i] / sum(weights)``; the sum of
    independent Gaussian fields is synthesised as one GRF with the summed spectrum."""
    weights = params.weights if params.weights is not None else [1.0] * len(params.scales)
    total = float(sum(weights))
    spectrum = sum(
        normalise_weights(gaussian_weights(grid_size, float(s)), params.variance * w / total)
        for s, w in zip(params.scales, weights)
    )
    assert isinstance(spectrum, torch.Tensor)  # scales has min_length 1 (sum's start 0 only for no terms)
    noise = draw_normal(sample_generators(seeds), (num_channels, grid_size, grid_size), device)
    return filter_noise(noise, spectrum)


class HeavyTailedParams(ICParams):
    alpha: float = Field(
        default=1.5, gt=0, le=8, description=("power-law exponent of the 2-D per-mode spectrum P(k) ∝ |k|^-alpha")
    )
    variance: float = Field(default=1.0, gt=0, description="per-pixel variance E[x^2] of the field")
    min_wavenumber: float = Field(
        default=1.0,
        gt=0,
        description=("smallest |k| carrying power, cycles per domain (P = 0 below it, including k = 0)"),
    )
    tail_strength: float = Field(
        default=0.6,
        ge=0,
        le=1.5,
        description=("tau of the pointwise transform sinh(tau g) of the unit Gaussian field g; 0 = Gaussian"),
    )


def sinh_tail_transform(g: torch.Tensor, tau: float) -> torch.Tensor:
    """``sinh(tau g) / sqrt((exp(2 tau^2) - 1) / 2)``: unit variance for ``g ~ N(0, 1)``.

    The result has kurtosis ``(e^{8t} - 4 e^{2t} + 3) / (2 (e^{2t} - 1)^2)`` with ``t = tau^2``
    (3 at ``tau -> 0``, 5.7 at 0.6, 36 at 1); ``tau = 0`` returns ``g``. The correlation of two
    transformed values is ``sinh(tau^2 rho) / sinh(tau^2)`` (near-linear in ``rho``), so the
    spectrum keeps its shape up to a small smooth part.
    """
    if tau == 0:
        return g
    return torch.sinh(tau * g) / math.sqrt(math.expm1(2.0 * tau * tau) / 2.0)


@register_ic(
    "heavy_tailed",
    tier="baseline",
    domain=_DOMAIN,
    description="power-law-spectrum field with heavy-tailed (sinh-transformed) values",
    params_model=HeavyTailedParams,
)
def heavy_tailed(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: HeavyTailedParams
) -> torch.Tensor:
    """Unit-variance GRF ``g`` with ``P(k) ∝ |k|^-alpha`` (``|k| >= min_wavenumber``), then
    ``sqrt(variance) * sinh_tail_transform(g, tail_strength)``: variance ``variance`` in
    expectation, excess kurtosis > 0 for ``tail_strength > 0``. ``g`` has no power below
    ``min_wavenumber``; the pointwise transform leaks a little there (about 0.1 % of the power
    at the defaults), so per-sample means are small but not exactly zero."""
    spectrum = normalise_weights(power_law_weights(grid_size, params.alpha, params.min_wavenumber), 1.0)
    noise = draw_normal(sample_generators(seeds), (num_channels, grid_size, grid_size), device)
    g = filter_noise(noise, spectrum)
    return math.sqrt(params.variance) * sinh_tail_transform(g, params.tail_strength)
