"""Sensors and schedules.

* ``grid_sizes_sensor``: keeps the dynamic grid-size partitions in step with the config.
* ``stale_features_sensor`` (every 30 s) and ``nightly_feature_refresh`` (03:00): re-extract
  ``sdf_features`` for exactly the partitions whose feature file was extracted under another
  features config hash than the current one (the features YAML is re-read on every tick, so an
  edit needs no code reload). Partitions never extracted are left to normal materialization.

Duplicates are avoided twice: a partition with a queued or running ``sdf_features`` run for the
current hash is skipped, and each request's ``run_key`` names the current hash, the stored hash
and the feature file's modification time, so a tick can never re-request the same stale state,
while a revert (A → B → A) produces new keys and re-extracts again.
"""

import dagster as dg

from spinlock_assets.partitions import GRID_DIMENSION, partition_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core import pipeline
from spinlock_core.config import ConfigError
from spinlock_core.features import features_config_hash

FEATURES_HASH_TAG = "spinlock/features_hash"
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


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


def stale_feature_requests(instance: dg.DagsterInstance, spinlock: SpinlockConfig) -> list[dg.RunRequest] | str:
    """Run requests re-extracting stale feature partitions, or a reason to skip (str)."""
    cfg = spinlock.load()
    try:
        fcfg = pipeline.features_config(cfg)
    except ConfigError as exc:
        return f"features config invalid, nothing re-extracted: {exc}"
    current = features_config_hash(fcfg)
    grids = set(instance.get_dynamic_partitions(GRID_DIMENSION))
    requests = []
    for batch, grid, stored in pipeline.stale_feature_partitions(cfg, fcfg):
        if stored is None or str(grid) not in grids or batch >= cfg.sampling.num_batches:
            continue  # never extracted, or not a partition of this experiment
        key = str(partition_key(batch, grid))
        active = instance.get_run_records(
            dg.RunsFilter(statuses=_ACTIVE, tags={"dagster/partition": key, FEATURES_HASH_TAG: current}), limit=1
        )
        if active:
            continue
        mtime = pipeline.features_file(cfg, batch, grid).stat().st_mtime_ns
        requests.append(
            dg.RunRequest(
                run_key=f"{key}:{current}:{stored}:{mtime}",
                partition_key=key,
                tags={FEATURES_HASH_TAG: current, "spinlock/stale_hash": stored},
            )
        )
    if not requests:
        return f"every extracted partition is current (features hash {current})"
    return requests


def build_feature_automation(sdf_features: dg.AssetsDefinition) -> list:
    """``stale_features_sensor`` and ``nightly_feature_refresh`` targeting ``sdf_features``."""

    @dg.sensor(
        name="stale_features_sensor",
        target=[sdf_features],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-extracts sdf_features for exactly the partitions extracted under an older features "
        "config hash (the features YAML is re-read each tick).",
    )
    def stale_features_sensor(context: dg.SensorEvaluationContext, spinlock: SpinlockConfig) -> dg.SensorResult:
        out = stale_feature_requests(context.instance, spinlock)
        if isinstance(out, str):
            return dg.SensorResult(skip_reason=dg.SkipReason(out))
        return dg.SensorResult(run_requests=out)

    @dg.schedule(
        name="nightly_feature_refresh",
        target=[sdf_features],
        cron_schedule="0 3 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Nightly: the same stale-partition re-extraction as stale_features_sensor.",
    )
    def nightly_feature_refresh(context: dg.ScheduleEvaluationContext, spinlock: SpinlockConfig):
        out = stale_feature_requests(context.instance, spinlock)
        if isinstance(out, str):
            return dg.SkipReason(out)
        return out

    return [stale_features_sensor, nightly_feature_refresh]
