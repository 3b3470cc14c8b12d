"""The ``renders`` section of the experiment config (spinlock_core.config.render): defaults, validation, YAML."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from spinlock_core.config import ConfigError, ExperimentConfig, RendersConfig, load_config, save_config
from spinlock_core.config.render import AGGREGATE_NAMES
from spinlock_core.render import AGGREGATES
from spinlock_core.testing import DEFAULT_CONFIG, tiny_overrides


def _config_file(tmp_path, **renders):
    o = tiny_overrides(
        tmp_path / "data",
        **{
            "simulation.grid_sizes": [16],
            "renders.size": 32,
            "renders.n_operators": 2,
            **{f"renders.{k}": v for k, v in renders.items()},
        },
    )
    path = tmp_path / "exp.yaml"
    save_config(load_config(DEFAULT_CONFIG, o), path)
    return path


def test_renders_config_defaults_and_validation():
    c = RendersConfig()
    assert (c.enabled, c.n_operators, c.display_realizations, c.aggregates, c.color_norm_mode) == (
        True,
        4,
        2,
        ["mean", "envelope", "entropy"],
        "per-cell",
    )
    assert tuple(AGGREGATES) == AGGREGATE_NAMES  # the config knows every aggregate of the renderer
    with pytest.raises(ValidationError) as err:
        RendersConfig(aggregates=["mean", "median"])
    assert ", ".join(AGGREGATE_NAMES) in str(err.value)
    for bad in (
        {"colour": 1},
        {"color_norm_mode": "per-frame"},
        {"aggregates": ["mean", "mean"]},
        {"display_realizations": 0, "aggregates": []},
        {"n_operators": 0},
        {"format": "webm"},
        {"size": 8},
    ):
        with pytest.raises(ValidationError):
            RendersConfig(**bad)
    with pytest.raises(ConfigError, match="renders.aggregates: unknown aggregate"):
        load_config(DEFAULT_CONFIG, {"renders.aggregates": ["spectrum"]})
    assert isinstance(load_config(DEFAULT_CONFIG).renders, RendersConfig)
    assert "renders" in ExperimentConfig.model_fields


def test_renders_section_round_trips_through_yaml(tmp_path):
    path = _config_file(tmp_path, aggregates=["ssim", "pca"], color_norm_mode="global", fps=5)
    cfg = load_config(path)
    assert cfg.renders.aggregates == ["ssim", "pca"] and cfg.renders.color_norm_mode == "global"
    assert cfg.renders.fps == 5 and cfg.renders.size == 32 and cfg.renders.n_operators == 2
    assert load_config(path) == cfg and load_config(cfg.model_dump(mode="json")).renders == cfg.renders


def test_renders_options_do_not_change_the_data_identity(tmp_path):
    """renders is excluded from the config hash: changing a preview option never regenerates rollouts."""
    a = load_config(_config_file(tmp_path))
    b = load_config(a.model_dump(mode="json"), {"renders.size": 64, "renders.aggregates": ["pca"]})
    assert a.config_hash() == b.config_hash() and a.stage_hashes() == b.stage_hashes()
