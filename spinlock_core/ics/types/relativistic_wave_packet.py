"""``relativistic_wave_packet``: a Gaussian wave packet Lorentz-contracted along its velocity.

In the packet's rest frame the envelope is isotropic with width ``sigma``; seen from the lab
frame in which it moves with speed ``v`` (units of ``c``), lengths along the motion shrink by
``gamma = 1 / sqrt(1 - v^2)``. With ``x'`` the coordinate along the velocity direction ``e``
(angle ``theta``) and ``y'`` across it, both measured from the centre::

    psi(r) = exp(-(gamma^2 x'^2 + y'^2) / (2 sigma^2)) * exp(i (2 pi k x' + phi))

so the envelope's widths are ``sigma / gamma`` along the motion and ``sigma`` across it (the
second-moment aspect ratio of ``|psi|^2`` is ``gamma``), and the carrier (``k`` cycles per domain)
runs along the velocity. The packet is periodised exactly (sum over all images, built in Fourier
space with :func:`~spinlock_core.ics.types.coherent_state.gaussian_packet_spectrum`).

Per sample, draws in this order: centre ``U[0,1)^2`` (x, y), direction ``theta = 2 pi U``,
wavenumber ``k ~ U[k_min, k_max)`` from ``wavenumber_range`` (cycles per domain), phase
``phi = 2 pi U``.

**Channels** are quadratures of the same packet: channel ``c`` of ``C`` is
``Re(exp(-i pi c / C) psi)`` (``C = 2``: real and imaginary parts, whose quadrature sum is the
envelope). The sample is scaled to RMS ``amplitude`` over ``(C, H, W)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field, field_validator

from ..registry import ICParams, register_ic
from ..spectral import normalise_rms, sample_generators
from .coherent_state import gaussian_packet_spectrum, quadratures

__all__ = ["RelativisticWavePacketParams", "relativistic_wave_packet", "lorentz_factor"]


def lorentz_factor(velocity: float) -> float:
    """``gamma = 1 / sqrt(1 - v^2)`` for ``0 <= v < 1`` (units of the speed of light)."""
    return 1.0 / math.sqrt(1.0 - velocity * velocity)


class RelativisticWavePacketParams(ICParams):
    velocity: float = Field(
        default=0.8, ge=0, le=0.99, description=("packet speed in units of c (0 <= v <= 0.99); gamma = 1/sqrt(1 - v^2)")
    )
    sigma: float = Field(
        default=0.1,
        gt=0,
        le=0.25,
        description=("rest-frame envelope width: std across the motion; sigma/gamma along it (domain units)"),
    )
    wavenumber_range: tuple[float, float] = Field(
        default=(4.0, 12.0), description=("carrier wavenumber drawn per sample from U[min, max), cycles per domain")
    )
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")

    @field_validator("wavenumber_range")
    @classmethod
    def _check_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(f"wavenumber_range must satisfy 0 <= min <= max, got {v}")
        return v


@register_ic(
    "relativistic_wave_packet",
    tier="tier4",
    domain="relativistic physics",
    description="Gaussian wave packet Lorentz-contracted along its velocity, carrier along the motion",
    params_model=RelativisticWavePacketParams,
)
def relativistic_wave_packet(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: RelativisticWavePacketParams
) -> torch.Tensor:
    n = grid_size
    k_lo, k_hi = params.wavenumber_range
    rows = []
    for g in sample_generators(seeds):
        centre = torch.rand((2,), generator=g, dtype=torch.float64)
        theta = 2 * math.pi * torch.rand((1,), generator=g, dtype=torch.float64)
        k = k_lo + (k_hi - k_lo) * torch.rand((1,), generator=g, dtype=torch.float64)
        phase = 2 * math.pi * torch.rand((1,), generator=g, dtype=torch.float64)
        rows.append(torch.cat([centre, theta, k, phase]))
    d = torch.stack(rows).to(device)  # [B, 5]
    theta, k = d[:, 2], d[:, 3]
    ex, ey = torch.cos(theta), torch.sin(theta)
    gamma = lorentz_factor(params.velocity)
    # covariance of the envelope: R diag(sigma^2 / gamma^2, sigma^2) R^T, R = [[ex, -ey], [ey, ex]]
    s_par, s_perp = (params.sigma / gamma) ** 2, params.sigma**2
    cov = torch.empty(len(seeds), 1, 2, 2, dtype=torch.float64, device=device)
    cov[:, 0, 0, 0] = s_par * ex * ex + s_perp * ey * ey
    cov[:, 0, 1, 1] = s_par * ey * ey + s_perp * ex * ex
    cov[:, 0, 0, 1] = cov[:, 0, 1, 0] = (s_par - s_perp) * ex * ey
    carrier = torch.stack([k * ex, k * ey], dim=-1)[:, None]  # [B, 1, 2]
    spec = gaussian_packet_spectrum(n, d[:, None, :2], carrier, d[:, None, 4], cov)
    psi = torch.fft.ifft2(spec) * (n * n)
    return normalise_rms(quadratures(psi, num_channels), params.amplitude)
