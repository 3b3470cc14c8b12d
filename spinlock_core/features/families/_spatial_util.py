"""Batched building blocks of the ``spatial`` family (private: not a family module).

Conventions (shared with :mod:`spinlock_core.features.ops`):

* fields are ``[..., H, W]`` on the periodic unit square; finite differences are periodic and
  in **grid units** (per pixel);
* distances/lengths are in **domain units** (the side of the unit square is 1), so a lag of
  ``d`` pixels along x is ``d / W``;
* every function is batched over the leading axes; nothing loops over fields.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import torch

from spinlock_core.features import ops

__all__ = [
    "sanitize",
    "quantiles_from_sorted",
    "order_statistics",
    "quantiles",
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


def order_statistics(
    vals: torch.Tensor,
    glabels: torch.Tensor | None,
    n_labels: int,
    ranks: torch.Tensor,
    const: torch.Tensor,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Order statistics ``sort(vals)[..., ranks]`` of the rows of ``vals [B, K]`` without sorting them.

    ``glabels [B, K]`` (int32): a fine binning ``label + row * n_labels`` with ``label`` in
    ``0..n_labels-1`` a non-decreasing function of the value within each row
    (:func:`~spinlock_core.features.ops.histogram_labels` with ``offset=True``), or None off the
    CPU, where it is not used. The bin holding each wanted rank is found from the bin counts and
    only the values of those bins are sorted (a few per bin instead of K per row). Rows flagged
    ``const [B]`` hold one value and return it. Exact: the same values as a full sort. On a
    non-CPU device the rows are simply sorted (faster there than the data-dependent selection).
    ``ranks [Q]`` are 0-based positions; ``counts [B, n_labels]`` (int64), the bin counts, if at
    hand. Returns ``[B, Q]``.
    """
    b, k = vals.shape
    dev = vals.device
    ranks = ranks.to(dev)
    if dev.type != "cpu":
        return torch.sort(vals, dim=-1).values.index_select(-1, ranks)
    assert glabels is not None, "order_statistics on the CPU needs glabels"
    if counts is None:
        counts = ops.offset_bincount(glabels, b, n_labels, dtype=torch.int64)  # [B, L]
    cum = counts.cumsum(1)
    q = ranks.numel()
    tb = torch.searchsorted(cum, ranks.expand(b, q).contiguous(), right=True).clamp_max_(
        n_labels - 1
    )  # bin of each rank
    within = ranks - (cum.gather(1, tb) - counts.gather(1, tb))  # rank inside its bin
    gbin = tb + torch.arange(b, device=dev).mul_(n_labels).unsqueeze(1)
    gbin = torch.where(const.unsqueeze(1), torch.full_like(tb, -1), gbin)  # global bin ids, -1: none
    mark = torch.zeros(b * n_labels + 1, dtype=torch.bool, device=dev)
    mark[gbin.reshape(-1)] = True  # index -1 = the spare last slot
    mark[-1] = False
    flat_lab = glabels.reshape(-1)
    pos = mark.index_select(0, flat_lab).nonzero().squeeze(1)
    sv = vals.reshape(-1).index_select(0, pos)
    sg = flat_lab.index_select(0, pos)
    order = torch.argsort(sv)
    sv, sg = sv[order], sg[order]
    order = torch.argsort(sg, stable=True)  # grouped by bin, sorted by value inside each bin
    sv, sg = sv[order], sg[order].long()
    start = torch.searchsorted(sg, gbin.clamp_min(0).reshape(-1)).reshape(b, q)
    idx = (start + within).clamp_(0, max(sv.numel() - 1, 0))
    picked = sv[idx] if sv.numel() else torch.zeros(b, q, dtype=vals.dtype, device=dev)
    return torch.where(const.unsqueeze(1), vals[:, :1].expand(b, q), picked)


def quantiles(
    vals: torch.Tensor,
    glabels: torch.Tensor | None,
    n_labels: int,
    q: torch.Tensor,
    const: torch.Tensor,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`quantiles_from_sorted` of the rows of ``vals [B, K]`` (same interpolation, same values)
    from :func:`order_statistics` (``glabels``, ``n_labels``, ``const``, ``counts`` as there) -> ``[B, Q]``."""
    k = vals.shape[-1]
    pos = q.to(torch.float64) * (k - 1)
    lo = pos.floor().long().clamp(0, k - 1)
    hi = (lo + 1).clamp(max=k - 1)
    frac = (pos - lo.to(torch.float64)).to(vals.dtype).to(vals.device)
    uniq, inv = torch.unique(torch.cat([lo, hi]), return_inverse=True)
    st = order_statistics(vals, glabels, n_labels, uniq, const, counts)
    a = st.index_select(-1, inv[: q.numel()].to(vals.device))
    b = st.index_select(-1, inv[q.numel() :].to(vals.device))
    return a + frac * (b - a)


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
    """Shell membership ``[H*W, K+1]`` (one-hot; corner lags in no shell), shell counts, mean radii, ``K``.

    Shell sums are a matrix product with the membership (deterministic on CUDA, unlike an
    atomic ``index_add_``).
    """
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
    onehot = torch.zeros(h * w, kmax + 1, dtype=torch.float32)
    inside = idx <= kmax
    onehot[torch.nonzero(inside).squeeze(1), idx[inside]] = 1.0
    return onehot.to(device), counts[: kmax + 1].float().to(device), radii.float().to(device), kmax


def radial_profile(rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell averages of ``rho [..., H, W]`` over lag distance -> ``(profile [..., K+1], radii [K+1])``.

    Shell ``k`` holds the lags whose periodic distance ``sqrt((dy/H)^2 + (dx/W)^2)`` rounds to
    ``k / max(H, W)`` (domain units), ``k = 0 .. K = max(H, W) // 2``; ``radii`` are the mean
    distances of the shells. Lags farther than ``K / max(H, W)`` (the corners) are left out.
    """
    h, w = rho.shape[-2:]
    onehot, counts, radii, kmax = _shells(h, w, str(rho.device))
    flat = ops.flatten_fields(rho)
    lead = flat.shape[:-1]
    flat = flat.reshape(-1, h * w)
    prof = (flat @ onehot.to(flat.dtype)) / counts.to(flat.dtype)
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


def _svdvals(a: torch.Tensor) -> torch.Tensor:
    """Singular values (descending) of a batch ``a [B, H, W]`` (``H <= W``, square fields here).

    CPU: ``torch.linalg.svdvals`` with the batch split over ``torch.get_num_threads()`` Python
    threads (LAPACK runs each small SVD on one core, so one call leaves the other cores idle); the
    same values as one call."""
    if a.device.type != "cpu":  # accelerators: eigenvalues of the float64 Gram matrix (svdvals is ~3x slower
        # there for batches of small matrices; sqrt(eig(A A^T)) in float64 is as accurate as float32 svdvals)
        a64 = a.double()
        lam = torch.linalg.eigvalsh(a64 @ a64.transpose(-1, -2))
        return lam.flip(-1).clamp_min(0.0).sqrt().to(a.dtype)
    n = min(torch.get_num_threads(), a.shape[0]) if a.ndim == 3 else 1
    if n <= 1:
        return torch.linalg.svdvals(a)
    with ThreadPoolExecutor(max_workers=n) as pool:  # per call: no threads survive into a fork
        return torch.cat(list(pool.map(torch.linalg.svdvals, a.chunk(n))))


def singular_value_stats(vc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(effective_rank, participation_ratio, top_energy_fraction)`` of fields as ``H x W`` matrices.

    With ``s_i`` the singular values (``torch.linalg.svdvals``): effective rank
    ``exp(-sum p_i ln p_i)``, ``p_i = s_i / sum s`` (Roy & Vetterli 2007); participation ratio
    ``(sum s^2)^2 / sum s^4``; top energy fraction ``s_1^2 / sum s^2``. An all-zero matrix gets
    1, 1, 1 (the value of a rank-1 matrix).
    """
    s = _svdvals(vc)
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
