"""Render a dataset's operators as a video, GIF and/or PNG frames; per-partition previews.

Entry points:

* :func:`render_dataset` (the ``spinlock visualize-dataset`` command): any dataset directory,
  index or partition file; choose operators, realizations, aggregates, frames and outputs.
* :func:`render_partition_preview`: the first ``n_operators`` operators of one partition file
  as ``<out_dir>/grid_GGGG/batch_BBBB.mp4`` (or ``.gif``) plus a poster PNG (the last frame)
  and a small thumbnail, from a :class:`~spinlock_core.config.RendersConfig`.
* :func:`render_preview_stage`: the same for partition ``(batch, grid)`` of an experiment,
  under ``<dataset.output_dir>/renders`` (what the ``renders`` Dagster asset calls).

Data come from :func:`~spinlock_core.stages.render_source.load_source` (stored frames, or an exact
replay when only final states are stored), frames from
:class:`~spinlock_core.render.frames.FrameRenderer`, files from :mod:`.export` (atomic).

Output paths (:func:`resolve_outputs`): ``output`` ending in ``.mp4`` / ``.gif`` is the video
file (format ``video`` / ``gif``; with ``both`` the PNG frames go to ``<stem>_frames/`` next to
it); a path without suffix is a directory receiving ``evolution.mp4``, ``evolution.gif`` and/or
``frames/`` (``frame_0000.png``, ..., ``metadata.json``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from spinlock_core.config import ExperimentConfig, RendersConfig
from spinlock_core.dataset import DatasetLayout, PartitionId, write_render_record
from spinlock_core.render.export import FrameSink, GifWriter, Mp4Writer, PngFramesWriter, thumbnail_png, write_png
from spinlock_core.render.frames import FrameOptions, FrameRenderer
from spinlock_core.stages.context import hashes_of, layout_of, rollouts_made_from
from spinlock_core.stages.render_source import RenderSource, load_source

__all__ = [
    "FORMATS",
    "RenderOptions",
    "RenderSummary",
    "PreviewResult",
    "resolve_outputs",
    "render_dataset",
    "render_source",
    "render_partition_preview",
    "render_preview_stage",
]

#: ``--format`` values: which files :func:`render_dataset` writes.
FORMATS: tuple[str, ...] = ("video", "gif", "frames", "both")


@dataclass(frozen=True)
class RenderOptions:
    """What to render (data selection) and how (``frame``), and the output format.

    Attributes:
        format: ``video`` (MP4), ``gif``, ``frames`` (PNG directory) or ``both`` (MP4 + PNG);
            None: from the output's suffix (``.gif`` → gif, otherwise video).
        frame: the look of the frames.
        fps: frames per second of MP4 / GIF.
        grid_size, operator_indices, n_operators, seed, n_realizations, steps, stride, device,
        replay: see :func:`~spinlock_core.stages.render_source.load_source`.
    """

    format: str | None = None
    frame: FrameOptions = field(default_factory=FrameOptions)
    fps: float = 10.0
    grid_size: int | None = None
    operator_indices: tuple[int, ...] | None = None
    n_operators: int | None = 4
    seed: int | None = None
    n_realizations: int | None = None
    steps: int | None = None
    stride: int = 1
    device: str | None = None
    replay: str = "auto"


@dataclass
class RenderSummary:
    """What a render produced."""

    outputs: dict[str, str]  # "video" / "gif" / "frames" / "poster" -> path
    frames: int
    height: int
    width: int
    seconds: float  # whole call: reading or replaying, aggregates, frames, encoding
    frames_per_s: float
    operators: list[int]  # sample indices, in row order
    grid_size: int
    realizations: int  # M used by the aggregates
    displayed_realizations: int
    aggregates: list[str]
    first_step: int
    last_step: int
    source: str  # "stored" or "replay"
    replay_ic_exact: bool | None = None
    replay_max_abs_diff: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class PreviewResult(NamedTuple):
    """A partition preview: ``(video_path, poster_path, thumbnail_png, stats)`` (unpacks as a tuple)."""

    video_path: Path | None
    poster_path: Path | None
    thumbnail_png: bytes
    stats: dict


def resolve_outputs(output: str | Path, fmt: str | None) -> dict[str, Path]:
    """The files of ``fmt`` for ``output`` (module docstring): ``{"video"|"gif"|"frames": path}``.

    Raises:
        ValueError: unknown format, or a suffix that contradicts it (e.g. ``gif`` to ``x.mp4``).
    """
    out = Path(output)
    suffix = out.suffix.lower()
    if fmt is None:
        fmt = "gif" if suffix == ".gif" else "video"
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of: {', '.join(FORMATS)}")
    if suffix not in ("", ".mp4", ".gif"):
        raise ValueError(f"output {out}: give a directory (no suffix), a .mp4 or a .gif file")
    wants = {"video": ".mp4", "both": ".mp4", "gif": ".gif", "frames": ""}[fmt]
    if suffix and suffix != wants:
        raise ValueError(
            f"output {out} does not fit format {fmt!r} (expected "
            f"{'a directory' if not wants else 'a ' + wants + ' file or a directory'})"
        )
    if suffix:
        res = {"gif" if fmt == "gif" else "video": out}
        if fmt == "both":
            res["frames"] = out.with_name(out.stem + "_frames")
        return res
    return {
        "video": {"video": out / "evolution.mp4"},
        "gif": {"gif": out / "evolution.gif"},
        "frames": {"frames": out / "frames"},
        "both": {"video": out / "evolution.mp4", "frames": out / "frames"},
    }[fmt]


def render_source(
    src: RenderSource,
    outputs: dict[str, Path],
    frame_options: FrameOptions,
    *,
    fps: float = 10.0,
    poster: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[RenderSummary, np.ndarray]:
    """Render ``src`` to the sinks in ``outputs`` (and the last frame to ``poster``): ``(summary, last frame)``.

    ``progress(done, total)`` is called after each frame is written.
    """
    t0 = time.perf_counter()
    renderer = FrameRenderer(src.fields, src.steps.tolist(), src.labels, frame_options)
    sinks: list[FrameSink] = []
    last: np.ndarray | None = None
    try:
        for kind, path in outputs.items():
            if kind == "video":
                sinks.append(Mp4Writer(path, fps))
            elif kind == "gif":
                sinks.append(GifWriter(path, fps))
            else:
                sinks.append(
                    PngFramesWriter(
                        path,
                        fps,
                        metadata={
                            "operators": [lab.sample for lab in src.labels],
                            "grid_size": src.grid_size,
                            "steps": src.steps.tolist(),
                            "aggregates": list(frame_options.aggregates),
                            "realizations": renderer.num_realizations,
                            "source": str(src.path),
                        },
                    )
                )
        for done, frame in enumerate(renderer.frames(), start=1):
            for s in sinks:
                s.write(frame)
            last = frame
            if progress is not None:
                progress(done, renderer.num_frames)
        for s in sinks:
            s.close()
    except BaseException:
        for s in sinks:
            s.abort()
        raise
    assert last is not None
    outs = {k: str(v) for k, v in outputs.items()}
    if poster is not None:
        outs["poster"] = str(write_png(last, poster))
    seconds = time.perf_counter() - t0
    n = renderer.num_frames
    summary = RenderSummary(
        outputs=outs,
        frames=n,
        height=renderer.height,
        width=renderer.width,
        seconds=seconds,
        frames_per_s=n / seconds if seconds > 0 else 0.0,
        operators=[lab.sample for lab in src.labels],
        grid_size=src.grid_size,
        realizations=renderer.num_realizations,
        displayed_realizations=sum(c.realization is not None for c in renderer.columns),
        aggregates=list(frame_options.aggregates),
        first_step=int(src.steps[0]),
        last_step=int(src.steps[-1]),
        source="replay" if src.replayed else "stored",
        replay_ic_exact=src.ic_exact,
        replay_max_abs_diff=src.replay_max_abs_diff,
    )
    return summary, last


def render_dataset(
    path: str | Path,
    output: str | Path,
    options: RenderOptions = RenderOptions(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RenderSummary:
    """Render the selected operators of a dataset to ``output`` (module docstring).

    Everything is validated before any file is written. ``seconds`` / ``frames_per_s`` of the
    summary cover the whole call (reading or replaying included).

    Raises:
        ValueError: bad options or selection; FileNotFoundError: no dataset at ``path``.
    """
    t0 = time.perf_counter()
    options.frame.validate()
    if not options.fps > 0:
        raise ValueError(f"fps must be > 0, got {options.fps}")
    outputs = resolve_outputs(output, options.format)
    src = load_source(
        path,
        grid_size=options.grid_size,
        operator_indices=options.operator_indices,
        n_operators=options.n_operators,
        seed=options.seed,
        n_realizations=options.n_realizations,
        steps=options.steps,
        stride=options.stride,
        device=options.device,
        replay=options.replay,
    )
    summary, _ = render_source(src, outputs, options.frame, fps=options.fps, progress=progress)
    summary.seconds = time.perf_counter() - t0
    summary.frames_per_s = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
    return summary


def frame_options_from_config(cfg: RendersConfig) -> FrameOptions:
    """The :class:`FrameOptions` of a renders config."""
    return FrameOptions(
        display_realizations=cfg.display_realizations,
        aggregates=tuple(cfg.aggregates),
        color_norm_mode=cfg.color_norm_mode,
        cell_size=(cfg.size, cfg.size),
        add_spacing=cfg.add_spacing,
        row_labels=cfg.row_labels,
    )


def render_partition_preview(
    partition_file: str | Path, video: Path, poster: Path, cfg: RendersConfig | None = None
) -> PreviewResult:
    """Preview of the first ``cfg.n_operators`` operators of a partition file into ``video`` and ``poster``.

    Returns the video and poster paths, the thumbnail (PNG bytes, at most 160 px wide) and the
    summary as a dict (``frames``, ``seconds``, ``frames_per_s``, ``source``, ...).
    """
    cfg = cfg if cfg is not None else RendersConfig.model_validate({})
    t0 = time.perf_counter()
    src = load_source(partition_file, n_operators=cfg.n_operators, steps=cfg.steps, stride=cfg.stride)
    kind = "video" if cfg.format == "mp4" else "gif"
    summary, last = render_source(src, {kind: video}, frame_options_from_config(cfg), fps=cfg.fps, poster=poster)
    summary.seconds = time.perf_counter() - t0
    summary.frames_per_s = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
    return PreviewResult(video, poster, thumbnail_png(last, 160), summary.to_dict())


def render_preview_stage(cfg: ExperimentConfig, part: PartitionId) -> PreviewResult:
    """The preview of partition ``part`` under ``<dataset>/renders``, recorded with its hashes.

    With ``renders.enabled`` false nothing is written (paths None, ``stats["enabled"]`` False).

    Raises:
        DatasetError: the partition has no rollouts file; StaleInput: its rollouts were made
            from another config (re-materialize rollouts_hdf5 first).
    """
    if not cfg.renders.enabled:
        return PreviewResult(None, None, b"", {"enabled": False})
    layout: DatasetLayout = layout_of(cfg)
    src = rollouts_made_from(cfg, part, needed_by="renders")
    h = hashes_of(cfg)
    video, poster = layout.render_video(part, cfg.renders.format), layout.render_poster(part)
    res = render_partition_preview(src, video, poster, cfg.renders)
    stats = {k: v for k, v in res.stats.items() if k != "outputs"}
    write_render_record(layout, part, h.renders, h.rollouts, {"video": video, "poster": poster}, stats)
    res.stats["enabled"] = True
    return res
