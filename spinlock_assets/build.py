"""Building Spinlock's Dagster definitions from the stage table (the ``defs`` module is :mod:`.definitions`).

:func:`build_definitions` claims ``$DAGSTER_HOME`` for the experiment
(:func:`spinlock_assets.home.claim_home`): another experiment's home is refused with a message
naming both. Jobs run on :data:`spinlock_assets.executor.spinlock_executor` (in_process,
multiprocess or dask, chosen in run config; ``SPINLOCK_EXECUTOR=in_process`` fixes in-process).
:func:`reconstructable_job` is how a job reaches other processes and hosts: a module function
and the experiment file's path, nothing pickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob

from spinlock_assets.assets import build_assets, by_name
from spinlock_assets.automation import build_feature_automation, build_grid_sizes_sensor, build_index_sensor
from spinlock_assets.checks import build_checks
from spinlock_assets.executor import spinlock_executor
from spinlock_assets.home import claim_home
from spinlock_assets.partitions import make_partitions
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import ExperimentConfig, load_config
from spinlock_core.stages import PROJECT_ROOT, enabled_stages, stage_names

__all__ = [
    "DEFAULT_CONFIG",
    "GENERATE_JOB",
    "INDEX_JOB",
    "build_definitions",
    "generate_selection",
    "experiment_job",
    "reconstructable_job",
]

DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "experiments" / "default.yaml"
GENERATE_JOB = "generate"
INDEX_JOB = "index"


def generate_selection(cfg: ExperimentConfig) -> list[str]:
    """The partitioned stages ``spinlock generate`` and backfills materialize under ``cfg``."""
    return [s.name for s in enabled_stages(cfg)]


def build_definitions(
    config_path: str | Path, overrides: Mapping[str, object] | None = None, *, claim: bool = True
) -> dg.Definitions:
    """Definitions for the experiment at ``config_path`` (with validated dotted overrides).

    ``claim``: record the experiment in ``$DAGSTER_HOME`` (when set) and refuse another's home.
    """
    path = str(Path(config_path).resolve())
    cfg = load_config(path, dict(overrides) if overrides else None)
    if claim and os.environ.get("DAGSTER_HOME"):
        claim_home(Path(os.environ["DAGSTER_HOME"]), cfg)
    partitions = make_partitions(cfg)
    assets = build_assets(cfg, partitions)
    (sdf_features,) = by_name(assets, "sdf_features")
    dataset_level = by_name(assets, *stage_names(partitioned=False))  # index, stats, card: built together
    in_process = os.environ.get("SPINLOCK_EXECUTOR", "") == "in_process"
    generated = by_name(assets, *generate_selection(cfg))
    feature_sensor, nightly = build_feature_automation(sdf_features)
    return dg.Definitions(
        assets=assets,
        asset_checks=build_checks(assets, partitions),
        sensors=[build_grid_sizes_sensor(), feature_sensor, build_index_sensor(dataset_level)],
        schedules=[nightly],
        jobs=[
            dg.define_asset_job(
                GENERATE_JOB, selection=dg.AssetSelection.assets(*generated), partitions_def=partitions
            ),
            dg.define_asset_job(INDEX_JOB, selection=dg.AssetSelection.assets(*dataset_level)),
        ],
        resources={"spinlock": SpinlockConfig(config_path=path, overrides_json=json.dumps(dict(overrides or {})))},
        executor=spinlock_executor.configured({"in_process": {}}, name="spinlock_in_process")
        if in_process
        else spinlock_executor,
    )


_JOBS: dict[tuple[str, float, str], dg.JobDefinition] = {}


def experiment_job(config_path: str, job_name: str) -> dg.JobDefinition:
    """Job ``job_name`` of the experiment file ``config_path`` (cached per file version in this process).

    The reconstruction target of :func:`reconstructable_job`: step processes and Dask workers
    call it to load the job (the file must be at that path there: a shared filesystem).
    """
    key = (config_path, os.path.getmtime(config_path), job_name)
    if key not in _JOBS:
        _JOBS[key] = build_definitions(config_path, claim=False).resolve_job_def(job_name)
    return _JOBS[key]


def reconstructable_job(config_path: str | Path, job_name: str) -> ReconstructableJob:
    """A job other processes can rebuild: :func:`experiment_job` of the absolute ``config_path``."""
    return dg.build_reconstructable_job(
        "spinlock_assets.build",
        "experiment_job",
        reconstructable_args=(str(Path(config_path).resolve()), job_name),  # type: ignore[arg-type]
    )
