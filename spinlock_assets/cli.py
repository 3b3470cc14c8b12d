"""The ``spinlock`` command line.

``generate`` materializes every partition through Dagster (lineage recorded in
``$DAGSTER_HOME``, default ``./dagster_home``), ``info`` describes a dataset, ``validate``
checks one, ``ui`` serves the Dagster web UI, ``backfill`` launches an asset backfill of new grid
sizes, ``extract-features`` (re)extracts SDF features, ``features`` lists the feature registry,
``visualize-dataset`` renders videos/frames of a dataset and ``visualize-ic-types`` draws the IC gallery. Exit codes: 0 success, 1 a failed validation or run, 2 a bad config or argument
(nothing written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spinlock_core.config import ConfigError, load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _fail(msg: str, code: int = 2) -> int:
    print(f"spinlock: error: {msg}", file=sys.stderr)
    return code


def _dagster_home() -> Path:
    """``$DAGSTER_HOME`` (made absolute), or ``./dagster_home`` when unset; created with a dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or (Path.cwd() / "dagster_home")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    table = {
        "total_samples": "sampling.total_samples",
        "batch_size": "sampling.batch_size",
        "seed": "sampling.sobol.seed",
        "output": "dataset.output_dir",
        "device": "simulation.device",
        "num_realizations": "simulation.num_realizations",
        "num_timesteps": "simulation.num_timesteps",
        "grid_sizes": "simulation.grid_sizes",
        "precision": "simulation.precision",
    }
    return {key: getattr(args, attr) for attr, key in table.items() if getattr(args, attr, None) is not None}


def _step_error(res) -> str:
    """The innermost error message of a failed Dagster run result."""
    for ev in res.all_events:
        if ev.is_step_failure:
            err = ev.event_specific_data.error
            while getattr(err, "cause", None) is not None:
                err = err.cause
            return f"step {ev.step_key}: {err.message.strip()}"
    return "unknown failure"


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, _overrides(args) or None)
        from spinlock_core.pipeline import features_config

        features_config(cfg)  # a bad features YAML fails here, before anything is written
    except ConfigError as exc:
        return _fail(str(exc))
    from spinlock_core.rollout import resolve_device

    try:
        resolve_device(cfg.simulation.device)
    except (ValueError, RuntimeError) as exc:
        return _fail(str(exc))
    import dagster as dg
    from tqdm import tqdm

    from spinlock_assets.assets import build_assets, by_name
    from spinlock_assets.partitions import ensure_grid_partitions, make_partitions, partition_key
    from spinlock_assets.render_assets import build_renders_asset
    from spinlock_assets.resources import SpinlockConfig
    from spinlock_core.pipeline import index_path

    out = Path(cfg.dataset.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = out / "experiment.yaml"
    tmp = resolved.with_suffix(".yaml.tmp")
    tmp.write_text(cfg.to_yaml())
    os.replace(tmp, resolved)
    home = _dagster_home()
    instance = dg.DagsterInstance.get()
    ensure_grid_partitions(instance, cfg.simulation.grid_sizes)
    parts = make_partitions(cfg)
    assets = build_assets(parts) + [build_renders_asset(parts)]
    names = ["sobol_parameters", "operator_specs", "rollouts_hdf5"] + (["sdf_features"] if cfg.features.extract else [])
    names += ["renders"] if cfg.renders.enabled and cfg.features.extract else []
    per_partition = by_name(assets, *names)
    resources = {"spinlock": SpinlockConfig(config_path=str(resolved.resolve()))}
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}  # failures reported below
    keys = [(b, g) for g in cfg.simulation.grid_sizes for b in range(cfg.sampling.num_batches)]
    n_total = cfg.sampling.total_samples * len(cfg.simulation.grid_sizes)
    print(
        f"spinlock: {cfg.metadata.name}: {cfg.sampling.total_samples} samples x grids {cfg.simulation.grid_sizes} "
        f"in {len(keys)} partitions -> {out}  (DAGSTER_HOME={home})",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    with tqdm(total=n_total, unit="sample", disable=args.quiet, file=sys.stderr) as bar:
        for b, g in keys:
            bar.set_description(f"grid {g} batch {b:04d}")
            res = dg.materialize(
                assets,
                selection=per_partition,
                partition_key=partition_key(b, g),
                instance=instance,
                resources=resources,
                run_config=quiet_logs,
                raise_on_error=False,
                tags={"spinlock/cli": "generate"},
            )
            if not res.success:
                bar.close()
                return _fail(f"partition batch {b} grid {g} failed ({_step_error(res)}); run {res.run_id} in {home}", 1)
            start, stop = cfg.sampling.batch_bounds(b)
            bar.update(stop - start)
            bar.set_postfix(samples_per_s=f"{bar.n / (time.perf_counter() - t0):.1f}")
    res = dg.materialize(
        assets,
        selection=by_name(assets, "dataset_index"),
        instance=instance,
        resources=resources,
        run_config=quiet_logs,
        raise_on_error=False,
    )
    if not res.success:
        return _fail(f"building the dataset index failed ({_step_error(res)}); run {res.run_id} in {home}", 1)
    dt = time.perf_counter() - t0
    print(
        f"spinlock: done: {n_total} samples in {dt:.1f} s ({n_total / dt:.2f} samples/s); index {index_path(cfg)}",
        file=sys.stderr,
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from spinlock_core.storage import dataset_info, format_info

    path = Path(args.dataset)
    if not path.exists():
        return _fail(f"--dataset {path}: no such file or directory")
    try:
        info = dataset_info(path)
    except (OSError, ValueError, KeyError) as exc:
        return _fail(f"--dataset {path}: {exc}", 1)
    print(format_info(info))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from spinlock_core.validation import validate_dataset

    path = Path(args.dataset)
    if not path.exists():
        return _fail(f"--dataset {path}: no such file or directory")
    report = validate_dataset(path, replay_samples=args.replay_samples)
    for line in report.checks:
        print(f"  ok    {line}")
    for line in report.warnings:
        print(f"  warn  {line}")
    for line in report.errors:
        print(f"  FAIL  {line}")
    if report.ok:
        print(f"VALID: {path} ({len(report.checks)} checks passed, {len(report.warnings)} warnings)")
        return 0
    print(f"INVALID: {path}: {len(report.errors)} problem(s), first: {report.errors[0]}", file=sys.stderr)
    return 1


def cmd_visualize_ic_types(args: argparse.Namespace) -> int:
    """Render the IC gallery (one row per type, ``--variations`` columns) to a PNG."""
    import torch

    from spinlock_core.render import gallery_shape, render_ic_gallery, resolve_ic_types, resolve_tiers, save_png

    try:
        names = resolve_ic_types(args.ic_types) if args.ic_types else resolve_tiers(args.tiers)
    except ValueError as exc:
        return _fail(f"--ic-types: {exc}" if args.ic_types else f"--tiers: {exc}")
    for flag, value, lo in (
        ("--variations", args.variations, 1),
        ("--grid-size", args.grid_size, 2),
        ("--num-channels", args.num_channels, 1),
        ("--cell-size", args.cell_size, 1),
        ("--seed", args.seed, 0),
    ):
        if value < lo:
            return _fail(f"{flag} must be >= {lo}, got {value}")
    out = Path(args.output)
    if out.is_dir():
        return _fail(f"--output {out} is a directory; give a file name such as gallery.png")
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError):
        return _fail(f"--device {args.device!r} is not a device (use cpu, cuda or cuda:N)")
    if device.type not in ("cpu", "cuda"):
        return _fail(f"--device {args.device!r}: allowed: cpu, cuda, cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        return _fail(f"--device {args.device!r} but CUDA is not available here (use cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        return _fail(f"--device {args.device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    h, w, _ = gallery_shape(
        len(names), args.variations, args.cell_size, add_labels=args.add_labels, add_spacing=args.add_spacing
    )
    if h * w > 200_000_000:
        return _fail(f"the gallery would be {w}x{h} px; reduce --cell-size, --variations or the types shown")
    try:
        img = render_ic_gallery(
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
        path = save_png(img, out)
    except (RuntimeError, ValueError, OSError) as exc:  # a generator or the file system failed
        return _fail(f"visualize-ic-types: {type(exc).__name__}: {exc}", 1)
    print(f"{path}  {img.shape[1]}x{img.shape[0]} px ({len(names)} IC type(s) x {args.variations} variation(s))")
    return 0


def _config_arg(args: argparse.Namespace) -> str:
    """--config, else $SPINLOCK_CONFIG, else the shipped default experiment."""
    return args.config or os.environ.get("SPINLOCK_CONFIG") or str(PROJECT_ROOT / "configs/experiments/default.yaml")


def cmd_ui(args: argparse.Namespace) -> int:
    """Run the Dagster UI (``dagster dev``) on the experiment until Ctrl-C."""
    from spinlock_assets import ops

    config = _config_arg(args)
    try:
        load_config(config)
    except ConfigError as exc:
        return _fail(str(exc))
    if not 1 <= args.port <= 65535:
        return _fail(f"--port must be in 1..65535, got {args.port}")
    if not ops.is_loopback(args.host) and not args.allow_remote:
        return _fail(
            f"--host {args.host!r} is not a loopback address; the Dagster UI has no authentication. "
            "Pass --allow-remote to serve it on other interfaces anyway"
        )
    return ops.serve_ui(config, host=args.host, port=args.port, home=_dagster_home())


def cmd_backfill(args: argparse.Namespace) -> int:
    """Add grid sizes as partitions and launch an asset backfill of them through the running webserver."""
    from spinlock_assets import ops

    config = _config_arg(args)
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        return _fail(str(exc))
    grids = list(dict.fromkeys(args.grid_sizes))
    bad = [g for g in grids if not 8 <= g <= 2048]
    if bad:
        return _fail(f"--grid-sizes: each grid size must be in 8..2048, got {bad}")
    url = args.url.rstrip("/")
    if not ops.server_ready(url):
        return _fail(
            f"no Dagster webserver answers at {url}/server_info; start one with "
            f"`spinlock ui --config {config}` (same DAGSTER_HOME and config) or pass --url"
        )
    import dagster as dg

    from spinlock_assets.partitions import ensure_grid_partitions

    home = _dagster_home()
    with dg.DagsterInstance.get() as instance:
        added = ensure_grid_partitions(instance, grids)
    print(
        f"spinlock: grid_size partitions added: {added or 'none (all present)'} (DAGSTER_HOME={home})", file=sys.stderr
    )
    missing = [g for g in grids if g not in cfg.simulation.grid_sizes]
    if missing:
        print(
            f"spinlock: note: grid sizes {missing} are not in simulation.grid_sizes of {config}; the assets "
            f"read the grid from the partition key, so they are backfilled anyway, but add them to "
            f"simulation.grid_sizes to keep the config describing the dataset",
            file=sys.stderr,
        )
    keys = ops.grid_partition_keys(cfg.sampling.num_batches, grids)
    variables = ops.backfill_variables(
        keys, title=f"spinlock grids {' '.join(map(str, grids))}", tags={"spinlock/cli": "backfill"}
    )
    try:
        bid = ops.launch_backfill(url, variables)
    except (ops.GraphQLError, OSError) as exc:
        return _fail(f"launching the backfill at {url}/graphql failed: {exc}", 1)
    print(f"backfill {bid}: {len(keys)} partitions x {len(ops.BACKFILL_ASSETS)} assets  {ops.backfill_page(url, bid)}")
    if not args.wait:
        return 0

    def show(status: str, counts: list) -> None:
        done = ", ".join(
            f"{'/'.join(c['assetKey']['path'])} {c['numPartitionsMaterialized']}/"
            f"{c['numPartitionsTargeted']} ({c['numPartitionsFailed']} failed)"
            for c in counts
        )
        print(f"spinlock: backfill {bid}: {status}  {done}", file=sys.stderr, flush=True)

    try:
        status = ops.wait_for_backfill(url, bid, poll=args.poll, timeout=args.timeout or None, on_update=show)
    except (ops.GraphQLError, OSError, TimeoutError) as exc:
        return _fail(f"backfill {bid}: {exc}", 1)
    print(f"backfill {bid}: {status}")
    return 0 if status in ops.SUCCESS_STATUSES else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spinlock", description="Stochastic neural-operator dataset generator.")
    p.add_argument("--version", action="version", version="spinlock 0.1.0")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="materialize every partition of an experiment through Dagster")
    g.add_argument("--config", required=True, help="experiment YAML (e.g. configs/experiments/default.yaml)")
    g.add_argument("--total-samples", type=int, help="override sampling.total_samples")
    g.add_argument("--batch-size", type=int, help="override sampling.batch_size (samples per partition)")
    g.add_argument("--output", help="override dataset.output_dir")
    g.add_argument("--device", help="override simulation.device (auto, cpu, cuda, cuda:N)")
    g.add_argument("--num-realizations", type=int, help="override simulation.num_realizations")
    g.add_argument("--num-timesteps", type=int, help="override simulation.num_timesteps")
    g.add_argument("--grid-sizes", type=int, nargs="+", help="override simulation.grid_sizes")
    g.add_argument("--precision", help="override simulation.precision (float32, bfloat16, float16)")
    g.add_argument("--seed", type=int, help="override sampling.sobol.seed (the root seed)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("info", help="print a dataset's layout, counts, histograms and metrics")
    i.add_argument("--dataset", required=True, help="dataset directory, index.h5 or a partition file")
    i.set_defaults(func=cmd_info)

    v = sub.add_parser("validate", help="check a dataset's integrity; exit 1 on any problem")
    v.add_argument("--dataset", required=True, help="dataset directory, index.h5 or a partition file")
    v.add_argument("--replay-samples", type=int, default=1, help="samples per partition re-simulated (0 = none)")
    v.set_defaults(func=cmd_validate)

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
    ic.set_defaults(func=cmd_visualize_ic_types)

    u = sub.add_parser(
        "ui",
        help="run the Dagster UI (dagster dev) on an experiment until Ctrl-C",
        description="Starts `dagster dev` (webserver, daemon, code server) with DAGSTER_HOME "
        "(default ./dagster_home) and SPINLOCK_CONFIG set; prints the URL once it answers. Ctrl-C "
        "(SIGINT) or SIGTERM stops it and its children. Binds to loopback only unless "
        "--allow-remote: the UI has no authentication, anyone who reaches it can launch runs.",
    )
    u.add_argument("--config", help="experiment YAML (default $SPINLOCK_CONFIG, else configs/experiments/default.yaml)")
    u.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    u.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    u.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (e.g. 0.0.0.0); exposes an unauthenticated UI",
    )
    u.set_defaults(func=cmd_ui)

    bf = sub.add_parser(
        "backfill",
        help="add grid sizes and backfill them through a running `spinlock ui`",
        description="Adds the grid sizes as grid_size partitions (instance at DAGSTER_HOME, default "
        "./dagster_home: use the one the UI runs with) and launches a Dagster asset backfill of "
        "sobol_parameters, operator_specs and rollouts_hdf5 for every batch x those grids. "
        "Exit 0 launched (or, with --wait, succeeded), 1 failed, 2 bad argument or no webserver.",
    )
    bf.add_argument("--grid-sizes", type=int, nargs="+", required=True, help="grid sizes to add and backfill")
    bf.add_argument("--config", help="experiment YAML the UI serves (default $SPINLOCK_CONFIG, else the default)")
    bf.add_argument("--url", default="http://127.0.0.1:3000", help="webserver URL (default http://127.0.0.1:3000)")
    bf.add_argument("--wait", action="store_true", help="poll until the backfill completes; exit 1 if it failed")
    bf.add_argument("--timeout", type=float, default=0, help="with --wait: give up after this many seconds (0 = never)")
    bf.add_argument("--poll", type=float, default=5.0, help="with --wait: seconds between polls (default 5)")
    bf.set_defaults(func=cmd_backfill)

    from spinlock_assets import features_cli, render_cli

    features_cli.add_parsers(sub)
    render_cli.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("spinlock: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
