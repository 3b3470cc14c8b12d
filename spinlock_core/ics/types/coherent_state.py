"""``coherent_state``: Gaussian (minimum-uncertainty) wave packets over a weak GRF background.

A coherent state of a harmonic oscillator has a Gaussian wavefunction times a plane-wave
carrier; its shape does not spread. Per mode ``m`` (``num_modes`` of them, superposed) the
complex packet is::

    psi_m(r) = exp(-|r - r_m|^2 / (2 sigma^2)) * exp(i (2 pi f e_m . (r - r_m) + phi_m))

with ``f = oscillation_frequency`` (cycles per domain), unit direction ``e_m`` at angle
``theta_m``, centre ``r_m`` and phase ``phi_m`` (``sigma`` is the standard deviation of the
amplitude envelope ``|psi_m|``; the density ``|psi_m|^2`` has ``sigma / sqrt(2)``). The packet is
periodised exactly (sum over all periodic images, built in Fourier space:
``psi_hat(k) = 2 pi sigma^2 exp(-2 pi^2 sigma^2 |k - f e_m|^2 - 2 pi i k . r_m + i phi_m)`` on the
integer wavenumber grid, one inverse FFT per sample).

**Channels** are quadratures of the same state: channel ``c`` of ``C`` is
``X_c = Re(exp(-i pi c / C) psi)`` (``C = 1``: ``Re psi``; ``C = 2``: ``Re psi`` and ``Im psi``, so
``sqrt(X_0^2 + X_1^2) = |psi|`` is the envelope). The packet part is scaled to RMS ``alpha``
(over channels and pixels, per sample), then an independent GRF background per channel is added
with standard deviation ``background_level`` (absolute, not negligible unless 0) and Gaussian
correlation length ``background_length_scale``. Sample RMS ~ ``sqrt(alpha^2 + background_level^2)``.

Draws per sample, in order: centres ``U[0,1)^[M, 2]`` (columns x, y), angles ``U[0,1)^[M] * 2 pi``,
phases ``U[0,1)^[M] * 2 pi``, then (if ``background_level > 0``) white noise ``N(0,1)^[C, N, N]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field

from ..grid import wavenumber_grid
from ..registry import ICParams, register_ic
from ..spectral import grf_from_noise, normalise_rms, sample_generators

__all__ = ["CoherentStateParams", "coherent_state", "gaussian_packet_spectrum", "quadratures"]


class CoherentStateParams(ICParams):
    alpha: float = Field(default=1.0, ge=0, description="packet amplitude: RMS of the packet part of the sample")
    sigma: float = Field(
        default=0.08,
        gt=0,
        le=0.25,
        description=("std of the Gaussian amplitude envelope exp(-r^2/(2 sigma^2)), fraction of the domain side"),
    )
    oscillation_frequency: float = Field(default=6.0, ge=0, description="carrier frequency, cycles per domain")
    num_modes: int = Field(
        default=1, ge=1, le=64, description="number of superposed packets (own centre, direction, phase)"
    )
    background_level: float = Field(default=0.3, ge=0, description="std of the GRF background (absolute; 0 = none)")
    background_length_scale: float = Field(
        default=0.05,
        gt=0,
        le=0.5,
        description=("Gaussian correlation length of the background, fraction of the domain side"),
    )


def gaussian_packet_spectrum(
    grid_size: int, centre: torch.Tensor, carrier: torch.Tensor, phase: torch.Tensor, inv_cov: torch.Tensor
) -> torch.Tensor:
    """Fourier coefficients of periodised Gaussian packets, summed over modes.

    The packet ``exp(-d^T A d / 2) exp(i (2 pi k0 . d + phase))`` with ``d = r - centre``
    (``A`` positive definite, domain units) has coefficients
    ``2 pi / sqrt(det A) * exp(-2 pi^2 (k - k0)^T A^-1 (k - k0) - 2 pi i k . centre + i phase)``
    on the integer wavenumber grid ``k`` (Poisson summation: exactly the sum over all images).

    Args:
        grid_size: N.
        centre: ``[B, M, 2]`` (x, y) in domain units.
        carrier: ``[B, M, 2]`` carrier wavevector (kx, ky), cycles per domain.
        phase: ``[B, M]`` carrier phase at the centre.
        inv_cov: ``[B, M, 2, 2]`` the matrix ``A^-1`` (a covariance, domain units squared).

    Returns:
        ``[B, N, N]`` complex128 in ``fft2`` layout; ``N^2 * ifft2`` of it samples the field on
        the pixel grid.
    """
    kx, ky = wavenumber_grid(grid_size, centre.device)  # [N, N] float64
    centre, carrier, phase, s = centre.double(), carrier.double(), phase.double(), inv_cov.double()
    norm = 2 * math.pi * torch.sqrt(torch.linalg.det(s))  # [B, M]
    total = torch.zeros(centre.shape[0], grid_size, grid_size, dtype=torch.complex128, device=centre.device)
    for m in range(centre.shape[1]):  # one mode at a time: O(B N^2) memory

        def e(t: torch.Tensor, m: int = m) -> torch.Tensor:
            return t[:, m, None, None]

        qx, qy = kx - e(carrier[..., 0]), ky - e(carrier[..., 1])
        quad = e(s[..., 0, 0]) * qx * qx + 2 * e(s[..., 0, 1]) * qx * qy + e(s[..., 1, 1]) * qy * qy
        arg = e(phase) - 2 * math.pi * (kx * e(centre[..., 0]) + ky * e(centre[..., 1]))
        total += e(norm) * torch.exp(-2 * math.pi**2 * quad) * torch.polar(torch.ones_like(arg), arg)
    return total


def quadratures(psi: torch.Tensor, num_channels: int) -> torch.Tensor:
    """``[B, N, N]`` complex -> ``[B, C, N, N]`` float32 ``Re(exp(-i pi c / C) psi)``."""
    ang = math.pi * torch.arange(num_channels, dtype=torch.float64, device=psi.device) / num_channels
    rot = torch.polar(torch.ones_like(ang), -ang)  # [C]
    return (psi[:, None] * rot[None, :, None, None]).real.to(torch.float32)


@register_ic(
    "coherent_state",
    tier="tier4",
    domain="quantum physics",
    description="Gaussian coherent-state wave packets with a plane-wave carrier over a weak GRF background",
    params_model=CoherentStateParams,
)
def coherent_state(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: CoherentStateParams
) -> torch.Tensor:
    n, m = grid_size, params.num_modes
    draws, noises = [], []
    for g in sample_generators(seeds):
        centre = torch.rand((m, 2), generator=g, dtype=torch.float64)
        angle = 2 * math.pi * torch.rand((m,), generator=g, dtype=torch.float64)
        phase = 2 * math.pi * torch.rand((m,), generator=g, dtype=torch.float64)
        draws.append(torch.cat([centre, angle[:, None], phase[:, None]], dim=1))
        if params.background_level > 0:
            noises.append(torch.randn((num_channels, n, n), generator=g))
    d = torch.stack(draws).to(device)  # [B, M, 4]
    f = params.oscillation_frequency
    carrier = torch.stack([f * torch.cos(d[..., 2]), f * torch.sin(d[..., 2])], dim=-1)
    cov = torch.zeros(d.shape[:2] + (2, 2), dtype=torch.float64, device=device)
    cov[..., 0, 0] = cov[..., 1, 1] = params.sigma**2
    spec = gaussian_packet_spectrum(n, d[..., :2], carrier, d[..., 3], cov)
    psi = torch.fft.ifft2(spec) * (n * n)
    field = params.alpha * normalise_rms(quadratures(psi, num_channels))
    if params.background_level > 0:
        noise = torch.stack(noises).to(device)
        field = field + grf_from_noise(noise, params.background_length_scale, params.background_level**2)
    return field
