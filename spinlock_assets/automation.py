"""Sensors: keep the dynamic grid-size partitions in step with the experiment config."""


import dagster as dg

from spinlock_assets.partitions import GRID_DIMENSION
from spinlock_assets.resources import SpinlockConfig


def build_grid_sizes_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="grid_sizes_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds every grid size of simulation.grid_sizes as a grid_size partition "
        "(new grid sizes then show up in the UI, ready to backfill).",
    )
    def grid_sizes_sensor(context: dg.SensorEvaluationContext, spinlock: SpinlockConfig) -> dg.SensorResult:
        cfg = spinlock.load()
        have = set(context.instance.get_dynamic_partitions(GRID_DIMENSION))
        new = [str(g) for g in cfg.simulation.grid_sizes if str(g) not in have]
        if not new:
            return dg.SensorResult(skip_reason=dg.SkipReason("all configured grid sizes are partitions"))
        return dg.SensorResult(dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(GRID_DIMENSION, new)])

    return grid_sizes_sensor
