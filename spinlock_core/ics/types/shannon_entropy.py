"""``shannon_entropy``: noise whose local Shannon (differential) entropy follows a spatial map.

How the local entropy is controlled. The field is ``x_c(r) = sigma(r) z_c(r)`` with ``z_c``
zero-mean unit-variance Gaussian noise, so the value at ``r`` is ``N(0, sigma(r)^2)``, whose
differential entropy (natural log, **nats**) is ``1/2 ln(2 pi e sigma^2)``. Choosing::

    sigma(r) = exp(H(r) - 1/2 ln(2 pi e))          (i.e. sigma = e^H / sqrt(2 pi e))

makes the local value distribution have entropy exactly ``H(r)``; a patch over which ``H``
is constant has i.i.d. (white noise) or stationary (``noise_length_scale > 0``) values of that
entropy. (``H = 1.419`` nats is the unit Gaussian; entropy in bits is ``H / ln 2``.) The map is
``H(r) = H_lo + (H_hi - H_lo) m(r)`` with ``(H_lo, H_hi) = entropy_range`` and ``m`` in
``[0, 1]`` by ``entropy_pattern``:

* ``gradient``: ``m = (1 - cos(2 pi (p x + q y) + psi)) / 2`` with ``(p, q)`` one of
  (1, 0), (0, 1), (1, 1), (1, -1) and a random phase ``psi``: a smooth periodic ramp from
  ``H_lo`` to ``H_hi`` and back along a random lattice direction (a monotone ramp can not be
  periodic);
* ``patchy``: a Gaussian-covariance GRF of correlation length ``patch_size``, min–max scaled
  per sample to ``[0, 1]`` (smooth patches; the bounds are reached exactly);
* ``random``: piecewise-constant cells: an ``M x M`` grid, ``M = max(1, round(1/patch_size))``
  (cell side ``1/M``, so periodic), shifted by a random offset, with i.i.d. ``U[0,1)`` levels.

Normalisation. With ``normalise=True`` (default) the sample is scaled to RMS ``amplitude``
over ``(C, H, W)``: this adds the per-sample constant ``ln(amplitude / rms)`` to every local
entropy, so the *shape* of the map and the contrast ``H_hi - H_lo`` are exact and the offset
is not. With ``normalise=False`` the local entropies are exactly ``H(r)`` (and the RMS is
``sqrt(mean sigma^2)``, ~1 for the default range).

Per sample, draws in this order: direction index ``randint(4)``, ``U[0,1)^3`` (``psi / 2 pi``,
cell offset x, y), then the map's own draws (patchy: ``[N, N]`` normals; random:
``U[0,1)^[M, M]`` levels; gradient: none), then ``[C, N, N]`` normals for ``z``. Channels
share the entropy map and have independent noise ``z_c`` (white per pixel, or a unit-variance
GRF of length ``noise_length_scale`` when it is > 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, normalise_rms, sample_generators

__all__ = ["ShannonEntropyParams", "shannon_entropy", "entropy_map", "GAUSSIAN_ENTROPY_OFFSET"]

#: ``1/2 ln(2 pi e)``: differential entropy (nats) of a unit-variance Gaussian.
GAUSSIAN_ENTROPY_OFFSET: float = 0.5 * math.log(2 * math.pi * math.e)

_DIRECTIONS = ((1, 0), (0, 1), (1, 1), (1, -1))


class ShannonEntropyParams(ICParams):
    entropy_pattern: Literal["gradient", "patchy", "random"] = Field(
        default="gradient",
        description=("spatial map of the local entropy: periodic ramp, smooth GRF patches or random cells"),
    )
    entropy_range: tuple[float, float] = Field(
        default=(0.5, 2.0),
        description=("(H_lo, H_hi): local differential entropy bounds in nats (unit Gaussian = 1.419)"),
    )
    patch_size: float = Field(
        default=0.125,
        gt=0,
        le=1,
        description=(
            "patchy: correlation length of the map; random: cell side (1/round(1/patch_size)); "
            "fraction of the domain side"
        ),
    )
    noise_length_scale: float = Field(
        default=0.0,
        ge=0,
        le=0.5,
        description=("correlation length of the unit noise z, fraction of the domain side; 0 = white noise"),
    )
    normalise: bool = Field(
        default=True, description=("scale the sample to RMS amplitude (shifts all local entropies by one constant)")
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample when normalise is true")

    @model_validator(mode="after")
    def _check(self) -> ShannonEntropyParams:
        lo, hi = self.entropy_range
        if lo > hi:
            raise ValueError(f"entropy_range must be (low, high) with low <= high, got {self.entropy_range}")
        if not (lo >= -10.0 and hi <= 10.0):
            raise ValueError(f"entropy_range must lie in [-10, 10] nats, got {self.entropy_range}")
        return self


def _cells(patch_size: float) -> int:
    return max(1, round(1.0 / patch_size))


def _draw_maps(
    gens: Sequence[torch.Generator], n: int, params: ShannonEntropyParams, device: torch.device
) -> torch.Tensor:
    """Draw each sample's map randoms (advancing ``gens``) and build ``m``: ``[B, N, N]`` in [0, 1]."""
    heads, extras = [], []
    m_cells = _cells(params.patch_size)
    for g in gens:
        idx = int(torch.randint(len(_DIRECTIONS), (1,), generator=g))
        psi, ox, oy = torch.rand((3,), generator=g).tolist()
        heads.append([*_DIRECTIONS[idx], 2 * math.pi * psi, ox, oy])
        if params.entropy_pattern == "patchy":
            extras.append(torch.randn((n, n), generator=g))
        elif params.entropy_pattern == "random":
            extras.append(torch.rand((m_cells, m_cells), generator=g))
    head = torch.tensor(heads, dtype=torch.float32, device=device)[:, :, None, None]  # [B, 5, 1, 1]
    p, q, psi, ox, oy = head.unbind(1)
    x, y = coordinate_grid(n, device)
    if params.entropy_pattern == "gradient":
        return 0.5 * (1.0 - torch.cos(2 * math.pi * (p * x + q * y) + psi))
    if params.entropy_pattern == "patchy":
        grf = grf_from_noise(torch.stack(extras).to(device), params.patch_size, 1.0)
        lo = grf.amin(dim=(-2, -1), keepdim=True)
        hi = grf.amax(dim=(-2, -1), keepdim=True)
        return (grf - lo) / (hi - lo).clamp_min(1e-12)
    levels = torch.stack(extras).to(device)  # [B, M, M]
    col = torch.floor((x - ox) * m_cells).long() % m_cells  # [B, N, N]
    row = torch.floor((y - oy) * m_cells).long() % m_cells
    return torch.gather(levels.reshape(len(heads), -1), 1, (row * m_cells + col).reshape(len(heads), -1)).reshape(
        len(heads), n, n
    )


def _entropy(m: torch.Tensor, params: ShannonEntropyParams) -> torch.Tensor:
    lo, hi = params.entropy_range
    return lo + (hi - lo) * m


def entropy_map(
    seeds: Sequence[int], grid_size: int, device: torch.device | str, params: ShannonEntropyParams
) -> torch.Tensor:
    """``[B, N, N]`` requested local entropy ``H(r)`` in nats (before any normalisation): the
    map :func:`shannon_entropy` uses for the same seeds."""
    return _entropy(_draw_maps(sample_generators(seeds), grid_size, params, torch.device(device)), params)


@register_ic(
    "shannon_entropy",
    tier="tier2",
    domain="information theory",
    description="Gaussian noise with local differential entropy following a gradient/patchy/random map",
    params_model=ShannonEntropyParams,
)
def shannon_entropy(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: ShannonEntropyParams
) -> torch.Tensor:
    n = grid_size
    gens = sample_generators(seeds)
    h = _entropy(_draw_maps(gens, n, params, device), params)  # [B, N, N]
    z = torch.stack([torch.randn((num_channels, n, n), generator=g) for g in gens]).to(device)
    if params.noise_length_scale > 0:
        z = grf_from_noise(z, params.noise_length_scale, 1.0)
    field = torch.exp(h - GAUSSIAN_ENTROPY_OFFSET).unsqueeze(1) * z
    return normalise_rms(field, params.amplitude) if params.normalise else field
