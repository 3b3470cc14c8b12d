"""Rendering of fields to 8-bit RGB images and videos: colormaps, the IC gallery, frame layouts.

Conventions (details in :mod:`.colors` and :mod:`.gallery`): fields are ``[C, H, W]``;
images are ``numpy uint8 [H, W, 3]`` (row 0 at the top); normalisation uses per-field robust
1–99 % percentile limits and clamps (never wraps); colormaps are 256-entry LUTs computed from
closed-form formulas (cubehelix, Green 2011; a blue–white–red diverging map; OKLab ramps
``ember`` and ``lagoon`` in :mod:`.palettes`).

Compute only (arrays in, images and encoded files out): :mod:`.aggregates` (statistics over
the M realizations of one operator at one step, and their registry), :mod:`.frames` (layout,
colour normalisation modes), :mod:`.export` (MP4 / GIF / PNG, atomic). Rendering a dataset
(reading or replaying its operators) is a stage: :mod:`spinlock_core.stages.renders`.
"""

from __future__ import annotations

from .aggregates import AGGREGATES, DEFAULT_AGGREGATES, Aggregate, compute_aggregates
from .colors import (
    COLORMAPS,
    DIVERGING_COLORMAPS,
    RENDER_MODES,
    SEQUENTIAL_COLORMAPS,
    apply_colormap,
    colormap_lut,
    cubehelix,
    fields_to_rgb,
    luminance,
    normalize,
    robust_limits,
    symmetric_limits,
    to_uint8,
)
from .export import GifWriter, Mp4Writer, PngFramesWriter, thumbnail_png
from .frames import FrameOptions, FrameRenderer
from .gallery import (
    GALLERY_STREAM,
    RESAMPLE_MODES,
    SPACING,
    gallery_seed,
    gallery_shape,
    label_width,
    render_ic_gallery,
    resolve_ic_types,
    resolve_tiers,
    save_png,
    type_key,
)
from .palettes import ALL_COLORMAPS, PALETTES, robust_range

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
    "AGGREGATES",
    "DEFAULT_AGGREGATES",
    "Aggregate",
    "compute_aggregates",
    "ALL_COLORMAPS",
    "PALETTES",
    "robust_range",
    "FrameOptions",
    "FrameRenderer",
    "Mp4Writer",
    "GifWriter",
    "PngFramesWriter",
    "thumbnail_png",
]
