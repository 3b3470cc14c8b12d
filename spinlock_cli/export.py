"""``spinlock export``: a dataset in other tools' formats (the feature table as Parquet; the_well)."""

from __future__ import annotations

import argparse
import sys

from spinlock_cli._common import fail, one_line_errors

__all__ = ["add_parser", "FORMATS"]

#: ``--format`` choices and what each writes.
FORMATS = {
    "parquet": "the feature table (one row per grid size x sample: split, metadata, parameters, summary features)",
    "the_well": "trajectories for the_well's WellDataset and Trainer (OUT/grid_G/data/{train,valid,test}/*.h5)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "export",
        help="export a dataset: the feature table as Parquet, or the trajectories for the_well",
        description="Export a Spinlock dataset for other tools. "
        + "; ".join(f"{k}: {v}" for k, v in FORMATS.items())
        + ". The output is written under a temporary name and renamed when complete.",
        epilog="example: spinlock export --format parquet --dataset datasets/default --output features.parquet",
    )
    s.add_argument("--format", required=True, choices=sorted(FORMATS), help="what to write")
    s.add_argument("--dataset", required=True, help="dataset directory (with its index, splits and stats)")
    s.add_argument("--output", required=True, help="file (parquet) or directory (the_well) to write")
    s.add_argument("--grid-size", type=int, action="append", dest="grid_sizes", help="only this grid size (repeatable)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output")
    one_line_errors(s, "export")
    s.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spinlock_core.dataset import DatasetError
    from spinlock_core.export import ExportError

    root = Path(args.dataset)
    if not root.is_dir():
        return fail(f"export: --dataset {root}: no such dataset directory")
    try:
        if args.format == "parquet":
            from spinlock_core.export import export_parquet

            res = export_parquet(root, args.output, grid_sizes=args.grid_sizes, overwrite=args.overwrite)
            print(f"spinlock: wrote {res.line()}", file=sys.stderr)
        else:
            from spinlock_core.export import export_the_well

            well = export_the_well(root, args.output, grid_sizes=args.grid_sizes, overwrite=args.overwrite)
            for g in well.grid_sizes:
                counts = ", ".join(f"{k} {v}" for k, v in well.trajectories[g].items())
                dropped = sum(well.dropped[g].values())
                print(
                    f"spinlock: wrote {well.output / f'grid_{g:04d}'}: trajectories {counts}"
                    + (f" ({dropped} diverged realizations left out)" if dropped else ""),
                    file=sys.stderr,
                )
            print(
                f"spinlock: the_well export {well.output} ({well.dataset_name}, fields {', '.join(well.fields)}) "
                f"in {well.seconds:.1f} s; load with the_well.data.WellDataset("
                f"path='{well.output / f'grid_{well.grid_sizes[0]:04d}'}', well_split_name='train')",
                file=sys.stderr,
            )
    except ExportError as exc:
        return fail(f"export: {exc}")
    except DatasetError as exc:
        return fail(f"export: {exc}", 1)
    return 0
