"""Rollouts: update policies and the batched engine."""

from spinlock_core.rollout.engine import PRECISIONS, ChunkResult, RolloutStats, resolve_device, run_rollouts, time_axis
from spinlock_core.rollout.policies import POLICIES, policy_coefficients

__all__ = [
    "POLICIES",
    "policy_coefficients",
    "PRECISIONS",
    "ChunkResult",
    "RolloutStats",
    "resolve_device",
    "run_rollouts",
    "time_axis",
]
