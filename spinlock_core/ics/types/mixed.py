"""``mixed``: per sample, either a ``gaussian_random_field`` or a ``structured`` field.

Sample ``b`` draws ``u ~ U[0,1)`` from its own generator (seed ``seeds[b]``) and is a GRF
(length ``length_scale``, variance 1) when ``u < grf_fraction``, else ``structured`` with its
defaults. The chosen generator is called with the sub-seed ``step_seed(seeds[b], 0)``, so
the draw and the field depend only on the sample's seed, never on its batch position.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field

from ...seeding import step_seed
from ..registry import ICParams, register_ic
from ..spectral import sample_generators
from .grf import GaussianRandomFieldParams, gaussian_random_field
from .structured import StructuredParams, structured

__all__ = ["MixedParams", "mixed", "mixed_choice"]


class MixedParams(ICParams):
    grf_fraction: float = Field(
        default=0.5, ge=0, le=1, description="probability that a sample is a GRF (else structured)"
    )
    length_scale: float = Field(default=0.1, gt=0, le=1, description="correlation length of the GRF samples")


def mixed_choice(seeds: Sequence[int], grf_fraction: float) -> list[bool]:
    """Per sample: True when it is a GRF (Bernoulli(grf_fraction) from its own seed)."""
    return [bool(torch.rand((1,), generator=g).item() < grf_fraction) for g in sample_generators(seeds)]


@register_ic(
    "mixed",
    tier="baseline",
    domain="stochastic fields",
    description="each sample a Gaussian random field or a structured field (seeded coin)",
    params_model=MixedParams,
)
def mixed(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: MixedParams
) -> torch.Tensor:
    is_grf = mixed_choice(seeds, params.grf_fraction)
    sub = [step_seed(int(s), 0) for s in seeds]
    out = torch.empty((len(seeds), num_channels, grid_size, grid_size), dtype=torch.float32, device=device)
    grf_idx = [i for i, v in enumerate(is_grf) if v]
    str_idx = [i for i, v in enumerate(is_grf) if not v]
    if grf_idx:
        out[grf_idx] = gaussian_random_field(
            [sub[i] for i in grf_idx],
            grid_size,
            num_channels,
            device,
            GaussianRandomFieldParams(length_scale=params.length_scale),
        )
    if str_idx:
        out[str_idx] = structured([sub[i] for i in str_idx], grid_size, num_channels, device, StructuredParams())
    return out
