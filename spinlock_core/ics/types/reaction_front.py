"""``reaction_front``: tanh reaction fronts separating burnt (product) and fresh (reactant) regions.

A front of width ``w`` is the profile ``c = (1 + tanh(d / w)) / 2`` of a signed distance ``d``
(positive inside the burnt region); ``c`` is the reaction progress (product fraction) in [0, 1],
its 10-90 % thickness is ``2.197 w`` and its steepest slope ``|grad c| = 1 / (2 w)``. ``w`` is
``front_width`` (fraction of the domain side), or drawn per sample from ``front_width_range``
(uniform) when that is given. Shapes (periodic unit square):

* ``planar``: a burnt band between two parallel straight fronts (on a torus a straight front
  must close on itself, and a single half-plane cannot exist: the band's two fronts face
  opposite ways). Its normal is the primitive lattice direction ``k = (p, q)`` nearest to the
  drawn angle (one of 16, ``max(|p|, |q|) <= 2``; see :mod:`.thermal_gradient`); with phase
  ``phi = frac(p x + q y - o)`` the band is ``phi in [0, a)``, ``a ~ U[0.3, 0.7)`` of the period
  ``1 / |k|``, and ``d`` is the distance (domain units) to the band edge. Bands and gaps are at
  least ``0.3 / |k| >= 0.134`` wide, so for wide fronts (``w`` above ~0.03) the two fronts of a
  narrow band overlap and its plateau stays below 1.
* ``circular``: a burnt disk, centre ``U[0,1)^2``, radius ``R ~ U[0.15, 0.45)``,
  ``d = R - rho`` (``rho`` the minimum-image distance to the centre).
* ``irregular``: the burnt region is the excursion set ``{g > t}`` of a unit-variance GRF ``g``
  of correlation length ``irregularity_length_scale``, threshold ``t ~ U[-0.5, 0.5)``, with the
  first-order signed distance ``d = (g - t) / max(|grad g|, 0.3 sqrt(2) / l)`` (the clamp is 0.3 x
  the RMS gradient ``sqrt(2) / l``; gradients are spectral). The front is the level set
  ``g = t`` of a full-size GRF, so it meanders over the whole domain.

With ``num_fronts`` > 1 the burnt regions are united smoothly, ``c = 1 - prod_i (1 - c_i)``.

Per sample, draws in this order (F = ``num_fronts``): ``u_w ~ U[0,1)`` (always; used only with
``front_width_range``), then per front the 4 uniforms ``U[0,1)^[F, 4]`` (planar: angle / 2 pi,
offset o, band fraction, unused; circular: centre x, centre y, radius, unused; irregular:
threshold, unused x 3), then (irregular only) ``[F, N, N]`` white noise.

Channels share the fronts and cycle through three species: channel ``c`` carries component
``c mod 3``: 0 -> product ``c``, 1 -> reactant ``1 - c``, 2 -> reaction-zone indicator
``4 c (1 - c)`` (peaks at 1 on the front). Channels ``c >= 3`` repeat channels ``c - 3``. The
field is not rescaled (values in [0, 1]; RMS ~ 0.3-0.8 by default).

Cost: O(B F N^2) (plus 3 FFTs per front for ``irregular``); a few tens of ms for B = 64 at 128^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_delta, wavenumber_grid
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, sample_generators
from .thermal_gradient import nearest_lattice_direction

__all__ = ["ReactionFrontParams", "reaction_front", "reaction_front_draws"]


class ReactionFrontParams(ICParams):
    front_shape: Literal["planar", "circular", "irregular"] = Field(default="planar", description="shape of the fronts")
    front_width: float = Field(
        default=0.025, gt=0, le=0.2, description=("w in (1 + tanh(d / w)) / 2, fraction of the domain side")
    )
    front_width_range: tuple[float, float] | None = Field(
        default=None, description=("(lo, hi): when given, w ~ U[lo, hi) per sample (overrides front_width)")
    )
    num_fronts: int = Field(default=1, ge=1, le=64, description="number of fronts (burnt regions, united)")
    irregularity_length_scale: float = Field(
        default=0.12,
        gt=0,
        le=0.5,
        description=("correlation length of the GRF whose level set is the front (irregular only)"),
    )

    @model_validator(mode="after")
    def _check(self) -> ReactionFrontParams:
        if self.front_width_range is not None:
            lo, hi = self.front_width_range
            if not 0 < lo <= hi <= 0.2:
                raise ValueError(f"front_width_range must satisfy 0 < lo <= hi <= 0.2, got {self.front_width_range}")
        return self


def _draws(gens: Sequence[torch.Generator], params: ReactionFrontParams) -> dict[str, torch.Tensor]:
    f = params.num_fronts
    width, u = [], []
    for g in gens:
        uw = torch.rand((1,), generator=g)
        if params.front_width_range is not None:
            lo, hi = params.front_width_range
            width.append(lo + (hi - lo) * uw)
        else:
            width.append(torch.full((1,), params.front_width))
        u.append(torch.rand((f, 4), generator=g))
    uu = torch.stack(u)  # [B, F, 4]
    out = {"width": torch.cat(width), "u": uu}
    if params.front_shape == "planar":
        angle = 2 * math.pi * uu[..., 0]
        out.update(angle=angle, k=nearest_lattice_direction(angle), offset=uu[..., 1], band=0.3 + 0.4 * uu[..., 2])
    elif params.front_shape == "circular":
        out.update(centre=uu[..., :2], radius=0.15 + 0.3 * uu[..., 2])
    else:
        out.update(threshold=uu[..., 0] - 0.5)
    return out


def reaction_front_draws(seeds: Sequence[int], params: ReactionFrontParams) -> dict[str, torch.Tensor]:
    """Per-sample draws (CPU): ``width [B]`` and, per front ``[B, F]``: planar ``angle``, ``k [B, F, 2]``,
    ``offset``, ``band``; circular ``centre [B, F, 2]``, ``radius``; irregular ``threshold``."""
    return _draws(sample_generators(seeds), params)


def _irregular_distance(noise: torch.Tensor, threshold: torch.Tensor, ell: float) -> torch.Tensor:
    """Signed distance ``(g - t) / max(|grad g|, clamp)`` for GRFs ``g`` from noise ``[B, F, N, N]``."""
    n = noise.shape[-1]
    g = grf_from_noise(noise, ell, 1.0)
    kx, ky = wavenumber_grid(n, noise.device, half=True)
    gh = torch.fft.rfft2(g)
    gx = torch.fft.irfft2(gh * (2j * math.pi * kx).to(gh.dtype), s=(n, n))
    gy = torch.fft.irfft2(gh * (2j * math.pi * ky).to(gh.dtype), s=(n, n))
    grad = torch.sqrt(gx * gx + gy * gy).clamp_min(0.3 * math.sqrt(2.0) / ell)
    return (g - threshold[..., None, None]) / grad


@register_ic(
    "reaction_front",
    tier="tier1",
    domain="chemistry",
    description="tanh reaction fronts (planar band, circle or GRF level set); channels product / reactant / reaction zone",
    params_model=ReactionFrontParams,
)
def reaction_front(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: ReactionFrontParams
) -> torch.Tensor:
    n = grid_size
    gens = sample_generators(seeds)
    dr = {k: v.to(device) for k, v in _draws(gens, params).items()}
    x, y = coordinate_grid(n, device)
    if params.front_shape == "planar":
        k = dr["k"].double()  # [B, F, 2]
        ph = (
            k[..., 0, None, None] * x.double()
            + k[..., 1, None, None] * y.double()
            - dr["offset"].double()[..., None, None]
        )
        phi = ph - torch.floor(ph)  # [B, F, N, N]
        a = dr["band"].double()[..., None, None]
        dist_phase = torch.where(phi < a, torch.minimum(phi, a - phi), -torch.minimum(phi - a, 1.0 - phi))
        d = (dist_phase / k.norm(dim=-1)[..., None, None]).float()
    elif params.front_shape == "circular":
        c = dr["centre"]
        rho = torch.sqrt(periodic_delta(x, c[..., 0, None, None]) ** 2 + periodic_delta(y, c[..., 1, None, None]) ** 2)
        d = dr["radius"][..., None, None] - rho
    else:
        noise = torch.stack([torch.randn((params.num_fronts, n, n), generator=g) for g in gens]).to(device)
        d = _irregular_distance(noise, dr["threshold"], params.irregularity_length_scale)
    ci = 0.5 * (1.0 + torch.tanh(d / dr["width"][:, None, None, None]))  # [B, F, N, N]
    prog = 1.0 - torch.prod(1.0 - ci, dim=1)  # [B, N, N]
    comps = torch.stack([prog, 1.0 - prog, 4.0 * prog * (1.0 - prog)], dim=1)  # [B, 3, N, N]
    idx = torch.arange(num_channels, device=device) % 3
    return comps[:, idx].float().contiguous()
