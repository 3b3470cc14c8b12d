"""``spinlock extract-features`` and ``spinlock features`` (registered by :mod:`spinlock_assets.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _fail(msg: str, code: int = 2) -> int:
    print(f"spinlock: error: {msg}", file=sys.stderr)
    return code


def cmd_extract_features(args: argparse.Namespace) -> int:
    from spinlock_core.config import ConfigError
    from spinlock_core.features import extract_partition, features_config_hash, features_path_for, load_features_config
    from spinlock_core.pipeline import index_dataset, list_partition_files, stored_features_hash

    dataset = Path(args.dataset)
    if not dataset.is_dir():
        return _fail(f"--dataset {dataset}: not a dataset directory (the folder holding partitions/ and index.h5)")
    files = list_partition_files(dataset)
    if not files:
        return _fail(f"--dataset {dataset}: no partition files under {dataset}/partitions")
    try:
        overrides = {}
        if args.batch_size is not None:
            overrides["extraction.batch_size"] = args.batch_size
        if args.device is not None:
            overrides["extraction.device"] = args.device
        cfg = load_features_config(args.config, overrides or None)
    except ConfigError as exc:
        return _fail(str(exc))
    from spinlock_core.rollout import resolve_device

    try:
        device = str(resolve_device(cfg.extraction.device))
    except (ValueError, RuntimeError) as exc:
        return _fail(str(exc))
    import h5py
    from tqdm import tqdm

    chash = features_config_hash(cfg)
    todo = [p for p in files if args.force or stored_features_hash(features_path_for(p)) != chash]
    total = 0
    for p in todo:
        with h5py.File(p, "r") as f:
            total += int(f["outputs/fields"].shape[0])
    print(
        f"spinlock: {len(todo)} of {len(files)} partitions to extract (features hash {chash}, device {device})",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    nan_fracs = []
    with tqdm(total=total, unit="sample", disable=args.quiet, file=sys.stderr) as bar:
        for p in todo:
            bar.set_description(f"{p.parent.name}/{p.stem}")
            s = extract_partition(p, cfg, device=device, progress=bar.update)
            nan_fracs.append(s.nan_fraction)
            if args.verbose:
                tqdm.write(
                    f"  {s.path}: {s.num_features} features, {s.num_summary_columns} summary columns, "
                    f"NaN fraction {s.nan_fraction:.3g}, {s.samples_per_s:.1f} samples/s, "
                    f"{len(s.masked)} masked",
                    file=sys.stderr,
                )
    dt = time.perf_counter() - t0
    index = index_dataset(dataset)
    print(
        f"spinlock: extracted {total} samples in {dt:.1f} s ({total / dt if dt > 0 else 0:.1f} samples/s); "
        f"index {index}",
        file=sys.stderr,
    )
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from spinlock_core.config import ConfigError
    from spinlock_core.features import FeatureRegistry, catalogue_all, load_features_config

    try:
        cfg = load_features_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
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


def add_parsers(sub) -> None:
    x = sub.add_parser(
        "extract-features",
        help="extract SDF features of a dataset's partitions (atomic per partition)",
        description="Extracts every partition whose features are missing or were extracted with "
        "another features config, then rebuilds the dataset index. Exit 0 ok, 1 failure, 2 bad argument.",
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
    f.add_argument("--all", action="store_true", help="also list opt-in and disabled features")
    f.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    f.set_defaults(func=cmd_features)
