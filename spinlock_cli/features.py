"""``spinlock extract-features`` and ``spinlock features``: (re)extract a dataset's features, list the registry."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from spinlock_cli._common import fail, run_interruptible

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser(
        "extract-features",
        help="extract SDF features of a dataset's partitions (atomic per partition)",
        description="Extracts every partition whose features are missing or were extracted with another features "
        "config, then rebuilds the dataset index. Ctrl-C stops within a second (the partition being written is "
        "discarded). Exit 0 ok, 1 failure, 2 bad argument, 130/143 interrupted.",
    )
    x.add_argument("--dataset", required=True, help="dataset directory (holding partitions/)")
    x.add_argument("--config", help="features YAML (default: every default feature)")
    x.add_argument("--batch-size", type=int, help="samples per extraction step (overrides extraction.batch_size)")
    x.add_argument("--device", help="auto, cpu, cuda, cuda:N (overrides extraction.device)")
    x.add_argument("--force", action="store_true", help="re-extract current partitions too")
    x.add_argument("--verbose", action="store_true", help="one line per partition")
    x.add_argument("--quiet", action="store_true", help="no progress bar")
    x.set_defaults(func=cmd_extract_features)

    f = sub.add_parser("features", help="list the feature registry (what a features config extracts)")
    f.add_argument("--config", help="features YAML (default: defaults)")
    f.add_argument("--list", action="store_true", help="list the features (what the command does; the seed's flag)")
    f.add_argument("--all", action="store_true", help="also list opt-in and disabled features")
    f.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    f.set_defaults(func=cmd_features)


def cmd_extract_features(args: argparse.Namespace) -> int:
    from spinlock_core.config import ConfigError
    from spinlock_core.dataset import DatasetError, DatasetLayout, build_index, index_problems, remove_stale_temps
    from spinlock_core.dataset import hdf5 as H
    from spinlock_core.device import DeviceError, resolve_device
    from spinlock_core.features import features_config_hash, load_features_config
    from spinlock_core.files import own_temps, remove_quietly
    from spinlock_core.stages import extract_partition, stale_feature_partitions

    dataset = Path(args.dataset)
    if not dataset.is_dir():
        return fail(f"--dataset {dataset}: not a dataset directory (the folder holding partitions/ and index.h5)")
    layout = DatasetLayout(dataset)
    parts = layout.rollout_partitions()
    if not parts:
        return fail(f"--dataset {dataset}: no partition files under {dataset}/partitions")
    try:
        overrides: dict[str, object] = {}
        if args.batch_size is not None:
            overrides["extraction.batch_size"] = args.batch_size
        if args.device is not None:
            overrides["extraction.device"] = args.device
        cfg = load_features_config(args.config, overrides or None)
    except ConfigError as exc:
        return fail(str(exc))
    try:
        device = str(resolve_device(cfg.extraction.device, setting="extraction.device"))
    except DeviceError as exc:
        return fail(str(exc))
    from tqdm import tqdm

    for tmp in remove_stale_temps(dataset):
        print(f"spinlock: removed {tmp} (left by a writer that is gone)", file=sys.stderr)
    chash = features_config_hash(cfg)
    todo = parts if args.force else [p for p, _ in stale_feature_partitions(layout, chash)]
    total = 0
    try:
        for p in todo:
            with H.open_read(layout.rollouts(p), root=dataset) as f:
                total += int(f["outputs/fields"].shape[0])
    except DatasetError as exc:
        return fail(str(exc), 1)
    print(
        f"spinlock: {len(todo)} of {len(parts)} partitions to extract (features hash {chash}, device {device})",
        file=sys.stderr,
    )

    def cleanup(signum: int) -> None:
        for tmp in own_temps(dataset):
            remove_quietly(tmp)

    def work() -> int:
        if not todo:
            note = "index current"
            if index_problems(layout):
                build_index(layout)
                note = "index rebuilt"
            print(f"spinlock: every partition's features are current; {note}: {layout.index}", file=sys.stderr)
            return 0
        t0 = time.perf_counter()
        with tqdm(total=total, unit="sample", disable=args.quiet, file=sys.stderr) as bar:
            for p in todo:
                bar.set_description(f"grid {p.grid} batch {p.batch:04d}")
                s = extract_partition(
                    layout.rollouts(p),
                    cfg,
                    device=device,
                    progress=bar.update,
                    attrs={"batch": p.batch, "partition_key": p.key},
                )
                if args.verbose:
                    tqdm.write(
                        f"  {s.path}: {s.num_features} features, {s.num_summary_columns} summary columns, "
                        f"non-finite fraction {s.nan_fraction:.3g}, {s.samples_per_s:.1f} samples/s, "
                        f"{len(s.masked)} masked",
                        file=sys.stderr,
                    )
        dt = time.perf_counter() - t0
        index = build_index(layout)
        print(
            f"spinlock: extracted {total} samples in {dt:.1f} s ({total / dt if dt > 0 else 0:.1f} samples/s); "
            f"index {index.path}",
            file=sys.stderr,
        )
        return 0

    try:
        return run_interruptible(work, cleanup=cleanup)
    except DatasetError as exc:
        return fail(str(exc), 1)


def cmd_features(args: argparse.Namespace) -> int:
    from spinlock_core.config import ConfigError
    from spinlock_core.features import FeatureRegistry, catalogue_all, load_features_config

    try:
        cfg = load_features_config(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    enabled = {s.name for s in FeatureRegistry.from_config(cfg)}
    specs = catalogue_all(cfg) if args.all else list(FeatureRegistry.from_config(cfg))
    if args.format == "json":
        print(json.dumps([{**s.to_dict(), "enabled": s.name in enabled} for s in specs], indent=2))
        return 0
    if args.format == "markdown":
        from spinlock_core.features.docs import registry_markdown

        print(registry_markdown(cfg))
        return 0
    cats: dict[str, int] = {}
    for s in specs:
        mark = "x" if s.name in enabled else " "
        print(f"[{mark}] {s.family:<20} {s.name:<40} {s.granularity:<18} {s.units}")
        cats[s.family] = cats.get(s.family, 0) + (s.name in enabled)
    print(f"{len(enabled)} enabled: " + ", ".join(f"{k} {v}" for k, v in cats.items()), file=sys.stderr)
    return 0
