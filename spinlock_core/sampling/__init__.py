"""Parameter-space sampling: one seeded, scrambled Sobol set per experiment, mapped onto
the knob specs of :mod:`spinlock_core.config.params`, plus its quality metrics."""

from spinlock_core.sampling.mapping import map_column, map_unit
from spinlock_core.sampling.metrics import metrics_pass, sampling_metrics
from spinlock_core.sampling.sobol import sobol_points

__all__ = ["sobol_points", "map_unit", "map_column", "sampling_metrics", "metrics_pass"]
