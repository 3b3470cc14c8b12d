"""Spectral synthesis of stationary Gaussian random fields (GRFs) on the periodic unit square.

Convention (fixes the reference's cycles-per-pixel defect, spec §5.2 / B5):

* Wavenumbers ``k`` are in **cycles per domain** (see :mod:`spinlock_core.ics.grid`) and
  lengths are fractions of the domain side, so a field looks the same at every resolution.
* A spectrum is a set of non-negative **per-mode weights** ``w_k`` on the ``N x N`` FFT grid,
  with ``w_k = w_{-k}`` and ``w_0 = 0``. The synthesised field is the circular filtering of
  real white noise ``z`` (i.i.d. N(0, 1) per pixel)::

      x = N * irfft2(rfft2(z) * sqrt(w))

  so ``x = sum_k sqrt(w_k) xi_k exp(2 pi i k.r)`` with Hermitian complex normals ``xi_k``
  (``E|xi_k|^2 = 1``): the field is real, stationary, has **exactly zero spatial mean** and
  per-pixel variance ``E[x^2] = sum_k w_k`` exactly (for the discrete field).
  :func:`normalise_weights` scales ``w`` so that ``sum_k w_k = variance``.
* Gaussian spectrum for correlation length ``l``: ``w_k ∝ exp(-2 pi^2 l^2 |k|^2)``, the
  Fourier transform of the covariance ``C(r) = variance * exp(-r^2 / (2 l^2))`` (``r`` in domain
  units). Removing the zero mode subtracts the constant ``~ 2 pi l^2 * variance`` from ``C``
  (negligible for ``l <= 0.1``); modes with ``l * N < ~2`` are not resolved (near-white field).
* Power-law spectrum: ``w_k ∝ |k|^-alpha`` for ``|k| >= k_min``, 0 below (so no DC blow-up).
  ``alpha`` is the exponent of the 2-D per-mode power; the radially integrated (shell)
  spectrum then goes as ``k^(1 - alpha)``.

Random numbers: every sample draws from its own ``torch_generator(seed, "cpu")``; draws are
made on the CPU and moved to the device, so a sample is identical on CPU and CUDA up to
floating-point rounding of the (batched, on-device) FFTs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch

from ..seeding import torch_generator
from .grid import wavenumber_grid

__all__ = [
    "sample_generators",
    "draw_normal",
    "draw_uniform",
    "gaussian_weights",
    "power_law_weights",
    "normalise_weights",
    "filter_noise",
    "grf_from_noise",
    "normalise_rms",
]


def sample_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per sample seed (draws are device-independent)."""
    return [torch_generator(int(s), "cpu") for s in seeds]


def draw_normal(gens: Sequence[torch.Generator], shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """``[B, *shape]`` float32 standard normals, sample ``b`` from ``gens[b]``, moved to ``device``."""
    out = torch.stack([torch.randn(tuple(shape), generator=g, dtype=torch.float32) for g in gens])
    return out.to(device)


def draw_uniform(
    gens: Sequence[torch.Generator], shape: Sequence[int], device: torch.device, low: float = 0.0, high: float = 1.0
) -> torch.Tensor:
    """``[B, *shape]`` float32 uniforms on ``[low, high)``, sample ``b`` from ``gens[b]``."""
    out = torch.stack([torch.rand(tuple(shape), generator=g, dtype=torch.float32) for g in gens])
    return (low + (high - low) * out).to(device)


def _k_squared(grid_size: int) -> torch.Tensor:
    kx, ky = wavenumber_grid(grid_size, "cpu")
    return kx * kx + ky * ky


@lru_cache(maxsize=64)
def gaussian_weights(grid_size: int, length_scale: float) -> torch.Tensor:
    """``[N, N]`` float64 (CPU) un-normalised weights ``exp(-2 pi^2 l^2 |k|^2)``, zero mode 0."""
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale}")
    w = torch.exp(-2.0 * math.pi**2 * float(length_scale) ** 2 * _k_squared(grid_size))
    w[0, 0] = 0.0
    return w


@lru_cache(maxsize=64)
def power_law_weights(grid_size: int, alpha: float, min_wavenumber: float = 1.0) -> torch.Tensor:
    """``[N, N]`` float64 (CPU) un-normalised weights ``|k|^-alpha`` for ``|k| >= k_min``, else 0."""
    if not min_wavenumber > 0:
        raise ValueError(f"min_wavenumber must be > 0, got {min_wavenumber}")
    k = torch.sqrt(_k_squared(grid_size))
    w = torch.where(k >= min_wavenumber, k.clamp_min(1e-12) ** (-float(alpha)), torch.zeros_like(k))
    if not float(w.sum()) > 0:
        raise ValueError(
            f"min_wavenumber={min_wavenumber} leaves no mode on a {grid_size}^2 grid "
            f"(largest |k| is {float(k.max()):.3g} cycles per domain)"
        )
    return w


def normalise_weights(weights: torch.Tensor, variance: float = 1.0) -> torch.Tensor:
    """Copy of ``weights`` with the zero mode set to 0 and ``sum == variance``."""
    w = weights.clone()
    w[..., 0, 0] = 0.0
    total = w.sum(dim=(-2, -1), keepdim=True)
    if not bool((total > 0).all()):
        raise ValueError("spectrum has no power outside the zero mode")
    return w * (float(variance) / total)


def filter_noise(noise: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Circularly filter white noise: ``N * irfft2(rfft2(noise) * sqrt(weights))``.

    Args:
        noise: ``[..., N, N]`` real white noise (unit variance per pixel).
        weights: ``[N, N]`` (or broadcastable ``[..., N, N]``) per-mode weights on the full FFT
            grid, symmetric under ``k -> -k``.

    Returns:
        ``[..., N, N]`` field of ``noise.dtype`` with per-pixel variance ``sum(weights)``.
    """
    n = noise.shape[-1]
    if noise.shape[-2] != n or weights.shape[-2:] != (n, n):
        raise ValueError(f"noise {tuple(noise.shape)} and weights {tuple(weights.shape)} must end in [N, N]")
    amp = (torch.sqrt(weights[..., : n // 2 + 1]) * n).to(device=noise.device, dtype=noise.dtype)
    return torch.fft.irfft2(torch.fft.rfft2(noise) * amp, s=(n, n))


def grf_from_noise(noise: torch.Tensor, length_scale: float, variance: float = 1.0) -> torch.Tensor:
    """Gaussian-spectrum GRF (correlation length ``length_scale``, variance ``variance``)
    from white noise ``[..., N, N]``."""
    w = normalise_weights(gaussian_weights(noise.shape[-1], float(length_scale)), variance)
    return filter_noise(noise, w)


def normalise_rms(field: torch.Tensor, amplitude: float = 1.0, eps: float = 1e-12) -> torch.Tensor:
    """Scale each sample of ``[B, C, H, W]`` so its RMS over ``(C, H, W)`` is ``amplitude``.

    An all-zero sample stays zero.
    """
    rms = field.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return field * (float(amplitude) / rms.clamp_min(eps))
