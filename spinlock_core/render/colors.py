"""Robust normalisation and colour mapping of fields to 8-bit RGB (vectorised numpy).

Conventions:

* **Inputs.** Arrays are numpy arrays or torch tensors (moved to the host CPU and converted to
  float64 numpy). Non-finite values (NaN, ±inf) are ignored when computing limits; after
  normalisation NaN maps to 0 and ±inf to 1 / 0 (they are clamped like any other value).
* **Normalisation** maps ``[vmin, vmax]`` linearly onto ``[0, 1]`` and **clamps** everything
  outside (values below ``vmin`` give exactly 0, above ``vmax`` exactly 1). It never wraps:
  the earlier implementation cast ``x * 255`` to ``uint8`` without clamping, so the ~1% of
  pixels beyond the 99th percentile came out dark and those below the 1st came out bright.
* **Robust limits** are the ``low`` and ``high`` percentiles (default 1 and 99, numpy's
  linear interpolation) of the finite values. A constant field (or one with no finite value)
  gets ``vmax = vmin + 1`` so normalisation is well defined (the field maps to 0).
* **8-bit conversion** is ``round(clip(x, 0, 1) * 255)`` (round half to even, numpy's rule).
* **Colormaps** are 256-entry lookup tables indexed by ``to_uint8(x01)``:

  - ``"cubehelix"`` (sequential, default): D. A. Green (2011), "A colour scheme for the
    display of astronomical intensity images", Bull. Astr. Soc. India 39, 289. For a grey
    level ``λ ∈ [0, 1]``, with start colour ``s``, rotations ``r``, hue ``h`` and gamma ``γ``::

        L = λ**γ,   a = h * L * (1 - L) / 2,   φ = 2π (s / 3 + r λ)
        R = L + a (-0.14861 cos φ + 1.78277 sin φ)
        G = L + a (-0.29227 cos φ - 0.90649 sin φ)
        B = L + a ( 1.97294 cos φ)

    clipped to ``[0, 1]``. Green's parameters ``s = 0.5, r = -1.5, h = 1, γ = 1``. The two
    perturbation directions are orthogonal to Green's luminance weights (0.30, 0.59, 0.11), so
    that luminance is exactly ``L``; with Rec. 709 weights (0.2126, 0.7152, 0.0722) it is still
    strictly increasing (tested).
  - ``"gray"`` (sequential): ``R = G = B = λ``.
  - ``"bwr"`` (diverging, for signed fields with symmetric limits, see
    :func:`symmetric_limits`): with ``u = 2λ - 1``, the colour is white blended linearly (in
    sRGB values) towards blue ``(0.230, 0.299, 0.754)`` for ``u < 0`` and red
    ``(0.706, 0.016, 0.150)`` for ``u > 0`` with weight ``|u| ** 0.85`` (slightly faster than
    linear away from zero so small values are visible). White at ``λ = 0.5``; luminance
    decreases monotonically from the centre to both ends.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

__all__ = [
    "COLORMAPS",
    "SEQUENTIAL_COLORMAPS",
    "DIVERGING_COLORMAPS",
    "RENDER_MODES",
    "robust_limits",
    "symmetric_limits",
    "normalize",
    "to_uint8",
    "cubehelix",
    "colormap_lut",
    "apply_colormap",
    "fields_to_rgb",
    "luminance",
]

SEQUENTIAL_COLORMAPS: tuple[str, ...] = ("cubehelix", "gray")
DIVERGING_COLORMAPS: tuple[str, ...] = ("bwr",)
#: Every colormap name :func:`apply_colormap` accepts.
COLORMAPS: tuple[str, ...] = SEQUENTIAL_COLORMAPS + DIVERGING_COLORMAPS
#: Modes of :func:`fields_to_rgb`.
RENDER_MODES: tuple[str, ...] = ("auto", "rgb", "colormap", "diverging")

_BLUE = np.array([0.230, 0.299, 0.754])
_RED = np.array([0.706, 0.016, 0.150])


def _as_numpy(x: Any) -> np.ndarray:
    """A float64 numpy copy/view of a numpy array or torch tensor (any device)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 relative luminance ``0.2126 R + 0.7152 G + 0.0722 B`` of ``rgb[..., 3]`` (same scale as the input)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def robust_limits(x: Any, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """``(vmin, vmax)``: the ``low`` / ``high`` percentiles (in %) of the finite values of ``x``.

    Returns ``(vmin, vmin + 1)`` when ``vmax <= vmin`` (constant field) and ``(0, 1)`` when
    ``x`` has no finite value.

    Raises:
        ValueError: unless ``0 <= low < high <= 100``.
    """
    if not (0.0 <= low < high <= 100.0):
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got low={low}, high={high}")
    a = _as_numpy(x).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return 0.0, 1.0
    vmin, vmax = (float(v) for v in np.percentile(a, [low, high]))
    if not vmax > vmin:
        vmax = vmin + 1.0
    return vmin, vmax


def symmetric_limits(x: Any, high: float = 99.0) -> tuple[float, float]:
    """``(-m, m)`` with ``m`` the ``high`` percentile of ``|x|`` over finite values (``m = 1`` if that is 0).

    Zero then maps to 0.5, the centre (white) of a diverging colormap.
    """
    if not (0.0 < high <= 100.0):
        raise ValueError(f"percentile high must be in (0, 100], got {high}")
    a = np.abs(_as_numpy(x).ravel())
    a = a[np.isfinite(a)]
    m = float(np.percentile(a, high)) if a.size else 0.0
    if not m > 0.0:
        m = 1.0
    return -m, m


def normalize(x: Any, vmin: float, vmax: float) -> np.ndarray:
    """``clip((x - vmin) / (vmax - vmin), 0, 1)`` as float64, same shape as ``x``; NaN → 0.

    Raises:
        ValueError: if ``vmax <= vmin`` or a limit is not finite.
    """
    vmin, vmax = float(vmin), float(vmax)
    if not (np.isfinite(vmin) and np.isfinite(vmax) and vmax > vmin):
        raise ValueError(f"normalize needs finite vmin < vmax, got vmin={vmin}, vmax={vmax}")
    y = (_as_numpy(x) - vmin) / (vmax - vmin)
    np.clip(y, 0.0, 1.0, out=y)
    return np.nan_to_num(y, nan=0.0, copy=False)


def to_uint8(x01: Any) -> np.ndarray:
    """``round(clip(x01, 0, 1) * 255)`` as ``uint8`` (NaN → 0); values never wrap."""
    y = np.clip(_as_numpy(x01), 0.0, 1.0)
    y = np.nan_to_num(y, nan=0.0, copy=False)
    return np.rint(y * 255.0).astype(np.uint8)


def cubehelix(
    lam: np.ndarray, start: float = 0.5, rotations: float = -1.5, hue: float = 1.0, gamma: float = 1.0
) -> np.ndarray:
    """Green's (2011) cubehelix colour ``[..., 3]`` in ``[0, 1]`` for grey levels ``lam`` in ``[0, 1]``.

    See the module docstring for the formula and the meaning of the parameters.
    """
    lam = np.clip(np.asarray(lam, dtype=np.float64), 0.0, 1.0)
    L = lam**gamma
    a = hue * L * (1.0 - L) / 2.0
    phi = 2.0 * np.pi * (start / 3.0 + rotations * lam)
    c, s = np.cos(phi), np.sin(phi)
    rgb = np.stack(
        [
            L + a * (-0.14861 * c + 1.78277 * s),
            L + a * (-0.29227 * c - 0.90649 * s),
            L + a * (1.97294 * c),
        ],
        axis=-1,
    )
    return np.clip(rgb, 0.0, 1.0)


def _bwr(lam: np.ndarray) -> np.ndarray:
    u = 2.0 * np.asarray(lam, dtype=np.float64) - 1.0
    w = np.abs(u)[..., None] ** 0.85
    end = np.where(u[..., None] < 0.0, _BLUE, _RED)
    return (1.0 - w) * 1.0 + w * end


@cache
def _lut_float(name: str) -> np.ndarray:
    lam = np.arange(256, dtype=np.float64) / 255.0
    if name == "cubehelix":
        lut = cubehelix(lam)
    elif name == "gray":
        lut = np.repeat(lam[:, None], 3, axis=1)
    elif name == "bwr":
        lut = _bwr(lam)
    else:
        raise ValueError(f"unknown colormap {name!r}; allowed: {list(COLORMAPS)}")
    lut.setflags(write=False)
    return lut


def colormap_lut(name: str = "cubehelix", dtype: str = "uint8") -> np.ndarray:
    """The 256-entry lookup table ``[256, 3]`` of colormap ``name``.

    Args:
        name: one of :data:`COLORMAPS`.
        dtype: ``"uint8"`` (entries ``to_uint8`` of the float table) or ``"float"`` (in ``[0, 1]``).

    Raises:
        ValueError: unknown name or dtype.
    """
    lut = _lut_float(name)
    if dtype == "float":
        return lut.copy()
    if dtype == "uint8":
        return to_uint8(lut)
    raise ValueError(f"dtype must be 'uint8' or 'float', got {dtype!r}")


def apply_colormap(x01: Any, name: str = "cubehelix") -> np.ndarray:
    """Colour ``x01`` (values in ``[0, 1]``, clamped; any shape ``S``) → ``uint8 [*S, 3]``.

    The LUT index is ``to_uint8(x01)`` (nearest of the 256 entries).
    """
    lut = colormap_lut(name)
    return lut[to_uint8(x01)]


def fields_to_rgb(
    field: Any,
    mode: str = "auto",
    cmap: str | None = None,
    low: float = 1.0,
    high: float = 99.0,
) -> np.ndarray:
    """Render one field ``[C, H, W]`` (or ``[H, W]``, taken as C = 1) to ``uint8 [H, W, 3]``.

    Modes:
        ``"auto"``: C == 1 → ``"colormap"``; C >= 3 → ``"rgb"`` (the first 3 channels; extra
            channels are not shown); C == 2 → ``"colormap"`` of channel 0.
        ``"rgb"``: channels 0, 1, 2 → R, G, B, normalised with **joint** robust limits over the
            three channels (so relative channel amplitudes are kept). Needs C >= 3.
        ``"colormap"``: channel 0, robust limits, sequential colormap ``cmap`` (default
            ``"cubehelix"``).
        ``"diverging"``: channel 0, symmetric limits about 0 (:func:`symmetric_limits`),
            diverging colormap ``cmap`` (default ``"bwr"``): zero is white.

    Limits are computed on this field alone (per-field normalisation), from the ``low`` /
    ``high`` percentiles; everything outside is clamped.

    Raises:
        ValueError: bad shape, unknown mode or colormap, or ``"rgb"`` with C < 3.
    """
    f = _as_numpy(field)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3 or f.shape[0] < 1:
        raise ValueError(f"field must have shape [C, H, W] or [H, W], got {tuple(f.shape)}")
    if mode not in RENDER_MODES:
        raise ValueError(f"unknown render mode {mode!r}; allowed: {list(RENDER_MODES)}")
    C = f.shape[0]
    if mode == "auto":
        mode = "rgb" if C >= 3 else "colormap"
    if mode == "rgb":
        if C < 3:
            raise ValueError(f"render mode 'rgb' needs at least 3 channels, got {C}")
        if cmap is not None:
            raise ValueError("cmap is only used by the 'colormap' and 'diverging' modes")
        rgb = f[:3]
        vmin, vmax = robust_limits(rgb, low, high)
        return to_uint8(np.moveaxis(normalize(rgb, vmin, vmax), 0, -1))
    x = f[0]
    if mode == "colormap":
        cmap = cmap or "cubehelix"
        vmin, vmax = robust_limits(x, low, high)
    else:
        cmap = cmap or "bwr"
        vmin, vmax = symmetric_limits(x, high)
    if cmap not in COLORMAPS:
        raise ValueError(f"unknown colormap {cmap!r}; allowed: {list(COLORMAPS)}")
    return apply_colormap(normalize(x, vmin, vmax), cmap)
