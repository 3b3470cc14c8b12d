"""Dagster definitions for Spinlock.

The experiment config comes from ``$SPINLOCK_CONFIG`` (default
``configs/experiments/default.yaml``); ``dagster dev -w workspace.yaml`` and
``dagster asset materialize -m spinlock_assets.definitions`` both load ``defs`` from here.
Set ``SPINLOCK_EXECUTOR=in_process`` to run every step in the run's own process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from spinlock_assets.assets import build_assets, by_name
from spinlock_assets.automation import build_feature_automation, build_grid_sizes_sensor
from spinlock_assets.checks import build_checks
from spinlock_assets.partitions import make_partitions
from spinlock_assets.render_assets import build_renders_asset
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "experiments" / "default.yaml"


def build_definitions(config_path: str | Path, overrides: Mapping[str, object] | None = None) -> dg.Definitions:
    """Definitions for the experiment at ``config_path`` (with validated dotted overrides)."""
    path = str(Path(config_path).resolve())
    cfg = load_config(path, dict(overrides) if overrides else None)
    partitions = make_partitions(cfg)
    assets = build_assets(partitions) + [build_renders_asset(partitions)]
    sensor, schedule = build_feature_automation(by_name(assets, "sdf_features")[0])
    in_process = os.environ.get("SPINLOCK_EXECUTOR", "") == "in_process"
    return dg.Definitions(
        assets=assets,
        asset_checks=build_checks(assets, partitions),
        sensors=[build_grid_sizes_sensor(), sensor],
        schedules=[schedule],
        jobs=[
            dg.define_asset_job(
                "generate",
                selection=dg.AssetSelection.assets(
                    *by_name(assets, "sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features", "renders")
                ),
            )
        ],
        resources={"spinlock": SpinlockConfig(config_path=path, overrides_json=json.dumps(dict(overrides or {})))},
        executor=dg.in_process_executor if in_process else dg.multiprocess_executor.configured({"max_concurrent": 2}),
    )


defs = build_definitions(os.environ.get("SPINLOCK_CONFIG", str(DEFAULT_CONFIG)))
