"""The ``spinlock`` command: the parser, and dispatch to one module per command group.

Importing this module imports no torch, Dagster or h5py: commands import what they need when
they run (see :mod:`spinlock_cli`).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["build_parser", "main", "CliResult", "run_cli"]


def build_parser() -> argparse.ArgumentParser:
    from spinlock_cli import export, features, generate, home, inspect, runs, stages, ui, visualize

    p = argparse.ArgumentParser(prog="spinlock", description="Stochastic neural-operator dataset generator.")
    p.add_argument("--version", action="version", version="spinlock 0.1.0")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate.add_parser(sub)
    home.add_parser(sub)
    inspect.add_parsers(sub)
    runs.add_parser(sub)
    stages.add_parser(sub)
    ui.add_parsers(sub)
    features.add_parsers(sub)
    visualize.add_parsers(sub)
    export.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("spinlock: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback: one line, and how to get the traceback
        if os.environ.get("SPINLOCK_DEBUG"):
            raise
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        hint = _os_hint(exc)
        print(
            f"spinlock: error: {args.command}: {type(exc).__name__}: {what}{hint} "
            "(SPINLOCK_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


def _os_hint(exc: BaseException) -> str:
    """A hint for errors of the machine rather than of Spinlock (a full disk, a file-size limit)."""
    text = f"{exc} {exc.__cause__ or ''}"
    errno_ = getattr(exc, "errno", None)
    if errno_ in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "disk I/O error" in text:
        return " -- is the disk (of the dataset or of DAGSTER_HOME) full?"
    if errno_ == errno.EFBIG or "File too large" in text:
        return " -- a file-size limit was reached (ulimit -f)"
    return ""


@dataclass
class CliResult:
    """What :func:`run_cli` saw: exit code and the two streams (like ``subprocess.CompletedProcess``)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """Run ``spinlock ARGS`` in this process (no interpreter start-up), capturing its output."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code) if isinstance(exc.code, int) else 2
    return CliResult(code, out.getvalue(), err.getvalue())


if __name__ == "__main__":
    sys.exit(main())
