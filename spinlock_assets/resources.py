"""Resources: where the experiment config lives (the single input of every asset)."""

from __future__ import annotations

import json

import dagster as dg

from spinlock_core.config import ExperimentConfig, load_config


class SpinlockConfig(dg.ConfigurableResource):
    """The experiment config the assets materialize.

    Attributes:
        config_path: YAML experiment config.
        overrides_json: JSON object of dotted-key overrides applied (and validated) on load,
            e.g. ``{"simulation.device": "cuda"}``.
    """

    config_path: str
    overrides_json: str = "{}"

    def load(self) -> ExperimentConfig:
        return _load(self.config_path, self.overrides_json)


_CACHE: dict[tuple[str, str, float], ExperimentConfig] = {}


def _load(path: str, overrides_json: str) -> ExperimentConfig:
    import os

    key = (path, overrides_json, os.path.getmtime(path))
    if key not in _CACHE:
        _CACHE[key] = load_config(path, json.loads(overrides_json) or None)
    return _CACHE[key]
