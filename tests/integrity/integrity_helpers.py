"""What the integrity tests share: how to start ``spinlock`` in a new process, in a given Dagster home."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: argv prefix of the ``spinlock`` command in a new interpreter.
SPINLOCK = [sys.executable, "-m", "spinlock_cli"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment with ``DAGSTER_HOME=home`` and no ``SPINLOCK_CONFIG`` (plus ``extra``)."""
    env = dict(os.environ)
    env.pop("SPINLOCK_CONFIG", None)
    env["DAGSTER_HOME"] = str(home)
    env.update(extra)
    return env
