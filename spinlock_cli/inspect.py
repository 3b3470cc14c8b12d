"""``spinlock info``, ``spinlock validate`` and ``spinlock index``: look at, check and re-index a dataset
(``index`` also rewrites the dataset-level ``splits.json``, ``stats.json`` and card ``README.md``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spinlock_cli._common import fail, run_interruptible

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("info", help="print a dataset's layout, counts, histograms, metrics and missing partitions")
    i.add_argument("--dataset", required=True, help="dataset directory, index.h5 or a partition file")
    i.set_defaults(func=cmd_info)

    v = sub.add_parser(
        "validate",
        help="check every file of a dataset; exit 1 on any problem",
        description="Checks the manifest and completeness, points, specs, rollouts (schema, finiteness, ranges, "
        "seed replay), features (layout, finiteness, features config), renders and the index (current and well "
        "formed). Exit 0 valid, 1 invalid (one line per problem), 2 bad argument.",
    )
    v.add_argument("--dataset", required=True, help="dataset directory, index.h5, a partition or a feature file")
    v.add_argument("--replay-samples", type=int, default=1, help="samples per partition re-simulated (0 = none)")
    v.add_argument("--features-config", help="features YAML the features must come from (default: the dataset's)")
    v.set_defaults(func=cmd_validate)

    x = sub.add_parser(
        "index",
        help="rebuild a dataset's index.h5 over the files there, and its splits.json, stats.json and card (atomic)",
    )
    x.add_argument("--dataset", required=True, help="dataset directory")
    x.set_defaults(func=cmd_index)


def cmd_info(args: argparse.Namespace) -> int:
    from spinlock_core.dataset import DatasetError, dataset_info, format_info

    path = Path(args.dataset)
    if not path.exists():
        return fail(f"--dataset {path}: no such file or directory")
    try:
        info = dataset_info(path)
    except DatasetError as exc:
        return fail(str(exc), 1)
    print(format_info(info))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from spinlock_core.config import ConfigError
    from spinlock_core.features import features_config_hash, load_features_config
    from spinlock_core.stages import validate_dataset

    path = Path(args.dataset)
    if not path.exists():
        return fail(f"--dataset {path}: no such file or directory")
    if args.replay_samples < 0:
        return fail(f"--replay-samples must be >= 0, got {args.replay_samples}")
    fhash = None
    if args.features_config:
        try:
            fhash = features_config_hash(load_features_config(args.features_config))
        except ConfigError as exc:
            return fail(str(exc))
    report = run_interruptible(lambda: validate_dataset(path, replay_samples=args.replay_samples, features_hash=fhash))
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


def cmd_index(args: argparse.Namespace) -> int:
    from spinlock_core.config import ConfigError, load_config
    from spinlock_core.dataset import (
        DatasetError,
        DatasetLayout,
        IndexSummary,
        Splits,
        build_index,
        compute_stats,
        dataset_splits,
        write_card,
        write_splits,
        write_stats,
    )
    from spinlock_core.files import own_temps, remove_quietly

    path = Path(args.dataset)
    if not path.is_dir():
        return fail(f"--dataset {path}: not a dataset directory")

    def cleanup(signum: int) -> None:
        for tmp in own_temps(path):
            remove_quietly(tmp)

    layout = DatasetLayout(path)
    splits_cfg = None
    if layout.experiment.is_file():
        try:
            exp = load_config(layout.experiment)
        except ConfigError as exc:
            return fail(str(exc), 1)
        splits_cfg = (exp.splits, exp.sampling.sobol.seed)

    def work() -> tuple[IndexSummary, Splits | None]:
        splits = None if splits_cfg is None else dataset_splits(layout, *splits_cfg)  # refused before writing
        summary = build_index(layout)
        if splits is not None and splits_cfg is not None:
            write_splits(layout, splits)
            stats = compute_stats(layout, splits, splits_cfg[1])
            write_stats(layout, stats)
            write_card(layout, splits, stats)
        return summary, splits

    try:
        s, splits = run_interruptible(work, cleanup=cleanup)
    except DatasetError as exc:
        return fail(str(exc), 1)
    note = "with features" if s.features else f"without features ({s.features_note})"
    missing = f"; MISSING {len(s.missing)} expected partitions: {', '.join(s.missing[:8])}" if s.missing else ""
    print(f"{s.path}: {s.partitions} partitions, {s.rows} rows, grids {s.grid_sizes}, {note}{missing}")
    if splits is None:
        print(f"{layout.splits}: not written ({layout.experiment} is missing: the splits config lives there)")
    else:
        counts = ", ".join(f"{k} {v}" for k, v in splits.counts().items())
        print(f"{layout.splits}: samples {counts} (hash {splits.hash})")
        print(f"{layout.stats}: statistics of the train split; {layout.card}: the dataset card")
    return 0
