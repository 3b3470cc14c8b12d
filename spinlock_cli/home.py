"""``spinlock home init DIR [--postgres URL]``: create a Dagster home (``DAGSTER_HOME``) for an experiment.

SQLite (the default) keeps run history in files under DIR: one host. ``--postgres`` puts run,
event-log and schedule storage in a PostgreSQL database, which several hosts, the Dask workers
and the UI share; the URL may be ``env:VAR`` so that no password is written to ``dagster.yaml``.
The server is asked first: nothing is written when it cannot be used (exit 2). Pool limits:
``cpu`` one slot per CPU core, ``gpu`` one per GPU of this host (``--gpus N`` sets it).
"""

from __future__ import annotations

import argparse

from spinlock_cli._common import fail

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("home", help="create a Dagster home (SQLite or PostgreSQL)", description=__doc__)
    hs = h.add_subparsers(dest="home_command", required=True, metavar="SUBCOMMAND")
    i = hs.add_parser("init", help="write DIR/dagster.yaml, create the storages, set pool limits", description=__doc__)
    i.add_argument("dir", help="the home directory (then: export DAGSTER_HOME=DIR)")
    i.add_argument(
        "--postgres",
        metavar="URL",
        help="PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DB; the psycopg2 driver is chosen for you) "
        "or env:VAR to read it from $VAR at run time",
    )
    i.add_argument("--gpus", type=int, help="slots of the gpu pool (default: the GPUs of this host, at least 1)")
    i.add_argument("--force", action="store_true", help="replace an existing dagster.yaml with other settings")
    i.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from spinlock_assets.home import HomeError, init_home, mask_url, storage_kind

    try:
        home = init_home(args.dir, args.postgres, gpus=args.gpus, force=args.force)
    except HomeError as exc:
        return fail(str(exc))
    import dagster as dg

    instance = dg.DagsterInstance.get()
    storage = instance.event_log_storage
    pools = ", ".join(f"{p} {storage.get_concurrency_info(p).slot_count}" for p in ("cpu", "gpu"))
    where = mask_url(args.postgres) if args.postgres else f"SQLite files under {home}"
    print(f"Dagster home {home}: storage {storage_kind(instance)} ({where}); pool slots: {pools}")
    print(f"use it with: export DAGSTER_HOME={home}")
    return 0
