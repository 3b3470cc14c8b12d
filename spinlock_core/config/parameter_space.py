"""The ``parameter_space`` section: which operator knobs are sampled, over which domains.

Every declared parameter becomes one Sobol dimension. Dimension order is the group order
``architecture, stochastic, operator, rollout`` (see
:data:`~spinlock_core.config.knobs.KNOB_GROUPS`), then declaration order within a group.
Knobs that are not declared keep their documented default (see
:data:`~spinlock_core.config.knobs.KNOBS`).

Validation against the knob registry:

* a name must be a knob of ``KNOBS``; ``grid_size`` is refused with a pointer to
  ``simulation.grid_sizes`` (grid size partitions the dataset, it is not a Sobol dimension);
* a name may appear in one group only (any group is accepted, the registry's ``group`` is
  only the conventional place);
* both ends of integer / continuous bounds and every choice value must lie in the knob's
  domain (:meth:`~spinlock_core.config.knobs.Knob.check_value`) and be finite;
* categorical knobs must be ``type: choice``; ``kernel_size`` (odd values only) must be
  ``type: choice`` with odd values; integer knobs cannot be ``type: continuous`` and their
  choice values must be ints.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from spinlock_core.config._errors import problem_details, problems_error, reraise_details
from spinlock_core.config.knobs import KNOB_GROUPS, KNOBS
from spinlock_core.config.params import ChoiceParam, ContinuousParam, IntegerParam, ParamSpec

__all__ = ["ParameterSpace", "knob_problems"]

_SPEC: TypeAdapter = TypeAdapter(ParamSpec)
_GRID_SIZE_MSG = "grid sizes are a partition dimension: set simulation.grid_sizes instead"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def knob_problems(name: str, spec: IntegerParam | ContinuousParam | ChoiceParam | None) -> list[tuple[tuple, str]]:
    """Problems of declaring knob ``name`` with ``spec``: ``(location below the name, message)``.

    With ``spec=None`` only the name is checked.
    """
    if name == "grid_size":
        return [((), _GRID_SIZE_MSG)]
    knob = KNOBS.get(name)
    if knob is None:
        return [((), f"unknown parameter {name!r} (allowed: {', '.join(KNOBS)})")]
    if spec is None:
        return []
    if knob.odd_only and spec.type != "choice":
        return [
            (
                ("type",),
                f"{name} takes odd values only: declare it as type: choice with odd values, e.g. choices: [3, 5, 7]",
            )
        ]
    if knob.kind == "choice" and spec.type != "choice":
        return [
            (
                ("type",),
                f"{name} is categorical: declare it as type: choice "
                f"(allowed values: {', '.join(map(str, knob.choices))})",
            )
        ]
    if knob.kind == "integer" and spec.type == "continuous":
        return [(("type",), f"{name} takes integer values: declare it as type: integer or type: choice")]
    problems: list[tuple[tuple, str]] = []
    if isinstance(spec, ChoiceParam):
        for value in spec.choices:
            if knob.kind == "integer" and not _is_int(value):
                problems.append((("choices",), f"{name} must be an integer, got {value!r}"))
                continue
            if isinstance(value, float) and not math.isfinite(value):
                problems.append((("choices",), f"{name} values must be finite, got {value!r}"))
                continue
            msg = knob.check_value(value)
            if msg:
                problems.append((("choices",), msg))
    else:
        for value in spec.bounds:
            if not math.isfinite(value):
                problems.append((("bounds",), f"bounds of {name} must be finite, got {value!r}"))
                continue
            msg = knob.check_value(value)
            if msg:
                problems.append((("bounds",), msg))
    return problems


def _group_field(description: str, **kwargs: Any) -> Any:
    return Field(default_factory=dict, description=description, **kwargs)


class ParameterSpace(BaseModel):
    """Sampled operator knobs, by group (each a mapping knob name -> :data:`ParamSpec`).

    ``evolution`` is accepted as an alias of ``rollout`` (giving both is an error). A group
    left empty in YAML (``operator:`` with every entry commented out) counts as ``{}``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    architecture: dict[str, ParamSpec] = _group_field("network shape knobs")
    stochastic: dict[str, ParamSpec] = _group_field("noise knobs")
    operator: dict[str, ParamSpec] = _group_field("any other knobs (free group)")
    rollout: dict[str, ParamSpec] = _group_field(
        "update-policy knobs", validation_alias=AliasChoices("rollout", "evolution")
    )

    @model_validator(mode="before")
    @classmethod
    def _alias_and_empty_groups(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "evolution" in data and "rollout" in data:
            raise problems_error(
                cls.__name__, [(("evolution",), "give either rollout or its alias evolution, not both")]
            )
        return {k: ({} if v is None and k in (*KNOB_GROUPS, "evolution") else v) for k, v in data.items()}

    @field_validator(*KNOB_GROUPS, mode="wrap")
    @classmethod
    def _validate_group(cls, value: Any, handler: Any) -> dict:
        # Entries are validated one by one so that every problem of every entry is reported
        # at once (structural errors of one entry do not hide knob problems of another).
        if not isinstance(value, dict):
            return handler(value)
        details: list = []
        group: dict = {}
        for name, raw in value.items():
            named = knob_problems(str(name), None)
            if named:
                details.extend(problem_details([((name, *sub), msg) for sub, msg in named]))
                continue
            try:
                spec = _SPEC.validate_python(raw)
            except ValidationError as exc:
                details.extend(reraise_details(exc, prefix=(name,)))
                continue
            # spec.type is the union tag pydantic puts in locations below a ParamSpec
            details.extend(
                problem_details(
                    [((name, spec.type, *sub) if sub else (name,), msg) for sub, msg in knob_problems(name, spec)]
                )
            )
            group[name] = spec
        if details:
            raise ValidationError.from_exception_data(cls.__name__, details)
        return group

    @model_validator(mode="after")
    def _names_unique(self) -> ParameterSpace:
        seen: dict[str, str] = {}
        problems = []
        for group in KNOB_GROUPS:
            for name in getattr(self, group):
                if name in seen:
                    problems.append(
                        (
                            (group, name),
                            f"{name!r} is already declared in parameter_space.{seen[name]} "
                            "(a parameter may appear in one group only)",
                        )
                    )
                else:
                    seen[name] = group
        if problems:
            raise problems_error(type(self).__name__, problems)
        return self

    def dimensions(self) -> list[tuple[str, IntegerParam | ContinuousParam | ChoiceParam]]:
        """``(name, spec)`` of every declared knob, in Sobol dimension order.

        Order: groups ``architecture, stochastic, operator, rollout``, declaration order within
        a group.
        """
        return [(name, spec) for group in KNOB_GROUPS for name, spec in getattr(self, group).items()]

    def names(self) -> list[str]:
        """Declared knob names in Sobol dimension order."""
        return [name for name, _ in self.dimensions()]
