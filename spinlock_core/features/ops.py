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
    "grad_xy",
    "laplacian",
    "wavenumber_grid",
    "power_spectrum",
    "flatten_fields",
    "safe_div",
    "histogram_counts",
    "entropy_from_counts",
    "linear_fit",
    "standardize",
]

#: Default epsilon of ratios (added to denominators that can be 0 for constant fields).
EPS = 1e-12


def grad_xy(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic central differences ``(d/dy, d/dx)`` of ``u [..., H, W]`` in units per pixel."""
    gy = 0.5 * (torch.roll(u, -1, dims=-2) - torch.roll(u, 1, dims=-2))
    gx = 0.5 * (torch.roll(u, -1, dims=-1) - torch.roll(u, 1, dims=-1))
    return gy, gx


def laplacian(u: torch.Tensor) -> torch.Tensor:
    """Periodic 5-point Laplacian ``N + S + E + W - 4 C`` of ``u [..., H, W]`` (grid units)."""
    return (
        torch.roll(u, 1, dims=-2) + torch.roll(u, -1, dims=-2)
        + torch.roll(u, 1, dims=-1) + torch.roll(u, -1, dims=-1) - 4.0 * u
    )


def wavenumber_grid(h: int, w: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed integer wavenumbers ``(ky [H, 1], kx [1, W])`` of the full ``fft2`` plane, cycles/domain."""
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=device, dtype=dtype).reshape(h, 1)
    kx = torch.fft.fftfreq(w, d=1.0 / w, device=device, dtype=dtype).reshape(1, w)
    return ky, kx


def power_spectrum(u: torch.Tensor) -> torch.Tensor:
    """``|fft2(u, norm="ortho")|^2`` of ``u [..., H, W]`` on the full plane (sum = sum of u^2)."""
    spec = torch.fft.fft2(u.float(), norm="ortho")
    return spec.real.square() + spec.imag.square()


def flatten_fields(u: torch.Tensor) -> torch.Tensor:
    """``[..., H, W] -> [..., H*W]``."""
    return u.reshape(*u.shape[:-2], u.shape[-2] * u.shape[-1])


def safe_div(a: torch.Tensor, b: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``a / b`` with ``b`` pushed away from 0 by ``eps`` (keeping its sign); 0/0 -> 0."""
    sign = torch.where(b < 0, -1.0, 1.0).to(b.dtype)
    return a / (b + sign * eps)


def histogram_counts(v: torch.Tensor, bins: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Counts of ``v [..., K]`` in ``bins`` equal bins over ``[lo, hi]`` per leading index.

    ``lo``/``hi`` are ``[...]``; the last bin is closed (``v == hi`` falls in it), values outside
    are clamped into the end bins. A constant series (``hi == lo``) puts everything in bin 0.
    Returns float32 ``[..., bins]``.
    """
    span = (hi - lo).unsqueeze(-1)
    pos = torch.where(span > 0, (v - lo.unsqueeze(-1)) / torch.where(span > 0, span, 1.0), torch.zeros_like(v))
    idx = (pos * bins).floor().clamp_(0, bins - 1).long()
    counts = torch.zeros(*v.shape[:-1], bins, device=v.device, dtype=torch.float32)
    counts.scatter_add_(-1, idx, torch.ones_like(v, dtype=torch.float32))
    return counts


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
