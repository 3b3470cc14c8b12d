"""``spinlock ui`` (the Dagster UI and daemon on 127.0.0.1) and ``spinlock backfill`` (new grid sizes)."""

from __future__ import annotations

import argparse
import sys

from spinlock_cli._common import config_arg, fail

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
        "./dagster_home: use the one the UI runs with) and launches a Dagster asset backfill of every "
        "partitioned stage (points, specs, rollouts, features, renders) for every batch x those grids; "
        "the UI's index sensor rebuilds the index once it is done. "
        "Exit 0 launched (or, with --wait, succeeded), 1 failed, 2 bad argument or no webserver.",
    )
    bf.add_argument("--grid-sizes", type=int, nargs="+", required=True, help="grid sizes to add and backfill")
    bf.add_argument("--config", help="experiment YAML the UI serves (default $SPINLOCK_CONFIG, else the default)")
    bf.add_argument("--url", default="http://127.0.0.1:3000", help="webserver URL (default http://127.0.0.1:3000)")
    bf.add_argument("--wait", action="store_true", help="poll until the backfill completes; exit 1 if it failed")
    bf.add_argument("--timeout", type=float, default=0, help="with --wait: give up after this many seconds (0 = never)")
    bf.add_argument("--poll", type=float, default=5.0, help="with --wait: seconds between polls (default 5)")
    bf.set_defaults(func=cmd_backfill)


def cmd_ui(args: argparse.Namespace) -> int:
    """Run the Dagster UI (``dagster dev``) on the experiment until Ctrl-C."""
    from spinlock_assets import server
    from spinlock_assets.home import HomeError, claim_home, prepare_home
    from spinlock_core.config import ConfigError, load_config

    config = config_arg(args)
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        return fail(str(exc))
    if not 1 <= args.port <= 65535:
        return fail(f"--port must be in 1..65535, got {args.port}")
    if not server.is_loopback(args.host) and not args.allow_remote:
        return fail(
            f"--host {args.host!r} is not a loopback address; the Dagster UI has no authentication. "
            "Pass --allow-remote to serve it on other interfaces anyway"
        )
    try:
        home = prepare_home()
        claim_home(home, cfg)
    except HomeError as exc:
        return fail(str(exc))
    return server.serve_ui(config, host=args.host, port=args.port, home=home)


def cmd_backfill(args: argparse.Namespace) -> int:
    """Add grid sizes as partitions and launch an asset backfill of them through the running webserver."""
    from spinlock_assets import server
    from spinlock_assets.build import generate_selection
    from spinlock_assets.home import HomeError, claim_home, prepare_home
    from spinlock_core.config import ConfigError, load_config

    config = config_arg(args)
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        return fail(str(exc))
    grids = list(dict.fromkeys(args.grid_sizes))
    bad = [g for g in grids if not 8 <= g <= 2048]
    if bad:
        return fail(f"--grid-sizes: each grid size must be in 8..2048, got {bad}")
    url = args.url.rstrip("/")
    if not server.server_ready(url):
        return fail(
            f"no Dagster webserver answers at {url}/server_info; start one with "
            f"`spinlock ui --config {config}` (same DAGSTER_HOME and config) or pass --url"
        )
    try:
        home = prepare_home()
        claim_home(home, cfg)
    except HomeError as exc:
        return fail(str(exc))
    import dagster as dg

    from spinlock_assets.partitions import ensure_grid_partitions

    with dg.DagsterInstance.get() as instance:
        added = ensure_grid_partitions(instance, grids)
    print(
        f"spinlock: grid_size partitions added: {added or 'none (all present)'} (DAGSTER_HOME={home})", file=sys.stderr
    )
    missing = [g for g in grids if g not in cfg.simulation.grid_sizes]
    if missing:
        print(
            f"spinlock: note: grid sizes {missing} are not in simulation.grid_sizes of {config}; the assets "
            f"read the grid from the partition key, so they are backfilled anyway (and the dataset manifest then "
            f"expects them), but add them to simulation.grid_sizes to keep the config describing the dataset",
            file=sys.stderr,
        )
    assets = generate_selection(cfg)
    keys = server.grid_partition_keys(cfg.sampling.num_batches, grids)
    variables = server.backfill_variables(
        keys, assets, title=f"spinlock grids {' '.join(map(str, grids))}", tags={"spinlock/cli": "backfill"}
    )
    try:
        bid = server.launch_backfill(url, variables)
    except (server.GraphQLError, OSError) as exc:
        return fail(f"launching the backfill at {url}/graphql failed: {exc}", 1)
    print(f"backfill {bid}: {len(keys)} partitions x {len(assets)} assets  {server.backfill_page(url, bid)}")
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
        status = server.wait_for_backfill(url, bid, poll=args.poll, timeout=args.timeout or None, on_update=show)
    except (server.GraphQLError, OSError, TimeoutError) as exc:
        return fail(f"backfill {bid}: {exc}", 1)
    print(f"backfill {bid}: {status}")
    return 0 if status in server.SUCCESS_STATUSES else 1
