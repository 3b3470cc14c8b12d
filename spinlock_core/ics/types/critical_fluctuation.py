"""``critical_fluctuation``: order-parameter fluctuations near a critical point (Ornstein–Zernike).

Near a continuous phase transition the structure factor of the order parameter takes the
Ornstein–Zernike form with an anomalous dimension ``eta`` (Fisher's scaling form)::

    S(q) ∝ (q^2 + xi^-2)^(-(2 - eta)/2),        q = 2 pi |k|  (angular wavenumber)

With ``k`` in cycles per domain and ``xi = correlation_length`` as a fraction of the domain
side, the per-mode weights used here are exactly::

    w_k ∝ ((2 pi |k|)^2 + xi^-2)^(-(2 - eta)/2)  ∝  (|k|^2 + k_xi^2)^(-(2 - eta)/2),
    k_xi = 1 / (2 pi xi)  cycles per domain,

normalised so that ``sum_k w_k = variance`` (zero mode excluded, :mod:`..spectral`). The
real-space correlation then decays like ``exp(-r / xi)`` at ``r >> xi`` (for ``eta = 0`` it is
``K_0(r / xi)``, the 2-D OZ function), the spectrum is flat ("plateau") for ``|k| << k_xi``
and a power law ``|k|^-(2 - eta)`` for ``|k| >> k_xi``. Because the 2-D integral of
``k^-(2-eta)`` grows with the cutoff, most of the variance sits at small scales for small
``eta``: the field is rough, as a critical field is (the unit variance is that of the
discrete field at the given resolution).

Optional non-Gaussianity (``non_gaussianity = beta > 0``): the unit Gaussian field ``g`` is
mapped pointwise to ``tanh(beta g) / sqrt(E[tanh^2(beta g)])`` (the expectation over
``g ~ N(0, 1)`` by 64-point Gauss–Hermite quadrature), which keeps the variance and the sign
structure but flattens the value distribution (negative excess kurtosis, like the
platykurtic order-parameter distribution of a phi^4 / Ising system near T_c; ``beta -> 0``
recovers ``g``). The monotone transform changes the spectrum only mildly.

Per sample, draws: one ``[C, N, N]`` block of standard normals. Channels are independent
draws (independent order-parameter components).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from pydantic import Field

from ..grid import wavenumber_grid
from ..registry import ICParams, register_ic
from ..spectral import draw_normal, filter_noise, normalise_weights, sample_generators

__all__ = ["CriticalFluctuationParams", "critical_fluctuation", "ornstein_zernike_weights", "tanh_saturation"]


class CriticalFluctuationParams(ICParams):
    correlation_length: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description=(
            "correlation length xi, fraction of the domain side; spectrum crossover at "
            "k_xi = 1/(2 pi xi) cycles per domain"
        ),
    )
    eta: float = Field(
        default=0.25,
        ge=0,
        lt=2,
        description=("anomalous dimension: per-mode power ∝ |k|^-(2-eta) at |k| >> k_xi (0.25: 2-D Ising)"),
    )
    variance: float = Field(default=1.0, gt=0, description="per-pixel variance E[x^2] of the field")
    non_gaussianity: float = Field(
        default=0.0,
        ge=0,
        le=3,
        description=("beta of the pointwise map tanh(beta g) (renormalised to unit variance); 0 = Gaussian"),
    )


@lru_cache(maxsize=64)
def ornstein_zernike_weights(grid_size: int, correlation_length: float, eta: float) -> torch.Tensor:
    """``[N, N]`` float64 (CPU) un-normalised weights ``(|k|^2 + k_xi^2)^(-(2-eta)/2)``,
    ``k_xi = 1/(2 pi xi)``, zero mode set to 0."""
    kx, ky = wavenumber_grid(grid_size, "cpu")
    k_xi = 1.0 / (2.0 * math.pi * float(correlation_length))
    w = (kx * kx + ky * ky + k_xi * k_xi) ** (-(2.0 - float(eta)) / 2.0)
    w[0, 0] = 0.0
    return w


@lru_cache(maxsize=64)
def _tanh_norm(beta: float) -> float:
    x, wts = np.polynomial.hermite_e.hermegauss(64)  # weight exp(-x^2/2), sum = sqrt(2 pi)
    return float(math.sqrt(np.sum(wts * np.tanh(beta * x) ** 2) / math.sqrt(2 * math.pi)))


def tanh_saturation(g: torch.Tensor, beta: float) -> torch.Tensor:
    """``tanh(beta g) / sqrt(E[tanh^2(beta g)])``: unit variance for ``g ~ N(0, 1)``; ``g`` if 0."""
    if beta == 0:
        return g
    return torch.tanh(beta * g) / _tanh_norm(float(beta))


@register_ic(
    "critical_fluctuation",
    tier="tier2",
    domain="thermodynamics",
    description="Ornstein-Zernike critical fluctuations: flat below 1/(2 pi xi), |k|^-(2-eta) above",
    params_model=CriticalFluctuationParams,
)
def critical_fluctuation(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: CriticalFluctuationParams
) -> torch.Tensor:
    w = normalise_weights(ornstein_zernike_weights(grid_size, params.correlation_length, params.eta), 1.0)
    noise = draw_normal(sample_generators(seeds), (num_channels, grid_size, grid_size), device)
    g = filter_noise(noise, w)
    return math.sqrt(params.variance) * tanh_saturation(g, params.non_gaussianity)
