"""``composite``: a deterministic periodic pattern plus a GRF perturbation.

Per sample, draws in this order: angle ``theta ~ U[0, 2 pi)``, frequency
``f ~ U[min_frequency, max_frequency)`` (cycles per domain), phases ``phi1, phi2 ~ U[0, 2 pi)``,
centre ``U[0,1)^2``, then ``[C, N, N]`` white noise. Patterns (periodic on the unit square):

* ``waves``: ``sin(2 pi k.r + phi1)`` with ``k = round(f cos theta, f sin theta)`` (the wavevector
  is snapped to the integer lattice so the pattern is periodic; ``|k|`` is within 0.71 of ``f``).
* ``grid``: ``sin(2 pi k.r + phi1) * sin(2 pi k'.r + phi2)`` with ``k' = k`` rotated by 90 degrees.
* ``radial``: ``sin(2 pi f rho + phi1)`` with ``rho`` the periodic distance to the centre.

The pattern is scaled to unit RMS and shared by all channels; the perturbation is a GRF with
length ``noise_length_scale`` and std ``noise_level``, independent per channel. The sample is
``amplitude * (pattern + perturbation)``, so ``noise_level`` is relative to the pattern.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, normalise_rms, sample_generators

__all__ = ["CompositeParams", "composite", "lattice_wavevector"]


class CompositeParams(ICParams):
    pattern: Literal["waves", "grid", "radial"] = Field(default="waves", description="background pattern")
    min_frequency: float = Field(default=2.0, ge=1, description="lowest pattern frequency, cycles per domain")
    max_frequency: float = Field(default=6.0, ge=1, description="highest pattern frequency, cycles per domain")
    noise_level: float = Field(
        default=0.1, ge=0, description="std of the GRF perturbation relative to the unit-RMS pattern"
    )
    noise_length_scale: float = Field(default=0.05, gt=0, le=1, description="correlation length of the perturbation")
    amplitude: float = Field(default=1.0, gt=0, description="overall scale: RMS of the pattern")

    @model_validator(mode="after")
    def _check(self) -> CompositeParams:
        if self.min_frequency > self.max_frequency:
            raise ValueError(f"min_frequency ({self.min_frequency}) must be <= max_frequency ({self.max_frequency})")
        return self


def lattice_wavevector(freq: torch.Tensor, angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kx, ky) = round(f cos a, f sin a)``: nearest integer wavevector (non-zero for ``f >= 1``)."""
    return torch.round(freq * torch.cos(angle)), torch.round(freq * torch.sin(angle))


@register_ic(
    "composite",
    tier="baseline",
    domain="stochastic fields",
    description="periodic waves/grid/radial pattern plus a Gaussian-random-field perturbation",
    params_model=CompositeParams,
)
def composite(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: CompositeParams
) -> torch.Tensor:
    n = grid_size
    scal, noises = [], []
    for g in sample_generators(seeds):
        theta = 2 * math.pi * torch.rand((1,), generator=g)
        f = params.min_frequency + (params.max_frequency - params.min_frequency) * torch.rand((1,), generator=g)
        phases = 2 * math.pi * torch.rand((2,), generator=g)
        centre = torch.rand((2,), generator=g)
        scal.append(torch.cat([theta, f, phases, centre]))
        if params.noise_level > 0:
            noises.append(torch.randn((num_channels, n, n), generator=g))
    p = torch.stack(scal).to(device)[:, :, None, None]  # [B, 6, 1, 1]
    theta, f, phi1, phi2, cx, cy = p.unbind(1)  # each [B, 1, 1]
    x, y = coordinate_grid(n, device)
    if params.pattern == "radial":
        rho = torch.sqrt(periodic_delta(x, cx) ** 2 + periodic_delta(y, cy) ** 2)
        pattern = torch.sin(2 * math.pi * f * rho + phi1)
    else:
        kx, ky = lattice_wavevector(f, theta)
        pattern = torch.sin(2 * math.pi * (kx * x + ky * y) + phi1)
        if params.pattern == "grid":
            pattern = pattern * torch.sin(2 * math.pi * (-ky * x + kx * y) + phi2)
    pattern = normalise_rms(pattern.unsqueeze(1))  # [B, 1, N, N], unit RMS
    field = pattern.expand(-1, num_channels, -1, -1)
    if params.noise_level > 0:
        noise = torch.stack(noises).to(device)
        field = field + grf_from_noise(noise, params.noise_length_scale, params.noise_level**2)
    return params.amplitude * field
