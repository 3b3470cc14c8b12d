"""IC gallery: one row per IC type, one column per variation, as an 8-bit RGB image.

Layout (all sizes in pixels; ``R`` rows = types, ``K`` variations, cell side ``S``)::

    sp = 2 if add_spacing else 0                       # white gaps between cells
    LW = label_width(S) if add_labels else 0           # left label column
    height = R * S + (R - 1) * sp
    width  = LW + (sp if add_labels else 0) + K * S + (K - 1) * sp

Row ``i`` (top at ``i * (S + sp)``) shows ``names[i]``; the label column gives the type's
name, tier and domain (Pillow's default FreeType font, wrapped to the column, truncated with
"…" when it does not fit). The background (gaps, label column) is white.

Cells: the IC ``[C, G, G]`` is rendered at its native resolution with
:func:`~spinlock_core.render.colors.fields_to_rgb` (per-cell robust 1–99 % limits, clamped;
C >= 3 → first three channels as RGB with joint limits, C < 3 → cubehelix of channel 0) and
then resized to ``S × S`` with Pillow: ``"bilinear"`` (default; antialiased when
downsampling) or ``"nearest"`` (exact pixel blocks when ``S`` is a multiple of ``G``). No
resize happens when ``S == G``.

Seeds: variation ``v`` of type ``name`` uses :func:`gallery_seed`, i.e.
``derive_seed(seed, Stream.IC, GALLERY_STREAM, type_key(name), v)`` with ``type_key`` the
first 4 bytes (big-endian) of SHA-256 of the UTF-8 name. A cell depends only on
``(seed, name, v)`` and the sizes: a type's row is identical whatever other types are shown
and in whatever order; no two (type, variation) pairs share a seed (unlike the earlier
``seed + i * 1000 + v`` arithmetic, which collides for ``v >= 1000`` and ties cells to row
positions). The extra ``GALLERY_STREAM`` key element keeps gallery seeds distinct from the
dataset's per-sample IC streams ``(IC, sample)``.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from spinlock_core.files import write_bytes_atomic
from spinlock_core.ics import IC_REGISTRY, TIERS, generate_ics, ic_names_by_tier
from spinlock_core.seeding import Stream, derive_seed

from .colors import fields_to_rgb
from .text import font, wrap

__all__ = [
    "GALLERY_STREAM",
    "SPACING",
    "RESAMPLE_MODES",
    "type_key",
    "gallery_seed",
    "label_width",
    "gallery_shape",
    "resolve_tiers",
    "resolve_ic_types",
    "render_ic_gallery",
    "save_png",
]

#: Second spawn-key element of gallery seeds (after ``Stream.IC``); an arbitrary constant.
GALLERY_STREAM: int = 0x6A11E7
#: Gap between cells in pixels when ``add_spacing``.
SPACING: int = 2
RESAMPLE_MODES: tuple[str, ...] = ("bilinear", "nearest")
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}
_TEXT = (0, 0, 0)
_TEXT_DIM = (90, 90, 90)


def type_key(name: str) -> int:
    """A stable 32-bit key of an IC type name: the first 4 bytes of SHA-256(name), big-endian."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")


def gallery_seed(seed: int, name: str, variation: int) -> int:
    """Seed of variation ``variation`` of type ``name`` in a gallery with root ``seed``."""
    return derive_seed(seed, Stream.IC, GALLERY_STREAM, type_key(name), variation)


def label_width(cell_size: int) -> int:
    """Width of the label column: ``max(160, 2 * cell_size)`` pixels."""
    return max(160, 2 * int(cell_size))


def gallery_shape(
    num_types: int, variations: int, cell_size: int, *, add_labels: bool, add_spacing: bool
) -> tuple[int, int, int]:
    """``(height, width, 3)`` of a gallery (the formula in the module docstring)."""
    sp = SPACING if add_spacing else 0
    lw = label_width(cell_size) + sp if add_labels else 0
    return (
        num_types * cell_size + (num_types - 1) * sp,
        lw + variations * cell_size + (variations - 1) * sp,
        3,
    )


def resolve_tiers(tiers: Sequence[str]) -> list[str]:
    """Registered IC type names of the given tiers, in gallery order.

    ``"all"`` means every tier. The result lists tiers in :data:`~spinlock_core.ics.TIERS`
    order (``baseline``, ``tier1``, ..., whatever order they were given in; repeats ignored)
    and names alphabetically within a tier.

    Raises:
        ValueError: an unknown tier (the message lists the allowed ones), no tier given, or
            no type registered in the selected tiers.
    """
    allowed = ["all", *TIERS]
    if isinstance(tiers, str):
        tiers = [tiers]
    if not tiers:
        raise ValueError(f"tiers: give at least one of {allowed}")
    bad = [t for t in tiers if t not in allowed]
    if bad:
        raise ValueError(f"unknown tier(s) {bad}; allowed: {allowed}")
    chosen = set(TIERS) if "all" in tiers else set(tiers)
    by_tier = ic_names_by_tier()
    names = [n for t in TIERS if t in chosen for n in by_tier[t]]
    if not names:
        raise ValueError(f"no IC types are registered in tier(s) {sorted(chosen)}")
    return names


def resolve_ic_types(names: Sequence[str]) -> list[str]:
    """Validate IC type names (order kept, repeats dropped).

    Raises:
        ValueError: no name, or unknown names (the message lists the registered ones).
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("ic types: give at least one IC type name")
    bad = [n for n in names if n not in IC_REGISTRY]
    if bad:
        raise ValueError(f"unknown IC type(s) {bad}; registered: {sorted(IC_REGISTRY)}")
    return list(dict.fromkeys(names))


def _draw_label(draw: ImageDraw.ImageDraw, top: int, cell: int, lw: int, name: str) -> None:
    """Name (black), tier and domain (grey) in the label box ``[0, lw) × [top, top + cell)``."""
    ic = IC_REGISTRY[name]
    pad = 6
    size = max(10, min(16, cell // 8))
    f_name, f_info = font(size), font(max(9, size - 2))
    avail = lw - 2 * pad
    blocks = [(line, f_name, _TEXT) for line in wrap(draw, name, f_name, avail)]
    blocks += [(line, f_info, _TEXT_DIM) for line in wrap(draw, f"{ic.tier} · {ic.domain}", f_info, avail)]
    line_h = [int(getattr(f, "size", 10) * 1.25) for _, f, _ in blocks]
    max_lines = len(blocks)
    while max_lines > 1 and sum(line_h[:max_lines]) > cell - 2:
        max_lines -= 1
    total = sum(line_h[:max_lines])
    y = top + max(0, (cell - total) // 2)
    for (line, f, colour), h in zip(blocks[:max_lines], line_h):
        draw.text((pad, y), line, fill=colour, font=f)
        y += h


def render_ic_gallery(
    names: Sequence[str],
    *,
    variations: int,
    grid_size: int,
    num_channels: int = 3,
    seed: int,
    cell_size: int = 128,
    add_labels: bool,
    add_spacing: bool,
    device: torch.device | str = "cpu",
    resample: str = "bilinear",
    mode: str = "auto",
) -> np.ndarray:
    """Render a gallery of ``variations`` default-parameter ICs for each type in ``names``.

    Args:
        names: registered IC type names, one row each, in this order.
        variations: K >= 1 columns.
        grid_size: G, the IC grid side.
        num_channels: C of the generated ICs (how they are shown: module docstring).
        seed: root seed (non-negative); see :func:`gallery_seed`.
        cell_size: S, the side of a cell in pixels.
        add_labels: add the left label column (name, tier, domain).
        add_spacing: 2 px white gaps between cells (and after the label column).
        device: where the ICs are generated (rendering is on the host).
        resample: ``"bilinear"`` or ``"nearest"`` (used only when ``S != G``).
        mode: render mode of :func:`~spinlock_core.render.colors.fields_to_rgb`.

    Returns:
        ``uint8 [height, width, 3]``, sizes as :func:`gallery_shape`.

    Raises:
        ValueError: unknown type names, bad sizes, seed or resample mode.
    """
    names = resolve_ic_types(names)
    for field, value, lo in (
        ("variations", variations, 1),
        ("grid_size", grid_size, 2),
        ("num_channels", num_channels, 1),
        ("cell_size", cell_size, 1),
        ("seed", seed, 0),
    ):
        if int(value) != value or value < lo:
            raise ValueError(f"{field} must be an integer >= {lo}, got {value!r}")
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"unknown resample {resample!r}; allowed: {list(RESAMPLE_MODES)}")
    H, W, _ = gallery_shape(len(names), variations, cell_size, add_labels=add_labels, add_spacing=add_spacing)
    sp = SPACING if add_spacing else 0
    lw = label_width(cell_size) if add_labels else 0
    x0 = lw + sp if add_labels else 0
    canvas = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, name in enumerate(names):
        top = i * (cell_size + sp)
        reqs = [(name, None, gallery_seed(seed, name, v)) for v in range(variations)]
        ics = generate_ics(reqs, grid_size, num_channels, device).detach().cpu().numpy()
        for v in range(variations):
            cell = Image.fromarray(fields_to_rgb(ics[v], mode=mode), mode="RGB")
            if cell_size != grid_size:
                cell = cell.resize((cell_size, cell_size), resample=_RESAMPLE[resample])
            canvas.paste(cell, (x0 + v * (cell_size + sp), top))
        if add_labels:
            _draw_label(draw, top, cell_size, lw, name)
    return np.asarray(canvas, dtype=np.uint8).copy()


def save_png(img: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``uint8 [H, W, 3]`` (or ``[H, W]``) as a PNG at ``path`` atomically.

    The image goes to a temporary file in the target directory (created if missing), which then
    replaces ``path`` with :func:`os.replace`: readers never see a partial file. The format is
    PNG whatever the suffix. Returns the path.

    Raises:
        ValueError: not a uint8 ``[H, W, 3]`` / ``[H, W]`` array, or ``path`` is a directory.
    """
    a = np.asarray(img)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"img must be uint8 [H, W, 3] or [H, W], got {a.dtype} {tuple(a.shape)}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a directory; give a file name such as gallery.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return write_bytes_atomic(path, buf.getvalue())
