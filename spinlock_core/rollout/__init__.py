"""Rollouts: update policies and the batched engine (many operators x realizations x steps).

The engine measures operator sensitivity through a :class:`SensitivityProbe` it is handed
(:class:`spinlock_core.sensitivity.SensitivityMeter`); it never imports the measurement.
"""

from spinlock_core.rollout.engine import (
    PRECISIONS,
    ChunkResult,
    RolloutStats,
    SensitivityProbe,
    run_rollouts,
    time_axis,
)
from spinlock_core.rollout.policies import POLICIES, policy_coefficients

__all__ = [
    "POLICIES",
    "policy_coefficients",
    "PRECISIONS",
    "ChunkResult",
    "RolloutStats",
    "SensitivityProbe",
    "run_rollouts",
    "time_axis",
]
