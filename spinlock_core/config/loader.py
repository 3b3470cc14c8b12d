"""Loading, overriding, saving and hashing experiment configs.

Every user error (missing file, YAML syntax, top level not a mapping, bad override, any
schema problem) raises :class:`ConfigError`, whose message lists one problem per line::

    invalid config configs/x.yaml:
      - simulation.num_realizations: Input should be greater than or equal to 1 (got 0)
      - sampling.sobl: unknown key (allowed: total_samples, batch_size, sobol, validation)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from spinlock_core.config._errors import allowed_keys, describe_validation_error
from spinlock_core.config._yaml import parse_yaml
from spinlock_core.config.models import ExperimentConfig

M = TypeVar("M", bound=BaseModel)

__all__ = ["ConfigError", "load_config", "save_config", "config_hash", "apply_overrides"]


class ConfigError(ValueError):
    """A config that cannot be used.

    Attributes:
        source: what was loaded (a path, or "<dict>").
        problems: one human-readable line per problem, ``"<dotted.path>: <message>"``.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        return f"invalid config {self.source}:\n" + "\n".join(f"  - {p}" for p in self.problems)

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self) -> tuple:  # picklable across processes despite the custom __init__
        return (type(self), (self.source, self.problems))


def _read(source: str | os.PathLike | Mapping) -> tuple[str, Any]:
    """``(label, raw mapping)`` of ``source``; raises ConfigError when it cannot be read."""
    if isinstance(source, Mapping):
        return "<dict>", copy.deepcopy(dict(source))
    label = os.fspath(source)
    path = Path(label)
    if not path.exists():
        raise ConfigError(label, [f"file not found (working directory: {Path.cwd()})"])
    if not path.is_file():
        raise ConfigError(label, ["not a file"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(label, [f"cannot read file: {exc}"]) from None
    try:
        raw = parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = exc.problem or exc.context or "syntax error"
        raise ConfigError(label, [f"YAML error at {where}{what}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(label, [f"YAML error: {exc}"]) from None
    return label, raw


def apply_overrides(raw: dict, overrides: Mapping[str, object], model: type[BaseModel] | None = None) -> list[str]:
    """Set dotted ``overrides`` in ``raw`` (in place); return problems, if any.

    ``{"sampling.total_samples": 100}`` sets ``raw["sampling"]["total_samples"]``, creating
    missing intermediate mappings. The first segment must be a top-level section. Under
    ``parameter_space`` a ``rollout``/``evolution`` segment follows whichever of the two the
    config already uses. Values are set as given and validated with the rest of the config.
    ``model`` is the root model whose sections are allowed (default :class:`ExperimentConfig`).
    """
    problems = []
    model = model or ExperimentConfig
    sections = set(model.model_fields)
    for key, value in overrides.items():
        parts = str(key).split(".")
        if not all(parts):
            problems.append(f"override {key!r}: empty segment in the dotted key")
            continue
        if parts[0] not in sections:
            problems.append(f"override {key!r}: unknown section {parts[0]!r} (allowed: {allowed_keys(model)})")
            continue
        node = raw
        for i, part in enumerate(parts[:-1]):
            if i == 1 and parts[0] == "parameter_space" and part in ("rollout", "evolution"):
                other = "evolution" if part == "rollout" else "rollout"
                if part not in node and other in node:
                    part = other
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                problems.append(f"override {key!r}: {'.'.join(parts[: i + 1])} is not a mapping (it is {child!r})")
                break
            node = child
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return problems


def load_config(
    source: str | os.PathLike | Mapping[str, Any],
    overrides: Mapping[str, object] | None = None,
) -> ExperimentConfig:
    """Read, override and validate an experiment config.

    Args:
        source: path of a YAML file, or an already-parsed mapping (not modified).
        overrides: dotted keys to set before validation, e.g.
            ``{"sampling.total_samples": 100, "simulation.device": "cpu"}``; they are
            validated like the rest of the config.

    Returns:
        The validated :class:`ExperimentConfig`.

    Raises:
        ConfigError: listing every problem found (one line each).
    """
    label, raw = _read(source)
    return validate_raw(ExperimentConfig, label, raw, overrides)


def validate_raw(
    model: type[M], label: str, raw: Any, overrides: Mapping[str, object] | None = None, *, empty_ok: bool = False
) -> M:
    """Apply dotted ``overrides`` to a parsed document ``raw`` and validate it as ``model``.

    ``empty_ok``: an empty document is an empty mapping (every default) instead of an error.

    Raises:
        ConfigError: ``label`` and one line per problem.
    """
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        got = "an empty document" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(label, [f"the top level must be a mapping of sections, got {got}"])
    if overrides:
        problems = apply_overrides(raw, overrides, model)
        if problems:
            raise ConfigError(label, problems)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(label, describe_validation_error(exc, model)) from None


def save_config(cfg: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as YAML to ``path`` (parents created); ``load_config`` reads it back equal."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Spinlock experiment config (config_hash {cfg.config_hash()})\n"
    out.write_text(header + cfg.to_yaml(), encoding="utf-8")
    return out


def config_hash(cfg: ExperimentConfig) -> str:
    """Same as :meth:`ExperimentConfig.config_hash` (16 hex digits)."""
    return cfg.config_hash()
