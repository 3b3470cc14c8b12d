"""Aggregates over the M realizations of one operator at one time step (vectorised torch).

Every aggregate takes ``x: Tensor [B, M, C, H, W]`` (B independent frames, e.g. the time steps
of a rollout; M realizations; C channels) and returns ``[B, K, H, W]`` float32:

============  ==  =============================================================================
name          K   definition (per frame b and pixel)
============  ==  =============================================================================
mean          C   mean over M, per channel (field units)
variance      1   ``sqrt(sum_c var_c**2)``: L2 norm over channels of the per-channel variance over M
stddev        1   ``sqrt(sum_c var_c)``: L2 norm over channels of the per-channel standard deviation
envelope      1   ``||max_M x - min_M x||_2`` over channels (the ensemble's width)
overlay       3   the M realizations coloured (see below) and alpha-blended: colours in [0, 1]
entropy       1   Shannon entropy of the M values in ``bins`` bins, averaged over channels
pca           3   per-pixel ensemble standard deviation along principal components 1, 2, 3 (R, G, B)
ssim          1   mean SSIM over realization pairs and channels, Gaussian window sigma 1.5
spectral      1   ``log10`` of the 2-D power spectrum (zero frequency at the centre)
============  ==  =============================================================================

Conventions:

* **Variance** is the unbiased one (divisor M - 1; 0 when M = 1), computed on data shifted by
  realization 0 (``x - x[:, :1]``), so identical realizations give exactly 0.
* **Overlay**: realization m is composited "over" the previous ones with opacity
  ``1 / (m + 1)``, which gives every realization the same weight 1/M (the result does not
  depend on their order): where realizations agree the image is crisp, where they disagree it
  is a ghosted mix. Colouring is done by ``colorize`` (the frame renderer passes its
  realization colours, so the overlay shares their scale); the default colours channels 0–2 as
  RGB (C >= 3) or channel 0 with cubehelix, with the 1–99 % limits of the frame's M
  realizations.
* **Entropy**: per frame and channel the range ``[lo, hi]`` of the values of all M
  realizations and pixels is cut into ``bins`` (default 16) equal bins (bin
  ``floor((v - lo) / (hi - lo) * bins)``, the top edge in the last bin; a constant frame puts
  everything in bin 0). With ``p_k`` the fraction of the M values in bin k,
  ``H = -sum_k p_k log(p_k) / log(base)``, base 2 by default (bits), averaged over channels.
  Range ``[0, log_base(min(bins, M))]``: 0 when all realizations fall in one bin.
* **PCA**: per frame the realizations are flattened to ``X [M, C*H*W]`` and centred over M;
  with ``u_k`` the k-th eigenvector of ``X X^T`` (largest eigenvalue first), component k's map
  is ``||sum_m u_mk X_m||_C / sqrt(M - 1)``, the standard deviation of the ensemble along
  component k at that pixel (sign-free; components beyond the rank M - 1 are 0). The sum of
  the squared maps over k (C = 1) is the per-pixel variance.
* **SSIM** (Wang, Bovik, Sheikh & Simoncelli 2004): local means, variances and covariance
  with an isotropic Gaussian window (sigma 1.5, truncated at radius ``int(3.5 sigma + 0.5)`` =
  5, i.e. 11 x 11, normalised), periodic boundaries (the fields live on a torus, like the
  operators' circular convolutions), population (biased) moments,
  ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L`` the frame's value range per channel
  (over all M realizations and pixels; 1 if constant). The map is averaged over all pairs
  ``i < j`` and channels; 1 when M = 1.
* **Spectral**: ``P = |fft2(x)|^2 / (H W)`` per realization and channel (Parseval: the mean
  of P is the mean square), averaged over M and C, ``fftshift``-ed (zero frequency at pixel
  ``(H // 2, W // 2)``), then ``log10(P + 1e-12 max(P) + 1e-30)`` (max over the frame).
* Non-finite inputs (diverged realizations) give non-finite outputs at the affected pixels
  (the whole frame for pca and spectral); the renderer draws them grey.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from spinlock_core.config.render import AGGREGATE_NAMES, DEFAULT_AGGREGATES

from .colors import colormap_lut
from .palettes import finite, robust_range

__all__ = [
    "Aggregate",
    "AGGREGATES",
    "DEFAULT_AGGREGATES",
    "aggregate_mean",
    "aggregate_variance",
    "aggregate_stddev",
    "aggregate_envelope",
    "aggregate_overlay",
    "aggregate_entropy",
    "aggregate_pca",
    "aggregate_ssim",
    "aggregate_spectral",
    "gaussian_window",
    "default_colorize",
    "compute_aggregates",
]

Colorize = Callable[[torch.Tensor], torch.Tensor]  # [B, M, C, H, W] -> [B, M, 3, H, W] in [0, 1]


def _check(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 5:
        raise ValueError(f"aggregates take [B, M, C, H, W], got shape {tuple(x.shape)}")
    return x.to(torch.float32)


def aggregate_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over realizations: ``[B, M, C, H, W] -> [B, C, H, W]``."""
    return _check(x).mean(dim=1)


def _channel_variance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased per-channel variance over M of ``[B, M, C, H, W]`` → ``[B, C, H, W]`` (0 if M = 1)."""
    x = _check(x)
    m = x.shape[1]
    if m < 2:
        return torch.zeros_like(x[:, 0])
    d = x - x[:, :1]
    return (d - d.mean(dim=1, keepdim=True)).square().sum(dim=1) / (m - 1)


def aggregate_variance(x: torch.Tensor) -> torch.Tensor:
    """L2 norm over channels of the per-channel variance: ``[B, M, C, H, W] -> [B, 1, H, W]``."""
    return _channel_variance(x).square().sum(dim=1, keepdim=True).sqrt()


def aggregate_stddev(x: torch.Tensor) -> torch.Tensor:
    """L2 norm over channels of the per-channel standard deviation: ``-> [B, 1, H, W]``."""
    return _channel_variance(x).sum(dim=1, keepdim=True).sqrt()


def aggregate_envelope(x: torch.Tensor) -> torch.Tensor:
    """``||max_M - min_M||_2`` over channels: ``[B, M, C, H, W] -> [B, 1, H, W]``."""
    x = _check(x)
    return (x.amax(dim=1) - x.amin(dim=1)).square().sum(dim=1, keepdim=True).sqrt()


def default_colorize(x: torch.Tensor) -> torch.Tensor:
    """Colours ``[B, M, 3, H, W]`` in ``[0, 1]`` of ``x [B, M, C, H, W]``.

    C >= 3: channels 0–2 as R, G, B; else channel 0 through the cubehelix LUT. Limits: the
    1 and 99 % quantiles of each frame's M realizations (shown channels jointly), clamped.
    """
    x = _check(x)
    b = x.shape[0]
    shown = x[:, :, :3] if x.shape[2] >= 3 else x[:, :, :1]
    lo, hi = robust_range(shown.reshape(b, -1))
    u = ((shown - lo.view(-1, 1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1, 1)).clamp(0.0, 1.0)
    if u.shape[2] == 3:
        return u
    lut = torch.from_numpy(colormap_lut("cubehelix", "float")).to(torch.float32)
    idx = torch.round(torch.nan_to_num(u[:, :, 0], nan=0.0) * 255.0).long()
    return lut[idx].permute(0, 1, 4, 2, 3)


def aggregate_overlay(x: torch.Tensor, colorize: Colorize | None = None) -> torch.Tensor:
    """Equal-weight alpha blend of the coloured realizations: ``-> [B, 3, H, W]`` in ``[0, 1]``.

    ``out_0 = c_0``, ``out_m = (1 - a_m) out_{m-1} + a_m c_m`` with ``a_m = 1 / (m + 1)``.
    """
    x = _check(x)
    col = (colorize or default_colorize)(x)
    out = col[:, 0].clone()
    for m in range(1, col.shape[1]):
        a = 1.0 / (m + 1)
        out.mul_(1.0 - a).add_(col[:, m], alpha=a)
    return out


_PAIRWISE_MAX_M = 32  # up to this M, entropy counts bin matches pairwise (O(M^2), no histogram)


def aggregate_entropy(x: torch.Tensor, bins: int = 16, base: float = 2.0) -> torch.Tensor:
    """Per-pixel Shannon entropy of the M realization values (module docstring): ``-> [B, 1, H, W]``."""
    x = _check(x)
    if bins < 1 or not base > 1.0:
        raise ValueError(f"entropy needs bins >= 1 and base > 1, got bins={bins}, base={base}")
    b, m, c, h, w = x.shape
    ok = finite(x)
    all_finite = bool(ok.all())
    if all_finite:
        xf, lo, hi = x, x.amin(dim=(1, 3, 4), keepdim=True), x.amax(dim=(1, 3, 4), keepdim=True)
    else:
        xf = torch.where(ok, x, torch.zeros_like(x))
        big = torch.finfo(torch.float32).max
        lo = torch.where(ok, x, torch.full_like(x, big)).amin(dim=(1, 3, 4), keepdim=True)
        hi = torch.where(ok, x, torch.full_like(x, -big)).amax(dim=(1, 3, 4), keepdim=True)
    span = hi - lo
    scale = torch.where(span > 0, bins / span, torch.zeros_like(span))
    idx = ((xf - lo) * scale).floor_().clamp_(0, bins - 1)  # [B, M, C, H, W] bin numbers (float)
    if m <= _PAIRWISE_MAX_M:
        # sum_k p_k log p_k = (1/M) sum_m log(n_m / M), n_m = realizations sharing m's bin
        n = torch.ones(b, m, c, h, w, dtype=torch.float32)
        for i in range(m):
            for j in range(i + 1, m):
                same = idx[:, i] == idx[:, j]
                n[:, i] += same
                n[:, j] += same
        ent = -torch.log(n.div_(m)).sum(dim=1) / (m * math.log(base))
    else:
        counts = torch.zeros(b, bins, c, h, w, dtype=torch.float32)
        counts.scatter_add_(1, idx.to(torch.long), torch.ones_like(xf))
        p = counts / m
        plogp = torch.where(p > 0, p * torch.log(p.clamp_min(1e-30)), torch.zeros_like(p))
        ent = -plogp.sum(dim=1) / math.log(base)  # [B, C, H, W]
    if not all_finite:
        ent = torch.where(ok.all(dim=1), ent, torch.full_like(ent, float("nan")))
    return ent.mean(dim=1, keepdim=True)


def aggregate_pca(x: torch.Tensor, components: int = 3) -> torch.Tensor:
    """Ensemble standard deviation along the top principal components: ``-> [B, components, H, W]``."""
    x = _check(x)
    b, m, c, h, w = x.shape
    out = torch.zeros(b, components, h, w, dtype=torch.float32)
    if m < 2:
        return out
    d = (x - x[:, :1]).reshape(b, m, -1).to(torch.float64)
    d = d - d.mean(dim=1, keepdim=True)
    gram = d @ d.transpose(1, 2)  # [B, M, M]
    _, vecs = torch.linalg.eigh(torch.nan_to_num(gram, nan=0.0))  # ascending eigenvalues
    k = min(components, m - 1)  # centred data have rank <= M - 1: further components are 0
    u = vecs.flip(-1)[:, :, :k]  # [B, M, k], largest first
    proj = torch.einsum("bmk,bmd->bkd", u, d).reshape(b, k, c, h, w)
    out[:, :k] = (proj.square().sum(dim=2).sqrt() / math.sqrt(m - 1)).to(torch.float32)
    out[~finite(x.reshape(b, -1)).all(dim=1)] = float("nan")  # a diverged realization
    return out


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, radius ``int(truncate * sigma + 0.5)`` (11 taps for 1.5)."""
    r = int(truncate * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return (g / g.sum()).to(torch.float32)


def _blur(z: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable periodic Gaussian blur of ``z [N, H, W]``."""
    n, h, w = z.shape
    r = taps.numel() // 2
    z = z.unsqueeze(1)
    ry, rx = min(r, h - 1), min(r, w - 1)
    ky = taps[r - ry : r + ry + 1]
    kx = taps[r - rx : r + rx + 1]
    z = F.conv2d(F.pad(z, (rx, rx, 0, 0), mode="circular"), (kx / kx.sum()).view(1, 1, 1, -1))
    z = F.conv2d(F.pad(z, (0, 0, ry, ry), mode="circular"), (ky / ky.sum()).view(1, 1, -1, 1))
    return z.squeeze(1)


def aggregate_ssim(x: torch.Tensor, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean pairwise SSIM map (module docstring): ``[B, M, C, H, W] -> [B, 1, H, W]``."""
    x = _check(x)
    b, m, c, h, w = x.shape
    if m < 2:
        return torch.ones(b, 1, h, w, dtype=torch.float32)
    ok = finite(x)
    rng = x.amax(dim=(1, 3, 4)) - x.amin(dim=(1, 3, 4))  # [B, C]
    rng = torch.where(rng > 0, rng, torch.ones_like(rng))
    c1 = ((k1 * rng) ** 2).view(b, 1, c, 1, 1)
    c2 = ((k2 * rng) ** 2).view(b, 1, c, 1, 1)
    taps = gaussian_window(sigma)
    mu = _blur(x.reshape(-1, h, w), taps).view(b, m, c, h, w)
    ex2 = _blur(x.square().reshape(-1, h, w), taps).view(b, m, c, h, w)
    i, j = torch.triu_indices(m, m, offset=1)
    exy = _blur((x[:, i] * x[:, j]).reshape(-1, h, w), taps).view(b, i.numel(), c, h, w)
    mx, my = mu[:, i], mu[:, j]
    vx, vy = ex2[:, i] - mx.square(), ex2[:, j] - my.square()
    cxy = exy - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx.square() + my.square() + c1) * (vx + vy + c2))
    s = torch.where(ok.all(dim=1, keepdim=True).expand_as(s), s, torch.full_like(s, float("nan")))
    return s.mean(dim=(1, 2)).unsqueeze(1)


def aggregate_spectral(x: torch.Tensor) -> torch.Tensor:
    """Log10 power spectrum averaged over M and C, zero frequency centred: ``-> [B, 1, H, W]``."""
    x = _check(x)
    h, w = x.shape[-2:]
    p = torch.fft.fft2(x).abs().square().mean(dim=(1, 2)) / (h * w)  # [B, H, W]
    p = torch.fft.fftshift(p, dim=(-2, -1))
    floor = 1e-12 * p.flatten(1).amax(dim=1).view(-1, 1, 1) + 1e-30
    return torch.log10(p + floor).unsqueeze(1)


@dataclass(frozen=True)
class Aggregate:
    """One registered aggregate.

    Attributes:
        name: registry key (CLI and config value).
        fn: ``fn(x [B, M, C, H, W]) -> [B, K, H, W]``.
        description: one line for ``--help`` and docs.
        title: column header.
        output: ``"field"`` (K = C, field units: drawn like a realization), ``"scalar"``
            (K = 1, drawn with ``cmap``), ``"rgb"`` (K = 3, channels jointly normalised as R, G,
            B) or ``"color"`` (K = 3, already colours in [0, 1]).
        cmap: colormap of a scalar aggregate.
        zero_based: non-negative quantity: the lower colour limit is 0 (not a percentile).
        fixed_range: ``(M, C) -> (vmin, vmax)``: colour limits that do not depend on the data
            (used in every normalisation mode).
    """

    name: str
    fn: Callable[..., torch.Tensor]
    description: str
    title: str
    output: str
    cmap: str | None = None
    zero_based: bool = False
    fixed_range: Callable[[int, int], tuple[float, float]] | None = None


ENTROPY_BINS = 16
ENTROPY_BASE = 2.0

#: The aggregate registry, in :data:`~spinlock_core.config.render.AGGREGATE_NAMES` order.
AGGREGATES: dict[str, Aggregate] = {
    a.name: a
    for a in (
        Aggregate(
            "mean", aggregate_mean, "mean over realizations (field units, drawn like a realization)", "mean", "field"
        ),
        Aggregate(
            "variance",
            aggregate_variance,
            "unbiased variance over realizations, L2 norm over channels",
            "variance",
            "scalar",
            "ember",
            zero_based=True,
        ),
        Aggregate(
            "stddev",
            aggregate_stddev,
            "standard deviation over realizations, L2 norm over channels",
            "std dev",
            "scalar",
            "ember",
            zero_based=True,
        ),
        Aggregate(
            "envelope",
            aggregate_envelope,
            "max - min over realizations, L2 norm over channels",
            "envelope",
            "scalar",
            "ember",
            zero_based=True,
        ),
        Aggregate("overlay", aggregate_overlay, "realizations alpha-blended with equal weights", "overlay", "color"),
        Aggregate(
            "entropy",
            aggregate_entropy,
            f"Shannon entropy (bits) of the realization values in {ENTROPY_BINS} bins per channel",
            "entropy [bits]",
            "scalar",
            "lagoon",
            fixed_range=lambda m, c: (0.0, math.log(max(2, min(ENTROPY_BINS, m)), ENTROPY_BASE)),
        ),
        Aggregate(
            "pca",
            aggregate_pca,
            "ensemble std along principal components 1, 2, 3 as R, G, B",
            "PCA 1-2-3",
            "rgb",
            zero_based=True,
        ),
        Aggregate(
            "ssim",
            aggregate_ssim,
            "mean pairwise SSIM of realizations (Gaussian window, sigma 1.5)",
            "SSIM",
            "scalar",
            "lagoon",
            fixed_range=lambda m, c: (0.0, 1.0),
        ),
        Aggregate(
            "spectral",
            aggregate_spectral,
            "log10 power spectrum, zero frequency centred",
            "log power",
            "scalar",
            "ember",
        ),
    )
}
assert tuple(AGGREGATES) == AGGREGATE_NAMES, "registry and spinlock_core.config.render.AGGREGATE_NAMES disagree"


def compute_aggregates(
    x: torch.Tensor, names: tuple[str, ...] | list[str], *, chunk: int = 16, colorize: Colorize | None = None
) -> dict[str, torch.Tensor]:
    """Every aggregate in ``names`` of ``x [F, M, C, H, W]``, ``chunk`` frames at a time → ``{name: [F, K, H, W]}``."""
    unknown = [n for n in names if n not in AGGREGATES]
    if unknown:
        raise ValueError(f"unknown aggregate(s) {unknown}; allowed: {', '.join(AGGREGATES)}")
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for f0 in range(0, x.shape[0], chunk):
        xs = x[f0 : f0 + chunk]
        for n in names:
            if n == "overlay":
                parts[n].append(aggregate_overlay(xs, colorize))
            elif n == "entropy":
                parts[n].append(aggregate_entropy(xs, ENTROPY_BINS, ENTROPY_BASE))
            else:
                parts[n].append(AGGREGATES[n].fn(xs))
    return {n: torch.cat(v) for n, v in parts.items()}
