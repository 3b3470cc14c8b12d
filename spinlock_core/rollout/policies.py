"""Update policies: how a rollout step combines the state X_{t-1} and the operator output O.

Every policy is the affine update ``X_t = a · X_{t-1} + c · O(X_{t-1})``:

==================  ==========  ==============  =============================
policy              a           c               knob
==================  ==========  ==============  =============================
``autoregressive``  0           1               --
``residual``        1           dt              ``dt`` in (0, 10]
``convex``          alpha       1 - alpha       ``alpha`` in [0, 1)
==================  ==========  ==============  =============================

so a whole bank of operators with different policies updates in one fused multiply-add.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["POLICIES", "policy_coefficients"]

POLICIES = ("autoregressive", "residual", "convex")


def policy_coefficients(params: Mapping[str, str | float]) -> tuple[float, float]:
    """``(a, c)`` of the update ``X_t = a X_{t-1} + c O`` for an operator's knob values
    (numbers, strings for categorical knobs such as ``update_policy``)."""
    policy = str(params["update_policy"])
    if policy == "autoregressive":
        return 0.0, 1.0
    if policy == "residual":
        dt = float(params["dt"])
        if not dt > 0:
            raise ValueError(f"residual policy needs dt > 0, got {dt}")
        return 1.0, dt
    if policy == "convex":
        alpha = float(params["alpha"])
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"convex policy needs 0 <= alpha < 1, got {alpha}")
        return alpha, 1.0 - alpha
    raise ValueError(f"unknown update_policy {policy!r} (allowed: {', '.join(POLICIES)})")
