"""``regulatory_network``: expression field of a gene-regulatory network placed in space.

Per sample, a network of ``n = network_size`` genes is drawn:

* **Topology** (undirected structure ``A``, no self-loops; mean degree about
  ``p (n - 1)`` with ``p = connection_probability``):

  - ``random``: Erdős–Rényi, each pair linked with probability ``p``;
  - ``scale_free``: Barabási–Albert preferential attachment: a clique of ``m + 1`` genes, then
    each new gene links to ``m = max(1, round(p (n - 1) / 2))`` distinct earlier genes chosen with
    probability proportional to their degree (heavy-tailed degrees, a few hubs);
  - ``hub``: a master regulator (a random gene) linked to every other gene, plus Erdős–Rényi
    links of probability ``p`` among the others.

* **Weights**: every link couples both ways with independent signed weights,
  ``W[i, j] = A[i, j] * U(-1, 1)`` (gene ``j`` regulates gene ``i``).
* **Dynamics**: ``x_0 ~ U(-1, 1)^n``, then ``iterations`` steps of
  ``x <- tanh(W x + noise_level * xi)`` with fresh ``xi ~ N(0, 1)^n`` each step.
* **Space**: gene ``i`` sits at ``r_i ~ U[0,1)^2`` with the periodic Gaussian kernel
  ``K_i(r) = exp(-|r - r_i|^2 / (2 spatial_decay^2))``; the field is ``sum_i x_i K_i(r)``.

**Channels** are gene subsets: gene ``i`` contributes to channel ``i mod C`` (marker-gene
panels of one network state; ``C = 1``: all genes; a channel with no gene is 0). The sample is
scaled to RMS ``amplitude`` over ``(C, H, W)``.

Draws per sample, in order: positions ``U[0,1)^[n, 2]`` (x, y), topology draws (``random``:
``U[0,1)^[n, n]`` compared with ``p`` on the upper triangle; ``scale_free``: one multinomial draw
of ``m`` genes per new gene; ``hub``: the hub ``randint(n)`` then ``U[0,1)^[n, n]``), weights
``U[0,1)^[n, n]`` (mapped to ``U(-1, 1)``), ``x_0`` ``U[0,1)^[n]`` (mapped to ``U(-1, 1)``), noise
``N(0,1)^[iterations, n]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field

from ..grid import coordinate_grid, periodic_gaussian_1d
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators

__all__ = ["RegulatoryNetworkParams", "regulatory_network", "GeneNetworks", "draw_gene_networks", "gene_kernels"]


class RegulatoryNetworkParams(ICParams):
    topology: Literal["random", "scale_free", "hub"] = Field(
        default="scale_free",
        description=("network structure: random (Erdős–Rényi), scale_free (Barabási–Albert), hub (master regulator)"),
    )
    network_size: int = Field(default=16, ge=2, le=256, description="number of genes n")
    connection_probability: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description=("link probability p (scale_free: m = max(1, round(p (n-1) / 2)) links per new gene)"),
    )
    spatial_decay: float = Field(
        default=0.08, gt=0, le=0.25, description=("width of each gene's Gaussian kernel, fraction of the domain side")
    )
    iterations: int = Field(default=5, ge=0, le=1000, description="steps of x <- tanh(W x + noise)")
    noise_level: float = Field(default=0.1, ge=0, description="std of the noise added to W x at each step")
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")


@dataclass(frozen=True)
class GeneNetworks:
    """Per-sample networks: ``adjacency [B, n, n]`` bool (symmetric), ``weights [B, n, n]``
    (``W[i, j]``: effect of gene j on gene i), ``state [B, n]`` (after the iterations),
    ``positions [B, n, 2]`` (x, y) in domain units."""

    adjacency: torch.Tensor
    weights: torch.Tensor
    state: torch.Tensor
    positions: torch.Tensor


def _scale_free(n: int, m: int, g: torch.Generator) -> torch.Tensor:
    a = torch.zeros(n, n, dtype=torch.bool)
    m = min(m, n - 1)
    a[: m + 1, : m + 1] = True  # initial clique
    a.fill_diagonal_(False)
    deg = a.sum(1).double()
    for i in range(m + 1, n):
        targets = torch.multinomial(deg[:i], m, replacement=False, generator=g)
        a[i, targets] = a[targets, i] = True
        deg[targets] += 1
        deg[i] = m
    return a


def _erdos_renyi(n: int, p: float, g: torch.Generator) -> torch.Tensor:
    upper = torch.triu(torch.rand((n, n), generator=g) < p, diagonal=1)
    return upper | upper.T


def draw_gene_networks(
    seeds: Sequence[int], params: RegulatoryNetworkParams, device: torch.device | str = "cpu"
) -> GeneNetworks:
    """Draw and iterate each sample's network (see the module docstring for the draw order)."""
    n, p = params.network_size, params.connection_probability
    adj, wts, x0s, noises, pos = [], [], [], [], []
    for g in sample_generators(seeds):
        pos.append(torch.rand((n, 2), generator=g))
        if params.topology == "random":
            a = _erdos_renyi(n, p, g)
        elif params.topology == "scale_free":
            a = _scale_free(n, max(1, round(p * (n - 1) / 2)), g)
        else:
            hub = int(torch.randint(n, (1,), generator=g))
            a = _erdos_renyi(n, p, g)
            a[hub, :] = a[:, hub] = True
            a[hub, hub] = False
        adj.append(a)
        wts.append(2 * torch.rand((n, n), generator=g) - 1)
        x0s.append(2 * torch.rand((n,), generator=g) - 1)
        noises.append(torch.randn((params.iterations, n), generator=g))
    adjacency = torch.stack(adj).to(device)
    weights = torch.stack(wts).to(device) * adjacency
    x = torch.stack(x0s).to(device)
    noise = torch.stack(noises).to(device)  # [B, T, n]
    for t in range(params.iterations):
        x = torch.tanh(torch.einsum("bij,bj->bi", weights, x) + params.noise_level * noise[:, t])
    return GeneNetworks(adjacency, weights, x, torch.stack(pos).to(device))


def gene_kernels(positions: torch.Tensor, grid_size: int, spatial_decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable periodic Gaussian kernels: ``(ky [B, n, N] along rows, kx [B, n, N] along columns)``;
    gene ``i``'s kernel is ``ky[:, i, :, None] * kx[:, i, None, :]``."""
    x, _ = coordinate_grid(grid_size, positions.device)
    coord = x[0]
    sigma = torch.full(positions.shape[:-1], float(spatial_decay), device=positions.device)
    return periodic_gaussian_1d(coord, positions[..., 1], sigma), periodic_gaussian_1d(coord, positions[..., 0], sigma)


@register_ic(
    "regulatory_network",
    tier="tier4",
    domain="genomics",
    description="expression field of a signed gene-regulatory network (random / scale-free / hub) in space",
    params_model=RegulatoryNetworkParams,
)
def regulatory_network(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: RegulatoryNetworkParams
) -> torch.Tensor:
    net = draw_gene_networks(seeds, params, device)
    ky, kx = gene_kernels(net.positions, grid_size, params.spatial_decay)
    n = params.network_size
    assign = torch.zeros(n, num_channels, device=device)
    assign[torch.arange(n), torch.arange(n) % num_channels] = 1.0  # gene i -> channel i mod C
    coeff = net.state[:, :, None] * assign[None]  # [B, n, C]
    field = torch.einsum("bnc,bni,bnj->bcij", coeff, ky, kx)
    return normalise_rms(field, params.amplitude)
