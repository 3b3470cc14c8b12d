"""Dagster wiring: definitions load, a partition materializes, grid sizes become partitions."""

from __future__ import annotations

import dagster as dg
import h5py

from spinlock_assets.assets import build_assets
from spinlock_assets.automation import build_grid_sizes_sensor
from spinlock_assets.definitions import build_definitions
from spinlock_assets.partitions import GRID_DIMENSION, ensure_grid_partitions, make_partitions, partition_key, split_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import load_config


def test_definitions_load_with_the_asset_graph(tiny_config_file):
    defs = build_definitions(tiny_config_file)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"sobol_parameters", "operator_specs", "rollouts_hdf5", "dataset_index"} <= keys
    rollouts = graph.get(dg.AssetKey("rollouts_hdf5"))
    assert rollouts.pools == {"gpu"}
    parents = {k.to_user_string() for k in rollouts.parent_keys}
    assert parents == {"sobol_parameters", "operator_specs"}


def test_default_module_definitions_import():
    from spinlock_assets import definitions

    assert isinstance(definitions.defs, dg.Definitions)


def test_partition_keys_round_trip(tiny_config_file):
    cfg = load_config(tiny_config_file)
    parts = make_partitions(cfg)
    key = partition_key(1, 24)
    assert str(key) == "0001|24"  # dimensions ordered alphabetically: batch|grid_size
    assert split_key(key) == (1, 24) and split_key("0001|24") == (1, 24)
    inst = dg.DagsterInstance.ephemeral()
    assert ensure_grid_partitions(inst, [16, 24]) == ["16", "24"]
    assert ensure_grid_partitions(inst, [16, 24]) == []
    assert len(parts.get_partition_keys(dynamic_partitions_store=inst)) == 2 * 2


def test_a_partition_materializes_in_an_ephemeral_instance(tiny_config_file):
    cfg = load_config(tiny_config_file)
    assets = build_assets(make_partitions(cfg))
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions(GRID_DIMENSION, ["16", "24"])
    res = dg.materialize(
        assets[:3],
        partition_key=partition_key(1, 24),
        instance=inst,
        resources={"spinlock": SpinlockConfig(config_path=str(tiny_config_file))},
    )
    assert res.success
    mat = res.asset_materializations_for_node("rollouts_hdf5")[0]
    path = mat.metadata["path"].value
    assert mat.metadata["shape"].value == [3, 2, 4, 3, 24, 24]
    assert mat.metadata["diverged_realizations"].value >= 0
    assert mat.metadata["samples_per_s"].value > 0
    with h5py.File(path, "r") as f:
        assert f.attrs["partition_key"] == "0001|24"
    assert inst.get_materialized_partitions(dg.AssetKey("rollouts_hdf5")) == {"0001|24"}
    sob = res.asset_materializations_for_node("sobol_parameters")[0]
    assert sob.metadata["discrepancy"].value > 0


def test_grid_sizes_sensor_adds_configured_grids(tiny_config_file):
    sensor = build_grid_sizes_sensor()
    inst = dg.DagsterInstance.ephemeral()
    ctx = dg.build_sensor_context(
        instance=inst, resources={"spinlock": SpinlockConfig(config_path=str(tiny_config_file))}
    )
    result = sensor(ctx)
    requests = result.dynamic_partitions_requests
    assert requests and sorted(requests[0].partition_keys) == ["16", "24"]


def test_dagster_cli_materializes_a_partition(tiny_config_file, tmp_path):
    """The documented `dagster asset materialize ... --partition` command works."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "SPINLOCK_CONFIG": str(tiny_config_file),
        "SPINLOCK_EXECUTOR": "in_process",
    }
    inst = dg.DagsterInstance.from_ref(
        __import__("dagster._core.instance.ref", fromlist=["InstanceRef"]).InstanceRef.from_dir(str(home))
    )
    ensure_grid_partitions(inst, [16, 24])
    dagster = Path(sys.executable).parent / "dagster"
    res = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "spinlock_assets.definitions",
            "--select",
            "sobol_parameters,operator_specs,rollouts_hdf5",
            "--partition",
            "0001|16",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    cfg = load_config(tiny_config_file)
    from spinlock_core.pipeline import partition_path

    assert partition_path(cfg, 1, 16).exists()
    assert inst.get_materialized_partitions(dg.AssetKey("rollouts_hdf5")) == {"0001|16"}
    # the documented `--select sdf_features --partition P` on top of existing rollouts
    res = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "spinlock_assets.definitions",
            "--select",
            "sdf_features",
            "--partition",
            "0001|16",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    from spinlock_core.pipeline import features_file

    assert features_file(cfg, 1, 16).exists()
    assert inst.get_materialized_partitions(dg.AssetKey("sdf_features")) == {"0001|16"}
