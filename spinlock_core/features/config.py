"""The features config: which families and features to extract, with their parameters.

A features YAML has one section per family (see :data:`FAMILY_ORDER`), each with
``enabled``, ``include`` (opt-in feature names), ``exclude`` (feature names to drop) and the
family's parameters, plus ``aggregation`` (how per-timestep and per-realization values are
summarised per sample) and ``extraction`` (device and batching: how, not what). Every key is
optional; unknown keys, unknown feature names and out-of-range values are rejected with one
line per problem naming the field and the allowed values::

    spatial:
      histogram_bins: 32
      exclude: [spatial_mad]
    nonlinear:
      enabled: false
    aggregation:
      realization: [mean, std]

:func:`features_config_hash` identifies *what* is extracted (every section but
``extraction``, plus :data:`FEATURES_VERSION`): the Dagster sensor re-extracts exactly the
partitions whose stored hash differs from the current one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from spinlock_core.config.loader import _read, validate_raw
from spinlock_core.features.families import FAMILY_REGISTRY, families

__all__ = [
    "FEATURES_VERSION",
    "TEMPORAL_AGGREGATES",
    "REALIZATION_AGGREGATES",
    "AggregationConfig",
    "ExtractionConfig",
    "FeaturesConfig",
    "features_config_model",
    "load_features_config",
    "features_config_hash",
]

#: Version of the extractor's definitions; part of the config hash (a change re-extracts).
FEATURES_VERSION = "1.0.0"

#: Reductions over the stored frames of per-timestep features (``final`` = last frame).
TEMPORAL_AGGREGATES: tuple[str, ...] = ("mean", "std", "min", "max", "initial", "final")
#: Reductions over the M realizations (``cv = std / (|mean| + 1e-12)``), NaN-aware.
REALIZATION_AGGREGATES: tuple[str, ...] = ("mean", "std", "cv", "min", "max")

_FORBID = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AggregationConfig(BaseModel):
    """How each sample's summary row (``/features/sdf/aggregated``) is formed.

    Per-timestep features are reduced over the stored frames (``temporal``), then averaged over
    channels unless ``per_channel`` (then one column per channel, suffix ``_c<k>``); per-trajectory
    features are averaged over channels likewise; then everything is reduced over the M
    realizations (``realization``). Order of columns: registry order, then temporal reduction,
    then realization reduction (all recorded in the file).
    """

    model_config = _FORBID
    temporal: tuple[Literal["mean", "std", "min", "max", "initial", "final"], ...] = Field(
        default=("mean", "std"), min_length=1, description="reductions over frames of per-timestep features"
    )
    realization: tuple[Literal["mean", "std", "cv", "min", "max"], ...] = Field(
        default=("mean", "std", "cv"), min_length=1, description="reductions over realizations (NaN-aware)"
    )
    per_channel: bool = Field(default=False, description="keep channels apart in the summary instead of averaging")


class ExtractionConfig(BaseModel):
    """How features are computed (not part of the config hash: results do not depend on it)."""

    model_config = _FORBID
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    batch_size: int = Field(default=8, ge=1, le=4096, description="samples read and extracted per step")
    max_chunk_elements: int = Field(
        default=1 << 24, ge=1 << 16, description="field elements per compute chunk (memory bound)"
    )


class FeaturesConfig(BaseModel):
    """The sections every features config has, and its feature-name checks.

    Not used alone: :func:`features_config_model` derives the model with one more section per
    registered family (that family's ``config_model``, read as ``getattr(cfg, family.name)``).
    """

    model_config = _FORBID
    version: Literal["1"] = Field(default="1", description="features config schema version")
    aggregation: AggregationConfig = Field(default_factory=AggregationConfig)
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)

    def section(self, family: str) -> Any:
        """The config section of ``family`` (a field of the model derived per registered family)."""
        return getattr(self, family)

    @model_validator(mode="after")
    def _names(self) -> FeaturesConfig:
        problems = []
        for fam in families():
            fcfg = getattr(self, fam.name)
            unknown = fam.unknown_names(fcfg)
            if unknown:
                allowed = ", ".join(s.name for s in fam.catalogue(fcfg))
                problems.append(f"{fam.name}: unknown feature name(s) {unknown}; allowed: {allowed}")
        if problems:
            raise ValueError("; ".join(problems))
        if not any(fam.selected(getattr(self, fam.name)) for fam in families()):
            raise ValueError(
                "every feature is disabled (all families off, or every feature excluded): enable at least one "
                "family, or set features.extract: false in the experiment config to skip feature extraction"
            )
        return self


@cache
def _model(names: tuple[str, ...]) -> type[FeaturesConfig]:
    fields: dict[str, Any] = {}
    for name in names:
        cm = FAMILY_REGISTRY[name].config_model
        fields[name] = (cm, Field(default_factory=cm, description=FAMILY_REGISTRY[name].description))
    return create_model("FeaturesConfig", __base__=FeaturesConfig, **fields)


def features_config_model() -> type[FeaturesConfig]:
    """The pydantic model of the features config (one section per registered family)."""
    return _model(tuple(f.name for f in families()))


def load_features_config(
    source: str | os.PathLike | Mapping[str, Any] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> FeaturesConfig:
    """Read and validate a features config (``None``: every default).

    Args:
        source: path of a YAML file, a parsed mapping, or None.
        overrides: dotted keys set before validation, e.g. ``{"spatial.histogram_bins": 32}``.

    Raises:
        ConfigError: one line per problem (field path, what is wrong, allowed values).
    """
    raw: Any
    if source is None:
        label, raw = "features config (defaults)", {}
    else:
        label, raw = _read(source)
    cfg = validate_raw(features_config_model(), label, raw, overrides, empty_ok=True)
    assert isinstance(cfg, FeaturesConfig)  # features_config_model() derives from it
    return cfg


def features_config_hash(cfg: BaseModel) -> str:
    """16 hex digits of SHA-256 over what is extracted: every section but ``extraction``, + version."""
    payload = {"features_version": FEATURES_VERSION, "config": cfg.model_dump(mode="json", exclude={"extraction"})}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
