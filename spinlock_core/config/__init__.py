"""Typed experiment configuration: schema, YAML loading with clear errors, hashing.

Typical use::

    from spinlock_core.config import load_config
    cfg = load_config("configs/experiments/default.yaml", {"simulation.device": "cpu"})
    cfg.sobol_dimensions()   # [(name, ParamSpec), ...] in Sobol dimension order
    cfg.config_hash()        # 16 hex digits: what changes the data (not paths, names, grids)
    cfg.stage_hashes()       # one hash per stage (points, specs, rollouts)

See :mod:`spinlock_core.config.models` for the section map and each model's conventions.
"""

from spinlock_core.config.hashing import StageHashes, canonical_hash, stage_hashes
from spinlock_core.config.input_generation import InputGenerationConfig
from spinlock_core.config.loader import ConfigError, apply_overrides, config_hash, load_config, save_config
from spinlock_core.config.models import (
    SUPPORTED_VERSIONS,
    DatasetConfig,
    ExperimentConfig,
    MetadataConfig,
    SamplingConfig,
    SamplingValidation,
    SimulationConfig,
    SobolConfig,
    StorageConfig,
)
from spinlock_core.config.parameter_space import ParameterSpace
from spinlock_core.config.params import ChoiceParam, ContinuousParam, IntegerParam, ParamSpec
from spinlock_core.config.render import RendersConfig
from spinlock_core.config.splits import SPLIT_NAMES, HoldoutConfig, SplitsConfig

__all__ = [
    "ExperimentConfig",
    "load_config",
    "save_config",
    "config_hash",
    "stage_hashes",
    "StageHashes",
    "canonical_hash",
    "apply_overrides",
    "ConfigError",
    "SUPPORTED_VERSIONS",
    "MetadataConfig",
    "ParameterSpace",
    "SamplingConfig",
    "SobolConfig",
    "SamplingValidation",
    "SimulationConfig",
    "InputGenerationConfig",
    "DatasetConfig",
    "StorageConfig",
    "RendersConfig",
    "SplitsConfig",
    "HoldoutConfig",
    "SPLIT_NAMES",
    "IntegerParam",
    "ContinuousParam",
    "ChoiceParam",
    "ParamSpec",
]
