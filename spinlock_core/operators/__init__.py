"""Operators: knob registry, JSON specs, architecture/initialisation and the batched bank."""

from spinlock_core.config.knobs import KNOB_GROUPS, KNOBS, Knob, noise_regime
from spinlock_core.operators.architecture import Unit, hidden_widths, init_unit_params, unit_plan
from spinlock_core.operators.bank import BucketKey, OperatorBank, StochasticDraws, bucket_key, schedule_factor
from spinlock_core.operators.spec import OperatorSpec

__all__ = [
    "KNOBS",
    "KNOB_GROUPS",
    "Knob",
    "noise_regime",
    "OperatorSpec",
    "Unit",
    "unit_plan",
    "init_unit_params",
    "hidden_widths",
    "BucketKey",
    "bucket_key",
    "OperatorBank",
    "StochasticDraws",
    "schedule_factor",
]
