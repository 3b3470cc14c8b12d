"""``localized``: a few Gaussian blobs with signed per-channel amplitudes.

Per sample, draws in this order from the sample's generator (K = ``num_blobs``):
centres ``U[0,1)^[K, 2]`` (columns x, y), widths ``U[min_width, max_width)^[K]``, amplitudes
``N(0,1)^[K, C]``. Blob ``k`` is the smooth periodic Gaussian
``exp(-|r - r_k|^2 / (2 sigma_k^2))`` (periodic images summed); channel ``c`` is
``sum_k a[k, c] * blob_k``. Channels share the blobs and differ by amplitudes. The sample is
then scaled to RMS ``amplitude`` over ``(C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_gaussian_1d
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators

__all__ = ["LocalizedParams", "localized"]


class LocalizedParams(ICParams):
    num_blobs: int = Field(default=5, ge=1, le=1000, description="number of Gaussian blobs")
    min_width: float = Field(
        default=0.03, gt=0, le=0.25, description="smallest blob sigma, fraction of the domain side"
    )
    max_width: float = Field(default=0.12, gt=0, le=0.25, description="largest blob sigma, fraction of the domain side")
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")

    @model_validator(mode="after")
    def _check(self) -> LocalizedParams:
        if self.min_width > self.max_width:
            raise ValueError(f"min_width ({self.min_width}) must be <= max_width ({self.max_width})")
        return self


@register_ic(
    "localized",
    tier="baseline",
    domain="stochastic fields",
    description="sum of Gaussian blobs at random centres with signed per-channel amplitudes",
    params_model=LocalizedParams,
)
def localized(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: LocalizedParams
) -> torch.Tensor:
    k = params.num_blobs
    centres, widths, amps = [], [], []
    for g in sample_generators(seeds):
        centres.append(torch.rand((k, 2), generator=g))
        widths.append(params.min_width + (params.max_width - params.min_width) * torch.rand((k,), generator=g))
        amps.append(torch.randn((k, num_channels), generator=g))
    centre = torch.stack(centres).to(device)  # [B, K, 2]
    sigma = torch.stack(widths).to(device)  # [B, K]
    amp = torch.stack(amps).to(device)  # [B, K, C]
    x, _ = coordinate_grid(grid_size, device)
    coord = x[0]  # [N]
    gx = periodic_gaussian_1d(coord, centre[..., 0], sigma)  # [B, K, N] along columns
    gy = periodic_gaussian_1d(coord, centre[..., 1], sigma)  # [B, K, N] along rows
    field = torch.einsum("bkc,bki,bkj->bcij", amp, gy, gx)
    return normalise_rms(field, params.amplitude)
