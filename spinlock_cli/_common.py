"""What every command shares: the one error helper, config lookup, and stopping on a signal.

:func:`run_interruptible` runs a command's work in a worker thread while the main thread
waits: SIGINT (Ctrl-C) or SIGTERM then stops the command within a second, whatever the work
is blocked on (a pool slot, a compression thread, a C call). Before exiting it runs the
command's cleanup (delete this process's temporary files, mark its Dagster runs canceled and
free their pool claims), so no half file is left behind and no later run waits for this one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

__all__ = [
    "PROJECT_ROOT",
    "DEFAULT_CONFIG",
    "fail",
    "config_arg",
    "Interrupted",
    "run_interruptible",
    "one_line_errors",
    "kill_descendants",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "experiments" / "default.yaml"
T = TypeVar("T")
_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def fail(msg: str, code: int = 2) -> int:
    """Print ``spinlock: error: msg`` on stderr and return ``code`` (2 input, 1 data)."""
    print(f"spinlock: error: {msg}", file=sys.stderr, flush=True)
    return code


def config_arg(args: argparse.Namespace) -> str:
    """--config, else $SPINLOCK_CONFIG, else the shipped default experiment."""
    return getattr(args, "config", None) or os.environ.get("SPINLOCK_CONFIG") or str(DEFAULT_CONFIG)


def one_line_errors(parser: argparse.ArgumentParser, command: str) -> None:
    """Make argparse errors of ``parser`` one line ``spinlock: error: <command>: ...``, exit 2."""

    def error(message: str) -> NoReturn:
        print(f"spinlock: error: {command}: {message}", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]


class Interrupted(Exception):
    """The command was stopped by a signal (raised only where no hard exit is wanted)."""


def run_interruptible(
    work: Callable[[], T],
    *,
    cleanup: Callable[[int], None] | None = None,
    tick: Callable[[], None] | None = None,
    tick_seconds: float = 2.0,
) -> T:
    """Run ``work()`` in a worker thread; return its result or re-raise its exception.

    On SIGINT or SIGTERM: print what happens, call ``cleanup(signum)`` (best effort, bounded by
    the caller), and exit the process at once with 130 (SIGINT) or 143 (SIGTERM). ``tick()``
    runs in the main thread every ``tick_seconds`` while the work runs (progress, waiting notes).
    Outside the main thread (e.g. inside a test worker) ``work()`` simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        return work()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # re-raised in the main thread
            box["error"] = exc

    got: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        got.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in _EXIT}
    thread = threading.Thread(target=target, name="spinlock-command", daemon=True)
    try:
        thread.start()
        last_tick = time.monotonic()
        while thread.is_alive():
            thread.join(0.2)
            if got:
                signum = got[0]
                name = signal.Signals(signum).name
                print(f"\nspinlock: {name}: stopping (cleaning up) ...", file=sys.stderr, flush=True)
                if cleanup is not None:
                    try:
                        cleanup(signum)
                    except Exception as exc:  # the exit must happen regardless
                        print(f"spinlock: cleanup after {name} incomplete: {exc}", file=sys.stderr, flush=True)
                print(f"spinlock: stopped by {name}", file=sys.stderr, flush=True)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(_EXIT[signal.Signals(signum)])
            if tick is not None and time.monotonic() - last_tick >= tick_seconds:
                last_tick = time.monotonic()
                try:
                    tick()
                except Exception:  # a progress note never kills the command
                    pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _children_of() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def kill_descendants(sig: int = signal.SIGKILL) -> list[int]:
    """Send ``sig`` to every process descended from this one (step processes, Dask workers); their pids.

    Linux only (``/proc``); elsewhere nothing is done.
    """
    if not os.path.isdir("/proc"):
        return []
    children = _children_of()
    found: list[int] = []
    stack = list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    for pid in found:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    return found
