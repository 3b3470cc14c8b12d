"""``structured``: circles, stripes and blobs, each added into one random channel.

Per sample, draws in this order (S = ``num_structures``, T = ``structure_types``): type index
``randint(len(T))^[S]``, channel ``randint(C)^[S]``, centres ``U[0,1)^[S, 2]``, shape variable
``u ~ U[0,1)^[S]``, angle ``U[0, 2 pi)^[S]``, phase ``U[0, 2 pi)^[S]``, amplitude ``N(0,1)^[S]``.

* circle: filled disk of radius ``0.05 + 0.15 u`` (i.e. ``U[0.05, 0.2)``) around the centre
  (periodic distance), edge anti-aliased over one pixel.
* stripe: ``sin(2 pi k.r + phase)``, ``k`` the integer wavevector nearest to frequency
  ``1 + 5 u`` (``U[1, 6)`` cycles per domain) along the angle (periodic).
* blob: ``exp(-rho^2 / (2 sigma^2))`` with ``sigma = 0.03 + 0.12 u`` (``U[0.03, 0.15)``).

Each structure times its amplitude is added into its channel (channels not hit stay 0); the
sample is then scaled to RMS ``amplitude`` over ``(C, H, W)``. A type listed twice in
``structure_types`` is drawn twice as often.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators
from .composite import lattice_wavevector

__all__ = ["StructuredParams", "structured", "STRUCTURE_KINDS"]

StructureKind = Literal["circle", "stripe", "blob"]
STRUCTURE_KINDS: tuple[StructureKind, ...] = ("circle", "stripe", "blob")


class StructuredParams(ICParams):
    num_structures: int = Field(default=5, ge=1, le=1000, description="number of structures per sample")
    structure_types: list[StructureKind] = Field(
        default_factory=lambda: list(STRUCTURE_KINDS),
        min_length=1,
        description="kinds to draw from, uniformly (circle, stripe, blob)",
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")


@register_ic(
    "structured",
    tier="baseline",
    domain="stochastic fields",
    description="random circles, stripes and Gaussian blobs, each in a random channel",
    params_model=StructuredParams,
)
def structured(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: StructuredParams
) -> torch.Tensor:
    s, n = params.num_structures, grid_size
    kinds = torch.tensor([STRUCTURE_KINDS.index(t) for t in params.structure_types])
    rows = []
    for g in sample_generators(seeds):
        kind = kinds[torch.randint(len(kinds), (s,), generator=g)].float()
        chan = torch.randint(num_channels, (s,), generator=g).float()
        centre = torch.rand((s, 2), generator=g)
        u = torch.rand((s,), generator=g)
        angle = 2 * math.pi * torch.rand((s,), generator=g)
        phase = 2 * math.pi * torch.rand((s,), generator=g)
        amp = torch.randn((s,), generator=g)
        rows.append(torch.stack([kind, chan, centre[:, 0], centre[:, 1], u, angle, phase, amp], dim=1))
    p = torch.stack(rows).to(device)  # [B, S, 8]
    kind, chan = p[..., 0].long(), p[..., 1].long()
    cx, cy, u, angle, phase, amp = (p[..., i, None, None] for i in range(2, 8))  # [B, S, 1, 1]
    x, y = coordinate_grid(n, device)
    rho = torch.sqrt(periodic_delta(x, cx) ** 2 + periodic_delta(y, cy) ** 2)  # [B, S, N, N]

    circle = torch.clamp(0.5 + (0.05 + 0.15 * u - rho) * n, 0.0, 1.0)
    kx, ky = lattice_wavevector(1.0 + 5.0 * u, angle)
    stripe = torch.sin(2 * math.pi * (kx * x + ky * y) + phase)
    blob = torch.exp(-(rho**2) / (2 * (0.03 + 0.12 * u) ** 2))
    k = kind[..., None, None]
    shapes = torch.where(k == 0, circle, torch.where(k == 1, stripe, blob)) * amp  # [B, S, N, N]

    onehot = torch.nn.functional.one_hot(chan, num_channels).to(shapes.dtype)  # [B, S, C]
    field = torch.einsum("bsc,bsij->bcij", onehot, shapes)
    return normalise_rms(field, params.amplitude)
