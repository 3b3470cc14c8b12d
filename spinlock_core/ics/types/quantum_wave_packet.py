"""``quantum_wave_packet``: Gaussian wave packets (Gaussian envelope times a plane-wave carrier).

One packet is the periodised 2-D Gaussian wave packet

    psi_p(r) = exp(i phi_p) * sum_{m in Z^2} exp(-|d + m|^2 / (4 sigma^2)) exp(2 pi i k_p.(d + m)),
    d = r - r_p  (minimum image),

so ``|psi_p|^2`` is a Gaussian of standard deviation ``sigma`` (the position uncertainty) around
the centre ``r_p``, and the carrier has wavevector ``k_p`` in cycles per domain (any real ``k_p``:
each periodic image carries its own carrier, so the field is smooth and periodic). Its Fourier
coefficients are the Gaussian ``exp(-4 pi^2 sigma^2 |q - k_p|^2)`` sampled at the integer
wavenumbers ``q``, so ``|FFT|`` peaks at the lattice point nearest ``k_p``. Images with
``|m| <= 2`` per axis are summed (the first neglected one, at ``|d + m| >= 2.5``, is below
``exp(-6.25 / (4 sigma^2)) <= exp(-25)`` for ``sigma <= 0.25``). The state is the superposition ``psi = sum_p psi_p``
(packets interfere where they overlap).

Per sample, draws in this order (P = ``num_packets``, G = ceil(C / 3) channel groups): centres
``U[0,1)^[P, 2]`` (columns x, y), carrier magnitudes ``|k| ~ U[k_min, k_max)^[P]`` (cycles per
domain, ``momentum_range``), carrier angles ``U[0, 2 pi)^[P]``, packet phases
``phi ~ U[0, 2 pi)^[P]``, then group phase offsets ``U[0, 2 pi)^[G - 1, P]``.

Channels: channel ``c`` belongs to group ``g = c // 3`` and carries component ``c mod 3`` of the
group's state ``psi_g = sum_p exp(i theta_{g,p}) psi_p``: 0 -> Re psi_g, 1 -> Im psi_g,
2 -> |psi_g|^2. Group 0 has ``theta_{0,p} = 0``; groups ``g >= 1`` (channels ``c >= 3``) use the
drawn per-packet phase offsets ``theta_{g,p}`` (with one packet this is a global phase rotation,
so the ``|psi|^2`` channels repeat; with several packets the interference terms differ).

Amplitude: one per-sample factor ``a`` scales the state, ``psi -> a psi``, and the ``|psi|^2``
channels are computed from the scaled state, so ``ch(3g+2) == ch(3g)^2 + ch(3g+1)^2`` exactly.
``a`` solves ``a^2 S_lin + a^4 S_sq = C * amplitude^2`` (S_lin / S_sq: sums of the channels'
mean squares at ``a = 1``), so the sample's RMS over ``(C, H, W)`` is ``amplitude``.

Cost: O(B P N^2) (separable 1-D profiles and one outer product per packet); a few ms for
B = 64 at 128^2 on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field, model_validator

from ..grid import coordinate_grid, periodic_delta
from ..registry import ICParams, register_ic
from ..spectral import sample_generators

__all__ = ["QuantumWavePacketParams", "quantum_wave_packet", "quantum_wave_packet_draws"]

_IMAGES = (-2.0, -1.0, 0.0, 1.0, 2.0)


class QuantumWavePacketParams(ICParams):
    sigma: float = Field(
        default=0.08,
        gt=0,
        le=0.25,
        description=(
            "position uncertainty: std of |psi|^2 (envelope exp(-r^2/(4 sigma^2))), fraction of the domain side"
        ),
    )
    momentum_range: tuple[float, float] = Field(
        default=(2.0, 10.0),
        description=(
            "(k_min, k_max): carrier wavenumber |k| drawn uniformly from [k_min, k_max), cycles per domain; "
            "k_max must stay below the Nyquist wavenumber N/2"
        ),
    )
    num_packets: int = Field(default=1, ge=1, le=64, description="number of superposed packets")
    amplitude: float = Field(default=1.0, gt=0, description="RMS of the sample over channels and pixels")

    @model_validator(mode="after")
    def _check(self) -> QuantumWavePacketParams:
        lo, hi = self.momentum_range
        if not 0 <= lo <= hi:
            raise ValueError(f"momentum_range must satisfy 0 <= k_min <= k_max, got {self.momentum_range}")
        return self


def quantum_wave_packet_draws(
    seeds: Sequence[int], num_channels: int, params: QuantumWavePacketParams
) -> dict[str, torch.Tensor]:
    """Per-sample draws on the CPU (float32), in the documented order.

    Returns:
        ``centre [B, P, 2]`` (x, y), ``k [B, P, 2]`` (kx, ky; cycles per domain),
        ``phase [B, P]``, ``offset [B, G, P]`` (group phase offsets; row 0 is zero).
    """
    p = params.num_packets
    groups = -(-num_channels // 3)
    lo, hi = params.momentum_range
    centre, k, phase, offset = [], [], [], []
    for g in sample_generators(seeds):
        c = torch.rand((p, 2), generator=g)
        kmag = lo + (hi - lo) * torch.rand((p,), generator=g)
        ang = 2 * math.pi * torch.rand((p,), generator=g)
        ph = 2 * math.pi * torch.rand((p,), generator=g)
        off = 2 * math.pi * torch.rand((groups - 1, p), generator=g)
        centre.append(c)
        k.append(torch.stack([kmag * torch.cos(ang), kmag * torch.sin(ang)], dim=-1))
        phase.append(ph)
        offset.append(torch.cat([torch.zeros((1, p)), off], dim=0))
    return {
        "centre": torch.stack(centre),
        "k": torch.stack(k),
        "phase": torch.stack(phase),
        "offset": torch.stack(offset),
    }


def _profile_1d(coord: torch.Tensor, centre: torch.Tensor, k: torch.Tensor, sigma: float) -> torch.Tensor:
    """``[B, P, N]`` complex: ``sum_m exp(-(d+m)^2 / (4 sigma^2)) exp(2 pi i k (d+m))``."""
    d = periodic_delta(coord, centre.unsqueeze(-1))  # [B, P, N]
    kk = k.unsqueeze(-1)
    out = torch.zeros(d.shape, dtype=torch.complex64, device=d.device)
    for m in _IMAGES:
        dm = d + m
        env = torch.exp(-dm * dm / (4.0 * sigma * sigma))
        out = out + torch.polar(env, 2 * math.pi * kk * dm)
    return out


@register_ic(
    "quantum_wave_packet",
    tier="tier1",
    domain="quantum physics",
    description="Gaussian wave packets (Gaussian envelope x plane-wave carrier); channels Re psi, Im psi, |psi|^2",
    params_model=QuantumWavePacketParams,
)
def quantum_wave_packet(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: QuantumWavePacketParams
) -> torch.Tensor:
    n, c = grid_size, num_channels
    if params.momentum_range[1] >= n / 2:
        raise ValueError(
            f"quantum_wave_packet: momentum_range upper bound {params.momentum_range[1]} must be "
            f"below the Nyquist wavenumber N/2 = {n / 2} for grid_size {n}"
        )
    dr = {key: v.to(device) for key, v in quantum_wave_packet_draws(seeds, c, params).items()}
    x, _ = coordinate_grid(n, device)
    coord = x[0]
    px = _profile_1d(coord, dr["centre"][..., 0], dr["k"][..., 0], params.sigma)  # [B, P, N] along x
    py = _profile_1d(coord, dr["centre"][..., 1], dr["k"][..., 1], params.sigma)  # [B, P, N] along y
    rot = torch.polar(torch.ones_like(dr["offset"]), dr["offset"] + dr["phase"].unsqueeze(1))  # [B, G, P]
    psi = torch.einsum("bgp,bpi,bpj->bgij", rot, py, px)  # [B, G, N, N]

    re, im = psi.real, psi.imag
    sq = re * re + im * im  # [B, G, N, N]
    # how many channels show each component of each group (the last group may be partial)
    chan = torch.arange(c)
    counts = torch.zeros(psi.shape[1], 3, dtype=torch.float32)
    counts.index_put_((chan // 3, chan % 3), torch.ones(c), accumulate=True)
    counts = counts.to(device)  # [G, 3]
    s_lin = ((re * re).mean(dim=(2, 3)) * counts[:, 0] + (im * im).mean(dim=(2, 3)) * counts[:, 1]).sum(1)
    s_sq = ((sq * sq).mean(dim=(2, 3)) * counts[:, 2]).sum(1)  # [B]
    target = c * params.amplitude**2
    # a^2 solves s_sq * t^2 + s_lin * t - target = 0 (positive root, in a cancellation-free form)
    a2 = (2.0 * target) / (s_lin + torch.sqrt(s_lin * s_lin + 4.0 * s_sq * target)).clamp_min(1e-30)
    a = torch.sqrt(a2)[:, None, None, None]
    comps = torch.stack([a * re, a * im, a2[:, None, None, None] * sq], dim=2)  # [B, G, 3, N, N]
    return comps.flatten(1, 2)[:, :c].float().contiguous()
