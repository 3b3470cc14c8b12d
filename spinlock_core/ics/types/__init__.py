"""IC type modules. Every module in this folder is imported here, and registers its types
with :func:`spinlock_core.ics.registry.register_ic` at import: adding a type is adding a file."""

from __future__ import annotations

import importlib
import pkgutil

__all__: list[str] = []

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
