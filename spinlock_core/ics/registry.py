"""Registry of initial-condition (IC) types.

Each IC type is one :class:`ICType` record in :data:`IC_REGISTRY`, keyed by its exact
name. A type module under :mod:`spinlock_core.ics.types` defines a pydantic params model and
a generator function and registers them with :func:`register_ic` at import time; the
``types`` package imports every module in its folder, so adding a type is a one-file change.

Generator contract (``ICType.fn``)::

    fn(seeds: Sequence[int], grid_size: int, num_channels: int,
       device: torch.device, params: <params_model instance>) -> Tensor[B, C, H, W]

float32 on ``device`` with ``B = len(seeds)`` and ``H = W = grid_size``. Sample ``b`` depends
only on ``seeds[b]`` (never on the batch it is generated in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "TIERS",
    "ICParams",
    "ICGenerator",
    "ICType",
    "IC_REGISTRY",
    "register_ic",
    "get_ic_type",
    "ic_names_by_tier",
]

#: Tier names, in gallery order.
TIERS: tuple[str, ...] = ("baseline", "tier1", "tier2", "tier3", "tier4")

ICGenerator = Callable[[Sequence[int], int, int, torch.device, Any], torch.Tensor]


class ICParams(BaseModel):
    """Base class for IC params models: unknown keys, NaN and inf are rejected; immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _format_validation_error(name: str, model: type[BaseModel], err: ValidationError) -> str:
    allowed = ", ".join(model.model_fields) or "(none)"
    unknown = [str(e["loc"][0]) for e in err.errors() if e["type"] == "extra_forbidden" and e["loc"]]
    parts = []
    if unknown:
        parts.append(f"unknown parameter(s) {sorted(unknown)}")
    for e in err.errors():
        if e["type"] == "extra_forbidden":
            continue
        loc = ".".join(str(p) for p in e["loc"]) or "(params)"
        parts.append(f"parameter '{loc}' = {e.get('input')!r}: {e['msg']}")
    return f"IC type '{name}': " + "; ".join(parts) + f". Allowed parameters: {allowed}"


@dataclass(frozen=True)
class ICType:
    """One registered IC type.

    Attributes:
        name: exact type name used in configs and metadata.
        tier: one of :data:`TIERS`.
        domain: scientific domain, e.g. ``"stochastic fields"``, ``"quantum physics"``.
        description: one line saying what the field looks like.
        params_model: pydantic model of the type's parameters (every field defaulted).
        fn: the generator (see the module docstring).
    """

    name: str
    tier: str
    domain: str
    description: str
    params_model: type[BaseModel]
    fn: ICGenerator

    def parse_params(self, params: Mapping[str, Any] | BaseModel | None = None) -> BaseModel:
        """Validate ``params`` into a ``params_model`` instance.

        Raises:
            ValueError: naming the type, the bad or unknown parameters and the allowed ones.
        """
        if isinstance(params, self.params_model):
            return params
        if isinstance(params, BaseModel):
            params = params.model_dump()
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError(f"IC type '{self.name}': params must be a mapping, got {type(params).__name__}")
        try:
            return self.params_model.model_validate(dict(params))
        except ValidationError as err:
            raise ValueError(_format_validation_error(self.name, self.params_model, err)) from None

    def default_params(self) -> BaseModel:
        """The params model with every field at its default."""
        return self.params_model()


#: All registered IC types by name (filled when :mod:`spinlock_core.ics` is imported).
IC_REGISTRY: dict[str, ICType] = {}


def _check_params_model(name: str, model: type[BaseModel]) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"IC type '{name}': params_model must be a pydantic BaseModel subclass")
    if model.model_config.get("extra") != "forbid":
        raise TypeError(f"IC type '{name}': params_model must set extra='forbid' (subclass ICParams)")
    for field_name, info in model.model_fields.items():
        if info.is_required():
            raise TypeError(f"IC type '{name}': parameter '{field_name}' needs a default")
        if not info.description:
            raise TypeError(f"IC type '{name}': parameter '{field_name}' needs a description")


def register_ic(
    name: str,
    *,
    tier: str,
    domain: str,
    description: str,
    params_model: type[BaseModel],
    fn: ICGenerator | None = None,
) -> Any:
    """Register an IC type; use as ``register_ic(..., fn=f)`` or as a decorator ``@register_ic(...)``.

    Returns the :class:`ICType` when ``fn`` is given, else a decorator that registers the
    function and returns it unchanged.

    Raises:
        ValueError: duplicate name or unknown tier.
        TypeError: a params model that forbids no extras or has undefaulted / undescribed fields.
    """
    if tier not in TIERS:
        raise ValueError(f"IC type '{name}': tier must be one of {list(TIERS)}, got {tier!r}")
    _check_params_model(name, params_model)

    def _register(f: ICGenerator) -> ICType:
        if name in IC_REGISTRY:
            raise ValueError(f"IC type '{name}' is already registered")
        ic = ICType(name=name, tier=tier, domain=domain, description=description, params_model=params_model, fn=f)
        IC_REGISTRY[name] = ic
        return ic

    if fn is not None:
        return _register(fn)

    def _decorator(f: ICGenerator) -> ICGenerator:
        _register(f)
        return f

    return _decorator


def get_ic_type(name: str) -> ICType:
    """The registered type ``name``; ValueError listing the known names otherwise."""
    try:
        return IC_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown IC type {name!r}; registered types: {sorted(IC_REGISTRY)}") from None


def ic_names_by_tier() -> dict[str, list[str]]:
    """Registered type names grouped by tier (every tier present, names sorted)."""
    out: dict[str, list[str]] = {t: [] for t in TIERS}
    for ic in IC_REGISTRY.values():
        out[ic.tier].append(ic.name)
    return {t: sorted(v) for t, v in out.items()}
