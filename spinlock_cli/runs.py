"""``spinlock runs``: show runs of a Dagster home, and clear those whose process is gone.

A run whose process was killed (or whose worker died) stays STARTED and keeps its pool slot,
so later runs wait for it. ``spinlock runs`` lists runs in progress with their processes and
who holds or waits for each pool slot; ``--clear`` marks runs whose processes are all gone as
failed, frees their pool claims and those of finished runs, and deletes temporary files that
dead writers left in the dataset (``--dataset``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spinlock_cli._common import fail

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "runs", help="show runs in progress and pool claims; --clear frees those of dead processes", description=__doc__
    )
    r.add_argument(
        "--clear",
        action="store_true",
        help="mark runs whose processes are gone failed, free their pool claims, remove dead temp files",
    )
    r.add_argument("--dataset", help="dataset directory whose stale temporary files --clear removes")
    r.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    from spinlock_assets.home import HomeError, open_instance, prepare_home

    try:
        home = prepare_home()
    except HomeError as exc:
        return fail(str(exc))

    from spinlock_assets.runs import pool_waits, sweep
    from spinlock_core.dataset import remove_stale_temps

    try:
        instance = open_instance(home)
    except HomeError as exc:
        return fail(str(exc), 1)
    with instance:
        report = sweep(instance, dry_run=not args.clear)
        storage = instance.event_log_storage
        print(f"DAGSTER_HOME {home}")
        if storage.supports_global_concurrency_limits:
            for pool in sorted(storage.get_concurrency_keys()):
                info = storage.get_concurrency_info(pool)
                holders = ", ".join(f"{s.run_id[:8]}:{s.step_key}" for s in info.claimed_slots) or "none"
                print(
                    f"  pool {pool}: {len(info.claimed_slots)}/{info.slot_count} slots claimed by {holders}; "
                    f"{info.pending_step_count} steps waiting"
                )
        for w in pool_waits(instance):
            print(f"  waiting: run {w.run_id[:8]} step {w.step_key} for pool {w.pool}; held by {'; '.join(w.holders)}")
        for info in report.in_progress:
            print(f"  in progress: {info.describe()}")
        verb = "" if args.clear else "would be "
        for info in report.failed:
            print(f"  {verb}marked failed: {info.describe()}")
        for run_id in report.freed_runs:
            print(f"  {verb}freed pool claims of finished run {run_id[:8]}")
        if not (report.in_progress or report.failed or report.freed_runs):
            print("  no runs in progress, no pool claims held")
    if args.dataset:
        ds = Path(args.dataset)
        if not ds.is_dir():
            return fail(f"--dataset {ds}: not a directory")
        if args.clear:
            for tmp in remove_stale_temps(ds):
                print(f"  removed {tmp}")
    if not args.clear and (report.failed or report.freed_runs):
        print("spinlock runs --clear does the above")
    return 0
