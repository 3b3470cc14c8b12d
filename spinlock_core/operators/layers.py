"""Functional building blocks shared by the batched operator bank and the reference network.

Layout convention: a *stacked* activation tensor holds G operators side by side in the channel
dimension, ``[R, G * Cp, H, W]``, where R is the number of realizations in flight (1 while the
deterministic trunk is shared) and Cp the padded per-operator width of the layer. Padded
channels carry exact zeros through every block (zero weights, zero affine parameters).

Conventions:
    * Normalisation statistics are accumulated in float32 whatever the compute dtype.
    * ``eps`` = 1e-5 everywhere (as torch's norms).
    * The Laplace transform of a standard normal ``z`` is ``-sign(u-½) ln(1-2|u-½|)`` with
      ``u = Φ(z)``, i.e. Laplace(0, 1) (variance 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_GAIN",
    "GROUP_NORM_GROUPS",
    "norm_groups",
    "apply_activation",
    "normalize_stacked",
    "laplace_from_normal",
    "gaussian_filter_spectrum",
    "correlate_noise",
]

EPS = 1e-5

#: Pointwise nonlinearities. Each maps 0 to 0, so zero-padded channels stay zero.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
    "none": lambda x: x,
}

#: Weight-init gain per activation (variance preserving, as ``torch.nn.init.calculate_gain``).
ACTIVATION_GAIN = {
    "relu": math.sqrt(2.0),
    "gelu": math.sqrt(2.0),
    "silu": math.sqrt(2.0),
    "tanh": 5.0 / 3.0,
    "none": 1.0,
}

#: Number of channel groups of ``normalization: group`` (fewer when the layer is narrower).
GROUP_NORM_GROUPS = 4


def norm_groups(kind: str, width: int) -> list[int] | None:
    """Group id of each of ``width`` channels for a statistics-based normalisation, else None.

    ``instance``: one group per channel; ``layer``: one group; ``group``: ``min(4, width)``
    contiguous groups (channel c in group ``c * g // width``, no divisibility needed).
    ``batch`` and ``none`` use no statistics (``batch`` is an eval-mode affine with random
    running statistics; ``none`` is the identity).
    """
    if kind == "instance":
        return list(range(width))
    if kind == "layer":
        return [0] * width
    if kind == "group":
        g = min(GROUP_NORM_GROUPS, width)
        return [c * g // width for c in range(width)]
    if kind in ("batch", "none"):
        return None
    raise ValueError(f"unknown normalization {kind!r} (allowed: instance, group, layer, batch, none)")


def apply_activation(x: torch.Tensor, name: str) -> torch.Tensor:
    """Apply activation ``name`` (see :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name](x)
    except KeyError:
        raise ValueError(f"unknown activation {name!r} (allowed: {', '.join(ACTIVATIONS)})") from None


def normalize_stacked(
    x: torch.Tensor,
    num_ops: int,
    group_id: torch.Tensor,
    group_count: torch.Tensor,
    stat_mask: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
) -> torch.Tensor:
    """Per-operator normalisation of a stacked tensor, all operators in one pass.

    Args:
        x: ``[R, G*Cp, H, W]`` activations.
        num_ops: G.
        group_id: ``[G, Cp]`` int64 group index of each channel (0 for channels without stats).
        group_count: ``[G, NG]`` float32 number of channels in each group (≥ 1).
        stat_mask: ``[G, Cp]`` bool, True where the channel is normalised by its group statistics.
        gamma, beta: ``[G, Cp]`` float32 per-channel affine applied after normalisation
            (for ``batch`` they carry the folded running statistics; zero on padded channels).

    Returns:
        ``[R, G*Cp, H, W]`` in x's dtype: ``(x - mean_g) * rstd_g * gamma + beta`` where the
        statistics are over the channel's group and the spatial dims (biased variance), and
        ``x * gamma + beta`` for channels without statistics.
    """
    r, gc, h, w = x.shape
    cp = gc // num_ops
    if bool(stat_mask.any()):
        xs = x.view(r, num_ops, cp, h * w)
        s1 = xs.sum(dim=-1, dtype=torch.float32)  # [R, G, Cp]
        s2 = xs.float().square().sum(dim=-1)
        # one-hot channel→group assignment: deterministic on every device (no atomics)
        onehot = torch.nn.functional.one_hot(group_id, group_count.shape[1]).float()  # [G, Cp, NG]
        g1 = torch.einsum("rgc,gcn->rgn", s1, onehot)
        g2 = torch.einsum("rgc,gcn->rgn", s2, onehot)
        n = group_count.unsqueeze(0) * float(h * w)
        mean_g = g1 / n
        var_g = (g2 / n - mean_g.square()).clamp_min_(0.0)
        rstd_g = torch.rsqrt(var_g + EPS)
        mean_c = torch.einsum("rgn,gcn->rgc", mean_g, onehot)
        rstd_c = torch.einsum("rgn,gcn->rgc", rstd_g, onehot)
        mean_c = torch.where(stat_mask, mean_c, torch.zeros_like(mean_c))
        rstd_c = torch.where(stat_mask, rstd_c, torch.ones_like(rstd_c))
        scale = rstd_c * gamma
        shift = beta - mean_c * scale
    else:
        scale = gamma.unsqueeze(0).expand(r, -1, -1)
        shift = beta.unsqueeze(0).expand(r, -1, -1)
    scale = scale.reshape(r, gc, 1, 1).to(x.dtype)
    shift = shift.reshape(r, gc, 1, 1).to(x.dtype)
    return torch.addcmul(shift, x, scale)


def laplace_from_normal(z: torch.Tensor) -> torch.Tensor:
    """Map standard-normal values to Laplace(0, 1) values through the normal CDF."""
    u = 0.5 * torch.erfc(-z.float() / math.sqrt(2.0)) - 0.5  # Φ(z) - ½ in (-½, ½)
    a = (1.0 - 2.0 * u.abs()).clamp_min(1e-12)
    return (-torch.sign(u) * torch.log(a)).to(z.dtype)


def gaussian_filter_spectrum(length: torch.Tensor, h: int, w: int, device: torch.device) -> torch.Tensor:
    """Unit-variance-preserving Gaussian filter transfer functions, one per correlation length.

    Args:
        length: ``[G]`` correlation lengths as fractions of the domain side (0 = white).
        h, w: grid size.

    Returns:
        ``[G, 1, H, W//2+1]`` real transfer functions ``exp(-2π² ℓ² |k|²)`` (k in cycles per
        domain) scaled so that filtering white unit-variance noise keeps unit variance.
    """
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=device)
    kx = torch.fft.rfftfreq(w, d=1.0 / w, device=device)
    k2 = ky[:, None].square() + kx[None, :].square()  # cycles per domain, squared
    ell = length.to(device=device, dtype=torch.float32).view(-1, 1, 1)
    filt = torch.exp(-2.0 * math.pi**2 * ell.square() * k2)  # [G, H, W//2+1]
    # Variance of the filtered field = mean over the full spectrum of |filt|^2.
    weight = torch.full((w // 2 + 1,), 2.0, device=device)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    power = (filt.square() * weight).sum(dim=(-2, -1)) / float(h * w)
    return (filt / power.sqrt().view(-1, 1, 1)).unsqueeze(1)


def correlate_noise(z: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    """Filter white noise ``z [R, G, C, H, W]`` with per-operator ``transfer [G, 1, H, W//2+1]``."""
    h, w = z.shape[-2:]
    spec = torch.fft.rfft2(z.float())
    return torch.fft.irfft2(spec * transfer, s=(h, w)).to(z.dtype)
