"""The family contract: how a feature family declares, configures and computes its features.

A family is one module in :mod:`spinlock_core.features.families` holding one
:class:`Family` subclass decorated with :func:`register_family`. The package imports every
module in its folder, so adding a family is a one-file change.

Contract
--------
* ``name``: the family (= storage category) name, e.g. ``"spatial"``.
* ``granularity``: one of :data:`~spinlock_core.features.spec.GRANULARITIES` (every feature of a
  family shares it).
* ``config_model``: a :class:`FamilyConfig` subclass: ``enabled``, ``include`` (opt-in feature
  names), ``exclude`` (feature names to drop) plus the family's parameters, each with a default,
  a range and a description. Unknown keys are rejected.
* ``catalogue(cfg) -> list[FeatureSpec]``: **every** feature the family can compute under
  ``cfg``'s parameters (defaults and opt-ins), in column order. Names may depend on parameters
  (e.g. one column per band) but not on the data.
* ``compute(x, cfg, names) -> dict[str, Tensor]``: the values of (at least) ``names``:

  ============================  =====================================  ===========================
  granularity                   ``x``                                   each value
  ============================  =====================================  ===========================
  ``timestep_channel``          ``[N, C, H, W]`` frames                 ``[N, C]``
  ``timestep``                  ``[N, C, H, W]`` frames                 ``[N]``
  ``trajectory_channel``        ``[S, Ts, C, H, W]`` trajectories       ``[S, C]``
  ``trajectory``                ``[S, Ts, C, H, W]`` trajectories       ``[S]``
  ============================  =====================================  ===========================

  ``x`` is float32 on the extraction device (CPU or CUDA), periodic in y and x (the operators'
  domain is the periodic unit square), finite unless the trajectory diverged. Compute batched
  over the leading axes (no Python loop over fields or series); any dtype and device in, values
  on the same device. A value must be finite for finite input; NaN only from NaN input.
  The driver only calls ``compute`` when ``C >= min_channels`` and ``Ts >= min_frames`` of every
  requested spec (it masks the others), and bounds memory by chunking the leading axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from spinlock_core.features.spec import FeatureSpec, Granularity

__all__ = ["FamilyConfig", "Family", "FAMILY_ORDER", "FAMILY_REGISTRY", "register_family"]

#: Canonical family order: storage order, registry order, DataFrame column order.
FAMILY_ORDER: tuple[str, ...] = (
    "spatial",
    "spectral",
    "laplacian_energy",
    "cross_channel",
    "temporal",
    "causality",
    "invariant_drift",
    "nonlinear",
    "operator_sensitivity",
)


class FamilyConfig(BaseModel):
    """Base of every family's config: on/off, opt-ins and exclusions by feature name."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    enabled: bool = Field(default=True, description="compute this family at all")
    include: tuple[str, ...] = Field(default=(), description="opt-in features of the family to add (names)")
    exclude: tuple[str, ...] = Field(default=(), description="features of the family to drop (names)")


#: The config type of one family (a :class:`FamilyConfig` subclass).
C = TypeVar("C", bound=FamilyConfig)


class Family(Generic[C]):
    """Base class of a feature family (see the module docstring for the contract).

    Generic in the family's config type ``C``: a subclass is declared as
    ``class SpatialFamily(Family[SpatialConfig])`` with ``config_model = SpatialConfig``, and its
    ``catalogue``/``compute`` take that config.
    """

    name: ClassVar[str]
    granularity: ClassVar[Granularity]
    config_model: ClassVar[type[FamilyConfig]] = FamilyConfig
    description: ClassVar[str] = ""

    def catalogue(self, cfg: C) -> list[FeatureSpec]:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self, x: torch.Tensor, cfg: C, names: Sequence[str]) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------- derived
    def selected(self, cfg: C) -> list[FeatureSpec]:
        """The enabled features under ``cfg`` in column order (empty when the family is off)."""
        if not cfg.enabled:
            return []
        inc, exc = set(cfg.include), set(cfg.exclude)
        return [s for s in self.catalogue(cfg) if (s.default or s.name in inc) and s.name not in exc]

    def unknown_names(self, cfg: C) -> list[str]:
        """Names in ``include``/``exclude`` that are not features of this family."""
        known = {s.name for s in self.catalogue(cfg)}
        return [n for n in (*cfg.include, *cfg.exclude) if n not in known]


#: name -> family instance, filled by :func:`register_family` (import order), read in FAMILY_ORDER.
#: Families differ in config type, so entries are ``Family[Any]``: callers pass the config read
#: from the features config under the family's name (an instance of its ``config_model``).
FAMILY_REGISTRY: dict[str, Family[Any]] = {}

_F = TypeVar("_F", bound=type[Family[Any]])


def register_family(cls: _F) -> _F:
    """Class decorator: register one instance of a :class:`Family` subclass under ``cls.name``."""
    if cls.name not in FAMILY_ORDER:
        raise ValueError(f"family {cls.name!r} is not in FAMILY_ORDER {FAMILY_ORDER}")
    if cls.name in FAMILY_REGISTRY:
        raise ValueError(f"family {cls.name!r} registered twice")
    FAMILY_REGISTRY[cls.name] = cls()
    return cls
