"""Wavenumber geometry shared by the ``spectral`` and ``cross_channel`` families.

Everything is on the full ``fft2`` plane of an ``[H, W]`` periodic field, flattened to ``H*W``
modes in ``torch.fft.fft2`` order, with integer wavenumbers in cycles per domain
(:func:`spinlock_core.features.ops.wavenumber_grid`):

* ``|k| = sqrt(kx^2 + ky^2)``; the Nyquist radius is ``k_N = min(H, W) / 2``;
* the DC mode ``k = 0`` (the field's mean) is excluded from every shape statistic;
* integer radial shells: shell ``n`` holds the modes with ``round(|k|) == n``, ``n = 1..floor(k_N)``
  (modes with ``round(|k|) > k_N``, the corners of the plane, belong to no shell);
* log-spaced bands: ``S`` bands with edges ``e_i = k_N^(i/S)``, ``i = 0..S`` (so ``e_0 = 1``,
  ``e_S = k_N``); band ``i`` holds ``e_i <= |k| < e_{i+1}`` (the last band also ``|k| == k_N``);
  corner modes ``|k| > k_N`` belong to no band. Bands can be empty on small grids with many bands.

Geometry is cached per ``(H, W, S, device)``.

The power of a real field is conjugate-symmetric, so the families compute ``rfft2`` (half the
modes, about half the work of ``fft2``) and reduce over the stored half plane with multiplicities
(:class:`HalfPlane`): a full-plane sum ``sum_k P(k) g(k)`` is ``sum_half P(k) (g(k) + g(-k))`` over
the columns ``0 < kx < W/2`` (whose conjugates are not stored) and ``sum_half P(k) g(k)`` over
``kx = 0`` and the Nyquist column (whose conjugates are).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from spinlock_core.features.ops import wavenumber_grid

__all__ = [
    "SpectralGeometry",
    "geometry",
    "shell_sums",
    "group_masks",
    "HalfPlane",
    "half_plane",
    "half_plane_matrix",
    "linear_dtype",
]

#: Tolerance of wavenumber comparisons against band edges (|k| are square roots of integers).
K_TOL = 1e-9


@dataclass(frozen=True)
class SpectralGeometry:
    """Per-mode wavenumber tables of an ``H x W`` grid (all flattened to ``[H*W]``)."""

    h: int
    w: int
    k_nyq: float  #: Nyquist radius min(H, W) / 2
    kx: torch.Tensor  #: signed kx (float32)
    ky: torch.Tensor  #: signed ky (float32)
    kmag: torch.Tensor  #: |k| (float32)
    nondc: torch.Tensor  #: bool, every mode except k = 0
    mirror: torch.Tensor  #: long, flat index of -k (the conjugate mode)
    band: torch.Tensor  #: long in 0..S; S = "no band" (DC, |k| < 1, corners)
    band_count: tuple[int, ...]  #: modes per band (S entries)
    band_edges: tuple[float, ...]  #: S + 1 edges in cycles/domain
    shell: torch.Tensor  #: long in 0..n_shells+1; 0 = DC, n_shells+1 = corner
    n_shells: int  #: floor(k_N)
    shell_count: torch.Tensor  #: [n_shells + 2] modes per shell bucket (float32)
    order: torch.Tensor  #: long, non-DC modes sorted by |k| (stable)
    kmag_sorted: torch.Tensor  #: |k| of ``order``


def _edges(k_nyq: float, num_bands: int) -> tuple[float, ...]:
    if k_nyq <= 1.0:
        return tuple(1.0 for _ in range(num_bands + 1))
    return tuple(math.exp(math.log(k_nyq) * i / num_bands) for i in range(num_bands + 1))


@lru_cache(maxsize=32)
def _geometry(h: int, w: int, num_bands: int, device: str) -> SpectralGeometry:
    dev = torch.device(device)
    ky2, kx2 = wavenumber_grid(h, w, device=dev, dtype=torch.float64)
    kx = kx2.expand(h, w).reshape(-1)
    ky = ky2.expand(h, w).reshape(-1)
    kmag = torch.sqrt(kx * kx + ky * ky)
    nondc = kmag > 0
    k_nyq = min(h, w) / 2.0
    # conjugate mode: (-iy mod H, -ix mod W)
    iy = torch.arange(h, device=dev).view(h, 1).expand(h, w)
    ix = torch.arange(w, device=dev).view(1, w).expand(h, w)
    mirror = (((-iy) % h) * w + ((-ix) % w)).reshape(-1)
    # log-spaced bands
    edges = _edges(k_nyq, num_bands)
    e = torch.tensor(edges, device=dev, dtype=torch.float64)
    band = torch.searchsorted(e, kmag + K_TOL, right=True) - 1
    band = torch.where((kmag - k_nyq).abs() <= K_TOL, torch.full_like(band, num_bands - 1), band)
    band = torch.where((band < 0) | (band >= num_bands) | ~nondc, torch.full_like(band, num_bands), band)
    band_count = tuple(int(v) for v in torch.bincount(band, minlength=num_bands + 1)[:num_bands].tolist())
    # integer shells
    n_shells = int(math.floor(k_nyq + K_TOL))
    shell = torch.round(kmag).long()
    shell = torch.where(shell > n_shells, torch.full_like(shell, n_shells + 1), shell)
    shell_count = torch.bincount(shell, minlength=n_shells + 2).to(torch.float32)
    nd_idx = torch.nonzero(nondc).squeeze(1)
    srt = torch.sort(kmag[nd_idx], stable=True)
    order = nd_idx[srt.indices]
    f32 = torch.float32
    return SpectralGeometry(
        h=h,
        w=w,
        k_nyq=k_nyq,
        kx=kx.to(f32),
        ky=ky.to(f32),
        kmag=kmag.to(f32),
        nondc=nondc,
        mirror=mirror,
        band=band,
        band_count=band_count,
        band_edges=edges,
        shell=shell,
        n_shells=n_shells,
        shell_count=shell_count,
        order=order,
        kmag_sorted=srt.values.to(f32),
    )


def geometry(h: int, w: int, num_bands: int, device: torch.device | str) -> SpectralGeometry:
    """Cached :class:`SpectralGeometry` of an ``h x w`` grid with ``num_bands`` log bands."""
    return _geometry(int(h), int(w), int(num_bands), str(torch.device(device)))


def shell_sums(v: torch.Tensor, geo: SpectralGeometry) -> torch.Tensor:
    """Sums of ``v [B, H*W]`` per integer shell ``n = 1..n_shells``: ``[B, n_shells]``."""
    out = torch.zeros(v.shape[0], geo.n_shells + 2, device=v.device, dtype=v.dtype)
    out.scatter_add_(1, geo.shell.expand(v.shape[0], -1), v)
    return out[:, 1 : geo.n_shells + 1]


def group_masks(n_shells: int, k_nyq: float, low: float, high: float, device) -> list[torch.Tensor]:
    """Boolean masks over shells ``1..n_shells`` of the low/mid/high groups.

    low: ``n < low * k_N``; mid: ``low * k_N <= n < high * k_N``; high: ``n >= high * k_N``.
    """
    n = torch.arange(1, n_shells + 1, device=device, dtype=torch.float64)
    c1, c2 = low * k_nyq, high * k_nyq
    return [n < c1, (n >= c1) & (n < c2), n >= c2]


@dataclass(frozen=True)
class HalfPlane:
    """The ``rfft2`` half plane ``[H, W//2 + 1]`` (flattened to ``M`` modes) of a :class:`SpectralGeometry`.

    Wavenumbers are those of the full plane at the same index (the Nyquist column keeps ``kx = -W/2``).
    """

    geo: SpectralGeometry
    m: int  #: number of half-plane modes H * (W//2 + 1)
    full_index: torch.Tensor  #: long [M], flat full-plane index of each stored mode
    weight: torch.Tensor  #: float32 [M], multiplicity in the full plane (1 or 2; 0 for DC)
    kmag: torch.Tensor  #: float32 [M]
    kx: torch.Tensor  #: float32 [M]
    ky: torch.Tensor  #: float32 [M]
    band: torch.Tensor  #: long [M], as SpectralGeometry.band
    mirror: torch.Tensor  #: long [M], stored index of the conjugate mode (itself where the conjugate is not stored)
    self_conj: torch.Tensor  #: bool [M], the mode is its own conjugate
    tie_key: torch.Tensor  #: long [M], min(full index, full index of the conjugate): fft order of the pair
    order: torch.Tensor  #: long, stored non-DC modes by |k| (stable)
    kmag_sorted: torch.Tensor  #: float32, |k| of ``order``
    band_range: tuple[tuple[int, int], ...]  #: [start, end) of each band in ``order``
    sym: torch.Tensor  #: float32 [M, 6 + n_shells]: mirror-summed g(k) of the linear statistics (see half_plane)
    band_count_bands: int  #: S, the number of log bands


@lru_cache(maxsize=32)
def _half_plane(h: int, w: int, num_bands: int, device: str) -> HalfPlane:
    geo = _geometry(h, w, num_bands, device)
    dev = torch.device(device)
    wh = w // 2 + 1
    iy = torch.arange(h, device=dev).view(h, 1).expand(h, wh)
    ix = torch.arange(wh, device=dev).view(1, wh).expand(h, wh)
    full = (iy * w + ix).reshape(-1)
    col = ix.reshape(-1)
    stored_conj = (col == 0) | ((w % 2 == 0) & (col == w // 2))  # the conjugate is in the half plane too
    weight = torch.where(stored_conj, 1.0, 2.0) * geo.nondc[full]
    mfull = geo.mirror[full]
    miy, mix = mfull // w, mfull % w
    mirror_half = torch.where(stored_conj, miy * wh + mix.clamp_max(wh - 1), torch.arange(full.numel(), device=dev))
    kmag = geo.kmag[full]
    nd_idx = torch.nonzero(geo.nondc[full]).squeeze(1)
    srt = torch.sort(kmag[nd_idx], stable=True)
    order = nd_idx[srt.indices]
    band_sorted = geo.band[full][order]
    ranges = []
    for b in range(num_bands):
        sel = torch.nonzero(band_sorted == b).squeeze(1)
        ranges.append((int(sel[0]), int(sel[-1]) + 1) if sel.numel() else (0, 0))

    def sym(g: torch.Tensor) -> torch.Tensor:  # g(k) + g(-k) where -k is not stored, else g(k); 0 at DC
        return torch.where(stored_conj, g[full], g[full] + g[mfull]) * geo.nondc[full]

    one = torch.ones(h * w, device=dev, dtype=torch.float64)
    kx, ky = geo.kx.double(), geo.ky.double()
    cols = [sym(one), sym(geo.kmag.double()), sym(kx * kx), sym(ky * ky), sym(kx * ky)]
    cols += [sym((geo.band == b).double()) for b in range(num_bands)]
    cols += [sym((geo.shell == n).double()) for n in range(1, geo.n_shells + 1)]
    return HalfPlane(
        geo=geo,
        m=full.numel(),
        full_index=full,
        weight=weight.float(),
        kmag=kmag,
        kx=geo.kx[full],
        ky=geo.ky[full],
        band=geo.band[full],
        mirror=mirror_half,
        self_conj=mfull == full,
        tie_key=torch.minimum(full, mfull),
        order=order,
        kmag_sorted=srt.values,
        band_range=tuple(ranges),
        sym=torch.stack(cols, 1).float(),
        band_count_bands=num_bands,
    )


def half_plane(h: int, w: int, num_bands: int, device: torch.device | str) -> HalfPlane:
    """Cached :class:`HalfPlane` of an ``h x w`` grid. ``sym`` columns: ``[nondc, |k|, kx^2, ky^2,
    kx ky, band_0 .. band_{S-1}, shell_1 .. shell_{n_shells}]`` (indicators / weights summed over the
    conjugate pair), so ``P_half @ sym`` gives the full-plane sums of ``P g``."""
    return _half_plane(int(h), int(w), int(num_bands), str(torch.device(device)))


def linear_dtype(device: torch.device) -> torch.dtype:
    """dtype of the half-plane reductions by matrix product: float64 on every device.

    A float32 GEMM's accumulation order depends on the number of rows (BLAS picks other kernels
    for other batch sizes), and differences such as ``Jxx - Jyy`` cancel, so a sample's features
    changed with the extraction batch (``spectral_orientation_angle`` by 1e-3 degrees). In float64
    the order-dependent error is ~1e-16 relative, far below float32 resolution; on accelerators it
    is also immune to TF32 products.
    """
    return torch.float64


@lru_cache(maxsize=64)
def _half_plane_matrix(
    h: int, w: int, num_bands: int, device: str, what: str, extra: tuple, dtype: torch.dtype
) -> torch.Tensor:
    hp = _half_plane(h, w, num_bands, device)
    if what == "sym":
        m = hp.sym
    elif what == "weight":
        m = hp.weight
    else:  # "regions": [M, 3] low / mid / high masks of |k| (cutoffs in cycles/domain)
        c1, c2 = extra
        m = torch.stack([hp.kmag < c1, (hp.kmag >= c1) & (hp.kmag < c2), hp.kmag >= c2], 1)
    return m.to(dtype)


def half_plane_matrix(hp: HalfPlane, what: str, dtype: torch.dtype, extra: tuple = ()) -> torch.Tensor:
    """Cached ``hp.sym`` / ``hp.weight`` / low-mid-high ``regions`` (``extra = (c1, c2)``) in ``dtype``."""
    return _half_plane_matrix(hp.geo.h, hp.geo.w, hp.band_count_bands, str(hp.kmag.device), what, tuple(extra), dtype)
