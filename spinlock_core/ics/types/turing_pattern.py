"""``turing_pattern``: Turing patterns (spots, stripes, labyrinths, spot/stripe mixtures) at wavelength lambda.

The target wavenumber is ``f = 1 / lambda`` cycles per domain (``lambda`` = ``wavelength``, or drawn
per sample from ``wavelength_range``, uniform, when that is given). Plane waves are periodic on
the unit square only for integer wavevectors, so every wavevector is the integer vector nearest
to ``f (cos a, sin a)`` (``|k|`` within 0.71 of ``f``; the angle moves by at most ``0.71 / f`` rad).

* ``spots`` (hexagonal): ``sum_{j=1..3} cos(2 pi k_j.(r - r0))`` with ``k_1`` at the drawn angle
  ``theta``, ``k_2`` at ``theta + 2 pi / 3`` and ``k_3 = -k_1 - k_2`` (exact resonance, so the
  three waves lock into a hexagonal lattice of spots; ``|k_3|`` is within ~1.4 of ``f``), lattice
  offset ``r0``: the spots (maxima) sit at ``r0`` + lattice vectors.
* ``stripes``: ``cos(2 pi k.r + phi)``, ``k`` at angle ``theta``, phase ``phi``.
* ``labyrinth``: disordered stripes: white noise filtered to a ring ``exp(-(|k| - f)^2 / (2 delta^2))``
  (``delta = max(0.1 f, 0.7)``), normalised to unit variance and saturated with ``tanh(2 u)``
  (isotropic spectrum peaked at ``f``).
* ``mixed``: spot and stripe domains coexisting: ``m * spots + (1 - m) * stripes`` (each part at
  unit RMS; the stripes are the ``k_1`` mode of the spot lattice, as in hexagon-stripe
  coexistence) with a smooth mask ``m = sigmoid(4 g)``, ``g`` a unit GRF of length 0.15.

Optional refinement (``refine_steps`` > 0): the pattern, scaled to RMS 0.4, is evolved by that
many semi-implicit steps (dt = 0.5) of the Swift-Hohenberg equation
``u_t = eps u - (1 + lap / (2 pi f)^2)^2 u + g2 u^2 - u^3`` (eps = 0.3; g2 = 1 for spots/mixed,
which stabilises hexagons, 0 for stripes/labyrinth), i.e. per step in Fourier space
``u_hat <- (u_hat + dt FFT(g2 u^2 - u^3)) / (1 - dt L(k))``, ``L(k) = eps - (1 - |k|^2 / f^2)^2``.
At the same wavelength it relaxes labyrinths and mixtures towards saturated, uniform-amplitude
stripes / spots and adds the harmonics of the nonlinear state (an ideal stripe pattern is
already nearly stationary and changes little).
Cost: 2 real FFTs of ``[B, N, N]`` per step, at most 100 steps (~10 ms per step for B = 64 at
128^2 on one CPU thread; the growth time is 1 / eps = 3.3, i.e. ~7 steps).

The pattern (unit RMS) is shared by all channels; each channel adds an independent GRF
perturbation of correlation length ``lambda / 2`` and std ``perturbation_amplitude`` (relative
to the pattern). The sample is ``amplitude * (pattern + perturbation)``.

Per sample, draws in this order: ``u_lambda ~ U[0,1)`` (always; used only with
``wavelength_range``), ``theta ~ U[0, 2 pi)``, ``r0 ~ U[0,1)^2``, ``phi ~ U[0, 2 pi)``, then
``[N, N]`` white noise (labyrinth only), ``[N, N]`` white noise (mask; mixed only), then
``[C, N, N]`` white noise (only when ``perturbation_amplitude > 0``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, wavenumber_grid
from ..registry import ICParams, register_ic
from ..spectral import filter_noise, grf_from_noise, normalise_rms, normalise_weights, sample_generators

__all__ = ["TuringPatternParams", "turing_pattern", "turing_pattern_draws", "swift_hohenberg_refine"]

_SH_EPS, _SH_DT = 0.3, 0.5


class TuringPatternParams(ICParams):
    pattern_type: Literal["spots", "stripes", "labyrinth", "mixed"] = Field(
        default="spots",
        description="spots (hexagonal), stripes, labyrinth (disordered stripes) or mixed (spot + stripe domains)",
    )
    wavelength: float = Field(
        default=0.125, gt=0, le=0.5, description="pattern wavelength lambda, fraction of the domain side"
    )
    wavelength_range: tuple[float, float] | None = Field(
        default=None, description=("(lo, hi): when given, lambda ~ U[lo, hi) per sample (overrides wavelength)")
    )
    perturbation_amplitude: float = Field(
        default=0.1,
        ge=0,
        description=("std of the per-channel GRF perturbation (length lambda / 2) relative to the unit-RMS pattern"),
    )
    refine_steps: int = Field(
        default=0,
        ge=0,
        le=100,
        description=("number of Swift-Hohenberg steps applied to the pattern (0 = the analytic pattern)"),
    )
    amplitude: float = Field(default=1.0, gt=0, description="overall scale: RMS of the pattern")

    @model_validator(mode="after")
    def _check(self) -> TuringPatternParams:
        if self.wavelength_range is not None:
            lo, hi = self.wavelength_range
            if not 0 < lo <= hi <= 0.5:
                raise ValueError(f"wavelength_range must satisfy 0 < lo <= hi <= 0.5, got {self.wavelength_range}")
        return self


def _scalar_draws(gens: Sequence[torch.Generator], params: TuringPatternParams) -> dict[str, torch.Tensor]:
    lam, theta, r0, phi = [], [], [], []
    for g in gens:
        u = torch.rand((1,), generator=g)
        if params.wavelength_range is not None:
            lo, hi = params.wavelength_range
            lam.append(lo + (hi - lo) * u)
        else:
            lam.append(torch.full((1,), params.wavelength))
        theta.append(2 * math.pi * torch.rand((1,), generator=g))
        r0.append(torch.rand((2,), generator=g))
        phi.append(2 * math.pi * torch.rand((1,), generator=g))
    lam_t, th = torch.cat(lam), torch.cat(theta)
    f = 1.0 / lam_t
    angles = th[:, None] + torch.tensor([0.0, 2 * math.pi / 3])  # [B, 2]
    k12 = torch.round(f[:, None, None] * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1))
    k = torch.cat([k12, -(k12[:, :1] + k12[:, 1:])], dim=1)  # [B, 3, 2]
    return {"wavelength": lam_t, "theta": th, "r0": torch.stack(r0), "phi": torch.cat(phi), "k": k}


def turing_pattern_draws(seeds: Sequence[int], params: TuringPatternParams) -> dict[str, torch.Tensor]:
    """Per-sample scalar draws (CPU): ``wavelength [B]``, ``theta [B]``, ``r0 [B, 2]``, ``phi [B]`` and the
    integer wavevectors ``k [B, 3, 2]`` (spots use all three, stripes ``k[:, 0]``)."""
    return _scalar_draws(sample_generators(seeds), params)


def swift_hohenberg_refine(
    u: torch.Tensor, wavenumber: torch.Tensor, steps: int, quadratic: float, eps: float = _SH_EPS, dt: float = _SH_DT
) -> torch.Tensor:
    """``steps`` semi-implicit Swift-Hohenberg steps on ``u [B, N, N]`` (critical wavenumber
    ``wavenumber [B]`` in cycles per domain); see the module docstring."""
    n = u.shape[-1]
    kx, ky = wavenumber_grid(n, u.device, half=True)
    q2 = (kx * kx + ky * ky).to(u.dtype)
    lin = eps - (1.0 - q2 / (wavenumber.to(u.dtype)[:, None, None] ** 2)) ** 2  # [B, N, N/2+1]
    denom = 1.0 - dt * lin
    uh = torch.fft.rfft2(u)
    for _ in range(steps):
        nl = torch.fft.rfft2(quadratic * u * u - u * u * u)
        uh = (uh + dt * nl) / denom
        u = torch.fft.irfft2(uh, s=(n, n))
    return u


@register_ic(
    "turing_pattern",
    tier="tier1",
    domain="biology",
    description="Turing patterns (hexagonal spots, stripes, labyrinth, spot/stripe mixture) at wavelength lambda",
    params_model=TuringPatternParams,
)
def turing_pattern(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: TuringPatternParams
) -> torch.Tensor:
    n, kind = grid_size, params.pattern_type
    lam_min = params.wavelength_range[0] if params.wavelength_range is not None else params.wavelength
    if lam_min * n < 3:
        raise ValueError(
            f"turing_pattern: wavelength {lam_min} is below 3 pixels on a {n}^2 grid (need wavelength >= {3 / n:.4g})"
        )
    gens = sample_generators(seeds)
    dr = {k: v.to(device) for k, v in _scalar_draws(gens, params).items()}
    lab_noise = (
        torch.stack([torch.randn((n, n), generator=g) for g in gens]).to(device) if kind == "labyrinth" else None
    )
    mask_noise = torch.stack([torch.randn((n, n), generator=g) for g in gens]).to(device) if kind == "mixed" else None
    pert_noise = (
        torch.stack([torch.randn((num_channels, n, n), generator=g) for g in gens]).to(device)
        if params.perturbation_amplitude > 0
        else None
    )

    f = 1.0 / dr["wavelength"]  # [B]
    x, y = coordinate_grid(n, device)
    k = dr["k"]
    ox, oy = dr["r0"][:, 0, None, None], dr["r0"][:, 1, None, None]

    def wave(j: int, phase: torch.Tensor) -> torch.Tensor:
        return torch.cos(2 * math.pi * (k[:, j, 0, None, None] * x + k[:, j, 1, None, None] * y) + phase)

    lattice_phase = [-2 * math.pi * (k[:, j, 0, None, None] * ox + k[:, j, 1, None, None] * oy) for j in range(3)]
    if kind in ("spots", "mixed"):
        lattice = sum(wave(j, lattice_phase[j]) for j in range(3))
        assert isinstance(lattice, torch.Tensor)  # three waves (sum's start 0 only for no terms)
        spots = lattice / math.sqrt(1.5)
    if kind == "stripes":
        pattern = math.sqrt(2.0) * wave(0, dr["phi"][:, None, None])
    elif kind == "spots":
        pattern = spots
    elif kind == "mixed":
        assert mask_noise is not None  # drawn for "mixed"
        m = torch.sigmoid(4.0 * grf_from_noise(mask_noise, 0.15, 1.0))
        pattern = m * spots + (1.0 - m) * math.sqrt(2.0) * wave(0, lattice_phase[0])
    else:
        assert lab_noise is not None  # drawn for "labyrinth"
        kx, ky = wavenumber_grid(n, device)
        kmag = torch.sqrt(kx * kx + ky * ky).float()
        delta = torch.clamp(0.1 * f, min=0.7)[:, None, None]
        w = normalise_weights(torch.exp(-((kmag - f[:, None, None]) ** 2) / (2 * delta**2)))
        pattern = torch.tanh(2.0 * filter_noise(lab_noise, w))

    if params.refine_steps > 0:
        u0 = 0.4 * normalise_rms(pattern.unsqueeze(1)).squeeze(1)
        pattern = swift_hohenberg_refine(u0, f, params.refine_steps, 1.0 if kind in ("spots", "mixed") else 0.0)
    field = normalise_rms(pattern.unsqueeze(1)).expand(-1, num_channels, -1, -1)

    if pert_noise is not None:
        ell = (0.5 * dr["wavelength"]).double()
        kx, ky = wavenumber_grid(n, device)
        wp = torch.exp(-2 * math.pi**2 * ell[:, None, None] ** 2 * (kx * kx + ky * ky))
        wp = normalise_weights(wp, params.perturbation_amplitude**2)[:, None]  # [B, 1, N, N]
        field = field + filter_noise(pert_noise, wp)
    return params.amplitude * field
