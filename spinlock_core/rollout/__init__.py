"""Rollouts: update policies, the batched engine and the operator-sensitivity measurement.

The sensitivity names (:mod:`spinlock_core.rollout.sensitivity`) are imported on first use:
they need the feature families, which a plain rollout does not.
"""

from spinlock_core.rollout.engine import PRECISIONS, ChunkResult, RolloutStats, resolve_device, run_rollouts, time_axis
from spinlock_core.rollout.policies import POLICIES, policy_coefficients

_SENSITIVITY_NAMES = (
    "SENSITIVITY_VERSION",
    "measure_sensitivity",
    "sensitivity_for_specs",
    "sensitivity_feature_names",
    "sensitivity_params_hash",
    "sensitivity_params_json",
    "perturbation_direction",
    "stored_sensitivity",
)


def __getattr__(name: str):
    if name in _SENSITIVITY_NAMES:
        from spinlock_core.rollout import sensitivity

        return getattr(sensitivity, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "POLICIES",
    "policy_coefficients",
    "PRECISIONS",
    "ChunkResult",
    "RolloutStats",
    "resolve_device",
    "run_rollouts",
    "time_axis",
    *_SENSITIVITY_NAMES,
]
