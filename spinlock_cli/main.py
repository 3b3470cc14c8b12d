"""The ``spinlock`` command: the parser, and dispatch to one module per command group.

Importing this module imports no torch, Dagster or h5py: commands import what they need when
they run (see :mod:`spinlock_cli`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from spinlock_cli import features, generate, inspect, runs, ui, visualize

    p = argparse.ArgumentParser(prog="spinlock", description="Stochastic neural-operator dataset generator.")
    p.add_argument("--version", action="version", version="spinlock 0.1.0")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate.add_parser(sub)
    inspect.add_parsers(sub)
    runs.add_parser(sub)
    ui.add_parsers(sub)
    features.add_parsers(sub)
    visualize.add_parsers(sub)
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
