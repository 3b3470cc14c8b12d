"""``light_cone``: fluctuations confined to causal regions (light-cone cross-sections).

A signal emitted at an event spreads at most at the speed of light, so at a later time its
influence is confined to the disc ``|r - r_k| <= R`` (the cross-section of the event's future
light cone at ``ct = R``). This type fills such discs with a Gaussian random field and leaves
the outside (causally disconnected from the events) near zero.

Per sample, draws in this order from the sample's generator (K = ``num_cones``):
centres ``U[0,1)^[K, 2]`` (columns x, y), then ``[C, N, N]`` standard normals (the interior
noise). Field math:

* cone ``k`` has the smooth indicator ``m_k = sigmoid((R - rho_k) / s)``, with ``rho_k`` the
  periodic (minimum-image) distance to centre ``k``, ``R = cone_radius`` and
  ``s = smoothing`` (so ``m_k = 1/2`` exactly on the circle ``rho_k = R``); overlapping cones
  form a smooth union ``m = 1 - prod_k (1 - m_k)`` (in ``[0, 1]``, no double counting);
* ``g_c`` is a zero-mean, unit-variance GRF with Gaussian covariance of length
  ``interior_length_scale`` (:func:`~spinlock_core.ics.spectral.grf_from_noise`);
* channel ``c`` is ``m * g_c``: all channels share the cones and have independent interiors.

The sample is then scaled to RMS ``amplitude`` over ``(C, H, W)``: the interior std is
therefore ``amplitude / sqrt(mean(m^2))`` (about ``amplitude / sqrt(K pi R^2)`` for separate
cones; ~3.8 at the defaults), and outside the cones the field decays like
``exp(-(rho - R) / s)``. Energy ratio inside/outside is set by ``R / s``.
Cost: one FFT filter of ``[B, C, N, N]`` noise plus ``O(B K N^2)`` mask work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, normalise_rms, sample_generators

__all__ = ["LightConeParams", "light_cone", "draw_cone_centres", "cone_mask"]


class LightConeParams(ICParams):
    cone_radius: float = Field(
        default=0.15,
        gt=0,
        le=0.45,
        description=("radius R of each causal disc (light-cone cross-section), fraction of the domain side"),
    )
    smoothing: float = Field(
        default=0.01,
        gt=0,
        le=0.1,
        description=("width s of the sigmoid edge sigmoid((R - rho)/s), fraction of the domain side"),
    )
    interior_length_scale: float = Field(
        default=0.03,
        gt=0,
        le=0.5,
        description=("correlation length of the interior GRF (Gaussian covariance), fraction of the domain side"),
    )
    num_cones: int = Field(default=1, ge=1, le=64, description="number of causal discs (random centres)")
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")

    @model_validator(mode="after")
    def _check(self) -> LightConeParams:
        if self.smoothing >= self.cone_radius:
            raise ValueError(f"smoothing ({self.smoothing}) must be < cone_radius ({self.cone_radius})")
        return self


def draw_cone_centres(gen: torch.Generator, num_cones: int) -> torch.Tensor:
    """The first draw of a sample: ``[K, 2]`` centres ``U[0,1)`` (columns x, y)."""
    return torch.rand((num_cones, 2), generator=gen)


def cone_mask(centres: torch.Tensor, grid_size: int, radius: float, smoothing: float) -> torch.Tensor:
    """Smooth union of discs: ``[B, K, 2]`` centres -> ``[B, N, N]`` mask in ``[0, 1]``.

    ``1 - prod_k (1 - sigmoid((radius - rho_k) / smoothing))`` with periodic distances ``rho_k``.
    """
    x, y = coordinate_grid(grid_size, centres.device)
    outside = torch.ones((centres.shape[0], grid_size, grid_size), device=centres.device)
    for k in range(centres.shape[1]):  # loop keeps memory at [B, N, N]
        cx, cy = centres[:, k, 0, None, None], centres[:, k, 1, None, None]  # [B, 1, 1]
        rho = torch.sqrt(periodic_delta(x, cx) ** 2 + periodic_delta(y, cy) ** 2)
        outside = outside * torch.sigmoid((rho - radius) / smoothing)  # times (1 - m_k)
    return 1.0 - outside


@register_ic(
    "light_cone",
    tier="tier2",
    domain="relativistic physics",
    description="GRF fluctuations confined to smooth-edged causal discs, ~0 outside",
    params_model=LightConeParams,
)
def light_cone(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: LightConeParams
) -> torch.Tensor:
    n = grid_size
    centres, noises = [], []
    for g in sample_generators(seeds):
        centres.append(draw_cone_centres(g, params.num_cones))
        noises.append(torch.randn((num_channels, n, n), generator=g))
    mask = cone_mask(torch.stack(centres).to(device), n, params.cone_radius, params.smoothing)  # [B, N, N]
    interior = grf_from_noise(torch.stack(noises).to(device), params.interior_length_scale, 1.0)
    return normalise_rms(mask.unsqueeze(1) * interior, params.amplitude)
