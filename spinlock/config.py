"""The seed's ``spinlock.config``: loading and validating experiment configs."""

from spinlock_core.config import ConfigError, ExperimentConfig, load_config

__all__ = ["load_config", "ExperimentConfig", "ConfigError"]
