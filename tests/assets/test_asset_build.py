"""Definitions (spinlock_assets.build, spinlock_assets.definitions): the asset graph, jobs, sensors,
the home claim, and the documented `dagster asset materialize` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from spinlock_assets.build import GENERATE_JOB, INDEX_JOB, build_definitions, generate_selection
from spinlock_assets.home import IDENTITY_FILE, HomeError
from spinlock_assets.partitions import ensure_grid_partitions
from spinlock_core.config import load_config, save_config
from spinlock_core.dataset import PartitionId
from spinlock_core.stages import layout_of
from spinlock_core.testing import tiny_config

PARTITIONED = ["sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features", "renders"]


def _job_assets(defs, name) -> list[str]:
    job = defs.resolve_job_def(name)
    return sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)


def test_definitions_load_with_the_asset_graph(tiny_config_file):
    defs = build_definitions(tiny_config_file, claim=False)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {*PARTITIONED, "dataset_index", "dataset_stats", "dataset_card"}
    rollouts = graph.get(dg.AssetKey("rollouts_hdf5"))
    assert rollouts.pools == {"cpu"}  # a CPU experiment's torch steps share the cpu pool (gpu on CUDA)
    assert {k.to_user_string() for k in rollouts.parent_keys} == {"sobol_parameters", "operator_specs"}
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("renders")).parent_keys} == {"sdf_features"}
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("dataset_index")).parent_keys} == {
        "rollouts_hdf5",
        "sdf_features",
    }
    assert {s.name for s in defs.sensors} == {"grid_sizes_sensor", "stale_features_sensor", "index_sensor"}
    assert {s.name for s in defs.schedules} == {"nightly_feature_refresh"}


def test_jobs_cover_every_enabled_partitioned_stage_and_the_index(tmp_path, tiny_config_file):
    cfg = load_config(tiny_config_file)
    assert generate_selection(cfg) == PARTITIONED
    defs = build_definitions(tiny_config_file, claim=False)
    assert _job_assets(defs, GENERATE_JOB) == sorted(PARTITIONED)
    assert _job_assets(defs, INDEX_JOB) == ["dataset_card", "dataset_index", "dataset_stats"]
    assert defs.resolve_job_def(GENERATE_JOB).partitions_def is not None
    assert defs.resolve_job_def(INDEX_JOB).partitions_def is None
    for overrides, want in (
        ({"renders.enabled": False}, PARTITIONED[:4]),
        ({"features.extract": False}, PARTITIONED[:3]),
    ):
        path = tmp_path / "c.yaml"
        save_config(load_config(tiny_config_file, overrides), path)
        assert generate_selection(load_config(path)) == want
        assert _job_assets(build_definitions(path, claim=False), GENERATE_JOB) == sorted(want)


def test_overrides_reach_the_resource_and_the_executor_follows_spinlock_executor(tiny_config_file, monkeypatch):
    monkeypatch.delenv("SPINLOCK_EXECUTOR", raising=False)
    defs = build_definitions(tiny_config_file, {"simulation.num_timesteps": 4}, claim=False)
    res = defs.resources["spinlock"]
    assert res.load().simulation.num_timesteps == 4 and json.loads(res.overrides_json) == {
        "simulation.num_timesteps": 4
    }
    assert Path(res.config_path).is_absolute()
    assert defs.resolve_job_def(GENERATE_JOB).executor_def.name == "spinlock"  # in_process|multiprocess|dask
    monkeypatch.setenv("SPINLOCK_EXECUTOR", "in_process")
    assert build_definitions(tiny_config_file, claim=False).resolve_job_def(GENERATE_JOB).executor_def.name == (
        "spinlock_in_process"
    )


def test_definitions_claim_the_home_and_refuse_another_experiment(tmp_path, tiny_config_file, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    build_definitions(tiny_config_file)
    ident = json.loads((home / IDENTITY_FILE).read_text())
    cfg = load_config(tiny_config_file)
    assert ident == {"experiment": cfg.metadata.name, "dataset": str(Path(cfg.dataset.output_dir).resolve())}
    # the same experiment with an edited config is fine (its partitions then show as stale)
    edited = tmp_path / "edited.yaml"
    save_config(load_config(tiny_config_file, {"simulation.num_timesteps": 4}), edited)
    build_definitions(edited)
    # another experiment is refused, naming both
    other = tmp_path / "other.yaml"
    save_config(tiny_config(tmp_path / "other_data", **{"metadata.name": "other"}), other)
    with pytest.raises(HomeError, match="belongs to experiment 'default'") as err:
        build_definitions(other)
    assert "'other'" in str(err.value) and str(tmp_path / "other_data") in str(err.value)
    build_definitions(other, claim=False)  # without claiming nothing is checked
    assert json.loads((home / IDENTITY_FILE).read_text()) == ident


def test_default_module_definitions_import(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    from spinlock_assets import definitions

    assert isinstance(definitions.defs, dg.Definitions)
    assert {k.to_user_string() for k in definitions.defs.resolve_asset_graph().get_all_asset_keys()} == {
        *PARTITIONED,
        "dataset_index",
        "dataset_stats",
        "dataset_card",
    }


def test_dagster_cli_materializes_a_partition(tiny_config_file, tmp_path):
    """The documented `dagster asset materialize ... --partition` commands work; nothing is pickled."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SPINLOCK_CONFIG": str(tiny_config_file),
        "SPINLOCK_EXECUTOR": "in_process",
    }
    inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    ensure_grid_partitions(inst, [16, 24])
    dagster = Path(sys.executable).parent / "dagster"

    def materialize(select: str) -> None:
        res = subprocess.run(
            [str(dagster), "asset", "materialize", "-m", "spinlock_assets.definitions"]
            + ["--select", select, "--partition", "0001|16"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-2000:]

    try:
        materialize("sobol_parameters,operator_specs,rollouts_hdf5")
        cfg = load_config(tiny_config_file)
        layout = layout_of(cfg)
        part = PartitionId(grid=16, batch=1)
        assert layout.rollouts(part).exists() and layout.points(1).exists() and layout.specs(1).exists()
        assert inst.get_materialized_partitions(dg.AssetKey("rollouts_hdf5")) == {"0001|16"}
        # the documented `--select sdf_features --partition P` on top of existing rollouts
        materialize("sdf_features")
        assert layout.features(part).exists()
        assert inst.get_materialized_partitions(dg.AssetKey("sdf_features")) == {"0001|16"}
        # the values are the dataset's files: no IO manager stored (pickled) any output in the home
        storage = home / "storage"
        stored = [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []
        assert not [p for p in stored if any(n in p.parts for n in PARTITIONED)], stored
        assert json.loads((home / IDENTITY_FILE).read_text())["experiment"] == cfg.metadata.name
    finally:
        inst.dispose()
