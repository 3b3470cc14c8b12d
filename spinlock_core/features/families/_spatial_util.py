"""Batched building blocks of the ``spatial`` family (private: not a family module).

Conventions (shared with :mod:`spinlock_core.features.ops`):

* fields are ``[..., H, W]`` on the periodic unit square; finite differences are periodic and
  in **grid units** (per pixel);
* distances/lengths are in **domain units** (the side of the unit square is 1), so a lag of
  ``d`` pixels along x is ``d / W``;
* every function is batched over the leading axes; nothing loops over fields.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from spinlock_core.features import ops

__all__ = [
    "sanitize",
    "quantiles_from_sorted",
    "percentile_name",
    "hessian",
    "autocorrelation",
    "radial_profile",
    "first_crossing",
    "correlation_lengths",
    "singular_value_stats",
]


def sanitize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 copy of ``x [..., H, W]`` with non-finite fields zeroed, and the finite mask ``[...]``.

    Fields holding any NaN/Inf (a diverged trajectory) are replaced by zeros so that sorting,
    histograms and SVD never see them; callers put NaN back at ``~finite`` afterwards.
    """
    x = x.float()
    finite = torch.isfinite(x).flatten(-2).all(-1)
    if bool(finite.all()):
        return x, finite
    return torch.where(finite[..., None, None], x, torch.zeros((), dtype=x.dtype, device=x.device)), finite


def quantiles_from_sorted(xs: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Quantiles ``q [Q]`` (in [0, 1]) of sorted rows ``xs [..., K]`` -> ``[..., Q]``.

    Linear interpolation between order statistics at position ``q (K - 1)`` (numpy's default
    ``method="linear"``, R type 7); the median of an even count is the mean of the two middle values.
    """
    k = xs.shape[-1]
    pos = q.to(torch.float64) * (k - 1)
    lo = pos.floor().long().clamp(0, k - 1)
    hi = (lo + 1).clamp(max=k - 1)
    frac = (pos - lo.to(torch.float64)).to(xs.dtype)
    idx = lo.to(xs.device)
    a = xs.index_select(-1, idx)
    b = xs.index_select(-1, hi.to(xs.device))
    return a + frac.to(xs.device) * (b - a)


def percentile_name(p: float) -> str:
    """Column name of percentile ``p`` (in [0, 100]): ``5 -> percentile_5``, ``12.5 -> percentile_12p5``."""
    text = f"{float(p):g}".replace(".", "p").replace("-", "m")
    return f"percentile_{text}"


def hessian(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Periodic second differences ``(v_xx, v_yy, v_xy)`` of ``v [..., H, W]`` per pixel^2.

    ``v_xx = v[j+1] - 2 v[j] + v[j-1]`` (so ``v_xx + v_yy`` is the 5-point Laplacian of
    :func:`ops.laplacian`); ``v_xy`` is the central difference along y of the central difference
    along x, ``(v[i+1,j+1] - v[i+1,j-1] - v[i-1,j+1] + v[i-1,j-1]) / 4``.
    """
    vxx = torch.roll(v, 1, dims=-1) + torch.roll(v, -1, dims=-1) - 2.0 * v
    vyy = torch.roll(v, 1, dims=-2) + torch.roll(v, -1, dims=-2) - 2.0 * v
    _, gx = ops.grad_xy(v)
    vxy, _ = ops.grad_xy(gx)
    return vxx, vyy, vxy


def autocorrelation(vc: torch.Tensor) -> torch.Tensor:
    """Circular autocorrelation ``rho [..., H, W]`` of centred fields ``vc [..., H, W]``.

    ``rho(dy, dx) = sum_p vc(p) vc(p + d) / sum_p vc(p)^2`` (Wiener-Khinchin through ``rfft2``),
    so ``rho(0, 0) = 1``; a constant (all-zero) field gets ``rho = 1`` everywhere (fully correlated).
    """
    h, w = vc.shape[-2:]
    spec = torch.fft.rfft2(vc)
    acov = torch.fft.irfft2(spec.real.square() + spec.imag.square(), s=(h, w))
    c0 = acov[..., :1, :1]
    ok = c0 > 0
    return torch.where(ok, acov / torch.where(ok, c0, torch.ones_like(c0)), torch.ones_like(acov))


@lru_cache(maxsize=32)
def _shells(h: int, w: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Shell index of every lag (``K + 1`` = outside), shell counts and mean radii, and ``K``."""
    dy = torch.arange(h, dtype=torch.float64)
    dy = torch.minimum(dy, h - dy) / h
    dx = torch.arange(w, dtype=torch.float64)
    dx = torch.minimum(dx, w - dx) / w
    dist = torch.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2).reshape(-1)
    width = 1.0 / max(h, w)
    kmax = max(h, w) // 2
    idx = torch.round(dist / width).long()
    idx = torch.where(idx > kmax, torch.full_like(idx, kmax + 1), idx)
    counts = torch.zeros(kmax + 2, dtype=torch.float64).index_add_(0, idx, torch.ones_like(dist))
    rsum = torch.zeros(kmax + 2, dtype=torch.float64).index_add_(0, idx, dist)
    radii = (rsum / counts.clamp_min(1))[: kmax + 1]
    return idx.to(device), counts[: kmax + 1].float().to(device), radii.float().to(device), kmax


def radial_profile(rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell averages of ``rho [..., H, W]`` over lag distance -> ``(profile [..., K+1], radii [K+1])``.

    Shell ``k`` holds the lags whose periodic distance ``sqrt((dy/H)^2 + (dx/W)^2)`` rounds to
    ``k / max(H, W)`` (domain units), ``k = 0 .. K = max(H, W) // 2``; ``radii`` are the mean
    distances of the shells. Lags farther than ``K / max(H, W)`` (the corners) are left out.
    """
    h, w = rho.shape[-2:]
    idx, counts, radii, kmax = _shells(h, w, str(rho.device))
    flat = ops.flatten_fields(rho)
    lead = flat.shape[:-1]
    flat = flat.reshape(-1, h * w)
    sums = torch.zeros(flat.shape[0], kmax + 2, dtype=flat.dtype, device=flat.device)
    sums.index_add_(1, idx, flat)
    prof = sums[:, : kmax + 1] / counts
    return prof.reshape(*lead, kmax + 1), radii


def first_crossing(profile: torch.Tensor, radii: torch.Tensor, level: float, cap: float) -> torch.Tensor:
    """Distance where ``profile [..., K]`` (starting at 1) first falls below ``level``.

    Linear interpolation between the last sample at or above ``level`` and the first below it;
    when the profile never falls below ``level``, ``cap`` is returned.
    """
    below = profile < level
    anyb = below.any(-1)
    k1 = torch.argmax(below.to(torch.uint8), dim=-1).clamp_min(1)
    k0 = k1 - 1
    p0 = profile.gather(-1, k0.unsqueeze(-1)).squeeze(-1)
    p1 = profile.gather(-1, k1.unsqueeze(-1)).squeeze(-1)
    r0, r1 = radii[k0], radii[k1]
    t = ((p0 - level) / (p0 - p1).clamp_min(1e-30)).clamp(0.0, 1.0)
    r = r0 + t * (r1 - r0)
    return torch.where(anyb, r, torch.full_like(r, cap))


def correlation_lengths(vc: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Correlation lengths ``(isotropic, along x, along y)`` of centred fields, domain units.

    ``rho`` from :func:`autocorrelation`; isotropic: first ``level`` crossing of the shell-averaged
    ``rho`` (:func:`radial_profile`); along x: of ``rho(0, dx)``, ``dx = 0 .. W//2`` pixels at
    ``dx / W``; along y likewise. Caps (never below ``level``): ``(max(H, W) // 2) / max(H, W)``,
    ``(W // 2) / W`` and ``(H // 2) / H`` (1/2 for even sizes).
    """
    h, w = vc.shape[-2:]
    rho = autocorrelation(vc)
    prof, radii = radial_profile(rho)
    iso = first_crossing(prof, radii, level, (max(h, w) // 2) / max(h, w))
    rx = torch.arange(w // 2 + 1, device=vc.device, dtype=torch.float32) / w
    ry = torch.arange(h // 2 + 1, device=vc.device, dtype=torch.float32) / h
    lx = first_crossing(rho[..., 0, : w // 2 + 1], rx, level, (w // 2) / w)
    ly = first_crossing(rho[..., : h // 2 + 1, 0], ry, level, (h // 2) / h)
    return iso, lx, ly


def singular_value_stats(vc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(effective_rank, participation_ratio, top_energy_fraction)`` of fields as ``H x W`` matrices.

    With ``s_i`` the singular values (``torch.linalg.svdvals``): effective rank
    ``exp(-sum p_i ln p_i)``, ``p_i = s_i / sum s`` (Roy & Vetterli 2007); participation ratio
    ``(sum s^2)^2 / sum s^4``; top energy fraction ``s_1^2 / sum s^2``. An all-zero matrix gets
    1, 1, 1 (the value of a rank-1 matrix).
    """
    s = torch.linalg.svdvals(vc)
    s1 = s[..., :1]
    ok = s1[..., 0] > 0
    sn = s / torch.where(s1 > 0, s1, torch.ones_like(s1))
    p = sn / sn.sum(-1, keepdim=True).clamp_min(1e-30)
    ent = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)
    e = sn.square()
    e_tot = e.sum(-1)
    pr = e_tot.square() / e.square().sum(-1).clamp_min(1e-30)
    top = 1.0 / e_tot.clamp_min(1e-30)
    one = torch.ones_like(ent)
    return torch.where(ok, ent.exp(), one), torch.where(ok, pr, one), torch.where(ok, top, one)

