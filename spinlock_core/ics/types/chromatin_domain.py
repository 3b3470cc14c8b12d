"""``chromatin_domain``: Hi-C-like contact maps with TADs or A/B compartments.

Both image axes are the same genomic coordinate ``x in [0, 1)`` (pixel ``i`` is locus ``i / N``);
the map ``M(x, y)`` is the contact frequency of loci ``x`` and ``y`` and is exactly symmetric.
**Periodic handling:** the chromosome is circular (as bacterial genomes and plasmids are), so the
genomic distance is the minimum-image ``s = min(|x - y|, 1 - |x - y|)`` and a domain that crosses
``x = 1`` wraps around to ``x = 0``; the map is periodic in both axes.

Per sample, draws in this order (K = ``num_domains``, C channels): offset ``s0 ~ U[0, 1)``,
size variables ``U[0, 1)^[K]`` (sizes ``L_k = lo + (hi - lo) u_k`` from ``domain_size_range``),
the first compartment's type ``U[0, 1)`` (A if ``< 0.5``), strengths ``U[0, 1)^[K, C]``.
Domains are consecutive along the diagonal from ``s0``: domain ``k`` covers
``[s_k, s_k + L_k)`` with ``s_k = s0 + sum_{j<k} L_j`` (mod 1). In TAD mode sizes are scaled
down to sum to 1 when they exceed it (the rest of the genome, if any, is a domain-free gap);
in AB mode they are always scaled to sum to 1 (compartments tile the genome), so
``domain_size_range`` then sets relative sizes.

A domain's soft indicator is ``B_k(x) = sig(b (d + L_k/2)) sig(b (L_k/2 - d))`` with ``d`` the
periodic offset of ``x`` from the domain centre and ``b = boundary_sharpness`` (the logistic
edge width is ``1 / b`` in domain units).

* ``TAD``: ``M_c(x, y) = D(s) (0.1 + sum_k a_{k,c} B_k(x) B_k(y))``: enriched square blocks on the
  diagonal over an inter-domain background of 0.1, times the polymer contact decay
  ``D(s) = (1 + s / 0.05)^(-decay_exponent)`` (``D(0) = 1``). Strengths
  ``a_{k,c} = 0.5 + u`` (``U[0.5, 1.5)``).
* ``AB``: the observed/expected (distance-normalised, so no decay) map ``M_c = v_c(x) v_c(y)`` of
  the compartment profile ``v_c(x) = sum_k t_k a_{k,c} B_k(x)``, ``t_k = +-1`` alternating
  A/B along the genome (an odd K makes the last and first segments the same type, i.e. one
  segment across the wrap), ``a_{k,c} = 0.8 + 0.4 u``: a checkerboard, positive for A-A and
  B-B contacts, negative for A-B. ``decay_exponent`` is not used.

Channels share the domain layout (boundaries, compartment types) and differ by their strength
draws ``a_{k,c}`` (e.g. cell types with the same domains but different interaction strengths).
The map is symmetrised ``(M + M^T) / 2`` (exact symmetry) and scaled to RMS ``amplitude`` over
``(C, H, W)``. Cost: O(B K C N^2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators

__all__ = ["ChromatinDomainParams", "chromatin_domain", "chromatin_draws", "TAD_BACKGROUND", "DECAY_SCALE"]

#: Inter-domain contact level of the TAD map (relative to strengths ~1).
TAD_BACKGROUND = 0.1
#: Genomic distance scale of the contact decay ``(1 + s / DECAY_SCALE)^-decay_exponent``.
DECAY_SCALE = 0.05


class ChromatinDomainParams(ICParams):
    num_domains: int = Field(default=5, ge=1, le=100, description="number of TADs (TAD) or compartment segments (AB)")
    domain_size_range: tuple[float, float] = Field(
        default=(0.08, 0.25), description="(lo, hi): domain sizes ~ U[lo, hi), fractions of the genome (= side)"
    )
    boundary_sharpness: float = Field(
        default=200.0, gt=0, le=10000, description="inverse logistic width of domain edges, 1 / (fraction of the side)"
    )
    compartment_type: Literal["TAD", "AB"] = Field(
        default="TAD", description="TAD blocks or A/B compartment checkerboard"
    )
    decay_exponent: float = Field(
        default=1.0,
        ge=0,
        le=4,
        description="TAD only: exponent of the contact decay (1 + s / 0.05)^-exponent (0 = none)",
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")

    @model_validator(mode="after")
    def _check(self) -> ChromatinDomainParams:
        lo, hi = self.domain_size_range
        if not (0 < lo <= hi <= 1):
            raise ValueError(f"domain_size_range must satisfy 0 < lo <= hi <= 1, got {self.domain_size_range}")
        if self.compartment_type == "AB" and self.num_domains < 2:
            raise ValueError("num_domains must be >= 2 for compartment_type 'AB' (one segment has no checkerboard)")
        return self


def chromatin_draws(seeds: Sequence[int], num_channels: int, params: ChromatinDomainParams) -> dict[str, torch.Tensor]:
    """The per-sample layout and strengths, on the CPU (draw order: module docstring).

    Returns:
        ``starts [B, K]`` (domain starts in ``[0, 1)``), ``sizes [B, K]`` (after scaling),
        ``types [B, K]`` (``+-1``, AB compartment types; all ``+1`` for TAD) and
        ``strengths [B, K, C]``.
    """
    k = params.num_domains
    lo, hi = params.domain_size_range
    starts, sizes, types, strengths = [], [], [], []
    for g in sample_generators(seeds):
        s0 = torch.rand((1,), generator=g)
        size = lo + (hi - lo) * torch.rand((k,), generator=g)
        first_a = bool(torch.rand((1,), generator=g) < 0.5)
        u = torch.rand((k, num_channels), generator=g)
        total = float(size.sum())
        if params.compartment_type == "AB" or total > 1.0:
            size = size / total
        start = torch.remainder(s0 + torch.cumsum(size, 0) - size, 1.0)
        if params.compartment_type == "AB":
            t = torch.tensor([(1.0 if first_a else -1.0) * (-1.0) ** j for j in range(k)])
            a = 0.8 + 0.4 * u
        else:
            t = torch.ones(k)
            a = 0.5 + u
        starts.append(start)
        sizes.append(size)
        types.append(t)
        strengths.append(a)
    return {
        "starts": torch.stack(starts),
        "sizes": torch.stack(sizes),
        "types": torch.stack(types),
        "strengths": torch.stack(strengths),
    }


@register_ic(
    "chromatin_domain",
    tier="tier3",
    domain="genomics",
    description="symmetric Hi-C-like contact map: TAD blocks with distance decay or A/B checkerboard",
    params_model=ChromatinDomainParams,
)
def chromatin_domain(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: ChromatinDomainParams
) -> torch.Tensor:
    n = grid_size
    d = chromatin_draws(seeds, num_channels, params)
    start, size = d["starts"].to(device), d["sizes"].to(device)  # [B, K]
    types, strength = d["types"].to(device), d["strengths"].to(device)
    x, _ = coordinate_grid(n, device)
    coord = x[0]  # [N] loci i / N
    centre = start + 0.5 * size
    off = periodic_delta(coord, centre[..., None])  # [B, K, N]
    half = 0.5 * size[..., None]
    b = params.boundary_sharpness
    ind = torch.sigmoid(b * (off + half)) * torch.sigmoid(b * (half - off))  # [B, K, N]
    if params.compartment_type == "TAD":
        blocks = torch.einsum("bkc,bki,bkj->bcij", strength, ind, ind)
        idx = torch.arange(n, device=device)
        sep = (idx[:, None] - idx[None, :]).abs()
        s = torch.minimum(sep, n - sep).float() / n  # [N, N] genomic distance
        decay = (1.0 + s / DECAY_SCALE) ** (-params.decay_exponent)
        field = decay * (TAD_BACKGROUND + blocks)
    else:
        v = torch.einsum("bk,bkc,bki->bci", types, strength, ind)  # [B, C, N] compartment profile
        field = v[..., :, None] * v[..., None, :]
    field = 0.5 * (field + field.transpose(-1, -2))
    return normalise_rms(field, params.amplitude)
