"""``spinlock visualize-dataset`` (operators as a video, GIF or PNG frames) and ``visualize-ic-types``.

Every argument is checked before anything is written; a bad one prints one line
``spinlock: error: ...`` on stderr and exits 2. Exit 1: the data are missing or damaged, or the
render itself failed (the partial file is removed). Ctrl-C stops within a second and leaves no
half file. The work is :func:`spinlock_core.stages.render_dataset` and
:func:`spinlock_core.render.render_ic_gallery`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinlock_cli._common import fail, one_line_errors, run_interruptible
from spinlock_core.config.render import AGGREGATE_NAMES, COLOR_NORM_MODES, DEFAULT_AGGREGATES

# Choices duplicated from spinlock_core.render (kept import-light for `spinlock --help`; a test
# checks they agree).
FORMATS = ("video", "gif", "frames", "both")
COLORMAPS = ("cubehelix", "gray", "bwr", "ember", "lagoon")
NORMALIZATIONS = ("none", "minmax", "zscore")
CHANNEL_MODES = ("auto", "rgb", "colormap")
REPLAY_MODES = ("auto", "always", "never")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``visualize-dataset`` and ``visualize-ic-types`` to ``sub``."""
    p = sub.add_parser(
        "visualize-dataset",
        help="render operators x (realizations + aggregates) over time as MP4, GIF or PNG frames",
        description="Rows are operators, columns the first --display-realizations realizations and then the "
        "aggregates over all M realizations (mean, variance, stddev, envelope, overlay, entropy, pca, ssim, "
        "spectral). Frames come from the stored trajectories or, for datasets that store final states only, "
        "from an exact replay of the operators from their stored specs and seeds. --output: a .mp4 or .gif "
        "file, or a directory (evolution.mp4 / evolution.gif / frames/).",
    )
    p.add_argument("--dataset", required=True, help="dataset directory, index.h5 or a partition file")
    p.add_argument("--output", required=True, help="a .mp4 / .gif file, or a directory")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="video (MP4, H.264), gif, frames (PNG directory) or both (MP4 + PNG); default from --output",
    )
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--n-operators", type=int, default=4, help="operators (rows) shown (default 4)")
    sel.add_argument(
        "--operator-indices",
        type=int,
        nargs="+",
        metavar="IDX",
        help="global sample indices to show, in this order (instead of --n-operators)",
    )
    p.add_argument(
        "--seed",
        type=int,
        help="with --n-operators: draw the operators at random with this seed (default: the first ones)",
    )
    p.add_argument("--grid-size", type=int, help="grid of the rows shown (default: the largest in the dataset)")
    p.add_argument("--n-realizations", type=int, help="realizations M used by the aggregates (default: all stored)")
    p.add_argument("--display-realizations", type=int, default=2, help="realization columns K (default 2)")
    p.add_argument(
        "--aggregates",
        nargs="*",
        default=list(DEFAULT_AGGREGATES),
        metavar="NAME",
        help=f"aggregate columns, in order (default: {' '.join(DEFAULT_AGGREGATES)}; "
        f"allowed: {', '.join(AGGREGATE_NAMES)})",
    )
    p.add_argument(
        "--color-norm-mode",
        choices=COLOR_NORM_MODES,
        default="per-cell",
        help="colour limits per cell and frame (default), per operator or global over the whole rollout",
    )
    p.add_argument("--size", default="128x128", help="cell size HxW or N in pixels (default 128x128)")
    p.add_argument("--steps", type=int, help="show stored steps <= STEPS only (default: all)")
    p.add_argument("--stride", type=int, default=1, help="show every STRIDE-th stored frame (default 1)")
    p.add_argument("--fps", type=float, default=10.0, help="frames per second of the video / GIF (default 10)")
    p.add_argument("--add-spacing", action="store_true", help="white gaps between cells")
    p.add_argument("--no-labels", action="store_true", help="no row labels (sample, IC type, policy, noise)")
    p.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default="none",
        help="per-operator, per-channel value transform before rendering (default none)",
    )
    p.add_argument(
        "--colormap",
        choices=COLORMAPS,
        default="cubehelix",
        help="colormap of field cells shown as a colormap (C < 3 or --channel-mode colormap)",
    )
    p.add_argument(
        "--channel-mode",
        choices=CHANNEL_MODES,
        default="auto",
        help="field cells: auto (C >= 3: channels 0-2 as RGB, else colormap of channel 0), rgb, colormap",
    )
    p.add_argument("--device", help="replay device: cpu, cuda, cuda:N (default: where the data were made, if here)")
    p.add_argument(
        "--replay",
        choices=REPLAY_MODES,
        default="auto",
        help="auto: replay only datasets that store final states; always; never",
    )
    p.add_argument("--verbose", action="store_true", help="print the render summary")
    one_line_errors(p, "visualize-dataset")
    p.set_defaults(func=run)
    _add_ic_parser(sub)


def _parse_size(text: str) -> tuple[int, int]:
    from spinlock_core.config.render import RENDER_BOUNDS

    parts = text.lower().split("x")
    lo, hi = RENDER_BOUNDS["size"]
    try:
        vals = [int(v) for v in parts]
    except ValueError:
        raise ValueError(f"--size {text!r}: give HxW or N in pixels, e.g. 128x128") from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or not all(lo <= v <= (hi or v) for v in vals):
        raise ValueError(f"--size {text!r}: give HxW (or N) with sides in {lo:g}..{hi:g}")
    return vals[0], vals[1]


def _check_device(name: str | None) -> str | None:
    if name is None:
        return None
    from spinlock_core.device import DeviceError, resolve_device

    try:
        resolve_device(name, setting="--device")
    except DeviceError as exc:
        raise ValueError(str(exc)) from None
    return name


def _options(args: argparse.Namespace):
    """RenderOptions from the arguments; ValueError names the bad flag."""
    from spinlock_core.config.render import check_aggregates, check_bound
    from spinlock_core.render import FrameOptions
    from spinlock_core.stages import RenderOptions

    for flag, value, bound in (
        ("--n-operators", args.n_operators, "n_operators"),
        ("--display-realizations", args.display_realizations, "display_realizations"),
        ("--stride", args.stride, "stride"),
        ("--steps", args.steps, "steps"),
        ("--fps", args.fps, "fps"),
    ):
        if value is not None:
            check_bound(bound, value, flag)
    for flag, value, lo in (
        ("--grid-size", args.grid_size, 1),
        ("--n-realizations", args.n_realizations, 1),
        ("--seed", args.seed, 0),
    ):
        if value is not None and value < lo:
            raise ValueError(f"{flag} must be >= {lo}, got {value}")
    try:
        aggregates = tuple(check_aggregates(args.aggregates))
    except ValueError as exc:
        raise ValueError(f"--aggregates: {exc}") from None
    if args.display_realizations == 0 and not aggregates:
        raise ValueError("nothing to show: --display-realizations 0 and no --aggregates")
    frame = FrameOptions(
        display_realizations=args.display_realizations,
        aggregates=aggregates,
        color_norm_mode=args.color_norm_mode,
        cell_size=_parse_size(args.size),
        add_spacing=args.add_spacing,
        row_labels=not args.no_labels,
        channel_mode=args.channel_mode,
        colormap=args.colormap,
        normalization=args.normalization,
    ).validate()
    return RenderOptions(
        format=args.format,
        frame=frame,
        fps=args.fps,
        grid_size=args.grid_size,
        operator_indices=tuple(args.operator_indices) if args.operator_indices else None,
        n_operators=None if args.operator_indices else args.n_operators,
        seed=args.seed,
        n_realizations=args.n_realizations,
        steps=args.steps,
        stride=args.stride,
        device=_check_device(args.device),
        replay=args.replay,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``visualize-dataset``; returns the exit code (0 ok, 1 render failed, 2 bad argument)."""
    from tqdm import tqdm

    from spinlock_core.dataset import DatasetError
    from spinlock_core.files import remove_own_temps
    from spinlock_core.stages import render_dataset, resolve_outputs

    dataset = Path(args.dataset)
    if not dataset.exists():
        return fail(f"--dataset {dataset}: no such file or directory")
    try:
        options = _options(args)
        outputs = resolve_outputs(args.output, options.format)
    except ValueError as exc:
        return fail(str(exc))
    for kind, path in outputs.items():
        if kind == "frames" and path.exists() and not path.is_dir():
            return fail(f"--output: {path} exists and is not a directory")
        if kind != "frames" and path.is_dir():
            return fail(f"--output: {path} is a directory")
    bar = tqdm(total=None, unit="frame", desc="visualize-dataset", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    def cleanup(signum: int) -> None:  # the sinks write temporary names: remove this process's
        for path in outputs.values():
            remove_own_temps(path.parent)

    try:
        summary = run_interruptible(
            lambda: render_dataset(dataset, args.output, options, progress=progress), cleanup=cleanup
        )
    except DatasetError as exc:  # missing, stale or damaged data
        bar.close()
        return fail(str(exc), 1)
    except (ValueError, FileNotFoundError) as exc:  # selection errors: raised before anything is written
        bar.close()
        return fail(str(exc))
    except (RuntimeError, OSError, BrokenPipeError) as exc:
        bar.close()
        return fail(f"visualize-dataset: {type(exc).__name__}: {exc}", 1)
    bar.close()
    outs = ", ".join(f"{k}: {v}" for k, v in summary.outputs.items())
    print(
        f"{outs}  ({summary.frames} frames {summary.width}x{summary.height}, {len(summary.operators)} operators, "
        f"{summary.source} data, {summary.seconds:.1f} s)"
    )
    if args.verbose:
        for key, value in summary.to_dict().items():
            print(f"  {key}: {value}", file=sys.stderr)
    return 0


def _add_ic_parser(sub: argparse._SubParsersAction) -> None:
    ic = sub.add_parser("visualize-ic-types", help="render a PNG gallery of IC types (rows) x seeded variations")
    ic.add_argument("--output", required=True, help="PNG file to write (parent folders are created)")
    ic.add_argument("--variations", type=int, default=3, help="variations (columns) per type (default 3)")
    ic.add_argument(
        "--tiers",
        nargs="+",
        default=["all"],
        metavar="TIER",
        help="tiers to show: all, baseline, tier1, tier2, tier3, tier4 (default all)",
    )
    ic.add_argument("--ic-types", nargs="+", metavar="TYPE", help="IC type names to show (overrides --tiers)")
    ic.add_argument("--grid-size", type=int, default=128, help="IC grid side (default 128)")
    ic.add_argument("--seed", type=int, default=42, help="root seed (default 42)")
    ic.add_argument(
        "--num-channels",
        type=int,
        default=3,
        help="channels C (default 3; C>=3 shown as RGB of channels 0-2, else cubehelix of channel 0)",
    )
    ic.add_argument("--cell-size", type=int, default=128, help="cell side in pixels (default 128)")
    ic.add_argument("--add-labels", action="store_true", help="left column with type name, tier and domain")
    ic.add_argument("--add-spacing", action="store_true", help="2 px white gaps between cells")
    ic.add_argument("--device", default="cpu", help="where ICs are generated: cpu, cuda, cuda:N (default cpu)")
    ic.add_argument("--verbose", action="store_true", help="list the rendered types with their tier and domain")
    ic.set_defaults(func=cmd_visualize_ic_types)


def cmd_visualize_ic_types(args: argparse.Namespace) -> int:
    """Render the IC gallery (one row per type, ``--variations`` columns) to a PNG."""
    from spinlock_core.render import gallery_shape, render_ic_gallery, resolve_ic_types, resolve_tiers, save_png

    try:
        names = resolve_ic_types(args.ic_types) if args.ic_types else resolve_tiers(args.tiers)
    except ValueError as exc:
        return fail(f"--ic-types: {exc}" if args.ic_types else f"--tiers: {exc}")
    for flag, value, lo in (
        ("--variations", args.variations, 1),
        ("--grid-size", args.grid_size, 2),
        ("--num-channels", args.num_channels, 1),
        ("--cell-size", args.cell_size, 1),
        ("--seed", args.seed, 0),
    ):
        if value < lo:
            return fail(f"{flag} must be >= {lo}, got {value}")
    out = Path(args.output)
    if out.is_dir():
        return fail(f"--output {out} is a directory; give a file name such as gallery.png")
    from spinlock_core.device import DeviceError, resolve_device

    try:
        device = resolve_device(args.device, setting="--device")
    except DeviceError as exc:
        return fail(str(exc))
    h, w, _ = gallery_shape(
        len(names), args.variations, args.cell_size, add_labels=args.add_labels, add_spacing=args.add_spacing
    )
    if h * w > 200_000_000:
        return fail(f"the gallery would be {w}x{h} px; reduce --cell-size, --variations or the types shown")
    try:
        img = run_interruptible(
            lambda: render_ic_gallery(
                names,
                variations=args.variations,
                grid_size=args.grid_size,
                num_channels=args.num_channels,
                seed=args.seed,
                cell_size=args.cell_size,
                add_labels=args.add_labels,
                add_spacing=args.add_spacing,
                device=device,
            )
        )
        path = save_png(img, out)
    except (RuntimeError, ValueError, OSError) as exc:  # a generator or the file system failed
        return fail(f"visualize-ic-types: {type(exc).__name__}: {exc}", 1)
    print(f"{path}  {img.shape[1]}x{img.shape[0]} px ({len(names)} IC type(s) x {args.variations} variation(s))")
    if args.verbose:
        from spinlock_core.ics import IC_REGISTRY

        for name in names:
            entry = IC_REGISTRY[name]
            print(f"  {name}: {entry.tier}, {entry.domain}", file=sys.stderr)
    return 0
