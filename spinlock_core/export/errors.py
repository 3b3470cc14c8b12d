"""The input error of the exporters (a bad argument; bad data raise :class:`~spinlock_core.dataset.DatasetError`)."""

from __future__ import annotations

__all__ = ["ExportError"]


class ExportError(ValueError):
    """An export was asked for something it cannot do (a bad format, grid size, output path, ...).

    ``str(err)`` is one line naming the argument and what is allowed; command-line tools print it
    and exit 2. Nothing is written before it is raised.
    """
