"""``interference_pattern``: superposed circular waves of ``num_sources`` coherent point sources.

Source ``j`` at ``r_j`` emits the partially coherent circular wave

    w_j(r) = cos(2 pi rho_j / lambda + phi_j) * exp(-rho_j^2 / (2 L^2)),

``rho_j = |r - r_j|`` the minimum-image (periodic) distance in domain units, ``lambda`` the
wavelength and ``L`` the coherence length (both fractions of the domain side). The field is
``sum_j w_j``, scaled per sample to RMS ``amplitude`` over ``(C, H, W)``. With two sources the
waves interfere: along the source axis between them the field is a standing wave
``2 cos(k d/2 + (phi_1 + phi_2)/2) cos(k t + (phi_1 - phi_2)/2)`` (``t`` the position from the
midpoint, ``k = 2 pi / lambda``): nodal fringes every ``lambda / 2``; the 2-D spectrum is a ring
at ``|k| = 1 / lambda`` cycles per domain.

Per sample, draws in this order (S = ``num_sources``, C channels), all made whatever the
params so the stream layout is fixed:

1. ``u ~ U[0, 1)``: the wavelength ``lo + (hi - lo) u`` when ``wavelength_range = (lo, hi)``
   is set (``wavelength`` is then ignored), else unused;
2. free positions ``U[0, 1)^[S, 2]`` (columns x, y), used when ``source_spacing`` is None;
3. array midpoint ``U[0, 1)^2`` and axis angle ``U[0, 2 pi)``, used when ``source_spacing = s``
   is set: the sources form a line array ``midpoint + (j - (S - 1)/2) s (cos a, sin a)``
   (wrapped into the unit square);
4. phases ``U[0, 2 pi)^[S, C]``.

Channels: all channels share the sources, wavelength and coherence envelope; channel ``c``
uses its own source phases ``phi_{j,c}`` (independent draws), so the fringe positions shift from
channel to channel while the fringe spacing stays ``lambda / 2``.

Periodicity: minimum-image distances make every wave continuous on the torus; its gradient
creases on the set of points equidistant from two images of a source (``rho_j = 0.5`` along an
axis), where the envelope is ``exp(-1 / (8 L^2))`` (0.14 for the default ``L = 0.25``), so
the crease is faint for ``L <= 0.3`` and visible for long coherence lengths.

Resolution: the wavelength is in domain units; it is resolved (>= 2 px) for
``grid_size >= 2 / lambda`` (16 for the default 0.125), aliased below. Cost: O(B S N^2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators

__all__ = ["InterferencePatternParams", "interference_pattern", "interference_draws"]


class InterferencePatternParams(ICParams):
    num_sources: int = Field(default=2, ge=1, le=64, description="number of coherent point sources")
    wavelength: float = Field(
        default=0.125,
        gt=0,
        le=1,
        description="wavelength, fraction of the domain side (ignored when wavelength_range is set)",
    )
    wavelength_range: tuple[float, float] | None = Field(
        default=None,
        description="(lo, hi): draw the wavelength per sample from U[lo, hi) (fractions of the side); "
        "None = use `wavelength`",
    )
    coherence_length: float = Field(
        default=0.25,
        gt=0,
        le=100,
        description="coherence length L of the envelope exp(-rho^2 / (2 L^2)), fraction of the side",
    )
    source_spacing: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="spacing of a line array of sources (random midpoint and axis), fraction of the side; "
        "None = independent uniform positions",
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")

    @model_validator(mode="after")
    def _check(self) -> InterferencePatternParams:
        if self.wavelength_range is not None:
            lo, hi = self.wavelength_range
            if not (0 < lo <= hi <= 1):
                raise ValueError(f"wavelength_range must satisfy 0 < lo <= hi <= 1, got {self.wavelength_range}")
        if self.source_spacing is not None and (self.num_sources - 1) * self.source_spacing >= 1:
            raise ValueError(
                f"source_spacing ({self.source_spacing}) * (num_sources - 1) ({self.num_sources - 1}) must be < 1 "
                "(the array would wrap onto itself)"
            )
        return self


def interference_draws(
    seeds: Sequence[int], num_channels: int, params: InterferencePatternParams
) -> dict[str, torch.Tensor]:
    """The per-sample draws, on the CPU (see the module docstring for their order).

    Returns:
        ``wavelength [B]``, ``sources [B, S, 2]`` (x, y in ``[0, 1)``) and ``phases [B, S, C]``.
    """
    s = params.num_sources
    wl, src, ph = [], [], []
    for g in sample_generators(seeds):
        u = torch.rand((1,), generator=g)
        free = torch.rand((s, 2), generator=g)
        mid = torch.rand((2,), generator=g)
        axis = 2 * math.pi * torch.rand((1,), generator=g)
        phases = 2 * math.pi * torch.rand((s, num_channels), generator=g)
        if params.wavelength_range is not None:
            lo, hi = params.wavelength_range
            wl.append(lo + (hi - lo) * u)
        else:
            wl.append(torch.full((1,), float(params.wavelength)))
        if params.source_spacing is None:
            pos = free
        else:
            offs = (torch.arange(s, dtype=torch.float32) - (s - 1) / 2) * params.source_spacing
            direction = torch.cat([torch.cos(axis), torch.sin(axis)])
            pos = torch.remainder(mid + offs[:, None] * direction, 1.0)
        src.append(pos)
        ph.append(phases)
    return {"wavelength": torch.cat(wl), "sources": torch.stack(src), "phases": torch.stack(ph)}


@register_ic(
    "interference_pattern",
    tier="tier3",
    domain="quantum physics",
    description="superposed circular waves of coherent point sources with a coherence envelope",
    params_model=InterferencePatternParams,
)
def interference_pattern(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: InterferencePatternParams
) -> torch.Tensor:
    d = interference_draws(seeds, num_channels, params)
    wl = d["wavelength"].to(device)[:, None, None, None]  # [B, 1, 1, 1]
    src = d["sources"].to(device)  # [B, S, 2]
    phases = d["phases"].to(device)  # [B, S, C]
    x, y = coordinate_grid(grid_size, device)
    dx = periodic_delta(x, src[..., 0, None, None])  # [B, S, N, N]
    dy = periodic_delta(y, src[..., 1, None, None])
    rho2 = dx * dx + dy * dy
    env = torch.exp(-rho2 / (2.0 * params.coherence_length**2))
    arg = (2 * math.pi) * torch.sqrt(rho2) / wl
    wave_c, wave_s = env * torch.cos(arg), env * torch.sin(arg)  # [B, S, N, N]
    # cos(a + phi) = cos a cos phi - sin a sin phi, summed over sources per channel
    field = torch.einsum("bsc,bsij->bcij", torch.cos(phases), wave_c) - torch.einsum(
        "bsc,bsij->bcij", torch.sin(phases), wave_s
    )
    return normalise_rms(field, params.amplitude)
