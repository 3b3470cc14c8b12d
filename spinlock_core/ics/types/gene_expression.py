"""``gene_expression``: spatial expression maps of several genes sharing a latent tissue pattern.

Gene ``g`` has expression level (before mapping to ``expression_range``)

    e_g(r) = rho * shared(r) + (1 - rho) * base_g(r),    rho = correlation_strength,

where ``shared = Phi(grf)`` is a Gaussian random field (length ``shared_length_scale``, unit
variance) pushed through the standard normal CDF (values in ``(0, 1)``, uniform marginal) and
``base_g`` the gene's own pattern, also in ``[0, 1]``:

* ``gradient``: a morphogen-like decay away from a source line, the periodic (von Mises)
  profile ``exp((cos(2 pi u) - 1) / (2 pi l |k|)^2)`` of the phase offset ``u`` along an axis or
  diagonal lattice direction ``k`` (~``exp(-dist^2 / (2 l^2))`` near the source),
  ``l ~ U[0.15, 0.35)``;
* ``stripes``: ``(1 + cos(2 pi k.r + phi)) / 2``, ``k`` the lattice wavevector nearest to
  ``(cos theta, sin theta) / lambda``;
* ``spots``: hexagonal spots ``(cos a1 + cos a2 + cos a3 + 1.5) / 4.5`` with
  ``a_i = 2 pi k_i.r + phi_i``, ``k1``, ``k2`` the lattice vectors nearest to ``1/lambda`` at
  ``theta`` and ``theta + 120 deg``, ``k3 = -(k1 + k2)`` and ``phi3 = -(phi1 + phi2)`` (a
  closed triad, so the maxima are spots);
* ``radial``: a periodic Gaussian domain ``exp(-rho^2 / (2 sigma^2))`` around a random centre,
  ``sigma ~ U[0.08, 0.2)``;
* ``uniform``: a constant level ``U[0.2, 0.8)``.

Spot / stripe wavelengths ``lambda ~ U[wavelength_range)`` are in **domain units** (default
0.1 to 0.3 of the side: 13 to 38 px at 128^2), resolved (>= 2 px) for ``grid_size >= 2 / lo``;
lattice snapping keeps every pattern periodic (``|k|`` within 0.71 of ``1 / lambda``).

Channels are genes: ``G = num_genes`` (None = one gene per channel); channel ``c`` shows gene
``c mod G`` (with ``C > G`` the extra channels are replicate measurements of the same genes),
plus independent per-pixel measurement noise ``noise_level * N(0, 1)``, then mapped affinely
``lo + (hi - lo) e`` to ``expression_range = (lo, hi)``. The values are expression levels, so
this type is **not** RMS-normalised: levels lie in ``[lo, hi]`` up to the noise (RMS ~0.5 for
the default range ``(0, 1)``). Mean pairwise channel correlation rises with
``correlation_strength`` (~0 at 0, -> 1 at 1 without noise).

Per sample, draws in this order: per gene (arrays of length G) pattern index ``randint(5)``
(used when ``expression_patterns`` is None; else gene ``g`` takes
``expression_patterns[g mod len]``), angle ``U[0, 2 pi)``, wavelength variable ``U[0, 1)``,
phases ``U[0, 2 pi)^[G, 2]``, centre ``U[0, 1)^[G, 2]``, shape variable ``U[0, 1)`` (``l`` or
``sigma``), level ``U[0, 1)``; then the shared white noise ``N(0, 1)^[N, N]`` and measurement
noise ``N(0, 1)^[C, N, N]`` when ``noise_level > 0``. The gene patterns therefore do not depend
on the grid size (the same seed gives the same patterns at every resolution).
Cost: O(B (G + C) N^2) plus one GRF synthesis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_delta, periodic_gaussian_1d
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, sample_generators
from .composite import lattice_wavevector

__all__ = ["GeneExpressionParams", "gene_expression", "EXPRESSION_PATTERNS"]

EXPRESSION_PATTERNS: tuple[str, ...] = ("gradient", "spots", "stripes", "radial", "uniform")
PatternName = Literal["gradient", "spots", "stripes", "radial", "uniform"]


class GeneExpressionParams(ICParams):
    num_genes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="number of genes G; channel c shows gene c mod G (None = one gene per channel)",
    )
    expression_patterns: list[PatternName] | None = Field(
        default=None,
        min_length=1,
        description="pattern of gene g = expression_patterns[g mod len] (gradient, spots, stripes, radial, "
        "uniform); None = drawn per gene from the sample's seed",
    )
    correlation_strength: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="weight rho of the shared latent pattern (1 - rho for the gene's own pattern)",
    )
    expression_range: tuple[float, float] = Field(
        default=(0.0, 1.0), description="(lo, hi): expression levels 0..1 are mapped affinely onto [lo, hi]"
    )
    wavelength_range: tuple[float, float] = Field(
        default=(0.1, 0.3), description="(lo, hi): spot / stripe wavelengths ~ U[lo, hi), fractions of the side"
    )
    shared_length_scale: float = Field(
        default=0.1, gt=0, le=0.5, description="correlation length of the shared latent GRF, fraction of the side"
    )
    noise_level: float = Field(
        default=0.05, ge=0, le=1, description="std of independent per-pixel measurement noise, in units of hi - lo"
    )

    @model_validator(mode="after")
    def _check(self) -> GeneExpressionParams:
        lo, hi = self.expression_range
        if not lo < hi:
            raise ValueError(f"expression_range must satisfy lo < hi, got {self.expression_range}")
        wlo, whi = self.wavelength_range
        if not (0 < wlo <= whi <= 1):
            raise ValueError(f"wavelength_range must satisfy 0 < lo <= hi <= 1, got {self.wavelength_range}")
        return self


def _gene_patterns(kind: torch.Tensor, p: torch.Tensor, grid_size: int) -> torch.Tensor:
    """``[M, N, N]`` base patterns in ``[0, 1]`` for ``M`` genes with ``kind [M]`` (index into
    :data:`EXPRESSION_PATTERNS`) and params ``p [M, 8]`` = (theta, wavelength, phi1, phi2, cx, cy,
    shape u, level u)."""
    device = p.device
    x, y = coordinate_grid(grid_size, device)
    out = torch.empty((p.shape[0], grid_size, grid_size), device=device)
    theta, wl, phi1, phi2, cx, cy, su, lu = (p[:, i, None, None] for i in range(8))
    for i, name in enumerate(EXPRESSION_PATTERNS):
        sel = (kind == i).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        th, lam, f1, f2 = theta[sel], wl[sel], phi1[sel], phi2[sel]
        if name == "gradient":
            kx, ky = lattice_wavevector(torch.ones_like(th), th)
            ell = (0.15 + 0.2 * su[sel]) * torch.sqrt(kx * kx + ky * ky)
            u = periodic_delta(kx * x + ky * y, f1 / (2 * math.pi))
            pat = torch.exp((torch.cos(2 * math.pi * u) - 1.0) / (2 * math.pi * ell) ** 2)
        elif name == "stripes":
            kx, ky = lattice_wavevector(1.0 / lam, th)
            pat = 0.5 * (1.0 + torch.cos(2 * math.pi * (kx * x + ky * y) + f1))
        elif name == "spots":
            k1x, k1y = lattice_wavevector(1.0 / lam, th)
            k2x, k2y = lattice_wavevector(1.0 / lam, th + 2 * math.pi / 3)
            k3x, k3y = -(k1x + k2x), -(k1y + k2y)
            s = (
                torch.cos(2 * math.pi * (k1x * x + k1y * y) + f1)
                + torch.cos(2 * math.pi * (k2x * x + k2y * y) + f2)
                + torch.cos(2 * math.pi * (k3x * x + k3y * y) - f1 - f2)
            )
            pat = (s + 1.5) / 4.5
        elif name == "radial":
            sigma = 0.08 + 0.12 * su[sel, 0, 0]  # [m]
            coord = x[0]
            gx = periodic_gaussian_1d(coord, cx[sel, 0, 0], sigma)  # [m, N] along columns
            gy = periodic_gaussian_1d(coord, cy[sel, 0, 0], sigma)  # [m, N] along rows
            pat = gy[:, :, None] * gx[:, None, :]
        else:  # uniform
            pat = (0.2 + 0.6 * lu[sel]).expand(-1, grid_size, grid_size)
        out[sel] = pat
    return out


@register_ic(
    "gene_expression",
    tier="tier3",
    domain="genomics",
    description="per-gene spatial expression: shared latent GRF plus gradient/spots/stripes/radial/uniform",
    params_model=GeneExpressionParams,
)
def gene_expression(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: GeneExpressionParams
) -> torch.Tensor:
    n, c = grid_size, num_channels
    ng = params.num_genes if params.num_genes is not None else c
    wlo, whi = params.wavelength_range
    fixed = None
    if params.expression_patterns is not None:
        fixed = torch.tensor(
            [
                EXPRESSION_PATTERNS.index(params.expression_patterns[g % len(params.expression_patterns)])
                for g in range(ng)
            ]
        )
    shared_noise, kinds, gene_p, meas = [], [], [], []
    for g in sample_generators(seeds):
        kind = torch.randint(len(EXPRESSION_PATTERNS), (ng,), generator=g)
        theta = 2 * math.pi * torch.rand((ng,), generator=g)
        wl = wlo + (whi - wlo) * torch.rand((ng,), generator=g)
        phases = 2 * math.pi * torch.rand((ng, 2), generator=g)
        centre = torch.rand((ng, 2), generator=g)
        shape_u = torch.rand((ng,), generator=g)
        level_u = torch.rand((ng,), generator=g)
        kinds.append(kind if fixed is None else fixed)
        gene_p.append(
            torch.stack([theta, wl, phases[:, 0], phases[:, 1], centre[:, 0], centre[:, 1], shape_u, level_u], dim=1)
        )
        shared_noise.append(torch.randn((n, n), generator=g))
        if params.noise_level > 0:
            meas.append(torch.randn((c, n, n), generator=g))
    b = len(kinds)
    grf = grf_from_noise(torch.stack(shared_noise).to(device), params.shared_length_scale)  # [B, N, N]
    shared = 0.5 * (1.0 + torch.erf(grf / math.sqrt(2.0)))
    base = _gene_patterns(
        torch.stack(kinds).reshape(-1).to(device), torch.stack(gene_p).reshape(b * ng, -1).to(device), n
    ).view(b, ng, n, n)
    rho = params.correlation_strength
    genes = rho * shared[:, None] + (1.0 - rho) * base  # [B, G, N, N]
    field = genes[:, torch.arange(c, device=device) % ng]  # [B, C, N, N]
    if params.noise_level > 0:
        field = field + params.noise_level * torch.stack(meas).to(device)
    lo, hi = params.expression_range
    return (lo + (hi - lo) * field).contiguous()
