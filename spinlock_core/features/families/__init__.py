"""Feature families, one module each; importing this package registers all of them.

Families (storage order = :data:`FAMILY_ORDER`): spatial, spectral, laplacian_energy,
cross_channel (per timestep); temporal, causality, invariant_drift, nonlinear (per trajectory);
operator_sensitivity (per operator, measured during rollout). The contract is in
:mod:`spinlock_core.features.families.base`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .base import FAMILY_ORDER, FAMILY_REGISTRY, Family, FamilyConfig, register_family

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_") and _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")


def families() -> list[Family[Any]]:
    """Registered families in :data:`FAMILY_ORDER`."""
    return [FAMILY_REGISTRY[n] for n in FAMILY_ORDER if n in FAMILY_REGISTRY]


__all__ = ["FAMILY_ORDER", "FAMILY_REGISTRY", "Family", "FamilyConfig", "register_family", "families"]
