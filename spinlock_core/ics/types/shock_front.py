"""``shock_front``: a planar shock (sharp ``tanh`` jump) with turbulent post-shock fluctuations.

Geometry. The front normal is snapped to a primitive integer vector ``k`` (the nearest to
``2 (cos theta, sin theta)``, divided by its gcd: 16 directions, angles multiple of ~26.6 or
45 degrees) so that the planar front is periodic on the unit square; ``psi = k . r`` (mod 1) is
the phase coordinate across the fronts and ``|k|`` of them fit in one domain period
(``|k| in {1, sqrt 2, sqrt 5}``). **Periodic handling: a pair of fronts.** The shock sits at
``psi = position``; the shocked (downstream) slab lies behind it, ``psi in (position - 1/2,
position)``, and the return to the upstream state half a period behind is a second ``tanh``
front of the same width (the slab's rear edge). With ``u`` the periodic offset of ``psi`` from
the slab centre ``position - 1/4``, the downstream indicator is

    S = (tanh((u + 1/4) / (|k| w)) - tanh((u - 1/4) / (|k| w))) / 2,

i.e. ``(1 - tanh(dist / w)) / 2`` across the shock, ``dist`` the signed physical distance along
the normal (positive ahead of the shock) and ``w = width`` (fraction of the side). The thinnest
slab (``|k| = sqrt 5``) is ``0.5 / sqrt 5 = 0.22`` thick, so ``width <= 0.03`` keeps both plateaus.

Field (channel ``c``): ``rho = 1 + (A - 1) S + fluctuation_amplitude * S * g_c``: upstream state
1, downstream state ``A = amplitude_ratio``, and post-shock fluctuations ``g_c``, a unit-variance
Gaussian random field (Gaussian spectrum, length ``fluctuation_length_scale``) confined to the
shocked slab (std ``fluctuation_amplitude`` in units of the upstream state). Channels share the
front and differ by their independent fluctuation fields. The sample is then scaled to RMS
``amplitude`` over ``(C, H, W)``; the scaling is a common factor, so the plateau ratio stays
``A`` (the mean of the fluctuations over the slab is ~0).

Per sample, draws in this order (always made; a given ``position`` / ``angle`` overrides the
draw): angle ``U[0, 2 pi)``, position ``U[0, 1)``, then white noise ``N(0, 1)^[C, N, N]`` when
``fluctuation_amplitude > 0``. Cost: O(B C N^2 log N) (one GRF synthesis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, normalise_rms, sample_generators

__all__ = ["ShockFrontParams", "shock_front", "shock_draws", "shock_normal"]


class ShockFrontParams(ICParams):
    position: float | None = Field(
        default=None, ge=0, le=1, description="shock position as the phase k.r of the front (None = U[0, 1) per sample)"
    )
    angle: float | None = Field(
        default=None,
        description="direction of the shock normal in radians, snapped to a periodic lattice direction "
        "(None = U[0, 2 pi) per sample)",
    )
    width: float = Field(default=0.015, gt=0, le=0.03, description="tanh width w of the fronts, fraction of the side")
    amplitude_ratio: float = Field(default=2.0, gt=0, le=100, description="downstream / upstream state ratio A")
    fluctuation_amplitude: float = Field(
        default=0.1, ge=0, le=10, description="std of the post-shock fluctuations, in units of the upstream state"
    )
    fluctuation_length_scale: float = Field(
        default=0.05,
        gt=0,
        le=0.5,
        description="correlation length of the post-shock fluctuations, fraction of the side",
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")


def shock_normal(angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Primitive integer normal ``(kx, ky)`` (float tensors) nearest to ``2 (cos a, sin a)``."""
    kx = torch.round(2.0 * torch.cos(angle)).long()
    ky = torch.round(2.0 * torch.sin(angle)).long()
    g = torch.gcd(kx, ky).clamp_min(1)
    return (kx // g).float(), (ky // g).float()


def shock_draws(
    seeds: Sequence[int], num_channels: int, grid_size: int, params: ShockFrontParams
) -> dict[str, torch.Tensor]:
    """Per-sample draws, on the CPU: ``angle [B]`` (before snapping, the param when given),
    ``position [B]`` and ``noise [B, C, N, N]`` (empty ``[B, 0]`` when there are no fluctuations)."""
    ang, pos, noise = [], [], []
    for g in sample_generators(seeds):
        a = 2 * math.pi * torch.rand((1,), generator=g)
        p = torch.rand((1,), generator=g)
        ang.append(a if params.angle is None else torch.full((1,), float(params.angle)))
        pos.append(p if params.position is None else torch.full((1,), float(params.position)))
        if params.fluctuation_amplitude > 0:
            noise.append(torch.randn((num_channels, grid_size, grid_size), generator=g))
        else:
            noise.append(torch.zeros((0,)))
    return {"angle": torch.cat(ang), "position": torch.cat(pos), "noise": torch.stack(noise)}


@register_ic(
    "shock_front",
    tier="tier3",
    domain="relativistic physics",
    description="planar tanh shock (periodic pair of fronts) with post-shock GRF fluctuations",
    params_model=ShockFrontParams,
)
def shock_front(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: ShockFrontParams
) -> torch.Tensor:
    d = shock_draws(seeds, num_channels, grid_size, params)
    kx, ky = shock_normal(d["angle"])
    knorm = torch.sqrt(kx * kx + ky * ky)
    kx, ky, knorm = (t.to(device)[:, None, None, None] for t in (kx, ky, knorm))  # [B, 1, 1, 1]
    pos = d["position"].to(device)[:, None, None, None]
    x, y = coordinate_grid(grid_size, device)
    u = periodic_delta(kx * x + ky * y, pos - 0.25)  # offset from the slab centre
    scale = knorm * params.width
    s = 0.5 * (torch.tanh((u + 0.25) / scale) - torch.tanh((u - 0.25) / scale))  # [B, 1, N, N]
    field = 1.0 + (params.amplitude_ratio - 1.0) * s
    field = field.expand(-1, num_channels, -1, -1)
    if params.fluctuation_amplitude > 0:
        g = grf_from_noise(d["noise"].to(device), params.fluctuation_length_scale)
        field = field + params.fluctuation_amplitude * s * g
    return normalise_rms(field, params.amplitude)
