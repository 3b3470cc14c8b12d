"""Turning validation failures into one readable line per problem.

Validators in this package report problems by raising a pydantic ``ValidationError`` built
with :func:`problems_error`; pydantic nests it under the location of the validator, so
every problem keeps its full dotted path (``simulation.input_generation.localized.x``).
:func:`describe_validation_error` renders any ``ValidationError`` of a config model as
``"<dotted.path>: <message>"`` lines, naming the allowed keys for unknown keys and the
allowed values for Literals.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Any, Union

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

__all__ = [
    "PROBLEM_TYPE",
    "problem_details",
    "problems_error",
    "reraise_details",
    "describe_problems",
    "describe_validation_error",
    "allowed_keys",
]

#: pydantic error type of the problems raised by this package's own validators.
PROBLEM_TYPE = "config_problem"

Loc = tuple[str | int, ...]


def problem_details(problems: Iterable[tuple[Loc, str]]) -> list[InitErrorDetails]:
    """Line errors of ``problems`` (location relative to the validator, message)."""
    return [
        {"type": PydanticCustomError(PROBLEM_TYPE, "{msg}", {"msg": msg}), "loc": tuple(loc), "input": None}
        for loc, msg in problems
    ]


def problems_error(title: str, problems: Iterable[tuple[Loc, str]]) -> ValidationError:
    """A ``ValidationError`` carrying ``problems`` (location relative to the validator, message)."""
    return ValidationError.from_exception_data(title, problem_details(problems))


def reraise_details(exc: ValidationError, prefix: Loc = ()) -> list[InitErrorDetails]:
    """The line errors of ``exc`` with ``prefix`` put before their locations."""
    details: list[InitErrorDetails] = []
    for err in exc.errors(include_url=False):
        if err["type"] == PROBLEM_TYPE:
            details.extend(problem_details([((*prefix, *err["loc"]), err["msg"])]))
            continue
        item: InitErrorDetails = {"type": err["type"], "loc": (*prefix, *err["loc"]), "input": err["input"]}
        if "ctx" in err:
            item["ctx"] = err["ctx"]
        details.append(item)
    return details


def _field_keys(model: type[BaseModel]) -> dict[str, str]:
    """Map every accepted input key (field name or validation alias) of ``model`` to its field."""
    keys: dict[str, str] = {}
    for name, info in model.model_fields.items():
        keys[name] = name
        alias = info.validation_alias
        if isinstance(alias, str):
            keys[alias] = name
        elif isinstance(alias, AliasChoices):
            for choice in alias.choices:
                if isinstance(choice, str):
                    keys[choice] = name
    return keys


def allowed_keys(model: type[BaseModel]) -> str:
    """``"a, b, c"`` listing the keys ``model`` accepts (aliases noted after their field)."""
    parts = []
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        aliases = []
        if isinstance(alias, AliasChoices):
            aliases = [c for c in alias.choices if isinstance(c, str) and c != name]
        elif isinstance(alias, str) and alias != name:
            aliases = [alias]
        parts.append(name + (f" (alias: {', '.join(aliases)})" if aliases else ""))
    return ", ".join(parts)


def _strip_annotated(tp: Any) -> tuple[Any, tuple]:
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        return base, tuple(meta)
    return tp, ()


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _walk(root: type[BaseModel], loc: Loc) -> tuple[str, type[BaseModel] | None, bool]:
    """Dotted path of ``loc`` without union tags, the model owning its last element, and
    whether the location ends in a (non-discriminated) union member tag."""
    tp: Any = root
    path = ""
    owner: type[BaseModel] | None = None
    member = False
    for el in loc:
        owner = None
        member = False
        base, meta = _strip_annotated(tp)
        if _is_union(base):
            members = [m for m in typing.get_args(base) if m is not type(None)]
            discriminated = any(getattr(m, "discriminator", None) for m in meta)
            if discriminated and isinstance(el, str):
                tagged = [
                    m
                    for m in members
                    if _is_model(m) and m.model_fields.get("type") is not None and m.model_fields["type"].default == el
                ]
                if tagged:
                    tp = tagged[0]
                    continue
                base = None  # not a tag: a plain path element below the union
            elif len(members) == 1:
                base = members[0]
            elif isinstance(el, str) and not _is_model(members[0]):
                tp = None  # a smart-union member tag such as 'str' or 'list[float]'
                member = True
                continue
        if _is_model(base):
            keys = _field_keys(base)
            owner = base
            tp = base.model_fields[keys[el]].annotation if el in keys else None
            path = f"{path}.{el}" if path else str(el)
            continue
        origin = typing.get_origin(base)
        args = typing.get_args(base)
        if isinstance(el, int):
            path = f"{path}[{el}]"
        else:
            path = f"{path}.{el}" if path else str(el)
        if origin is dict and len(args) == 2:
            tp = args[1]
        elif origin in (list, tuple, set, frozenset) and args:
            tp = args[0]
        else:
            tp = None
    return path, owner, member


_SCALARS = (str, int, float, bool, type(None))


def _message(err: ErrorDetails, owner: type[BaseModel] | None) -> str:
    kind = err["type"]
    msg = err["msg"]
    ctx = err.get("ctx") or {}
    if kind == PROBLEM_TYPE:
        return msg
    if kind == "extra_forbidden":
        return f"unknown key (allowed: {allowed_keys(owner)})" if owner is not None else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return f"needs a '{ctx.get('discriminator', 'type').strip(chr(39))}' key (allowed: integer, continuous, choice)"
    if kind == "union_tag_invalid":
        return f"unknown type {ctx.get('tag')!r} (allowed: {str(ctx.get('expected_tags')).replace(chr(39), '')})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = "Input should be a mapping"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    value = err.get("input")
    if isinstance(value, _SCALARS):
        msg += f" (got {value!r})"
    return msg


def describe_problems(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """``(dotted path, message)`` per problem in ``exc``, duplicates dropped.

    Args:
        exc: a ``ValidationError`` raised while validating ``root``.
        root: the model class that was validated (locations are walked through its fields).
    """
    pairs: list[tuple[str, str]] = []
    alternatives: dict[str, list[str]] = {}  # smart-union failures, one message per path
    for err in exc.errors(include_url=False):
        path, owner, member = _walk(root, tuple(err["loc"]))
        if member:
            if path not in alternatives:
                alternatives[path] = []
                pairs.append((path, ""))
            alternatives[path].append(err["msg"].removeprefix("Input should be "))
            continue
        pair = (path, _message(err, owner))
        if pair not in pairs:
            pairs.append(pair)
    return [(p, m or "Input should be " + " or ".join(dict.fromkeys(alternatives[p]))) for p, m in pairs]


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One ``"<dotted.path>: <message>"`` line per problem in ``exc`` (duplicates dropped)."""
    return [f"{path}: {msg}" if path else msg for path, msg in describe_problems(exc, root)]
