"""Perceptual colormaps built in OKLab, and torch colour mapping with a NaN colour.

Adds two sequential maps to those of :mod:`.colors` (``cubehelix``, ``gray``, ``bwr``):

* ``"ember"``: dark violet → red → orange → pale yellow (magnitudes: spread, variance,
  power). Like matplotlib's *magma*, but defined in closed form.
* ``"lagoon"``: deep blue → teal → green → pale yellow-green (information-like quantities:
  entropy, similarity). Like *viridis*, in closed form.

Construction (Björn Ottosson's OKLab, 2020; polar form L, C, h): for a grey level
``λ ∈ [0, 1]`` the colour has lightness ``L = L0 + (L1 - L0) λ`` (linear, so perceived
lightness increases uniformly), hue ``h = h0 + (h1 - h0) λ`` (degrees) and chroma
``C = Cmax · sin(π (0.15 + 0.7 λ))``; where that colour is outside the sRGB gamut the chroma is
reduced (bisection, 30 halvings) at constant L and h until it fits. OKLab → linear sRGB uses
Ottosson's matrices; linear → sRGB the IEC 61966-2-1 transfer function.

Colour mapping (:func:`map_scalar`, :func:`map_rgb`) runs in torch, vectorised over any
batch of cells: ``x01 = clamp((x - vmin) / (vmax - vmin), 0, 1)`` (never wraps), LUT index
``round(255 · x01)`` (half to even, as :func:`.colors.to_uint8`); non-finite values get
:data:`NAN_COLOR` (they mark diverged realizations).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from .colors import COLORMAPS as _BASE_COLORMAPS
from .colors import colormap_lut

__all__ = [
    "PALETTES",
    "ALL_COLORMAPS",
    "NAN_COLOR",
    "oklab_to_srgb",
    "oklch_ramp",
    "palette_lut",
    "map_scalar",
    "map_rgb",
    "map_unit_rgb",
    "finite",
    "robust_range",
    "MAX_QUANTILE_VALUES",
]

#: Most values a percentile is computed from (a regular stride subsample of larger sets).
MAX_QUANTILE_VALUES = 65536

#: (L0, L1, h0, h1, Cmax) of the OKLCh ramps.
PALETTES: dict[str, tuple[float, float, float, float, float]] = {
    "ember": (0.18, 0.97, 300.0, 460.0, 0.20),
    "lagoon": (0.25, 0.94, 275.0, 110.0, 0.15),
}
#: Every colormap name the frame renderer accepts.
ALL_COLORMAPS: tuple[str, ...] = tuple(_BASE_COLORMAPS) + tuple(PALETTES)
#: RGB of non-finite values.
NAN_COLOR: tuple[int, int, int] = (150, 150, 150)

_M1 = np.array(
    [[1.0, 0.3963377774, 0.2158037573], [1.0, -0.1055613458, -0.0638541728], [1.0, -0.0894841775, -1.2914855480]]
)
_M2 = np.array(
    [
        [4.0767416621, -3.3077115913, 0.2309699292],
        [-1.2684380046, 2.6097574011, -0.3413193965],
        [-0.0041960863, -0.7034186147, 1.7076147010],
    ]
)


def _oklab_to_linear(lab: np.ndarray) -> np.ndarray:
    lms = (lab @ _M1.T) ** 3
    return lms @ _M2.T


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """OKLab ``[..., 3]`` (L, a, b) → sRGB ``[..., 3]`` in ``[0, 1]`` (clipped)."""
    lin = np.clip(_oklab_to_linear(np.asarray(lab, dtype=np.float64)), 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(srgb, 0.0, 1.0)


def oklch_ramp(lam: np.ndarray, L0: float, L1: float, h0: float, h1: float, cmax: float) -> np.ndarray:
    """sRGB ``[..., 3]`` of the ramp described in the module docstring at grey levels ``lam``."""
    lam = np.clip(np.asarray(lam, dtype=np.float64), 0.0, 1.0)
    L = L0 + (L1 - L0) * lam
    h = np.deg2rad(h0 + (h1 - h0) * lam)
    c_max = cmax * np.sin(np.pi * (0.15 + 0.7 * lam))

    def lab(c: np.ndarray) -> np.ndarray:
        return np.stack([L, c * np.cos(h), c * np.sin(h)], axis=-1)

    def in_gamut(c: np.ndarray) -> np.ndarray:
        lin = _oklab_to_linear(lab(c))
        return np.all((lin >= -1e-9) & (lin <= 1.0 + 1e-9), axis=-1)

    lo, hi = np.zeros_like(c_max), c_max.copy()
    for _ in range(30):  # largest in-gamut chroma below c_max, at constant L and h
        mid = 0.5 * (lo + hi)
        ok = in_gamut(mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return oklab_to_srgb(lab(np.where(in_gamut(c_max), c_max, lo)))


@cache
def _lut(name: str) -> torch.Tensor:
    if name in PALETTES:
        rgb = oklch_ramp(np.arange(256) / 255.0, *PALETTES[name])
        lut = np.rint(rgb * 255.0).astype(np.uint8)
    elif name in _BASE_COLORMAPS:
        lut = colormap_lut(name)
    else:
        raise ValueError(f"unknown colormap {name!r}; allowed: {', '.join(ALL_COLORMAPS)}")
    return torch.from_numpy(np.concatenate([lut, np.array([NAN_COLOR], dtype=np.uint8)]))


def palette_lut(name: str) -> np.ndarray:
    """The 256-entry ``uint8 [256, 3]`` table of any name in :data:`ALL_COLORMAPS`."""
    return _lut(name)[:256].numpy().copy()


def finite(x: torch.Tensor) -> torch.Tensor:
    """``torch.isfinite(x)`` computed as ``|x| < inf`` (same result; ``torch.isfinite`` is ~30x slower on the CPU)."""
    return x.abs() < float("inf")


def robust_range(
    values: torch.Tensor | np.ndarray, low: float = 1.0, high: float = 99.0, *, zero_based: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row colour limits of ``values [R, n]`` → ``(vmin [R], vmax [R])`` float32 tensors.

    ``vmin``/``vmax`` are the ``low``/``high`` percentiles (linear interpolation, as
    ``numpy.percentile``) of the finite values of each row, computed on at most
    :data:`MAX_QUANTILE_VALUES` of them (a regular stride subsample of longer rows; exact for
    shorter ones); ``vmin = 0`` when ``zero_based``. A row without finite values gets
    ``(0, 1)``; when ``vmax <= vmin``, ``vmax = vmin + 1``.
    """
    v = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    v = v.reshape(v.shape[0], -1)
    step = -(-v.shape[1] // MAX_QUANTILE_VALUES)
    v = np.ascontiguousarray(v[:, ::step], dtype=np.float32)
    r, n = v.shape
    q = np.array([low, high], dtype=np.float64) / 100.0
    out = np.zeros((2, r), dtype=np.float64)
    out[1] = 1.0
    ok = np.isfinite(v)
    full = ok.all(axis=1) if n else np.zeros(r, bool)
    if full.any():  # the common case: partial sorts at the 4 order statistics needed
        pos = q * (n - 1)
        k = np.floor(pos).astype(np.int64)
        k1 = np.minimum(k + 1, n - 1)
        part = np.partition(v[full], np.unique(np.concatenate([k, k1])), axis=1).astype(np.float64)
        t = pos - k
        out[:, full] = (part[:, k] + (part[:, k1] - part[:, k]) * t).T
    for i in np.flatnonzero(~full):
        a = v[i][ok[i]]
        if a.size:
            out[:, i] = np.percentile(a.astype(np.float64), [low, high])
    lo, hi = out
    if zero_based:
        lo = np.zeros_like(lo)
    hi = np.where(hi > lo, hi, lo + 1.0)
    return torch.from_numpy(lo.astype(np.float32)), torch.from_numpy(hi.astype(np.float32))


def _unit(x: torch.Tensor, vmin: torch.Tensor, vmax: torch.Tensor) -> torch.Tensor:
    """``clamp((x - vmin) / (vmax - vmin), 0, 1)`` with limits broadcast from ``[B]``."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    lo = vmin.to(torch.float32).reshape(shape)
    span = (vmax.to(torch.float32) - vmin.to(torch.float32)).reshape(shape)
    return ((x.to(torch.float32) - lo) / span).clamp_(0.0, 1.0)


def map_scalar(x: torch.Tensor, vmin: torch.Tensor, vmax: torch.Tensor, cmap: str) -> torch.Tensor:
    """Colour scalar cells ``x [B, H, W]`` with per-cell limits ``[B]`` → ``uint8 [B, H, W, 3]``."""
    bad = ~finite(x)
    idx = torch.round(_unit(x, vmin, vmax) * 255.0).to(torch.long)
    idx = torch.where(bad, torch.full_like(idx, 256), idx)
    return _lut(cmap)[idx]


def map_rgb(x: torch.Tensor, vmin: torch.Tensor, vmax: torch.Tensor) -> torch.Tensor:
    """Cells ``x [B, 3, H, W]`` → ``uint8 [B, H, W, 3]``, one joint limit pair ``[B]`` per cell.

    A pixel with any non-finite channel gets :data:`NAN_COLOR`.
    """
    bad = ~finite(x).all(dim=1)
    out = torch.round(_unit(x, vmin, vmax) * 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    out[bad] = torch.tensor(NAN_COLOR, dtype=torch.uint8)
    return out


def map_unit_rgb(x01: torch.Tensor) -> torch.Tensor:
    """Colours already in ``[0, 1]`` ``[B, 3, H, W]`` → ``uint8 [B, H, W, 3]`` (clamped; NaN → grey)."""
    return map_rgb(x01, torch.zeros(x01.shape[0]), torch.ones(x01.shape[0]))
