"""``mutual_information``: channels that share a latent Gaussian field with a set mixing weight.

Every channel is a unit-variance stationary Gaussian field ``x_c = a * z_c + s * eps_c``, with
``s = local_noise_scale``, ``a = sqrt(1 - s^2)`` (the mixing weight alpha), ``eps_c`` an independent
GRF (Gaussian covariance, length ``noise_length_scale``) and ``z_c`` a unit-variance latent. The
first ``K = min(num_channels_correlated, C)`` channels share latents; the other ``C - K``
channels each get their own independent latent (same marginal statistics, zero correlation).
``correlation_pattern`` sets the latents:

* ``local``: one latent ``z`` (Gaussian covariance of length ``latent_length_scale``: correlated
  over short distances) shared by the K channels.
* ``long_range``: one scale-free latent (per-mode spectrum ``|k|^-3`` for ``|k| >= 1``, smoothed
  at ``latent_length_scale`` by ``exp(-2 pi^2 l^2 |k|^2)``: correlated across the whole domain)
  shared by the K channels.
* ``hierarchical``: nested latents: a root latent ``z_0`` (Gaussian, length
  ``2 * latent_length_scale``) shared by all K channels and one group latent ``z_g`` (length
  ``latent_length_scale``) per consecutive pair of correlated channels (``g = c // 2``);
  ``z_c = (z_0 + z_g) / sqrt(2)``.

**Mutual information.** At any pixel two channels are jointly Gaussian with correlation
``rho = a^2 = 1 - s^2`` (``local``, ``long_range``, and pairs of one group in ``hierarchical``;
``rho = a^2 / 2`` across groups; ``rho = 0`` with an uncorrelated channel), hence
``I = -1/2 ln(1 - rho^2)`` nats (natural log; :func:`gaussian_mutual_information`).

Draws per sample, in order: latent white noise ``N(0,1)^[L, N, N]`` (``L`` latents: one shared
latent (``local`` / ``long_range``) or root + ``ceil(K / 2)`` groups (``hierarchical``), none when
``K = 0``, then one per uncorrelated channel), then local noise ``N(0,1)^[C, N, N]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field

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

__all__ = ["MutualInformationParams", "mutual_information", "gaussian_mutual_information", "channel_correlation_matrix"]

_LONG_RANGE_EXPONENT = 3.0


class MutualInformationParams(ICParams):
    correlation_pattern: Literal["local", "long_range", "hierarchical"] = Field(
        default="local",
        description=(
            "latent structure: local (Gaussian latent), long_range (scale-free latent), hierarchical "
            "(root latent + per-pair group latents)"
        ),
    )
    latent_length_scale: float = Field(
        default=0.1,
        gt=0,
        le=0.5,
        description=("correlation length of the latent (long_range: its small-scale smoothing), domain units"),
    )
    local_noise_scale: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description=(
            "std s of each channel's own noise; the latent weight is alpha = sqrt(1 - s^2), correlation rho = alpha^2"
        ),
    )
    noise_length_scale: float = Field(
        default=0.03,
        gt=0,
        le=0.5,
        description=("Gaussian correlation length of each channel's own noise, domain units"),
    )
    num_channels_correlated: int = Field(
        default=2,
        ge=0,
        le=1024,
        description=("how many of the first channels share the latent (the rest are independent)"),
    )


def gaussian_mutual_information(rho: float | torch.Tensor) -> float | torch.Tensor:
    """Mutual information (nats) of two jointly Gaussian variables with correlation ``rho``."""
    if isinstance(rho, torch.Tensor):
        return -0.5 * torch.log1p(-rho * rho)
    return -0.5 * math.log1p(-rho * rho)


def channel_correlation_matrix(params: MutualInformationParams, num_channels: int) -> torch.Tensor:
    """``[C, C]`` float64 theoretical per-pixel correlation between channels."""
    a2 = 1.0 - params.local_noise_scale**2
    k = min(params.num_channels_correlated, num_channels)
    r = torch.eye(num_channels, dtype=torch.float64)
    for i in range(k):
        for j in range(k):
            if i != j:
                same = params.correlation_pattern != "hierarchical" or i // 2 == j // 2
                r[i, j] = a2 if same else a2 / 2
    return r


def _latent_weights(grid_size: int, params: MutualInformationParams) -> torch.Tensor:
    length = params.latent_length_scale
    if params.correlation_pattern == "long_range":
        w = power_law_weights(grid_size, _LONG_RANGE_EXPONENT) * gaussian_weights(grid_size, length)
        return normalise_weights(w, 1.0)
    return normalise_weights(gaussian_weights(grid_size, length), 1.0)


@register_ic(
    "mutual_information",
    tier="tier4",
    domain="information theory",
    description="channels sharing a latent Gaussian field: per-pixel mutual information set by the mixing",
    params_model=MutualInformationParams,
)
def mutual_information(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: MutualInformationParams
) -> torch.Tensor:
    n, c = grid_size, num_channels
    k = min(params.num_channels_correlated, c)
    s = params.local_noise_scale
    a = math.sqrt(max(0.0, 1.0 - s * s))
    hier = params.correlation_pattern == "hierarchical"
    n_groups = (k + 1) // 2 if hier else 0
    n_shared = (1 + n_groups if hier else 1) if k > 0 else 0
    n_lat = n_shared + (c - k)
    gens = sample_generators(seeds)
    lat_noise = draw_normal(gens, (n_lat, n, n), device)
    own_noise = draw_normal(gens, (c, n, n), device)
    lat = filter_noise(lat_noise, _latent_weights(n, params))  # [B, L, N, N] unit variance
    if hier:
        root = filter_noise(
            lat_noise[:, :1], normalise_weights(gaussian_weights(n, 2 * params.latent_length_scale), 1.0)
        )
        groups = lat[:, 1 : 1 + n_groups]
        gidx = torch.arange(k, device=device) // 2
        shared = (root + groups[:, gidx]) / math.sqrt(2.0)  # [B, K, N, N]
    else:
        shared = lat[:, :1].expand(-1, k, -1, -1) if k > 0 else lat[:, :0]
    z = torch.cat([shared, lat[:, n_shared:]], dim=1)  # [B, C, N, N]
    return a * z + s * grf_from_noise(own_noise, params.noise_length_scale)
