"""``phase_boundary``: two coexisting phases separated by diffuse, fluctuating interfaces.

The order parameter of a Ginzburg–Landau / Allen–Cahn system with a double-well potential
has the equilibrium interface profile ``phi(d) = tanh(d / (sqrt(2) w))`` across a flat wall
(``d`` the signed distance to the wall, ``w = interface_width``), with the bulk phases at
``phi = +-1``.

Periodicity. A single flat wall cannot be periodic, so the +1 phase is a **band** bounded by
two parallel walls, and the wall normal is a primitive lattice direction ``m = (p, q)``
(integers, ``gcd(p, q) = 1``, ``|p|, |q| <= 2``; 8 directions modulo 180 degrees: 0, 26.6, 45,
63.4, 90, 116.6, 135, 153.4 degrees). Along ``m`` the pattern then repeats with period
``P = 1 / |m|`` and each wall is one closed line of length ``|m|`` on the torus: the field is
exactly periodic and smooth. With the normal coordinate ``s = p x + q y`` (periodic mod 1)::

    d   = periodic_delta(s - |m| u(r), s0) / |m|        (distance from the band centre line)
    phi = tanh((a - |d|) / (sqrt(2) w)),   a = f P / 2   (walls at d = +-a)

so the +1 phase fills the fraction ``f = phase_fraction`` of the domain. ``u(r)`` displaces
the walls along their normal (domain units):

* fluctuations: a zero-mean GRF with std ``fluctuation_amplitude`` and Gaussian covariance of
  length ``fluctuation_length_scale`` (capillary-wave-like roughening of the walls);
* curvature: ``A cos(2 pi (-q x + p y) + psi)`` with ``A = curvature / (2 pi |m|)^2``, a bend
  of wavelength ``1/|m|`` along the wall whose peak curvature is ``curvature`` (1/domain
  side); both walls bend together. 0 gives planar walls.

Per sample, draws in this order: direction index ``randint(8)``, band centre ``s0 ~ U[0,1)``,
``v ~ U[0,1)`` (``f = 0.3 + 0.4 v`` when ``phase_fraction`` is None), bend phase
``psi ~ U[0, 2 pi)``, then (only when ``fluctuation_amplitude > 0``) ``[C, N, N]`` normals
for the fluctuation GRFs. The direction index and ``v`` are drawn even when the parameters
fix them, so the other draws do not move.

Channels share the geometry (direction, offset, fraction, bend) and have independent wall
fluctuations (identical when ``fluctuation_amplitude = 0``). The result is
``amplitude * phi``: values stay in ``(-amplitude, amplitude)`` with the bulk phases at
``+-amplitude`` (not RMS-normalised, so the phases keep their physical values; the RMS is
``amplitude * sqrt(1 - ~4 sqrt(2) |m| w)``, 0.9–0.97 at the defaults). The walls saturate
only if ``w`` is small against the band and the gap (``f P / 2`` and ``(1 - f) P / 2``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, sample_generators

__all__ = ["PhaseBoundaryParams", "phase_boundary", "LATTICE_NORMALS", "nearest_lattice_normal"]

#: Primitive wall normals (p, q), |p|, |q| <= 2, one per direction modulo 180 degrees.
LATTICE_NORMALS: tuple[tuple[int, int], ...] = ((1, 0), (2, 1), (1, 1), (1, 2), (0, 1), (-1, 2), (-1, 1), (-2, 1))


class PhaseBoundaryParams(ICParams):
    interface_width: float = Field(
        default=0.015,
        gt=0,
        le=0.05,
        description=("w in the wall profile tanh(d/(sqrt(2) w)), fraction of the domain side"),
    )
    interface_angle: float | None = Field(
        default=None,
        description=(
            "angle of the wall normal from the x axis, radians, snapped to the nearest of 8 lattice "
            "directions (needed for periodicity); None = one drawn uniformly per sample"
        ),
    )
    fluctuation_amplitude: float = Field(
        default=0.01,
        ge=0,
        le=0.05,
        description=("std of the GRF displacing the walls along their normal, fraction of the domain side"),
    )
    fluctuation_length_scale: float = Field(
        default=0.1,
        gt=0,
        le=0.5,
        description=("correlation length of the wall-displacement GRF, fraction of the domain side"),
    )
    curvature: float = Field(
        default=0.0,
        ge=0,
        le=5,
        description=("peak curvature (1/domain side) of a sinusoidal bend of the walls; 0 = planar"),
    )
    phase_fraction: float | None = Field(
        default=None, ge=0.2, le=0.8, description=("area fraction of the +1 phase; None = drawn U[0.3, 0.7) per sample")
    )
    amplitude: float = Field(default=1.0, gt=0, description="value of the bulk phases (+-amplitude)")


def nearest_lattice_normal(angle: float) -> int:
    """Index into :data:`LATTICE_NORMALS` of the direction closest to ``angle`` (mod pi)."""

    def dist(pq: tuple[int, int]) -> float:
        d = (math.atan2(pq[1], pq[0]) - angle) % math.pi
        return min(d, math.pi - d)

    return min(range(len(LATTICE_NORMALS)), key=lambda i: dist(LATTICE_NORMALS[i]))


@register_ic(
    "phase_boundary",
    tier="tier2",
    domain="thermodynamics",
    description="two-phase tanh band with fluctuating (optionally bent) walls at a lattice angle",
    params_model=PhaseBoundaryParams,
)
def phase_boundary(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: PhaseBoundaryParams
) -> torch.Tensor:
    n = grid_size
    fixed = None if params.interface_angle is None else nearest_lattice_normal(params.interface_angle)
    rows, noises = [], []
    for g in sample_generators(seeds):
        idx = int(torch.randint(len(LATTICE_NORMALS), (1,), generator=g))
        s0, v, psi = torch.rand((3,), generator=g).tolist()
        lp, lq = LATTICE_NORMALS[idx if fixed is None else fixed]
        f = 0.3 + 0.4 * v if params.phase_fraction is None else params.phase_fraction
        rows.append([lp, lq, s0, f, 2 * math.pi * psi])
        if params.fluctuation_amplitude > 0:
            noises.append(torch.randn((num_channels, n, n), generator=g))
    geo = torch.tensor(rows, dtype=torch.float32, device=device)[:, :, None, None, None]  # [B, 5, 1, 1, 1]
    p, q, s0, f, psi = geo.unbind(1)  # [B, 1, 1, 1]
    norm = torch.sqrt(p * p + q * q)
    x, y = coordinate_grid(n, device)
    disp = torch.zeros((len(rows), 1, n, n), device=device)  # normal displacement u
    if params.curvature > 0:
        amp = params.curvature / (2 * math.pi * norm) ** 2
        disp = disp + amp * torch.cos(2 * math.pi * (-q * x + p * y) + psi)
    if params.fluctuation_amplitude > 0:
        noise = torch.stack(noises).to(device)
        disp = disp + grf_from_noise(noise, params.fluctuation_length_scale, params.fluctuation_amplitude**2)
    s = p * x + q * y - norm * disp  # [B, C or 1, N, N]
    d = periodic_delta(s, s0) / norm
    half = f / (2 * norm)
    phi = torch.tanh((half - d.abs()) / (math.sqrt(2.0) * params.interface_width))
    return (params.amplitude * phi).expand(-1, num_channels, -1, -1).contiguous()
