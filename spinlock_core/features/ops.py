"""Batched torch building blocks shared by the feature families.

Conventions (all functions):

* fields are ``[..., H, W]`` on the periodic unit square; derivatives are periodic central
  differences **in grid units** (per pixel): ``d/dx u[j] = (u[j+1] - u[j-1]) / 2``;
* wavenumbers are in **cycles per domain** (integers for a periodic field), so a plane wave
  ``cos(2 pi k x)`` sits at ``|k|`` whatever the grid size;
* spectra use ``torch.fft.fft2(u, norm="ortho")``: Parseval holds as
  ``sum |U|^2 == sum u^2`` over the full plane;
* entropies are in **nats** unless a function says otherwise;
* every reduction is batched over the leading axes; nothing loops over fields.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "EPS",
    "central_diff",
    "grad_xy",
    "laplacian",
    "wavenumber_grid",
    "power_spectrum",
    "half_plane_power",
    "half_plane_weights",
    "count_true",
    "zero_rows",
    "batched_bincount",
    "flatten_fields",
    "safe_div",
    "histogram_counts",
    "histogram_labels",
    "offset_labels",
    "offset_bincount",
    "entropy_from_counts",
    "linear_fit",
    "standardize",
    "atan2",
]

#: Default epsilon of ratios (added to denominators that can be 0 for constant fields).
EPS = 1e-12


def _roll_add_(out: torch.Tensor, u: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    """``out += torch.roll(u, shift, dim)`` for ``shift = +-1`` by two slice additions (no rolled copy)."""
    n = u.shape[dim]
    if shift == 1:  # rolled[j] = u[j - 1]
        out.narrow(dim, 1, n - 1).add_(u.narrow(dim, 0, n - 1))
        out.narrow(dim, 0, 1).add_(u.narrow(dim, n - 1, 1))
    else:  # rolled[j] = u[j + 1]
        out.narrow(dim, 0, n - 1).add_(u.narrow(dim, 1, n - 1))
        out.narrow(dim, n - 1, 1).add_(u.narrow(dim, 0, 1))
    return out


def _neighbour_sum(u: torch.Tensor, dim: int) -> torch.Tensor:
    """``roll(u, 1, dim) + roll(u, -1, dim)`` (= ``u[j-1] + u[j+1]``, periodic) into a new tensor, by slices."""
    n = u.shape[dim]
    if n < 3:
        return torch.roll(u, 1, dims=dim) + torch.roll(u, -1, dims=dim)
    out = torch.empty_like(u, memory_format=torch.contiguous_format)
    torch.add(u.narrow(dim, 0, n - 2), u.narrow(dim, 2, n - 2), out=out.narrow(dim, 1, n - 2))
    torch.add(u.narrow(dim, n - 1, 1), u.narrow(dim, 1, 1), out=out.narrow(dim, 0, 1))
    torch.add(u.narrow(dim, n - 2, 1), u.narrow(dim, 0, 1), out=out.narrow(dim, n - 1, 1))
    return out


def central_diff(u: torch.Tensor, dim: int) -> torch.Tensor:
    """Periodic ``u[j+1] - u[j-1]`` along ``dim`` (= ``roll(u, -1) - roll(u, 1)``, bit for bit), by slices."""
    n = u.shape[dim]
    if n < 3:
        return torch.roll(u, -1, dims=dim) - torch.roll(u, 1, dims=dim)
    g = torch.empty_like(u, memory_format=torch.contiguous_format)
    torch.sub(u.narrow(dim, 2, n - 2), u.narrow(dim, 0, n - 2), out=g.narrow(dim, 1, n - 2))
    torch.sub(u.narrow(dim, 1, 1), u.narrow(dim, n - 1, 1), out=g.narrow(dim, 0, 1))
    torch.sub(u.narrow(dim, 0, 1), u.narrow(dim, n - 2, 1), out=g.narrow(dim, n - 1, 1))
    return g


def grad_xy(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic central differences ``(d/dy, d/dx)`` of ``u [..., H, W]`` in units per pixel."""
    return central_diff(u, -2).mul_(0.5), central_diff(u, -1).mul_(0.5)


def laplacian(u: torch.Tensor) -> torch.Tensor:
    """Periodic 5-point Laplacian ``N + S + E + W - 4 C`` of ``u [..., H, W]`` (grid units)."""
    if u.shape[-1] < 2:
        return (
            torch.roll(u, 1, dims=-2)
            + torch.roll(u, -1, dims=-2)
            + torch.roll(u, 1, dims=-1)
            + torch.roll(u, -1, dims=-1)
            - 4.0 * u
        )
    out = _neighbour_sum(u, -2)  # same summation order as the roll formula: ((N + S) + W) + E - 4 C
    _roll_add_(out, u, 1, -1)
    _roll_add_(out, u, -1, -1)
    return out.sub_(u, alpha=4.0)


def wavenumber_grid(
    h: int, w: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed integer wavenumbers ``(ky [H, 1], kx [1, W])`` of the full ``fft2`` plane, cycles/domain."""
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=device, dtype=dtype).reshape(h, 1)
    kx = torch.fft.fftfreq(w, d=1.0 / w, device=device, dtype=dtype).reshape(1, w)
    return ky, kx


def power_spectrum(u: torch.Tensor) -> torch.Tensor:
    """``|fft2(u, norm="ortho")|^2`` of ``u [..., H, W]`` on the full plane (sum = sum of u^2)."""
    spec = torch.fft.fft2(u.float(), norm="ortho")
    return spec.real.square() + spec.imag.square()


def half_plane_weights(
    h: int, w: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Multiplicity ``[H, W//2 + 1]`` of each ``rfft2`` mode in the full ``fft2`` plane.

    For a real field ``|U(-k)| = |U(k)|``, so ``sum_full f(|U|) = sum_half weight * f(|U|)``: 2 for the
    columns ``0 < kx < W/2`` (their conjugates are not stored), 1 for ``kx = 0`` and the Nyquist
    column ``kx = W/2`` of an even ``W`` (both members of each conjugate pair are stored).
    """
    wt = torch.full((h, w // 2 + 1), 2.0, device=device, dtype=dtype)
    wt[:, 0] = 1.0
    if w % 2 == 0:
        wt[:, -1] = 1.0
    return wt


def half_plane_power(u: torch.Tensor) -> torch.Tensor:
    """``|rfft2(u, norm="ortho")|^2`` of real ``u [..., H, W]``: the ``[..., H, W//2 + 1]`` half of
    :func:`power_spectrum` (weight it with :func:`half_plane_weights` for full-plane sums)."""
    spec = torch.fft.rfft2(u.float(), norm="ortho")
    return torch.view_as_real(spec).square().sum(-1)


def flatten_fields(u: torch.Tensor) -> torch.Tensor:
    """``[..., H, W] -> [..., H*W]``."""
    return u.reshape(*u.shape[:-2], u.shape[-2] * u.shape[-1])


def safe_div(a: torch.Tensor, b: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``a / b`` with ``b`` pushed away from 0 by ``eps`` (keeping its sign); 0/0 -> 0."""
    sign = torch.where(b < 0, -1.0, 1.0).to(b.dtype)
    return a / (b + sign * eps)


def zero_rows(x: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """``x`` with the entries of the leading indices where ``ok`` (shape ``x.shape[:ok.ndim]``) is
    False set to 0. On CPU the copy is skipped when every entry is ok (one cheap host check); on an
    accelerator it is always made (a host check would synchronise the device)."""
    if x.device.type == "cpu" and bool(ok.all()):
        return x
    return torch.where(
        ok.view(*ok.shape, *([1] * (x.ndim - ok.ndim))), x, torch.zeros((), dtype=x.dtype, device=x.device)
    )


def count_true(mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Number of ``True`` along ``dim`` of a boolean tensor (int32; faster than ``mask.sum``)."""
    return mask.view(torch.uint8).sum(dim, dtype=torch.int32)


def batched_bincount(idx: torch.Tensor, bins: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Counts ``[B, bins]`` (``dtype``) of the integer labels ``idx [B, K]`` (each in ``0..bins-1``) per row.

    One ``bincount`` over row-offset labels (much cheaper than ``scatter_add_`` on CPU).
    """
    b = idx.shape[0]
    if b * bins >= 2**31:
        counts = torch.zeros(b, bins, device=idx.device, dtype=dtype)
        return counts.scatter_add_(1, idx.long(), torch.ones_like(idx, dtype=dtype))
    off = torch.arange(b, device=idx.device, dtype=torch.int32).mul_(bins).unsqueeze(1)
    return offset_bincount(idx.to(torch.int32) + off, b, bins, dtype)


def offset_bincount(glab: torch.Tensor, b: int, bins: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Counts ``[b, bins]`` of row-offset labels ``glab`` (``label + row * bins``, any shape).

    ``torch.bincount`` on CPU; ``index_add_`` elsewhere (CUDA's bincount reads the largest label
    back to the host, a synchronisation)."""
    flat = glab.reshape(-1)
    if flat.device.type == "cpu":
        return torch.bincount(flat, minlength=b * bins).reshape(b, bins).to(dtype)
    acc = torch.float32 if dtype.is_floating_point else torch.int64
    ones = torch.ones((), dtype=acc, device=flat.device).expand(flat.shape[0])
    return torch.zeros(b * bins, dtype=acc, device=flat.device).index_add_(0, flat, ones).reshape(b, bins).to(dtype)


def histogram_counts(v: torch.Tensor, bins: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Counts of ``v [..., K]`` in ``bins`` equal bins over ``[lo, hi]`` per leading index.

    ``lo``/``hi`` are ``[...]``; the last bin is closed (``v == hi`` falls in it), values outside
    are clamped into the end bins. A constant series (``hi == lo``) puts everything in bin 0.
    Returns float32 ``[..., bins]``.
    """
    return batched_bincount(histogram_labels(v, bins, lo, hi).reshape(-1, v.shape[-1]), bins).reshape(
        *v.shape[:-1], bins
    )


def histogram_labels(
    v: torch.Tensor, bins: int, lo: torch.Tensor, hi: torch.Tensor, offset: bool = False
) -> torch.Tensor:
    """Bin labels (int32, ``0..bins-1``) of :func:`histogram_counts`: ``floor((v - lo) / (hi - lo) * bins)``
    clamped to ``[0, bins - 1]``; 0 where ``hi == lo``. A power-of-two multiple of a histogram's
    ``bins`` gives a nested finer binning (the same rounding, scaled by 2^m). ``offset=True`` (``v``
    2-D ``[B, K]``): labels ``+ row * bins`` (unique across rows, for one ``bincount``)."""
    span = (hi - lo).unsqueeze(-1)
    ok = span > 0
    t = v - lo.unsqueeze(-1)
    t.div_(torch.where(ok, span, torch.ones_like(span))).mul_(bins)
    if t.device.type != "cpu" or not bool(ok.all()):
        t = torch.where(ok, t, torch.zeros((), dtype=t.dtype, device=t.device))
    t.clamp_(0, bins - 1)
    if not offset:
        return t.to(torch.int32)
    return offset_labels(t, bins)


def offset_labels(t: torch.Tensor, bins: int) -> torch.Tensor:
    """Labels ``t [B, K]`` (float in ``[0, bins - 1]``, floored by truncation) + ``row * bins``, as int32."""
    lab = t.to(torch.int32)
    return lab.add_(torch.arange(t.shape[0], device=t.device, dtype=torch.int32).mul_(bins).unsqueeze(1))


def entropy_from_counts(counts: torch.Tensor, base: float = math.e) -> torch.Tensor:
    """Shannon entropy ``-sum p log p`` of histograms ``counts [..., B]`` (0 log 0 = 0), in log ``base``."""
    total = counts.sum(-1, keepdim=True).clamp_min(1e-30)
    p = counts / total
    h = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)
    return h / math.log(base)


def linear_fit(y: torch.Tensor, t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares line through ``y [..., T]`` against ``t`` (default 0..T-1).

    Returns ``(slope, intercept, r2)``, each ``[...]``; ``r2`` is 0 for a constant series.
    """
    n = y.shape[-1]
    if t is None:
        t = torch.arange(n, device=y.device, dtype=y.dtype)
    tc = t - t.mean()
    yc = y - y.mean(-1, keepdim=True)
    stt = (tc * tc).sum()
    slope = (yc * tc).sum(-1) / stt.clamp_min(1e-30)
    intercept = y.mean(-1) - slope * t.mean()
    ss_tot = (yc * yc).sum(-1)
    ss_res = ((yc - slope.unsqueeze(-1) * tc) ** 2).sum(-1)
    r2 = torch.where(ss_tot > 0, 1.0 - ss_res / ss_tot.clamp_min(1e-30), torch.zeros_like(ss_tot)).clamp(0.0, 1.0)
    return slope, intercept, r2


def standardize(v: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``(v - mean) / std`` along ``dim`` (population std); 0 where the std is 0."""
    mu = v.mean(dim, keepdim=True)
    c = v - mu
    sd = c.square().mean(dim, keepdim=True).sqrt()
    return torch.where(sd > 0, c / torch.where(sd > 0, sd, 1.0), torch.zeros_like(c))


def atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``atan2(y, x)`` in radians, ``(-pi, pi]``, the same for an element whatever tensor it is in.

    ``torch.atan2`` on the CPU rounds differently in its vectorised loop body and in its scalar
    tail, so an element's result depended on its position, i.e. on the extraction batch (about
    2% of float64 and 17% of float32 elements differ in the last bits between a batch and a
    single element; ``torch.atan`` and IEEE division do not). Built from those: the ratio of the
    smaller to the larger of ``|x|, |y|`` (in [0, 1], so ``atan`` is well conditioned), reflected
    into the octant. ``atan2(0, 0) = 0``; NaN propagates.
    """
    ax, ay = x.abs(), y.abs()
    swap = ay > ax
    num, den = torch.where(swap, ax, ay), torch.where(swap, ay, ax)
    a = torch.atan(num / torch.where(den > 0, den, torch.ones_like(den)))
    a = torch.where(swap, math.pi / 2 - a, a)
    a = torch.where(x < 0, math.pi - a, a)
    return torch.where(y < 0, -a, a)
