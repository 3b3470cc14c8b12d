"""Frames of a dataset render: rows = operators, columns = realizations then aggregates.

Layout (pixels; ``n`` rows, ``K`` realization columns, ``A`` aggregate columns, cell
``ch x cw``)::

    sp     = 3 if add_spacing else 0           # white gap between cells, and outer margin
    gap    = 8 if add_spacing and K and A else 0   # extra gap between realizations and aggregates
    head   = header_height(cw) if headers else 0   # column titles (and the step, top left)
    label  = label_width(cw) + sp if row_labels else 0
    x(j)   = sp + label + j (cw + sp) + (gap if j >= K else 0)
    y(i)   = sp + head + i (ch + sp)
    width  = x(K + A - 1) + cw + sp,  height = y(n - 1) + ch + sp, each rounded up to even

(even sizes, so every frame can go into an H.264 yuv420p video unchanged). White background,
dark text; row labels give the sample index, IC type, rollout policy and noise regime; the
label column's header shows the step of the frame.

Cells. Realization cells and the ``mean`` aggregate are *field* cells: with C >= 3 channels
0–2 are shown as R, G, B with one joint pair of limits (relative channel amplitudes are kept;
channels >= 3 are not shown), with C < 3 (or ``channel_mode="colormap"``) channel 0 through
``colormap`` (default cubehelix). Scalar aggregates use their own colormap (ember for
spreads and power, lagoon for entropy and SSIM), ``pca`` is RGB, ``overlay`` is already colour.
Values are first resized to the cell (bilinear, ``align_corners=False``, antialiased when
shrinking; or nearest), then mapped: ``clamp((v - vmin) / (vmax - vmin), 0, 1)``, LUT index
``round(255 x)``; never wrapped. Non-finite values (diverged realizations) are grey.

Colour limits (``color_norm_mode``), from robust percentiles (default 1 and 99 %; for
non-negative aggregates ``vmin = 0``) of the native-resolution values:

* ``per-cell`` (default): each cell at each frame its own limits (contrast is maximal, but
  colours are not comparable across cells or frames);
* ``per-operator``: one pair per (operator, column group) from the operator's whole shown
  rollout (all frames, all M realizations for field cells): constant over time, no flicker;
* ``global``: one pair per column group from all shown operators' whole rollouts.

Column groups: the field group (realizations, mean and the overlay's colouring) shares one
pair; every other aggregate has its own. Aggregates with a natural range ignore the mode:
entropy uses ``[0, log2(min(16, M))]`` bits (``[0, 1]`` when M = 1), SSIM ``[0, 1]``. Percentiles are computed on at
most 65536 values per limit (a regular stride subsample of larger sets; exact below that).

``normalization`` transforms each operator's values before anything else, per channel over
its shown frames and realizations: ``none``; ``minmax`` → ``[0, 1]``; ``zscore`` → zero mean,
unit standard deviation (a constant channel becomes 0).

Threads: aggregates and colours are many small memory-bound tensor operations; they run with
``threads`` torch intra-op threads (default 1, restored afterwards): OpenMP synchronisation
costs more than it gains here, and on a shared CPU two spinning threads made them 3x slower.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from spinlock_core.config.render import COLOR_NORM_MODES, DEFAULT_AGGREGATES, check_aggregates, check_bound
from spinlock_core.device import torch_threads

from .aggregates import AGGREGATES, Aggregate, compute_aggregates
from .palettes import ALL_COLORMAPS, MAX_QUANTILE_VALUES, _lut, finite, map_rgb, map_scalar, map_unit_rgb, robust_range
from .text import fit, font

__all__ = [
    "FrameOptions",
    "Column",
    "FrameRenderer",
    "NORMALIZATIONS",
    "CHANNEL_MODES",
    "RESAMPLES",
    "robust_range",
    "header_height",
    "label_width",
]

NORMALIZATIONS: tuple[str, ...] = ("none", "minmax", "zscore")
CHANNEL_MODES: tuple[str, ...] = ("auto", "rgb", "colormap")
RESAMPLES: tuple[str, ...] = ("bilinear", "nearest")
_TEXT, _TEXT_DIM = (30, 30, 30), (105, 105, 105)


def header_height(cell_width: int) -> int:
    """Height of the column-title band: ``2 * font size``, font ``clamp(cell_width // 9, 11, 16)`` px."""
    return 2 * _font_px(cell_width)


def label_width(cell_width: int) -> int:
    """Width of the row-label column: ``max(140, 1.25 * cell_width)``."""
    return max(140, int(1.25 * cell_width))


def _font_px(cell_width: int) -> int:
    return int(min(16, max(11, cell_width // 9)))


@dataclass(frozen=True)
class FrameOptions:
    """How frames look (see the module docstring)."""

    display_realizations: int = 2
    aggregates: tuple[str, ...] = DEFAULT_AGGREGATES
    color_norm_mode: str = "per-cell"
    cell_size: tuple[int, int] = (128, 128)  # (height, width)
    add_spacing: bool = False
    row_labels: bool = True
    headers: bool = True
    channel_mode: str = "auto"
    colormap: str = "cubehelix"
    normalization: str = "none"
    percentiles: tuple[float, float] = (1.0, 99.0)
    resample: str = "bilinear"
    threads: int | None = 1

    def validate(self) -> FrameOptions:
        """Raise ``ValueError`` (naming the allowed values) on a bad option; returns self."""
        check_aggregates(self.aggregates)
        for name, value, allowed in (
            ("color_norm_mode", self.color_norm_mode, COLOR_NORM_MODES),
            ("channel_mode", self.channel_mode, CHANNEL_MODES),
            ("colormap", self.colormap, ALL_COLORMAPS),
            ("normalization", self.normalization, NORMALIZATIONS),
            ("resample", self.resample, RESAMPLES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
        check_bound("display_realizations", self.display_realizations)
        if self.display_realizations == 0 and not self.aggregates:
            raise ValueError("nothing to show: no realization column and no aggregate")
        for side in self.cell_size:
            check_bound("size", side, "cell size (px per side)")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {self.threads}")
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}")
        return self


@dataclass
class Column:
    """One column: a realization (``realization`` = its number) or an aggregate."""

    title: str
    group: str  # "field" or the aggregate's name: columns of a group share colour limits
    output: str  # "field", "scalar", "rgb" or "color"
    realization: int | None = None
    aggregate: Aggregate | None = None
    x: int = 0


@dataclass
class _Op:
    real: torch.Tensor  # [M, F, C, g, g]
    aggs: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> [F, K, g, g]


class FrameRenderer:
    """Render frames of ``n`` operators.

    Args:
        fields: per operator ``[M, F, C, g, g]`` (numpy or torch; all operators the same F and
            C; g may differ); aggregates use all M, the first K are shown.
        steps: ``[F]`` step number of each frame (header text).
        labels: per operator, lines of text (or objects with a ``lines()`` method); None: no
            labels even when ``row_labels``.
        options: :class:`FrameOptions`.
    """

    def __init__(
        self,
        fields: Sequence,
        steps: Sequence[int],
        labels: Sequence | None = None,
        options: FrameOptions = FrameOptions(),
    ) -> None:
        self.opts = options.validate()
        if not fields:
            raise ValueError("no operators to render")
        ops = [torch.as_tensor(np.asarray(f), dtype=torch.float32) for f in fields]
        if any(o.dim() != 5 for o in ops):
            raise ValueError(f"fields must be [M, F, C, g, g] per operator, got {[tuple(o.shape) for o in ops]}")
        self.num_frames = int(ops[0].shape[1])
        self.num_channels = int(ops[0].shape[2])
        if any(o.shape[1] != self.num_frames or o.shape[2] != self.num_channels for o in ops):
            raise ValueError("every operator needs the same number of frames and channels")
        self.steps = [int(s) for s in steps]
        if len(self.steps) != self.num_frames:
            raise ValueError(f"{len(self.steps)} steps for {self.num_frames} frames")
        self.num_realizations = min(int(o.shape[0]) for o in ops)
        with torch_threads(self.opts.threads):
            self.ops = [_Op(self._normalize(o[: self.num_realizations])) for o in ops]
        self.labels = (
            [lab.lines() if hasattr(lab, "lines") else [str(t) for t in lab] for lab in labels] if labels else None
        )
        self.rgb = self.opts.channel_mode == "rgb" or (self.opts.channel_mode == "auto" and self.num_channels >= 3)
        if self.rgb and self.num_channels < 3:
            raise ValueError(f"channel_mode 'rgb' needs C >= 3, got C = {self.num_channels}")
        k = min(self.opts.display_realizations, self.num_realizations)
        self.columns = [Column(f"realization {r}", "field", "field", realization=r) for r in range(k)]
        for name in self.opts.aggregates:
            a = AGGREGATES[name]
            self.columns.append(
                Column(a.title, "field" if a.output in ("field", "color") else name, a.output, aggregate=a)
            )
        self._layout(k)
        self._group_limits: dict[tuple[int, str], tuple[float, float]] = {}
        with torch_threads(self.opts.threads):
            self._set_field_limits()
            for i, op in enumerate(self.ops):
                op.aggs = compute_aggregates(
                    op.real.transpose(0, 1), self.opts.aggregates, colorize=partial(self._colorize, i=i)
                )
            self._set_aggregate_limits()
        self._background = self._draw_background()
        self._step_patches: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ values
    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.opts.normalization
        if mode == "none":
            return x.contiguous()
        v = x.transpose(0, 2).reshape(x.shape[2], -1)  # [C, M*F*g*g]
        ok = finite(v)
        if mode == "minmax":
            big = torch.finfo(torch.float32).max
            lo = torch.where(ok, v, torch.full_like(v, big)).amin(dim=1)
            hi = torch.where(ok, v, torch.full_like(v, -big)).amax(dim=1)
            scale = torch.where(hi > lo, 1.0 / (hi - lo), torch.zeros_like(hi))
            return ((x - lo.view(1, 1, -1, 1, 1)) * scale.view(1, 1, -1, 1, 1)).contiguous()
        n = ok.sum(dim=1).clamp_min(1)
        vz = torch.where(ok, v, torch.zeros_like(v))
        mu = vz.sum(dim=1) / n
        sd = (torch.where(ok, v - mu[:, None], torch.zeros_like(v)).square().sum(dim=1) / n).sqrt()
        inv = torch.where(sd > 0, 1.0 / sd, torch.zeros_like(sd))
        return ((x - mu.view(1, 1, -1, 1, 1)) * inv.view(1, 1, -1, 1, 1)).contiguous()

    def _shown(self, x: torch.Tensor) -> torch.Tensor:
        """Channels a field cell shows: ``[..., C, h, w] -> [..., 3 or 1, h, w]``."""
        return x[..., :3, :, :] if self.rgb else x[..., :1, :, :]

    def _column_values(self, i: int, col: Column, f0: int, f1: int) -> torch.Tensor:
        op = self.ops[i]
        if col.realization is not None:
            return self._shown(op.real[col.realization, f0:f1])
        assert col.aggregate is not None  # a column shows a realization or an aggregate
        v = op.aggs[col.aggregate.name][f0:f1]
        return self._shown(v) if col.output == "field" else v

    # ------------------------------------------------------------------ limits
    def _robust(self, v: torch.Tensor, zero_based: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        return robust_range(v, *self.opts.percentiles, zero_based=zero_based)

    def _pooled(self, parts: list[torch.Tensor], zero_based: bool) -> tuple[float, float]:
        step = max(1, sum(p.numel() for p in parts) // (4 * MAX_QUANTILE_VALUES))
        lo, hi = self._robust(torch.cat([p.reshape(-1)[::step] for p in parts])[None], zero_based)
        return float(lo[0]), float(hi[0])

    def _set_field_limits(self) -> None:
        mode = self.opts.color_norm_mode
        if mode == "per-cell":
            return
        parts = [self._shown(op.real) for op in self.ops]
        if mode == "global":
            lim = self._pooled(parts, False)
            for i in range(len(self.ops)):
                self._group_limits[(i, "field")] = lim
        else:
            for i, p in enumerate(parts):
                self._group_limits[(i, "field")] = self._pooled([p], False)

    def _set_aggregate_limits(self) -> None:
        mode = self.opts.color_norm_mode
        for col in self.columns:
            a = col.aggregate
            if a is None or col.group == "field":
                continue
            if a.fixed_range is not None:
                vmin, vmax = a.fixed_range(self.num_realizations, self.num_channels)
                lim = (float(vmin), float(vmax))
                for i in range(len(self.ops)):
                    self._group_limits[(i, col.group)] = lim
            elif mode == "global":
                lim = self._pooled([op.aggs[a.name] for op in self.ops], a.zero_based)
                for i in range(len(self.ops)):
                    self._group_limits[(i, col.group)] = lim
            elif mode == "per-operator":
                for i, op in enumerate(self.ops):
                    self._group_limits[(i, col.group)] = self._pooled([op.aggs[a.name]], a.zero_based)

    def _cell_limits(self, i: int, col: Column, vals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(vmin [f], vmax [f])`` for the cells ``vals [f, K, h, w]`` of operator i's column ``col``."""
        key = (i, col.group)
        if key in self._group_limits:
            lo, hi = self._group_limits[key]
            return torch.full((vals.shape[0],), lo), torch.full((vals.shape[0],), hi)
        zero = bool(col.aggregate is not None and col.aggregate.zero_based)
        return self._robust(vals.reshape(vals.shape[0], -1), zero)

    def limits(self, op: int, column: int, frame: int) -> tuple[float, float]:
        """Colour limits ``(vmin, vmax)`` of one cell (for the overlay: those of its colouring)."""
        col = self.columns[column]
        if col.output == "color":
            vals = self._shown(self.ops[op].real[:, frame])[None]
        else:
            vals = self._column_values(op, col, frame, frame + 1)
        lo, hi = self._cell_limits(op, col, vals)
        return float(lo[0]), float(hi[0])

    def _colorize(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Overlay colouring ``x [B, M, C, H, W] -> [B, M, 3, H, W]`` in [0, 1], field limits of op i."""
        b, m = x.shape[:2]
        shown = self._shown(x)
        key = (i, "field")
        if key in self._group_limits:
            lo = torch.full((b,), self._group_limits[key][0])
            hi = torch.full((b,), self._group_limits[key][1])
        else:  # per cell: joint limits of the frame's M realizations
            lo, hi = self._robust(shown.reshape(b, -1))
        u = ((shown - lo.view(-1, 1, 1, 1, 1)) / (hi - lo).view(-1, 1, 1, 1, 1)).clamp(0.0, 1.0)
        if self.rgb:
            return u
        lut = _lut(self.opts.colormap)[:256].to(torch.float32) / 255.0
        return lut[torch.round(torch.nan_to_num(u[:, :, 0], nan=0.0) * 255.0).long()].permute(0, 1, 4, 2, 3)

    # ------------------------------------------------------------------ layout
    def _layout(self, k: int) -> None:
        o = self.opts
        self.cell_h, self.cell_w = o.cell_size
        self.sp = 3 if o.add_spacing else 0
        gap = 8 if (o.add_spacing and k and len(self.columns) > k) else 0
        self.head = header_height(self.cell_w) if o.headers else 0
        self.label_w = label_width(self.cell_w) if o.row_labels else 0
        x0 = self.sp + (self.label_w + self.sp if o.row_labels else 0)
        for j, col in enumerate(self.columns):
            col.x = x0 + j * (self.cell_w + self.sp) + (gap if j >= k else 0)
        self.row_y = [self.sp + self.head + i * (self.cell_h + self.sp) for i in range(len(self.ops))]
        w = self.columns[-1].x + self.cell_w + self.sp
        h = self.row_y[-1] + self.cell_h + self.sp
        self.height, self.width = h + h % 2, w + w % 2

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(height, width, 3)`` of every frame (both even)."""
        return self.height, self.width, 3

    def cell_box(self, op: int, column: int) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of a cell in the frame."""
        return self.row_y[op], self.columns[column].x, self.cell_h, self.cell_w

    def _draw_background(self) -> np.ndarray:
        img = Image.new("RGB", (self.width, self.height), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        px = _font_px(self.cell_w)
        if self.opts.headers:
            face = font(px)
            for col in self.columns:
                t = fit(draw, col.title, face, self.cell_w - 4)
                tw = draw.textlength(t, font=face)
                draw.text(
                    (col.x + (self.cell_w - tw) / 2, self.sp + (self.head - px) / 2 - 1), t, fill=_TEXT, font=face
                )
        if self.opts.row_labels and self.labels:
            fonts = [font(px), font(max(10, px - 2))]
            for i, lines in enumerate(self.labels):
                hs = [px + 4] + [px + 2] * (len(lines) - 1)
                y = self.row_y[i] + max(0, (self.cell_h - sum(hs)) // 2)
                for n, (line, lh) in enumerate(zip(lines, hs)):
                    if y + lh > self.row_y[i] + self.cell_h + 2:
                        break
                    f = fonts[min(n, 1)]
                    draw.text(
                        (self.sp + 6, y),
                        fit(draw, line, f, self.label_w - 10),
                        fill=_TEXT if n == 0 else _TEXT_DIM,
                        font=f,
                    )
                    y += lh
        return np.asarray(img, dtype=np.uint8).copy()

    def _step_patch(self, step: int) -> np.ndarray | None:
        if not (self.opts.headers and self.opts.row_labels):
            return None
        if step not in self._step_patches:
            h, w = self.head, self.label_w
            img = Image.fromarray(self._background[self.sp : self.sp + h, self.sp : self.sp + w].copy())
            draw = ImageDraw.Draw(img)
            px = _font_px(self.cell_w)
            last = self.steps[-1] if self.steps else step
            draw.text(
                (6, (h - px) / 2 - 1), fit(draw, f"step {step} / {last}", font(px), w - 8), fill=_TEXT, font=font(px)
            )
            self._step_patches[step] = np.asarray(img, dtype=np.uint8)
        return self._step_patches[step]

    # ------------------------------------------------------------------ painting
    def _resize(self, v: torch.Tensor) -> torch.Tensor:
        h, w = v.shape[-2:]
        if (h, w) == (self.cell_h, self.cell_w):
            return v
        if self.opts.resample == "nearest":
            return F.interpolate(v, size=(self.cell_h, self.cell_w), mode="nearest-exact")
        shrink = self.cell_h < h or self.cell_w < w
        return F.interpolate(v, size=(self.cell_h, self.cell_w), mode="bilinear", align_corners=False, antialias=shrink)

    def _paint(self, i: int, col: Column, f0: int, f1: int) -> np.ndarray:
        vals = self._column_values(i, col, f0, f1)  # [f, K, g, g]
        if col.output == "color":
            return map_unit_rgb(self._resize(vals)).numpy()
        lo, hi = self._cell_limits(i, col, vals)
        big = self._resize(vals)
        if big.shape[1] == 3:
            return map_rgb(big, lo, hi).numpy()
        if col.output == "scalar":  # a scalar aggregate's column; every scalar aggregate names its colormap
            assert col.aggregate is not None and col.aggregate.cmap is not None
            cmap = col.aggregate.cmap
        else:
            cmap = self.opts.colormap
        return map_scalar(big[:, 0], lo, hi, cmap).numpy()

    def frames(self, chunk: int = 8) -> Iterator[np.ndarray]:
        """Every frame in order, ``uint8 [H, W, 3]`` (computed ``chunk`` frames at a time)."""
        for f0 in range(0, self.num_frames, chunk):
            f1 = min(f0 + chunk, self.num_frames)
            canvas = np.broadcast_to(self._background, (f1 - f0, *self._background.shape)).copy()
            with torch_threads(self.opts.threads):
                for i in range(len(self.ops)):
                    y = self.row_y[i]
                    for col in self.columns:
                        canvas[:, y : y + self.cell_h, col.x : col.x + self.cell_w] = self._paint(i, col, f0, f1)
            for n in range(f1 - f0):
                patch = self._step_patch(self.steps[f0 + n])
                if patch is not None:
                    canvas[n, self.sp : self.sp + patch.shape[0], self.sp : self.sp + patch.shape[1]] = patch
                yield canvas[n]

    def render(self, frame: int) -> np.ndarray:
        """One frame, ``uint8 [H, W, 3]`` (``frame`` may be negative: -1 is the last)."""
        f = range(self.num_frames)[frame]
        canvas = self._background.copy()
        with torch_threads(self.opts.threads):
            for i in range(len(self.ops)):
                for col in self.columns:
                    y, x = self.row_y[i], col.x
                    canvas[y : y + self.cell_h, x : x + self.cell_w] = self._paint(i, col, f, f + 1)[0]
        patch = self._step_patch(self.steps[f])
        if patch is not None:
            canvas[self.sp : self.sp + patch.shape[0], self.sp : self.sp + patch.shape[1]] = patch
        return canvas
