"""Operator sensitivity: how one operator step responds to perturbations of its input.

Measured on the live operator bank during the rollout (the engine calls a
:class:`SensitivityMeter`) or on operators rebuilt from their specs
(:func:`sensitivity_for_specs`). Definitions: :mod:`spinlock_core.features.families.operator_sensitivity`.
"""

from spinlock_core.sensitivity.measure import (
    SENSITIVITY_SPAWN_KEY,
    SENSITIVITY_VERSION,
    SensitivityMeter,
    measure_sensitivity,
    perturbation_direction,
    sensitivity_feature_names,
    sensitivity_for_specs,
    sensitivity_params_hash,
    sensitivity_params_json,
)

__all__ = [
    "SENSITIVITY_VERSION",
    "SENSITIVITY_SPAWN_KEY",
    "SensitivityMeter",
    "measure_sensitivity",
    "sensitivity_for_specs",
    "sensitivity_feature_names",
    "sensitivity_params_json",
    "sensitivity_params_hash",
    "perturbation_direction",
]
