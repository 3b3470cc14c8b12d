"""Sensors and schedules: keep the dataset complete and current without anyone clicking.

* ``grid_sizes_sensor``: keeps the dynamic grid-size partitions in step with the config.
* ``stale_features_sensor`` (every 30 s) and ``nightly_feature_refresh`` (03:00): extract
  ``sdf_features`` for exactly the partitions whose rollouts have no features yet or features
  from another features config hash (the YAML is re-read on every tick, so an edit needs no
  code reload). Each run also executes the rollouts' blocking checks first, so features are
  never extracted from a partition that fails them, and the features' own checks.
* ``index_sensor`` (every 30 s): rebuilds ``dataset_index`` whenever the index does not
  describe the files (any rollouts or feature file changed, added or removed since it was
  built), once no other run is in progress; after a sensor, a backfill, a UI materialization
  or the CLI alike.

Duplicates are avoided twice: partitions with a queued or running run that makes their
features (a sensor's, ``spinlock generate``'s, a backfill's or the UI's) are skipped, and each request's ``run_key`` names the state it answers (hashes, file
modification times), so a tick never re-requests the same state while a revert (A → B → A)
produces new keys.

A tick opens feature files for at most ``SCAN_BUDGET_S`` seconds and remembers each file's hash
until the file changes, so on a dataset too large for one tick the scan completes over the next
ticks, and later ticks cost one ``stat`` per file.
"""

import hashlib
import json

import dagster as dg

from spinlock_assets.partitions import GRID_DIMENSION, partition_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import ConfigError, ExperimentConfig
from spinlock_core.dataset import DatasetError, DatasetLayout, card_hashes, index_problems, read_splits, read_stats
from spinlock_core.dataset.index import index_sources
from spinlock_core.features import features_config_hash
from spinlock_core.stages import features_config, layout_of, scan_feature_partitions, stage_names

__all__ = [
    "FEATURES_HASH_TAG",
    "build_grid_sizes_sensor",
    "stale_feature_requests",
    "build_feature_automation",
    "index_request",
    "build_index_sensor",
]

FEATURES_HASH_TAG = "spinlock/features_hash"
# Seconds a tick may spend opening feature files (Dagster times a sensor evaluation out at 60 s).
# The code server remembers every file's hash until the file changes, so after the first ticks of
# a large dataset a tick only stats the files (measured in benchmarks/bench_instance.py).
SCAN_BUDGET_S = 20.0
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
_TARGET_CHECKS = (
    ("rollouts_hdf5", "rollouts_schema"),
    ("rollouts_hdf5", "rollouts_finite"),
    ("sdf_features", "features_schema"),
    ("sdf_features", "features_nan"),
)


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
    """Run requests extracting missing or stale feature partitions, or a reason to skip (str)."""
    cfg = spinlock.load()
    if not cfg.features.extract:
        return "features.extract is false"
    try:
        fcfg = features_config(cfg)
    except ConfigError as exc:
        return f"features config invalid, nothing extracted: {exc}"
    current = features_config_hash(fcfg)
    layout = layout_of(cfg)
    grids = set(instance.get_dynamic_partitions(GRID_DIMENSION))
    checks = _target_checks()
    busy = _partitions_extracting(instance)
    scan = scan_feature_partitions(layout, current, budget_s=SCAN_BUDGET_S)
    requests = []
    for part, stored in scan.stale:
        if str(part.grid) not in grids or part.batch >= cfg.sampling.num_batches:
            continue  # not a partition of this experiment
        key = str(partition_key(part))
        if key in busy:
            continue  # a run (sensor, generate, backfill, UI) is already making this partition's features
        src = layout.rollouts(part)
        fpath = layout.features(part)
        state = f"{stored or 'none'}:{src.stat().st_mtime_ns}:{fpath.stat().st_mtime_ns if fpath.exists() else 0}"
        requests.append(
            dg.RunRequest(
                run_key=f"{key}:{current}:{state}",
                partition_key=key,
                asset_selection=[dg.AssetKey("sdf_features")],
                asset_check_keys=checks,
                tags={FEATURES_HASH_TAG: current, "spinlock/stale_hash": stored or "none"},
            )
        )
    if not requests and not scan.complete:
        return (
            f"features of {scan.scanned} of {scan.total} partitions checked within {SCAN_BUDGET_S:g} s, all "
            "current or in progress; the next tick goes on from there (files already read are not opened again)"
        )
    if not requests:
        return f"every partition's features are current (features hash {current})"
    return requests


def _partitions_extracting(instance: dg.DagsterInstance) -> set[str]:
    """Partition keys with a queued or running run that makes their features (one query per tick)."""
    return {
        r.dagster_run.tags["dagster/partition"]
        for r in instance.get_run_records(dg.RunsFilter(statuses=_ACTIVE))
        if "dagster/partition" in r.dagster_run.tags and _extracts_features(r.dagster_run)
    }


def _target_checks() -> list[dg.AssetCheckKey]:
    """The checks a features run executes: the rollouts' blocking checks first, then the features' own."""
    return [dg.AssetCheckKey(dg.AssetKey(asset), name) for asset, name in _TARGET_CHECKS]


def _extracts_features(run: dg.DagsterRun) -> bool:
    selection = run.asset_selection
    return selection is None or dg.AssetKey("sdf_features") in selection


def build_feature_automation(sdf_features: dg.AssetsDefinition) -> tuple[dg.SensorDefinition, dg.ScheduleDefinition]:
    """``stale_features_sensor`` and ``nightly_feature_refresh`` targeting ``sdf_features``."""
    target = dg.AssetSelection.assets(sdf_features) | dg.AssetSelection.checks(*_target_checks())

    @dg.sensor(
        name="stale_features_sensor",
        target=target,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Extracts sdf_features for exactly the partitions whose rollouts have no features or features "
        "from another features config hash (the features YAML is re-read each tick).",
    )
    def stale_features_sensor(context: dg.SensorEvaluationContext, spinlock: SpinlockConfig) -> dg.SensorResult:
        out = stale_feature_requests(context.instance, spinlock)
        if isinstance(out, str):
            return dg.SensorResult(skip_reason=dg.SkipReason(out))
        return dg.SensorResult(run_requests=out)

    @dg.schedule(
        name="nightly_feature_refresh",
        target=target,
        cron_schedule="0 3 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Nightly: the same stale-partition extraction as stale_features_sensor.",
    )
    def nightly_feature_refresh(context: dg.ScheduleEvaluationContext, spinlock: SpinlockConfig):
        out = stale_feature_requests(context.instance, spinlock)
        if isinstance(out, str):
            return dg.SkipReason(out)
        return out

    return stale_features_sensor, nightly_feature_refresh


def index_request(instance: dg.DagsterInstance, spinlock: SpinlockConfig) -> dg.RunRequest | str:
    """A run request rebuilding the index when it is stale and nothing else runs, or why not (str)."""
    cfg = spinlock.load()
    layout = layout_of(cfg)
    if not layout.rollout_partitions():
        return "no rollouts yet"
    try:
        problems = index_problems(layout)
    except DatasetError as exc:
        problems = [str(exc)]
    problems += _splits_and_stats_problems(cfg, layout)
    if not problems:
        return "index.h5, splits.json, stats.json and the card are current"
    active = list(instance.get_run_records(dg.RunsFilter(statuses=_ACTIVE), limit=20))
    if active:
        return f"index.h5 is stale ({problems[0]}); waiting for {len(active)} run(s) in progress"
    state_doc = {"sources": index_sources(layout), "splits": cfg.splits.model_dump(mode="json"), "problems": problems}
    state = hashlib.sha256(json.dumps(state_doc, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"index:{state}",
        asset_selection=[dg.AssetKey(n) for n in stage_names(partitioned=False)],
        tags={"spinlock/reason": problems[0][:200]},
    )


def _splits_and_stats_problems(cfg: ExperimentConfig, layout: DatasetLayout) -> list[str]:
    """Why splits.json, stats.json or the card do not match the config and each other (no trajectory is read)."""
    try:
        splits = read_splits(layout)
    except DatasetError as exc:
        return [str(exc)]
    seed = cfg.splits.seed if cfg.splits.seed is not None else cfg.sampling.sobol.seed
    if splits.config != cfg.splits.model_dump(mode="json") or splits.seed != seed:
        return [f"{layout.splits}: made from another splits config or seed than the experiment's"]
    try:
        stats = read_stats(layout, splits, cfg.config_hash())
    except DatasetError as exc:
        return [str(exc)]
    if card_hashes(layout) != (splits.hash, stats.to_json()["hash"]):
        return [f"{layout.card}: missing, or made from other splits or statistics"]
    return []


def build_index_sensor(dataset_level: list[dg.AssetsDefinition]) -> dg.SensorDefinition:
    """The index sensor targeting the dataset-level assets (index, stats, card)."""

    @dg.sensor(
        name="index_sensor",
        target=dataset_level,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds dataset_index, dataset_stats and dataset_card when any rollouts or feature file changed, "
        "appeared or disappeared since the index was built (after sensors, backfills, UI or CLI runs), or the splits "
        "config changed, once no other run is in progress.",
    )
    def index_sensor(context: dg.SensorEvaluationContext, spinlock: SpinlockConfig) -> dg.SensorResult:
        out = index_request(context.instance, spinlock)
        if isinstance(out, str):
            return dg.SensorResult(skip_reason=dg.SkipReason(out))
        return dg.SensorResult(run_requests=[out])

    return index_sensor
