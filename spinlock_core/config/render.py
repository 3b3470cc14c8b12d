"""Configuration of the ``renders`` asset: per-partition preview videos (pydantic only, no torch).

A preview shows the first ``n_operators`` operators of a partition file: one row per operator,
``display_realizations`` realization columns, then one column per aggregate over all M
realizations (see :mod:`spinlock_core.render.aggregates` for their definitions), one frame per
``stride``-th stored step. It is written to ``<output_dir>/renders/grid_GGGG/batch_BBBB.mp4``
(or ``.gif``) with a poster PNG (the last frame) next to it.

The aggregate names live here as a constant (:data:`AGGREGATE_NAMES`) so that the config can be
validated without importing torch; the render registry asserts that its keys equal it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AGGREGATE_NAMES",
    "DEFAULT_AGGREGATES",
    "COLOR_NORM_MODES",
    "PREVIEW_FORMATS",
    "RENDER_BOUNDS",
    "check_bound",
    "RendersConfig",
]

#: Every aggregate the renderer knows, in registry order (equal to the registry's keys).
AGGREGATE_NAMES: tuple[str, ...] = (
    "mean",
    "variance",
    "stddev",
    "envelope",
    "overlay",
    "entropy",
    "pca",
    "ssim",
    "spectral",
)
#: Aggregate columns shown when none are chosen.
DEFAULT_AGGREGATES: tuple[str, ...] = ("mean", "envelope", "entropy")
#: Colour normalisation modes (see :mod:`spinlock_core.render.frames`).
COLOR_NORM_MODES: tuple[str, ...] = ("global", "per-operator", "per-cell")
#: Container formats of a preview.
PREVIEW_FORMATS: tuple[str, ...] = ("mp4", "gif")


#: The one table of render option bounds (inclusive; None: unbounded). The renders config, the frame
#: renderer and ``spinlock visualize-dataset`` all check against it.
RENDER_BOUNDS: dict[str, tuple[float, float | None]] = {
    "n_operators": (1, 64),
    "display_realizations": (0, 16),
    "fps": (1, 120),
    "stride": (1, None),
    "steps": (0, None),
    "size": (16, 1024),  # cell side in pixels
}


def check_bound(name: str, value: float, label: str | None = None) -> float:
    """``value`` if it lies within ``RENDER_BOUNDS[name]``, else ``ValueError`` naming ``label`` and the range."""
    lo, hi = RENDER_BOUNDS[name]
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo:g}..{hi:g}" if hi is not None else f">= {lo:g}"
        raise ValueError(f"{label or name} must be {rng}, got {value:g}")
    return value


def check_aggregates(names: list[str] | tuple[str, ...]) -> list[str]:
    """Validate aggregate names: known (the message lists the allowed ones) and not repeated."""
    names = list(names)
    bad = [n for n in names if n not in AGGREGATE_NAMES]
    if bad:
        raise ValueError(f"unknown aggregate(s) {bad}; allowed: {', '.join(AGGREGATE_NAMES)}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"aggregate(s) listed twice: {dup}")
    return names


class RendersConfig(BaseModel):
    """Preview renders of each partition (the ``renders`` asset).

    Attributes:
        enabled: render previews (False: the asset records that it skipped).
        n_operators: operators (rows) shown: the first ``n_operators`` rows of the partition.
        display_realizations: realization columns K (aggregates always use all M).
        aggregates: aggregate columns, in order (names: :data:`AGGREGATE_NAMES`).
        color_norm_mode: ``per-cell`` (each cell its own 1–99 % limits), ``per-operator``
            (limits from the operator's whole rollout) or ``global`` (all shown operators'
            whole rollouts); the last two are constant over time, so colours do not flicker.
        fps: frames per second of the video.
        stride: show every ``stride``-th stored frame.
        steps: show stored steps ``<= steps`` only (None: all).
        size: cell side in pixels (fields are resized bilinearly).
        format: ``mp4`` (H.264, yuv420p) or ``gif``.
        add_spacing: white gaps between cells.
        row_labels: left column with sample index, IC type and rollout policy.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    n_operators: int = Field(default=4, ge=RENDER_BOUNDS["n_operators"][0], le=RENDER_BOUNDS["n_operators"][1])
    display_realizations: int = Field(
        default=2, ge=RENDER_BOUNDS["display_realizations"][0], le=RENDER_BOUNDS["display_realizations"][1]
    )
    aggregates: list[str] = Field(default_factory=lambda: list(DEFAULT_AGGREGATES))
    color_norm_mode: Literal["global", "per-operator", "per-cell"] = "per-cell"
    fps: int = Field(default=10, ge=RENDER_BOUNDS["fps"][0], le=RENDER_BOUNDS["fps"][1])
    stride: int = Field(default=1, ge=RENDER_BOUNDS["stride"][0])
    steps: int | None = Field(default=None, ge=RENDER_BOUNDS["steps"][0])
    size: int = Field(default=128, ge=RENDER_BOUNDS["size"][0], le=RENDER_BOUNDS["size"][1])
    format: Literal["mp4", "gif"] = "mp4"
    add_spacing: bool = True
    row_labels: bool = True

    @field_validator("aggregates")
    @classmethod
    def _known_aggregates(cls, value: list[str]) -> list[str]:
        return check_aggregates(value)

    @model_validator(mode="after")
    def _some_column(self) -> RendersConfig:
        if self.display_realizations == 0 and not self.aggregates:
            raise ValueError("nothing to show: display_realizations is 0 and aggregates is empty")
        return self
