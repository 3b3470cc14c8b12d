"""The one error of the dataset package: a file that cannot be used, and the command that fixes it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DatasetError"]


class DatasetError(Exception):
    """A dataset file is missing, stale, corrupt, foreign or outside the dataset.

    ``str(err)`` is one line: ``<path>: <problem>[; <fix>]``. Command-line tools print it and
    exit 1 (bad data); nothing else in the message is a traceback.

    Attributes:
        path: the file or directory concerned.
        problem: what is wrong with it.
        fix: what to run to repair it ("" when nothing in Spinlock can).
    """

    def __init__(self, path: str | Path, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(self.path, problem, fix)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" + (f"; {self.fix}" if self.fix else "")
