"""``cell_population``: a tissue image of non-overlapping cells with per-channel marker levels.

Point process (per sample, on the CPU from the sample's generator, in this order):

1. ``K = max(1, round(num_cells / 8))`` cluster parents ``U[0, 1)^[K, 2]`` (columns x, y).
2. Candidate pools, until ``num_cells`` cells are accepted. A pool of ``M = 2 m + 16``
   candidates (``m`` = cells still missing) draws ``U[0, 1)^[M]`` (offspring if
   ``< clustering_strength``), parent indices ``randint(K)^[M]``, offsets ``N(0, 1)^[M, 2]`` and
   uniform positions ``U[0, 1)^[M, 2]``. An offspring sits at its parent plus
   ``sigma_c * offset`` (a Thomas / Neyman-Scott cluster, ``sigma_c = cell_radius * sqrt(8)``,
   so a full cluster of ~8 cells fits at moderate packing); other candidates are uniform.
   Positions wrap into the unit square.
3. Hard core: candidates are accepted in draw order if their minimum-image distance to every
   accepted cell is at least ``d_min = 2.5 cell_radius`` (discs never touch: a membrane gap of
   half a radius). This is sequential random adsorption, evaluated vectorised: each round
   rejects candidates that conflict with an earlier accepted one and accepts those with no
   earlier accepted-or-undecided conflict (identical to the sequential result); the first
   ``num_cells`` accepted are kept. After ``100 num_cells + 1000`` candidates without enough
   room the sample keeps fewer cells (the params validator makes this practically unreachable).
4. Marker intensities ``U[0.2, 1)^[num_cells, C]``.

``clustering_strength = 0`` gives a hard-core (Matern-like) uniform pattern, index of dispersion
of box counts <= 1; 1 puts every cell in a cluster.

Field: channel ``c`` is ``sum_i m_{i,c} disc_i`` with soft discs
``0.5 (1 + tanh((cell_radius - rho_i) / delta))``, ``delta = max(0.1 cell_radius, 0.5 / N)``
(the pixel floor only anti-aliases unresolved edges), rendered in local periodic patches, then
smoothed by the periodic Gaussian kernel of std ``kernel_width`` (0 = no smoothing; a large
kernel turns the image into a smooth cell-density map). Channels share the cells and differ by
marker levels. The sample is scaled to RMS ``amplitude`` over ``(C, H, W)``.

Cost: the hard-core test is O(M^2) per pool per sample (a few pools), batched over samples in
chunks of <= 4M candidate pairs: ~2 ms per sample for the defaults, ~0.1 s per sample for 500
cells; rendering O(B n C P^2) with patch side ``P ~ 2 (cell_radius + 4 delta) N``; the smoothing
two FFTs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field, model_validator

from ..grid import wavenumber_grid
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators

__all__ = ["CellPopulationParams", "cell_population", "cell_population_draws", "HARD_CORE_FACTOR"]

#: Hard-core distance between cell centres, in cell radii.
HARD_CORE_FACTOR = 2.5
_CELLS_PER_CLUSTER = 8
_MAX_PACKING = 0.3
_PAIR_BUDGET = 1 << 22  # candidate pairs per hard-core chunk (memory bound)


class CellPopulationParams(ICParams):
    num_cells: int = Field(default=50, ge=1, le=500, description="number of cells per sample")
    cell_radius: float = Field(
        default=0.02, gt=0, le=0.1, description="cell (disc) radius, fraction of the domain side"
    )
    clustering_strength: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="probability that a candidate cell is a cluster offspring (0 = uniform, 1 = all clustered)",
    )
    kernel_width: float = Field(
        default=0.01, ge=0, le=0.25, description="std of the Gaussian smoothing kernel, fraction of the side (0 = none)"
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")

    @model_validator(mode="after")
    def _check(self) -> CellPopulationParams:
        packing = self.num_cells * math.pi * (0.5 * HARD_CORE_FACTOR * self.cell_radius) ** 2
        if packing > _MAX_PACKING:
            raise ValueError(
                f"num_cells ({self.num_cells}) and cell_radius ({self.cell_radius}) give a hard-core packing "
                f"fraction num_cells * pi * (1.25 cell_radius)^2 = {packing:.3g}; it must be <= {_MAX_PACKING}"
            )
        return self


def _min_image_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[..., Na, Nb]`` minimum-image distances between points ``a [..., Na, 2]`` and ``b [..., Nb, 2]``."""
    d = a[..., :, None, :] - b[..., None, :, :]
    d = d - torch.round(d)
    return torch.sqrt((d * d).sum(-1))


def _hard_core_accept(
    accepted: torch.Tensor, acc_valid: torch.Tensor, cand: torch.Tensor, cand_valid: torch.Tensor, d_min: float
) -> torch.Tensor:
    """Sequential adsorption, vectorised over samples and candidates.

    Args:
        accepted: ``[B, A, 2]`` cells already placed (rows with ``acc_valid [B, A]`` False ignored).
        cand: ``[B, M, 2]`` candidates in draw order (``cand_valid [B, M]`` False = padding).
        d_min: hard-core distance.

    Returns:
        ``[B, M]`` bool: candidate kept when the candidates are tried one by one in order, each
        kept iff it is ``>= d_min`` (minimum image) from every cell placed before it.
    """
    b, m = cand_valid.shape
    ok = cand_valid.clone()
    if accepted.shape[1]:
        ok &= ~((_min_image_dist(cand, accepted) < d_min) & acc_valid[:, None, :]).any(-1)
    lower = torch.ones(m, m, dtype=torch.bool, device=cand.device).tril(-1)
    earlier = (_min_image_dist(cand, cand) < d_min) & lower & ok[:, None, :]  # [B, M, M] i blocked by j < i
    state = torch.where(ok, 0, -1).to(torch.int8)  # 0 undecided, 1 kept, -1 rejected
    while bool((state == 0).any()):
        und = state == 0
        hit_kept = (earlier & (state == 1)[:, None, :]).any(-1)
        hit_und = (earlier & und[:, None, :]).any(-1)
        state = torch.where(und & hit_kept, -1, state)
        state = torch.where(und & ~hit_kept & ~hit_und, 1, state).to(torch.int8)
    return state == 1


def cell_population_draws(
    seeds: Sequence[int], num_channels: int, params: CellPopulationParams
) -> dict[str, torch.Tensor]:
    """The per-sample point process and markers, on the CPU (module docstring: draw order).

    Samples needing more cells draw their next pool from their own generator; the hard-core
    test runs on all of them at once (in chunks of bounded memory), so a sample's cells do not
    depend on its batch.

    Returns:
        ``centres [B, n, 2]`` (x, y), ``count [B]`` (cells placed, ``<= n``; rows past it are 0)
        and ``markers [B, n, C]`` (0 for missing cells).
    """
    n, r, cs = params.num_cells, params.cell_radius, params.clustering_strength
    k = max(1, round(n / _CELLS_PER_CLUSTER))
    sigma_c = r * math.sqrt(_CELLS_PER_CLUSTER)
    d_min = HARD_CORE_FACTOR * r
    budget = 100 * n + 1000
    gens = sample_generators(seeds)
    nb = len(gens)
    parents = [torch.rand((k, 2), generator=g) for g in gens]
    acc = [torch.zeros((0, 2)) for _ in range(nb)]
    used = [0] * nb
    while True:
        todo = [i for i in range(nb) if acc[i].shape[0] < n and used[i] < budget]
        if not todo:
            break
        pools = []
        for i in todo:
            m = 2 * (n - acc[i].shape[0]) + 16
            g = gens[i]
            is_off = torch.rand((m,), generator=g) < cs
            par = torch.randint(k, (m,), generator=g)
            offs = torch.randn((m, 2), generator=g)
            uni = torch.rand((m, 2), generator=g)
            pools.append(torch.remainder(torch.where(is_off[:, None], parents[i][par] + sigma_c * offs, uni), 1.0))
            used[i] += m
        m_max = max(p.shape[0] for p in pools)
        chunk = max(1, _PAIR_BUDGET // (m_max * m_max))
        for s in range(0, len(todo), chunk):
            idx = todo[s : s + chunk]
            cand = torch.zeros((len(idx), m_max, 2))
            cvalid = torch.zeros((len(idx), m_max), dtype=torch.bool)
            a_max = max(acc[i].shape[0] for i in idx)
            prev = torch.zeros((len(idx), a_max, 2))
            avalid = torch.zeros((len(idx), a_max), dtype=torch.bool)
            for row, i in enumerate(idx):
                p = pools[s + row]
                cand[row, : p.shape[0]], cvalid[row, : p.shape[0]] = p, True
                prev[row, : acc[i].shape[0]], avalid[row, : acc[i].shape[0]] = acc[i], True
            kept = _hard_core_accept(prev, avalid, cand, cvalid, d_min)
            for row, i in enumerate(idx):
                new = cand[row][kept[row]]
                acc[i] = torch.cat([acc[i], new[: n - acc[i].shape[0]]])
    centres, counts, markers = [], [], []
    for i, g in enumerate(gens):
        mk = 0.2 + 0.8 * torch.rand((n, num_channels), generator=g)
        cnt = acc[i].shape[0]
        mk[cnt:] = 0.0
        centres.append(torch.cat([acc[i], torch.zeros((n - cnt, 2))]))
        counts.append(cnt)
        markers.append(mk)
    return {"centres": torch.stack(centres), "count": torch.tensor(counts), "markers": torch.stack(markers)}


def _render_discs(centres: torch.Tensor, markers: torch.Tensor, radius: float, grid_size: int) -> torch.Tensor:
    """``[B, C, N, N]`` sum of soft discs at ``centres [B, n, 2]`` weighted by ``markers [B, n, C]``."""
    b, n_cells, c = markers.shape
    n, device = grid_size, centres.device
    delta = max(0.1 * radius, 0.5 / n)
    half = min(int(math.ceil((radius + 4 * delta) * n)) + 1, (n - 1) // 2)
    off = torch.arange(-half, half + 1, device=device)
    ic = torch.round(centres[..., 1] * n).long()  # [B, n] nearest row
    jc = torch.round(centres[..., 0] * n).long()
    rows = ic[..., None] + off  # [B, n, P] unwrapped
    cols = jc[..., None] + off
    dy = rows.float() / n - centres[..., 1, None]  # [B, n, P]
    dx = cols.float() / n - centres[..., 0, None]
    rho = torch.sqrt(dy[..., :, None] ** 2 + dx[..., None, :] ** 2)  # [B, n, P, P]
    disc = 0.5 * (1.0 + torch.tanh((radius - rho) / delta))
    pix = rows.remainder(n)[..., :, None] * n + cols.remainder(n)[..., None, :]  # [B, n, P, P]
    base = (torch.arange(b, device=device)[:, None] * c + torch.arange(c, device=device)[None, :]) * (n * n)
    idx = base[:, None, :, None, None] + pix[:, :, None]  # [B, n, C, P, P]
    val = markers[..., None, None] * disc[:, :, None]  # [B, n, C, P, P]
    out = torch.zeros(b * c * n * n, device=device, dtype=torch.float32)
    out.index_add_(0, idx.reshape(-1), val.reshape(-1))
    return out.view(b, c, n, n)


@register_ic(
    "cell_population",
    tier="tier3",
    domain="biology",
    description="non-overlapping soft-disc cells from a seeded cluster/hard-core process, per-channel markers",
    params_model=CellPopulationParams,
)
def cell_population(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: CellPopulationParams
) -> torch.Tensor:
    d = cell_population_draws(seeds, num_channels, params)
    field = _render_discs(d["centres"].to(device), d["markers"].to(device), params.cell_radius, grid_size)
    if params.kernel_width > 0:
        kx, ky = wavenumber_grid(grid_size, device, half=True)
        kernel = torch.exp(-2.0 * math.pi**2 * params.kernel_width**2 * (kx * kx + ky * ky)).float()
        field = torch.fft.irfft2(torch.fft.rfft2(field) * kernel, s=(grid_size, grid_size))
    return normalise_rms(field, params.amplitude)
