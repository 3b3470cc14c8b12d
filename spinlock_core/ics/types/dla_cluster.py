"""``dla_cluster``: a diffusion-limited-aggregation (DLA) cluster grown by random walkers.

**Physics.** Witten–Sander DLA on the square lattice, one lattice site per pixel: particles
arrive by unbiased random walks from far away and stick (with probability ``stickiness``) when
they step onto a site 4-adjacent to the cluster; the cluster grows from a seed (a single site or
a straight line segment). The result is a genuine fractal. Measured on 2000-particle clusters
at 256^2 (12 seeds): mass-radius dimension 1.75 (radii 4-32 px; asymptotic DLA: 1.71) and
box-counting dimension 1.59 (box sides 4-32 px, counts minimised over grid offsets; a
single-walker reference DLA grown for comparison gave 1.55, and a filled disk of the same
size reads 1.80 with this estimator: box counting underestimates at this size).
``stickiness < 1`` lets walkers penetrate further: more compact clusters.

**Algorithm (batched random walkers, accelerated by exact Brownian shortcuts).** Growth
runs in a centred frame of side ``N + 16`` for all samples at once, in rounds; each active
sample keeps ``W = 64`` walkers (only ``1 + attached // 2`` of them active while the cluster is
small, so the first particles arrive one or two at a time). One round per walker:

1. Fresh walkers start on the launch circle ``r = R + 2`` (``R``: the cluster's largest radius)
   at a uniform angle: the exact arrival distribution of a walker coming from infinity.
2. ``J = 3`` *walk-on-spheres* jumps: a lower bound ``d`` on the distance to the cluster
   comes from the enclosing circle (``|x| - R``) and from coarse occupancy grids (blocks of 4, 8
   and 16 px: an empty 3x3 block neighbourhood keeps the cluster at least a block away); a
   walker with ``d >= 3.75`` jumps to a uniform point of the circle of radius ``d - 1.75``
   (rounded to the lattice; it cannot land on or next to the cluster), the exact exit law of
   Brownian motion from a free disk.
3. ``T = 24`` unit lattice steps; the walker sticks at the first perimeter site it visits (with
   probability ``stickiness`` per visit; a step onto the cluster is rejected).
4. A walker that leaves the circle ``r = R + 6`` returns to the launch circle at an angle drawn
   from the exact harmonic measure seen from its position (wrapped Cauchy with ``rho = r_l/r``),
   so no time is spent far away and no escape bias arises.

Approximations: all walkers of a round see the cluster as it was at the round's start (with
<= 64 walkers against a perimeter of hundreds of sites the dimensions stay those of
single-walker DLA, slightly denser: see above), sites claimed by two walkers count once, and
jump landings are rounded to the lattice.

Growth stops at ``cluster_size`` attached particles (trimmed exactly by arrival order) or when
the cluster's radius reaches ``N/2 - 4`` pixels (a cluster never touches its periodic images).
All decisions are integer lattice operations; the only floating-point steps (jump and
relaunch positions) are float64 roundings, so CPU and CUDA grow the same clusters.

**Cost.** About 150 walker steps per particle, ~150 rounds for 1000 particles. Measured for
B = 64 at 128^2, ``cluster_size = 1000``, C = 3: CPU (2 cores) ~0.85 s with ``indicator``
(growth ~0.8 s, smoothing ~30 ms) and ~1.2 s with ``distance_transform`` (scipy's exact EDT
on the CPU, ~2 ms per channel image); ``stickiness = 0.3`` ~1.2 s, ``0.05`` ~2.8 s; 256^2 with
2000 particles ~1.9 s. Cost grows linearly with ``cluster_size`` and only mildly with B. On an
H100 the same call took ~2.5 s: the round loop is kernel-launch and sync bound (a few hundred
small kernels per round), so the GPU brings no speed-up here.

**Draws per sample** (its own generator, in this order): the cluster's centre pixel
``randint(N)^2`` (the cluster is placed there, periodically), the line angle ``U[0,1) * pi``
(drawn for both seed types), then the growth randomness in blocks of int64 words (a fixed
number per round, 16 rounds per block) until the sample's growth stops.

**Field and channels.** Channel ``c`` (of ``C``) shows the cluster at growth stage
``(c + 1) / C``: the seed plus the first ``floor((c + 1) n / C)`` attached particles (the last
channel is the full cluster; nested clusters, later channels grow outward). Per channel:

* ``distance_transform``: the exact periodic Euclidean distance to the nearest cluster site,
  in domain units;
* ``indicator``: 1 on cluster sites, 0 elsewhere, smoothed by a periodic Gaussian of width
  ``indicator_smoothing`` (domain units; 0 = raw indicator).

The sample is then scaled to RMS ``amplitude`` over ``(C, H, W)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from scipy import ndimage

from ..grid import wavenumber_grid
from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators

__all__ = ["DLAClusterParams", "dla_cluster", "grow_dla_clusters", "dla_stage_masks", "periodic_distance"]

_WALKERS = 64  # walkers per sample
_STEPS = 24  # unit lattice steps per walker and round
_JUMPS = 3  # walk-on-spheres jumps per walker and round
_RAMP = 2  # active walkers = 1 + attached // _RAMP (capped at _WALKERS)
_LEVELS = (4, 8, 16)  # coarse occupancy block sizes (pixels)
_CHUNK = 16  # rounds of random words drawn per generator call
_PAD = 8  # frame padding on each side (pixels)
_EMPTY = 2**62  # arrival key of an empty site


class DLAClusterParams(ICParams):
    cluster_size: int = Field(
        default=1000,
        ge=0,
        le=50000,
        description=(
            "attached particles (pixels, seed excluded); growth also stops when the cluster radius "
            "reaches N/2 - 4 pixels"
        ),
    )
    seed_type: Literal["point", "line"] = Field(
        default="point",
        description=("initial cluster: one site, or a straight segment through the centre at a random angle"),
    )
    seed_length: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description=("length of the line seed, fraction of the domain side (clipped to the growth radius)"),
    )
    stickiness: float = Field(
        default=1.0,
        ge=0.05,
        le=1,
        description=("probability of sticking at each visit of a perimeter site (1 = classic DLA)"),
    )
    field_type_dla: Literal["distance_transform", "indicator"] = Field(
        default="distance_transform",
        description=(
            "field per channel: periodic Euclidean distance to the cluster (domain units), or the "
            "smoothed cluster indicator"
        ),
    )
    indicator_smoothing: float = Field(
        default=0.005,
        ge=0,
        le=0.1,
        description=("sigma of the Gaussian smoothing of the indicator, fraction of the domain side (0 = none)"),
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")


@lru_cache(maxsize=8)
def _frame_tables(side: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``rad2 [side^2]`` squared radius of each frame site from the centre, and the step table."""
    c0 = side // 2
    i = torch.arange(side, dtype=torch.int64, device=device) - c0
    rad2 = (i[:, None] ** 2 + i[None, :] ** 2).flatten()
    steps = torch.tensor([1, -1, side, -side], dtype=torch.int64, device=device)
    return rad2, steps


def _uniform(words: torch.Tensor) -> torch.Tensor:
    """int64 random words -> float64 uniforms in (0, 1) from their low 32 bits."""
    return ((words & 0xFFFFFFFF).to(torch.float64) + 0.5) * (1.0 / 4294967296.0)


def _seed_sites(
    angles: torch.Tensor, params: DLAClusterParams, r_cap: int, c0: int, side: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed sites as (sample index [M], local flat index [M]) of the centred frame."""
    b_count = angles.shape[0]
    if params.seed_type == "point" or r_cap < 1:
        return (
            torch.arange(b_count, device=device),
            torch.full((b_count,), c0 * side + c0, dtype=torch.int64, device=device),
        )
    half = min(0.5 * params.seed_length * (side - 2 * _PAD), float(r_cap))
    t = torch.linspace(-half, half, int(8 * half) + 1, dtype=torch.float64, device=device)
    th = angles.to(device=device, dtype=torch.float64)[:, None]
    x = torch.round(t[None] * torch.cos(th)).long() + c0
    y = torch.round(t[None] * torch.sin(th)).long() + c0
    # the points plus the corners (x_{t+1}, y_t): a 4-connected digital segment
    x = torch.cat([x, x[:, 1:]], dim=1)
    y = torch.cat([y, y[:, :-1]], dim=1)
    b = torch.arange(b_count, device=device)[:, None].expand_as(x)
    g = torch.unique((b * side * side + y * side + x).flatten())
    return g // (side * side), g % (side * side)


def grow_dla_clusters(
    seeds: Sequence[int], grid_size: int, params: DLAClusterParams, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Grow one DLA cluster per seed and place it on the periodic grid.

    Returns:
        ``[B, N, N]`` int64 attachment rank: ``-1`` empty, ``0`` seed sites, ``1..n`` the
        attached particles in arrival order (``n <= cluster_size``).
    """
    device = torch.device(device)
    n = int(grid_size)
    bsz = len(seeds)
    side = n + 2 * _PAD
    nn = side * side
    c0 = side // 2
    r_cap = max(n // 2 - 4, 0)
    rad2, step_tab = _frame_tables(side, device)
    gens = sample_generators(seeds)
    centres, angles = [], []
    for g in gens:
        centres.append(torch.randint(n, (2,), generator=g))
        angles.append(math.pi * torch.rand((1,), generator=g, dtype=torch.float64))
    centre = torch.stack(centres).to(device)  # [B, 2] (row, col)
    angle = torch.cat(angles)

    w_n, t_n, j_n = _WALKERS, _STEPS, _JUMPS
    sticky = params.stickiness < 1.0
    n_step_words = (w_n * t_n + 30) // 31
    n_stick_words = (w_n * (t_n + 1) + 3) // 4 if sticky else 0
    n_unif = 2 * j_n + 2  # launch, jumps, jump escapes, path escape
    per_round = n_step_words + n_stick_words + w_n * n_unif
    shifts2 = torch.arange(0, 62, 2, device=device)
    shifts15 = torch.arange(0, 60, 15, device=device)
    wix = torch.arange(w_n, device=device)
    nbs = {s: -(-side // s) + 2 for s in _LEVELS}
    off9y = torch.tensor([dy for dy in (-1, 0, 1) for _ in (-1, 0, 1)], device=device)  # 3x3 block offsets
    off9x = torch.tensor([dx for _ in (-1, 0, 1) for dx in (-1, 0, 1)], device=device)

    state = torch.zeros(bsz * nn, dtype=torch.int8, device=device)  # 0 empty, 1 cluster, 2 perimeter
    key = torch.full((bsz * nn,), _EMPTY, dtype=torch.int64, device=device)
    cdil = {s: torch.zeros(bsz * nbs[s] ** 2, dtype=torch.bool, device=device) for s in _LEVELS}
    count = torch.zeros(bsz, dtype=torch.int64, device=device)
    r2max = torch.zeros(bsz, dtype=torch.int64, device=device)

    def add_sites(g: torch.Tensor, k: torch.Tensor, counted: bool) -> None:
        g, inv = torch.unique(g, return_inverse=True)
        kmin = torch.full(g.shape, _EMPTY, dtype=torch.int64, device=device).scatter_reduce(0, inv, k, "amin")
        b = g // nn
        f = g % nn
        state[g] = 1
        key[g] = kmin
        if counted:
            count.index_add_(0, b, torch.ones_like(b))
        q = (g[:, None] + step_tab[None]).flatten()  # the 4 neighbours
        state[q] = torch.where(state[q] == 1, 1, 2).to(torch.int8)
        iy, ix = f // side, f % side
        for s in _LEVELS:
            nb = nbs[s]
            ci = (b * nb * nb + (iy // s + 1) * nb + ix // s + 1)[:, None] + off9y[None] * nb + off9x[None]
            cdil[s][ci.flatten()] = True
        r2max.scatter_reduce_(0, b, rad2[f], reduce="amax")

    sb, sf = _seed_sites(angle, params, r_cap, c0, side, device)
    add_sites(sb * nn + sf, torch.zeros_like(sf), counted=False)

    pos = torch.zeros(bsz, w_n, dtype=torch.int64, device=device)
    fresh = torch.ones(bsz, w_n, dtype=torch.bool, device=device)
    active = torch.full((bsz,), params.cluster_size > 0) & (r2max.cpu() < r_cap * r_cap)
    max_rounds = 200 + int(4 * params.cluster_size / params.stickiness)
    pool = torch.zeros(bsz, _CHUNK, per_round, dtype=torch.int64)
    rnd = 0

    def to_flat(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y + c0) * side + x + c0

    def on_circle(rad: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        return to_flat(torch.round(rad * torch.cos(th)).long(), torch.round(rad * torch.sin(th)).long())

    def harmonic_return(x: torch.Tensor, y: torch.Tensor, rad: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Where a walker at (x, y) outside the circle of radius ``rad`` first hits it."""
        xd, yd = x.double(), y.double()
        rho = (rad / torch.sqrt(xd * xd + yd * yd).clamp_min(1e-9)).clamp(max=1.0)
        th = torch.atan2(yd, xd) + 2 * torch.atan((1 - rho) / (1 + rho) * torch.tan(math.pi * (u - 0.5)))
        return on_circle(rad, th)

    while rnd < max_rounds:
        ab = active.nonzero().flatten()
        if len(ab) == 0:
            break
        if rnd % _CHUNK == 0:
            for b in ab.tolist():
                pool[b] = torch.randint(0, 2**62, (_CHUNK, per_round), generator=gens[b])
        words = pool[ab, rnd % _CHUNK].to(device)
        rnd += 1
        bi = ab.to(device)
        a_n = len(ab)
        o = n_step_words + n_stick_words
        unif = _uniform(words[:, o:]).view(a_n, w_n, n_unif)
        big_r = r2max[bi].double().sqrt()[:, None]  # [A, 1]
        r_l = big_r + 2.0
        r_k2 = torch.floor((r_l + 4.0) ** 2).long()
        wact = wix[None] < (1 + count[bi] // _RAMP).clamp(max=w_n)[:, None]
        f = torch.where(fresh[bi] | ~wact, on_circle(r_l, 2 * math.pi * unif[..., 0]), pos[bi])

        for j in range(j_n):  # walk-on-spheres jumps
            ix, iy = f % side, f // side
            x, y = ix - c0, iy - c0
            xd, yd = x.double(), y.double()
            dlb = torch.sqrt(xd * xd + yd * yd) - big_r
            for s in _LEVELS:
                nb = nbs[s]
                bx, by = ix // s, iy // s
                empty = ~cdil[s][(bi * nb * nb)[:, None] + (by + 1) * nb + bx + 1]
                bound = torch.minimum(
                    torch.minimum(ix - (bx - 1) * s + 1, (bx + 2) * s - ix),
                    torch.minimum(iy - (by - 1) * s + 1, (by + 2) * s - iy),
                )
                dlb = torch.where(empty, torch.maximum(dlb, bound.double()), dlb)
            rho = dlb - 1.75
            jump = (rho >= 2.0) & wact
            th = 2 * math.pi * unif[..., 1 + j]
            x = torch.where(jump, torch.round(xd + rho * torch.cos(th)).long(), x)
            y = torch.where(jump, torch.round(yd + rho * torch.sin(th)).long(), y)
            esc = (x * x + y * y > r_k2) & wact
            f = to_flat(x, y)
            if bool(esc.any()):
                f = torch.where(esc, harmonic_return(x, y, r_l, unif[..., 1 + j_n + j]), f)

        codes = ((words[:, :n_step_words, None] >> shifts2) & 3).view(a_n, -1)[:, : w_n * t_n]
        path = torch.cat([f[..., None], f[..., None] + step_tab[codes.view(a_n, w_n, t_n)].cumsum(-1)], -1)
        path = path.clamp(0, nn - 1)  # only positions after an escape leave the frame
        st = state[(bi * nn)[:, None, None] + path]
        esc = rad2[path] > r_k2[..., None]
        occ = st == 1
        stick = st == 2
        if sticky:
            sw = words[:, n_step_words : n_step_words + n_stick_words]
            u15 = ((sw[:, :, None] >> shifts15) & 0x7FFF).view(a_n, -1)[:, : w_n * (t_n + 1)]
            stick = stick & ((u15.view(a_n, w_n, t_n + 1).double() + 0.5) < params.stickiness * 32768.0)
        ev = esc | occ | stick
        e = ev.to(torch.uint8).argmax(-1)  # first event (argmax returns the first max)
        has = ev.any(-1) & wact
        ec = e[..., None]
        pe = path.gather(-1, ec).squeeze(-1)
        prev = path.gather(-1, (ec - 1).clamp_min(0)).squeeze(-1)
        is_st = has & stick.gather(-1, ec).squeeze(-1)
        is_esc = has & esc.gather(-1, ec).squeeze(-1)
        is_occ = has & occ.gather(-1, ec).squeeze(-1)
        lost = is_occ & (e == 0)  # sitting on a site claimed last round
        new_f = torch.where(is_occ, prev, path[..., t_n])
        new_f = torch.where(is_st | is_esc, pe, new_f)
        new_f = torch.where(wact, new_f, f)

        sb2, sw2 = is_st.nonzero(as_tuple=True)
        if len(sb2):
            k = rnd * (w_n * (t_n + 1)) + e[sb2, sw2] * w_n + sw2
            add_sites(bi[sb2] * nn + pe[sb2, sw2], k, counted=True)
        if bool(is_esc.any()):
            r_l2 = r2max[bi].double().sqrt()[:, None] + 2.0
            ex, ey = new_f % side - c0, new_f // side - c0
            new_f = torch.where(is_esc, harmonic_return(ex, ey, r_l2, unif[..., -1]), new_f)
        pos[bi] = new_f
        fresh[bi] = is_st | lost
        done = (count[bi] >= params.cluster_size) | (r2max[bi] >= r_cap * r_cap)
        if bool(done.any()):
            active[ab[done.cpu()]] = False

    # arrival order -> rank, trimmed to cluster_size
    keys = key.view(bsz, nn)
    sk, order = keys.sort(dim=1)
    n_seed = (sk == 0).sum(1, keepdim=True)
    p = torch.arange(nn, device=device)[None]
    rank_sorted = p - n_seed + 1
    keep = (sk < _EMPTY) & (rank_sorted <= params.cluster_size)
    rank_sorted = torch.where(sk == 0, 0, torch.where(keep, rank_sorted, -1))
    rank = torch.empty_like(keys).scatter_(1, order, rank_sorted).view(bsz, side, side)
    # crop the N x N window around the frame centre, put the centre at the drawn pixel
    lo = c0 - n // 2
    win = rank[:, lo : lo + n, lo : lo + n]
    ar = torch.arange(n, device=device)
    rows = (ar[None] - centre[:, :1] + n // 2) % n  # [B, N]
    cols = (ar[None] - centre[:, 1:] + n // 2) % n
    win = win.gather(1, rows[:, :, None].expand(-1, -1, n))
    return win.gather(2, cols[:, None, :].expand(-1, n, -1))


def dla_stage_masks(rank: torch.Tensor, num_channels: int) -> torch.Tensor:
    """``[B, C, N, N]`` bool: channel ``c`` = seed + first ``floor((c+1) n / C)`` particles."""
    n_att = rank.flatten(1).amax(1).clamp_min(0)  # [B]
    c = torch.arange(1, num_channels + 1, device=rank.device)
    limit = (c[None] * n_att[:, None]) // num_channels  # [B, C]
    return (rank[:, None] >= 0) & (rank[:, None] <= limit[:, :, None, None])


def periodic_distance(mask: torch.Tensor) -> torch.Tensor:
    """Exact periodic Euclidean distance (pixels) of every pixel to the nearest True pixel.

    ``mask [..., N, N]`` bool (each image non-empty) -> float32 of the same shape, on the
    mask's device. Computed with ``scipy.ndimage.distance_transform_edt`` on the CPU on a
    wrap-padded ``2N x 2N`` canvas (any minimum-image neighbour lies within ``N/2`` per axis).
    """
    n = mask.shape[-1]
    flat = mask.reshape(-1, n, n).cpu().numpy()
    pad = n // 2
    out = np.empty(flat.shape, dtype=np.float32)
    for i, m in enumerate(flat):
        canvas = np.pad(~m, pad, mode="wrap")
        out[i] = ndimage.distance_transform_edt(canvas)[pad : pad + n, pad : pad + n]
    return torch.from_numpy(out).reshape(mask.shape).to(mask.device)


def _gaussian_smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Periodic Gaussian smoothing (``sigma`` in domain units, mean preserved)."""
    n = field.shape[-1]
    kx, ky = wavenumber_grid(n, field.device, half=True)
    h = torch.exp(-2.0 * math.pi**2 * sigma**2 * (kx * kx + ky * ky)).to(field.dtype)
    return torch.fft.irfft2(torch.fft.rfft2(field) * h, s=(n, n))


@register_ic(
    "dla_cluster",
    tier="tier4",
    domain="chemistry",
    description="diffusion-limited-aggregation fractal cluster (distance transform or indicator)",
    params_model=DLAClusterParams,
)
def dla_cluster(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: DLAClusterParams
) -> torch.Tensor:
    rank = grow_dla_clusters(seeds, grid_size, params, device)
    masks = dla_stage_masks(rank, num_channels)
    if params.field_type_dla == "distance_transform":
        field = periodic_distance(masks) / grid_size
    else:
        field = masks.to(torch.float32)
        if params.indicator_smoothing > 0:
            field = _gaussian_smooth(field, params.indicator_smoothing)
    return normalise_rms(field, params.amplitude)
