"""Coordinate and wavenumber grids on the unit-square domain (cached per size and device).

Conventions:

* The domain is the unit square ``[0, 1)^2``, periodic. Pixel ``(i, j)`` (row ``i``, column
  ``j``) sits at ``y = i / N``, ``x = j / N``; arrays are ``[H, W] = [N, N]``, row index first.
* Wavenumbers are in **cycles per domain** (integers from ``fftfreq(N) * N``), so a mode
  ``k`` is ``exp(2 pi i (kx x + ky y))``. ``kx`` runs along the last (column) axis.
* Distances between points are minimum-image (periodic) distances, in domain units.
"""

from __future__ import annotations

from functools import lru_cache

import torch

__all__ = ["coordinate_grid", "wavenumber_grid", "periodic_delta", "periodic_gaussian_1d"]


@lru_cache(maxsize=16)
def _coordinate_grid(grid_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    c = torch.arange(grid_size, dtype=torch.float32, device=device) / grid_size
    y, x = torch.meshgrid(c, c, indexing="ij")
    return x.contiguous(), y.contiguous()


def coordinate_grid(grid_size: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``, each ``[N, N]`` float32 in ``[0, 1)``: ``x[i, j] = j / N``, ``y[i, j] = i / N``.

    Cached per ``(grid_size, device)``; treat the tensors as read-only.
    """
    if grid_size < 2:
        raise ValueError(f"grid_size must be >= 2, got {grid_size}")
    return _coordinate_grid(int(grid_size), torch.device(device))


@lru_cache(maxsize=16)
def _wavenumber_grid(grid_size: int, device: torch.device, half: bool) -> tuple[torch.Tensor, torch.Tensor]:
    ky = torch.fft.fftfreq(grid_size, d=1.0 / grid_size, dtype=torch.float64)
    if half:
        kx = torch.fft.rfftfreq(grid_size, d=1.0 / grid_size, dtype=torch.float64)
    else:
        kx = ky.clone()
    KY, KX = torch.meshgrid(ky, kx, indexing="ij")
    return KX.to(device), KY.to(device)


def wavenumber_grid(
    grid_size: int, device: torch.device | str = "cpu", *, half: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kx, ky)`` in cycles per domain, float64, laid out like ``fft2`` output ``[N, N]``
    (or ``rfft2`` output ``[N, N // 2 + 1]`` when ``half``). Cached; treat as read-only."""
    if grid_size < 2:
        raise ValueError(f"grid_size must be >= 2, got {grid_size}")
    return _wavenumber_grid(int(grid_size), torch.device(device), bool(half))


def periodic_delta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Signed minimum-image difference ``a - b`` on the unit circle, in ``[-0.5, 0.5)``."""
    d = a - b
    return d - torch.floor(d + 0.5)


def periodic_gaussian_1d(coord: torch.Tensor, centre: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Periodised 1-D Gaussian ``sum_{m=-1,0,1} exp(-(c - c0 + m)^2 / (2 sigma^2))``.

    Args:
        coord: ``[N]`` coordinates in ``[0, 1)``.
        centre: ``[...]`` centres in domain units.
        sigma: ``[...]`` widths in domain units (images beyond one period are ignored, so
            keep ``sigma <= 0.25``: the first neglected image is below ``exp(-18)``).

    Returns:
        ``[..., N]``; the product of an x- and a y-profile is a smooth periodic 2-D Gaussian.
    """
    d = periodic_delta(coord, centre.unsqueeze(-1))
    s2 = 2.0 * sigma.unsqueeze(-1) ** 2
    total = sum(torch.exp(-((d + m) ** 2) / s2) for m in (-1.0, 0.0, 1.0))
    assert isinstance(total, torch.Tensor)  # a sum of three tensors (sum's start 0 only for no terms)
    return total
