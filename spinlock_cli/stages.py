"""``spinlock stages``: the stage table (what each stage reads, writes, checks) — the pipeline at a glance."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "stages",
        help="list the pipeline's stages: inputs, files written, checks, pool",
        description="The stage table every asset, check, job and `generate --only` choice comes from.",
    )
    s.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    s.set_defaults(func=cmd_stages)


def cmd_stages(args: argparse.Namespace) -> int:
    from spinlock_core.stages import STAGES, stages_markdown

    if args.format == "markdown":
        print(stages_markdown(), end="")
        return 0
    rows = [
        {
            "name": s.name,
            "inputs": list(s.inputs),
            "outputs": list(s.outputs),
            "checks": [{"name": c.name, "blocking": c.blocking, "severity": c.severity} for c in s.checks],
            "pool": s.pool,
            "partitioned": s.partitioned,
            "description": s.description,
        }
        for s in STAGES
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    for st in STAGES:
        checks = ", ".join(c.name + ("*" if c.blocking else "") for c in st.checks) or "-"
        print(
            f"{st.name:<18} reads {', '.join(st.inputs) or '-':<38} writes {', '.join(st.outputs):<10} "
            f"checks {checks}{'  pool ' + st.pool if st.pool else ''}"
        )
    print("(* blocking: a failure stops every downstream stage of the partition)")
    return 0
