"""``bz_reaction``: Belousov–Zhabotinsky-like excitable-medium waves (spirals, targets, turbulence).

An oscillatory reaction–diffusion medium is described near onset by a phase ``Phi(r)`` (the
complex Ginzburg–Landau amplitude ``e^{i Phi}``); concentrations of the reacting species
oscillate as phase-shifted functions of ``Phi``. Each wave source ``j`` (centre ``r_j``,
periodic minimum-image offset ``delta_j = r - r_j``, ``rho_j = |delta_j|``,
``theta_j = atan2(delta_j.y, delta_j.x)``) has the phase::

    phi_j = h_j theta_j - 2 pi rho_j / lambda_j + beta_j

* ``spiral``: ``h_j = +-1`` (handedness, each with probability 1/2): an Archimedean spiral
  wave of pitch ``lambda_j`` whose core is a phase singularity of winding number ``h_j``;
* ``target``: ``h_j = 0``: concentric rings of spacing ``lambda_j`` around a pacemaker
  (winding number 0);
* ``turbulent``: spirals as above with jittered wavelengths ``lambda_j = lambda (0.7 + 0.6 u_j)``
  (several interacting spiral cores, spiral-defect chaos).

Several sources are combined by weighted phase superposition::

    S = sum_j w_j e^{i phi_j},   w_j = exp(-rho_j / l),   l = lambda / 4,
    Phi = arg S + phase_offset

so each source dominates the region nearest to it (a soft periodic Voronoi partition, as in
the medium, where waves from different sources annihilate where they meet) and the domains
meet along "shock" lines a few ``l`` wide, on which ``S`` has isolated zeros (extra point
defects). (Equal weights would make ``S`` vanish on whole curves where two phases differ by
pi, i.e. phase jumps along lines.) A single source gives ``Phi = phi_1 + offset`` exactly.

Channels are phase-shifted components ``x_c = cos(Phi - c Delta)``, ``Delta = 2 pi / C`` for
``C >= 3`` (a C-phase set, like the oscillating species of the reaction), ``Delta = pi / 2``
for ``C = 2`` (a quadrature pair, so ``Phi`` is recoverable), ``x_0 = cos Phi`` for ``C = 1``.
``Phi`` is recovered from channels 0 and 1 by
``atan2((x_1 - x_0 cos Delta) / sin Delta, x_0)``. The sample is then scaled to RMS
``amplitude`` over ``(C, H, W)``.

Periodicity: ``rho_j`` is continuous on the torus but ``theta_j`` is not: a field with net
winding can not be periodic, so spiral patterns have a **seam** (a jump of ``Phi``) on the
lines ``x = x_j + 1/2`` and ``y = y_j + 1/2`` through the antipode of each spiral core, and all
patterns have a kink (continuous value) there from ``rho_j``. Target patterns are continuous.

Per sample, draws in this order: ``n ~ randint(4, 9)`` (the turbulent source count used when
``num_spirals`` is None; always drawn), then ``U[0,1)^[K, 5]`` (K sources; columns: centre
x, centre y, handedness ``h = +1`` if ``< 1/2`` else ``-1``, ``beta = 2 pi u``, wavelength
jitter ``u``), then ``U[0,1)`` for the offset (``2 pi u``, used when ``phase_offset`` is None).
``K = num_spirals`` when given, else 1 (spiral, target) or ``n`` (turbulent).
Cost: ``O(B K N^2)`` elementwise work, two passes per source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypedDict

import torch
from pydantic import Field

from ...seeding import torch_generator
from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms

__all__ = ["BZReactionParams", "BZSources", "bz_reaction", "bz_sources", "channel_phase_shift"]


class BZReactionParams(ICParams):
    pattern_type: Literal["spiral", "target", "turbulent"] = Field(
        default="spiral",
        description=("spiral (winding +-1 cores), target (concentric rings) or turbulent (many jittered spirals)"),
    )
    num_spirals: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description=(
            "number of wave sources (spiral cores or pacemakers); None = 1 for spiral/target, "
            "drawn from 4..8 per sample for turbulent"
        ),
    )
    wavelength: float = Field(
        default=0.125,
        gt=0,
        le=1,
        description=("wavelength lambda (arm pitch / ring spacing), fraction of the domain side"),
    )
    phase_offset: float | None = Field(
        default=None,
        description=("global phase added to Phi, radians (the oscillation's time); None = U[0, 2 pi) per sample"),
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")


def channel_phase_shift(num_channels: int) -> float:
    """``Delta``: channel ``c`` is ``cos(Phi - c Delta)`` (2 pi / C for C >= 3, pi / 2 for C <= 2)."""
    return 2 * math.pi / num_channels if num_channels >= 3 else math.pi / 2


class BZSources(TypedDict):
    """One sample's wave sources (see :func:`bz_sources`)."""

    centres: torch.Tensor  # [K, 2] (x, y)
    handedness: torch.Tensor  # [K]
    wavelengths: torch.Tensor  # [K]
    phases: torch.Tensor  # [K]
    offset: float


def bz_sources(seed: int, params: BZReactionParams) -> BZSources:
    """The sample's draws: ``centres [K, 2]`` (x, y), ``handedness [K]`` (+-1, 0 for target),
    ``wavelengths [K]``, ``phases [K]`` (beta_j) and ``offset`` (radians), all float32 / float."""
    g = torch_generator(int(seed), "cpu")
    n_turb = int(torch.randint(4, 9, (1,), generator=g))
    if params.num_spirals is not None:
        k = params.num_spirals
    else:
        k = n_turb if params.pattern_type == "turbulent" else 1
    u = torch.rand((k, 5), generator=g)
    offset_u = float(torch.rand((1,), generator=g))
    if params.pattern_type == "target":
        hand = torch.zeros(k)
    else:
        hand = torch.where(u[:, 2] < 0.5, 1.0, -1.0)
    lam = torch.full((k,), params.wavelength)
    if params.pattern_type == "turbulent":
        lam = params.wavelength * (0.7 + 0.6 * u[:, 4])
    offset = 2 * math.pi * offset_u if params.phase_offset is None else float(params.phase_offset)
    return {
        "centres": u[:, :2].clone(),
        "handedness": hand,
        "wavelengths": lam,
        "phases": 2 * math.pi * u[:, 3],
        "offset": offset,
    }


@register_ic(
    "bz_reaction",
    tier="tier2",
    domain="chemistry",
    description="Belousov-Zhabotinsky spiral / target / turbulent waves as phase-shifted channels",
    params_model=BZReactionParams,
)
def bz_reaction(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: BZReactionParams
) -> torch.Tensor:
    n, b = grid_size, len(seeds)
    draws = [bz_sources(s, params) for s in seeds]
    k_max = max(int(d["centres"].shape[0]) for d in draws)
    # [B, K, 6]: cx, cy, h, lambda, beta, weight (0 pads samples with fewer sources)
    table = torch.zeros((b, k_max, 6))
    table[:, :, 3] = 1.0
    for i, d in enumerate(draws):
        k = d["centres"].shape[0]
        table[i, :k] = torch.stack(
            [d["centres"][:, 0], d["centres"][:, 1], d["handedness"], d["wavelengths"], d["phases"], torch.ones(k)],
            dim=1,
        )
    table = table.to(device)
    offset = torch.tensor([d["offset"] for d in draws], dtype=torch.float32, device=device)[:, None, None]
    x, y = coordinate_grid(n, device)
    s_re = torch.zeros((b, n, n), device=device)
    s_im = torch.zeros((b, n, n), device=device)
    rho_min = torch.full((b, n, n), 2.0, device=device)
    ell = params.wavelength / 4
    for j in range(k_max):  # nearest-source distance (weights stable)
        cx, cy, wt = table[:, j, 0, None, None], table[:, j, 1, None, None], table[:, j, 5, None, None]
        rho = torch.sqrt(periodic_delta(x, cx) ** 2 + periodic_delta(y, cy) ** 2)
        rho_min = torch.minimum(rho_min, torch.where(wt > 0, rho, 2.0))
    for j in range(k_max):
        cx, cy, h, lam, beta, wt = (table[:, j, i, None, None] for i in range(6))  # [B, 1, 1]
        dx, dy = periodic_delta(x, cx), periodic_delta(y, cy)
        rho = torch.sqrt(dx * dx + dy * dy)
        phi = h * torch.atan2(dy, dx) - 2 * math.pi * rho / lam + beta
        w = wt * torch.exp(-(rho - rho_min) / ell)  # w_j / max_j w_j
        s_re = s_re + w * torch.cos(phi)
        s_im = s_im + w * torch.sin(phi)
    big_phi = torch.atan2(s_im, s_re) + offset  # [B, N, N]
    shifts = channel_phase_shift(num_channels) * torch.arange(num_channels, device=device, dtype=torch.float32)
    field = torch.cos(big_phi[:, None] - shifts[None, :, None, None])
    return normalise_rms(field, params.amplitude)
