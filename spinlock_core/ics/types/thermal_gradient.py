"""``thermal_gradient``: a temperature ramp along a direction plus a correlated GRF perturbation.

Periodic domain: a ramp that is periodic on the unit torus must run along an integer lattice
direction ``k = (p, q)`` (primitive: ``gcd(|p|, |q|) = 1``). The ramp coordinate is the phase

    phi(r) = frac(p x + q y - o)   in [0, 1),

which increases along ``k / |k|`` and wraps once per period ``1 / |k|`` (along the normal); the
wrap happens on the line(s) ``p x + q y = o (mod 1)``, which cross the unit square
``|p| + |q|`` times. So ``x`` / ``y`` give one ramp across the domain, ``diagonal`` (``(1, +-1)``)
gives two ramp bands, and an ``arbitrary`` angle is snapped to the nearest of the 16 primitive
directions with ``max(|p|, |q|) <= 2`` (angles 0, 26.6, 45, 63.4, 90, ... degrees; snapping moves
the angle by at most 13.3 degrees).

Wrap handling (``wrap``):

* ``smooth`` (default): the sawtooth ``phi`` is convolved with a Gaussian of std ``wrap_width``
  (in units of the period), ``S(phi) = phi + 1 - Phi(phi / w) - Phi((phi - 1) / w)`` with
  ``Phi`` the normal CDF, then mapped to ``h = (S - S_min) / (S_max - S_min)`` in [0, 1]
  (``S_min``/``S_max``: extremes of ``S`` for this ``w``). The field is smooth and periodic;
  ``h`` rises monotonically except in a return zone of half-width
  ``w * sqrt(2 ln(1 / (w sqrt(2 pi))))`` around the wrap line (0.10 of the period for w = 0.05).
* ``jump``: ``h = phi`` exactly; the field is periodic but discontinuous across the wrap line
  (a step from T_max down to T_min).

Temperature: ``T = T_min + (T_max - T_min) * h^beta`` (``beta`` = ``exponent``; 1 is linear), in
the units of ``temperature_range`` (the field is *not* rescaled to unit RMS: the defaults (0, 1)
give RMS ~ 0.58). The perturbation is a GRF with correlation length ``noise_length_scale`` and
per-pixel variance ``noise_level^2`` (expected; :mod:`..spectral`), in temperature units.

Per sample, draws in this order: ``u_mode ~ U[0,1)`` (direction mode for ``random``), ``u_dir ~
U[0,1)`` (sign / angle), ``o ~ U[0,1)`` (ramp offset), then ``[C, N, N]`` white noise (only when
``noise_level > 0``). Direction from ``u_dir``: x -> angle ``pi * floor(2 u)``; y -> ``pi/2 + pi *
floor(2 u)``; diagonal -> ``pi/4 + (pi/2) * floor(4 u)``; arbitrary -> ``2 pi u`` snapped; random
-> the mode ``(x, y, diagonal, arbitrary)[floor(4 u_mode)]``.

Channels share the ramp and carry independent perturbations. Cost: O(B C N^2) plus one FFT pair
per channel for the perturbation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, sample_generators

__all__ = [
    "ThermalGradientParams",
    "thermal_gradient",
    "thermal_gradient_draws",
    "LATTICE_DIRECTIONS",
    "nearest_lattice_direction",
    "smooth_sawtooth",
]

_MODES = ("x", "y", "diagonal", "arbitrary")


def _primitive_directions(max_index: int) -> torch.Tensor:
    dirs = [
        (p, q)
        for p in range(-max_index, max_index + 1)
        for q in range(-max_index, max_index + 1)
        if (p, q) != (0, 0) and math.gcd(abs(p), abs(q)) == 1
    ]
    dirs.sort(key=lambda v: math.atan2(v[1], v[0]) % (2 * math.pi))
    return torch.tensor(dirs, dtype=torch.float32)


#: ``[16, 2]`` primitive integer directions ``(p, q)`` with ``max(|p|, |q|) <= 2``, by angle.
LATTICE_DIRECTIONS: torch.Tensor = _primitive_directions(2)


def nearest_lattice_direction(angle: torch.Tensor) -> torch.Tensor:
    """``[..., 2]`` float ``(p, q)``: the :data:`LATTICE_DIRECTIONS` entry closest in angle to ``angle``."""
    dirs = LATTICE_DIRECTIONS.to(angle.device)
    unit = dirs / dirs.norm(dim=-1, keepdim=True)
    cos = torch.cos(angle).unsqueeze(-1) * unit[:, 0] + torch.sin(angle).unsqueeze(-1) * unit[:, 1]
    return dirs[cos.argmax(dim=-1)]


@lru_cache(maxsize=32)
def _sawtooth_extremes(width: float) -> tuple[float, float]:
    phi = torch.linspace(0.0, 1.0, 200001, dtype=torch.float64)
    s = _smooth_sawtooth_raw(phi, width)
    return float(s.min()), float(s.max())


def _smooth_sawtooth_raw(phi: torch.Tensor, width: float) -> torch.Tensor:
    return phi + 1.0 - torch.special.ndtr(phi / width) - torch.special.ndtr((phi - 1.0) / width)


def smooth_sawtooth(phi: torch.Tensor, width: float) -> torch.Tensor:
    """Gaussian-smoothed (std ``width``) unit sawtooth on ``phi in [0, 1)``, mapped to [0, 1]."""
    lo, hi = _sawtooth_extremes(float(width))
    return ((_smooth_sawtooth_raw(phi, width) - lo) / (hi - lo)).clamp(0.0, 1.0)


class ThermalGradientParams(ICParams):
    direction: Literal["random", "x", "y", "diagonal", "arbitrary"] = Field(
        default="random",
        description=(
            "ramp direction: x / y (random sign), diagonal (one of 4), arbitrary (U[0, 2 pi) snapped to a "
            "lattice direction), random (one of those four modes per sample)"
        ),
    )
    temperature_range: tuple[float, float] = Field(
        default=(0.0, 1.0),
        description=("(T_min, T_max): temperature at the cold and hot ends of the ramp (field units)"),
    )
    exponent: float = Field(
        default=1.0, gt=0, le=10, description="beta: T = T_min + (T_max - T_min) * h^beta, h in [0, 1]"
    )
    noise_level: float = Field(default=0.1, ge=0, description="std of the GRF perturbation, temperature units")
    noise_length_scale: float = Field(default=0.04, gt=0, le=1, description="correlation length of the perturbation")
    wrap: Literal["smooth", "jump"] = Field(
        default="smooth",
        description=("how the periodic ramp returns: smooth (Gaussian-smoothed sawtooth) or jump (discontinuity)"),
    )
    wrap_width: float = Field(
        default=0.05,
        gt=0,
        le=0.15,
        description=("std of the smoothing of the wrap for wrap='smooth', fraction of the ramp period"),
    )

    @model_validator(mode="after")
    def _check(self) -> ThermalGradientParams:
        lo, hi = self.temperature_range
        if not lo < hi:
            raise ValueError(f"temperature_range must satisfy T_min < T_max, got {self.temperature_range}")
        return self


def thermal_gradient_draws(seeds: Sequence[int], params: ThermalGradientParams) -> dict[str, torch.Tensor]:
    """Per-sample ramp draws (CPU): ``angle [B]`` (the drawn angle before snapping), ``k [B, 2]``
    (the lattice direction ``(p, q)`` the temperature increases along), ``offset [B]``."""
    return _ramp_draws(sample_generators(seeds), params)


def _ramp_draws(gens: Sequence[torch.Generator], params: ThermalGradientParams) -> dict[str, torch.Tensor]:
    angles, offsets = [], []
    for g in gens:
        u = torch.rand((3,), generator=g, dtype=torch.float64)
        mode = params.direction if params.direction != "random" else _MODES[int(4 * u[0])]
        ud = float(u[1])
        if mode == "x":
            a = math.pi * math.floor(2 * ud)
        elif mode == "y":
            a = 0.5 * math.pi + math.pi * math.floor(2 * ud)
        elif mode == "diagonal":
            a = 0.25 * math.pi + 0.5 * math.pi * math.floor(4 * ud)
        else:
            a = 2 * math.pi * ud
        angles.append(a)
        offsets.append(float(u[2]))
    angle = torch.tensor(angles, dtype=torch.float32)
    return {"angle": angle, "k": nearest_lattice_direction(angle), "offset": torch.tensor(offsets, dtype=torch.float32)}


@register_ic(
    "thermal_gradient",
    tier="tier1",
    domain="thermodynamics",
    description="periodic linear / power-law temperature ramp along a lattice direction plus a GRF perturbation",
    params_model=ThermalGradientParams,
)
def thermal_gradient(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: ThermalGradientParams
) -> torch.Tensor:
    n = grid_size
    gens = sample_generators(seeds)
    dr = _ramp_draws(gens, params)
    noise = None
    if params.noise_level > 0:
        noise = torch.stack([torch.randn((num_channels, n, n), generator=g) for g in gens]).to(device)
    k = dr["k"].to(device=device, dtype=torch.float64)
    off = dr["offset"].to(device=device, dtype=torch.float64)
    x, y = coordinate_grid(n, device)
    ph = k[:, 0, None, None] * x.double() + k[:, 1, None, None] * y.double() - off[:, None, None]
    phi = ph - torch.floor(ph)  # [B, N, N] in [0, 1)
    h = smooth_sawtooth(phi, params.wrap_width) if params.wrap == "smooth" else phi
    t_lo, t_hi = params.temperature_range
    temp = (t_lo + (t_hi - t_lo) * h.pow(params.exponent)).float().unsqueeze(1)
    field = temp.expand(-1, num_channels, -1, -1)
    if noise is not None:
        field = field + grf_from_noise(noise, params.noise_length_scale, params.noise_level**2)
    return field.contiguous()
