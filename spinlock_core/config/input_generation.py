"""``simulation.input_generation``: which initial conditions (ICs) are drawn, with which parameters.

YAML shape::

    input_generation:
      method: sampled               # or one IC type / declared variant name
      ic_type_weights:              # relative weights (normalised by their sum)
        multiscale_grf: 2
        gaussian_random_field_smooth: 1
      multiscale_grf:               # parameter block of a registered IC type
        num_octaves: 3
      gaussian_random_field_smooth: # a named variant: <registered type>_<suffix>
        length_scale: 0.25          #   overrides the base block (and the defaults)

Conventions:

* IC types come from ``spinlock_core.ics.IC_REGISTRY`` (imported lazily, at validation time).
* A key equal to a registered name is that type's parameter block. A key
  ``<base>_<suffix>`` (``<base>`` registered, longest match; ``suffix`` ``[A-Za-z0-9]+``)
  declares a *variant*: base-type parameters resolved as ``params_model`` defaults < base
  block < variant block. The variant name is what gets recorded per sample.
* Every block is validated with the base type's ``params_model``; a block keeps only the
  keys written (so a variant never resets its base block to defaults).
* ``method: sampled`` draws the IC type per sample through one extra Sobol dimension
  ("ic_type"). With ``ic_type_weights`` empty the choice is uniform over the registry's
  ``tier == "baseline"`` types, in registry order. Names whose weight is 0 are dropped.
* With any other ``method`` every sample uses that type or variant and ``ic_type_weights``
  is ignored (so a single-type run can be had by overriding ``method`` alone).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from spinlock_core.config._errors import describe_problems, problems_error

__all__ = ["InputGenerationConfig", "ic_registry", "split_variant"]

_SUFFIX_RE = re.compile(r"[A-Za-z0-9]+")


def ic_registry() -> dict:
    """The IC registry (``name -> ICType``), imported lazily to keep import order free."""
    from spinlock_core.ics import IC_REGISTRY

    return IC_REGISTRY


def split_variant(key: str, registry: dict) -> str | None:
    """Base type of variant name ``key`` (longest registered prefix), or None if it is not one."""
    best = None
    for name in registry:
        if (
            key.startswith(name + "_")
            and _SUFFIX_RE.fullmatch(key[len(name) + 1 :])
            and (best is None or len(name) > len(best))
        ):
            best = name
    return best


def _tier_members(registry: dict) -> dict[str, list[str]]:
    """Tier names usable as ``ic_type_weights`` keys ("all", "baseline", "tier1".."tier4") → types."""
    from spinlock_core.ics import TIERS

    tiers: dict[str, list[str]] = {"all": list(registry)}
    for tier in TIERS:
        tiers[tier] = [name for name, ic in registry.items() if ic.tier == tier]
    return tiers


def _unknown_key_msg(key: str, registry: dict) -> str:
    return (
        f"unknown IC type or variant {key!r} (known types: {', '.join(registry)}; a variant is named <type>_<suffix>)"
    )


class InputGenerationConfig(BaseModel):
    """IC selection and per-type parameters (see the module docstring for the YAML shape).

    Attributes:
        method: ``"sampled"`` or one registered IC type / declared variant name.
        ic_type_weights: relative weights (>= 0, positive sum) over types / variants, or over
            tiers ("all", "baseline", "tier1".."tier4": the weight is shared equally by the
            tier's types); used with ``method: sampled``. Empty: equal weights over the baseline tier.
        ic_params: parameter blocks by type or variant name, only the keys written
            (filled from the extra YAML keys; serialised back as those keys).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str = "sampled"
    ic_type_weights: dict[str, float] = Field(default_factory=dict)
    ic_params: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_blocks(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        registry = ic_registry()
        out = {k: v for k, v in data.items() if k in cls.model_fields}
        if out.get("ic_type_weights") is None and "ic_type_weights" in out:
            out["ic_type_weights"] = {}
        given = dict(out.pop("ic_params", None) or {})
        given.update({k: v for k, v in data.items() if k not in cls.model_fields})
        problems: list[tuple[tuple, str]] = []
        bases: dict[str, str] = {}
        for key, block in given.items():
            base = key if key in registry else split_variant(str(key), registry)
            if base is None:
                problems.append(((key,), _unknown_key_msg(str(key), registry)))
            elif block is not None and not isinstance(block, dict):
                problems.append(((key,), f"parameters of {key} must be a mapping, got {block!r}"))
            else:
                bases[key] = base
        blocks: dict[str, dict] = {}
        # Base blocks first: a variant is validated merged over its base block, so that
        # cross-field checks (e.g. weights vs scales) see the parameters actually used.
        for key in sorted(bases, key=lambda k: k != bases[k]):
            base, block = bases[key], given[key] or {}
            if key != base and base in bases and base not in blocks:
                continue  # the base block is invalid and already reported
            model = registry[base].params_model
            merged = {**blocks.get(base, {}), **block} if key != base else block
            try:
                dumped = model.model_validate(merged).model_dump(mode="json")
            except ValidationError as exc:
                for path, msg in describe_problems(exc, model):
                    if msg.startswith("unknown key"):
                        msg = f"unknown parameter for IC type {base} (allowed: {', '.join(model.model_fields)})"
                    problems.append(((key, *path.split(".")) if path else (key,), msg))
                continue
            blocks[key] = {k: dumped[k] for k in model.model_fields if k in block}
        blocks = {k: blocks[k] for k in given if k in blocks}  # keep the order written
        if problems:
            raise problems_error(cls.__name__, problems)
        out["ic_params"] = blocks
        return out

    @model_validator(mode="after")
    def _check_names(self) -> InputGenerationConfig:
        registry = ic_registry()
        known = list(registry) + [k for k in self.ic_params if k not in registry]
        problems: list[tuple[tuple, str]] = []
        if self.method != "sampled" and self.method not in known:
            problems.append(
                (
                    ("method",),
                    f"unknown IC method {self.method!r} (allowed: sampled, "
                    f"{', '.join(known)}; a variant must have a parameter block)",
                )
            )
        for key, weight in self.ic_type_weights.items():
            if key not in known and key not in _tier_members(registry):
                problems.append(
                    (
                        ("ic_type_weights", key),
                        _unknown_key_msg(key, registry)
                        + f"; tiers: {', '.join(_tier_members(registry))}"
                        + "; a variant must have a parameter block",
                    )
                )
            if not weight >= 0 or weight == float("inf"):
                problems.append((("ic_type_weights", key), f"weights must be finite and >= 0, got {weight!r}"))
        if self.ic_type_weights and not problems and sum(self.ic_type_weights.values()) <= 0:
            problems.append((("ic_type_weights",), "weights must have a positive sum"))
        if problems:
            raise problems_error(type(self).__name__, problems)
        return self

    @model_serializer(mode="wrap")
    def _flatten_blocks(self, handler: Any) -> dict:
        data = handler(self)
        data.update(data.pop("ic_params", {}) or {})
        return data

    def ic_choices(self) -> tuple[list[str], list[float]]:
        """IC names a sample may get and their probabilities (summing to 1).

        ``([method], [1.0])`` for a single method; otherwise the weighted names (zero weights
        dropped) or, with no weights, the baseline-tier types with equal probability.
        """
        if self.method != "sampled":
            return [self.method], [1.0]
        if self.ic_type_weights:
            tiers = _tier_members(ic_registry())
            merged: dict[str, float] = {}
            for key, w in self.ic_type_weights.items():  # a tier name shares its weight equally
                for name in tiers.get(key, [key]):
                    merged[name] = merged.get(name, 0.0) + float(w) / len(tiers.get(key, [key]))
            pairs = [(k, w) for k, w in merged.items() if w > 0]
        else:
            pairs = [(name, 1.0) for name, ic in ic_registry().items() if ic.tier == "baseline"]
        total = sum(w for _, w in pairs)
        return [k for k, _ in pairs], [w / total for _, w in pairs]

    def resolve_ic(self, name: str) -> tuple[str, dict]:
        """``(base type, parameters)`` of IC type or variant ``name``.

        Parameters are ``params_model`` defaults < base block < variant block, validated and
        returned as a JSON-ready plain dict (tuples become lists).
        """
        registry = ic_registry()
        if name in registry:
            base, layers = name, [self.ic_params.get(name, {})]
        elif name in self.ic_params:
            variant_of = split_variant(name, registry)
            assert variant_of is not None  # validation admits only types and variants as ic_params keys
            base = variant_of
            layers = [self.ic_params.get(base, {}), self.ic_params[name]]
        else:
            declared = [k for k in self.ic_params if k not in registry]
            raise ValueError(
                f"unknown IC type or variant {name!r} (types: {', '.join(registry)}; "
                f"declared variants: {', '.join(declared) or 'none'})"
            )
        merged: dict = {}
        for layer in layers:
            merged.update(layer)
        return base, registry[base].params_model.model_validate(merged).model_dump(mode="json")
