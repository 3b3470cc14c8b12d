"""The assets (spinlock_assets.assets): one per row of the stage table, each value a file in the dataset,
code version = the stage hash of the config, data version = the hash the file was made from."""

from __future__ import annotations

import dagster as dg
import h5py
import numpy as np
import yaml

from spinlock_assets.assets import build_assets, by_name
from spinlock_assets.partitions import GRID_DIMENSION, make_partitions, partition_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import load_config, save_config
from spinlock_core.dataset import PartitionId, read_points, read_specs
from spinlock_core.stages import STAGES, build_specs, compute_points, hashes_of, layout_of, stage_names
from spinlock_core.testing import tiny_config

DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
PART = PartitionId(grid=24, batch=1)
PARTITIONED = ("sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features", "renders")


def _code_versions(cfg) -> dict[str, str]:
    assets = build_assets(cfg, make_partitions(cfg))
    return {k.to_user_string(): a.code_versions_by_key[k] for a in assets for k in a.keys}


def _materialize(cfg, path, names, part=PART, inst=None):
    assets = build_assets(cfg, make_partitions(cfg))
    if inst is None:
        inst = dg.DagsterInstance.ephemeral()
        inst.add_dynamic_partitions(GRID_DIMENSION, ["16", "24"])
    res = dg.materialize(
        by_name(assets, *names),
        partition_key=str(partition_key(part)),
        instance=inst,
        resources={"spinlock": SpinlockConfig(config_path=str(path))},
        raise_on_error=False,
    )
    return res, inst


def test_one_asset_per_stage_row_with_its_inputs_pool_and_partitions(tiny_cfg):
    parts = make_partitions(tiny_cfg)
    assets = build_assets(tiny_cfg, parts)
    by_key = {k.to_user_string(): a for a in assets for k in a.keys}
    assert list(by_key) == stage_names() == [*PARTITIONED, "dataset_index", "dataset_stats", "dataset_card"]
    hashes = hashes_of(tiny_cfg)
    for row in STAGES:
        a = by_key[row.name]
        key = dg.AssetKey(row.name)
        assert {d.to_user_string() for d in a.asset_deps[key]} == set(row.inputs), row.name
        assert a.code_versions_by_key[key] == hashes.of(row.hash_of), row.name
        assert (a.partitions_def is parts) == row.partitioned, row.name
        assert a.group_names_by_key[key] == row.group
        assert a.op.pool == ("cpu" if row.pool == "gpu" else row.pool)  # the tiny experiment computes on the CPU
    assert by_key["rollouts_hdf5"].op.pool == by_key["sdf_features"].op.pool == "cpu"
    assert by_key["dataset_index"].partitions_def is None
    assert {d.to_user_string() for d in by_key["dataset_index"].asset_deps[dg.AssetKey("dataset_index")]} == {
        "rollouts_hdf5",
        "sdf_features",
    }
    assert by_key["dataset_stats"].partitions_def is None
    assert {d.to_user_string() for d in by_key["dataset_stats"].asset_deps[dg.AssetKey("dataset_stats")]} == {
        "dataset_index"
    }


def test_code_versions_change_with_what_the_data_depends_on_only(tmp_path, tiny_cfg):
    base = _code_versions(tiny_cfg)
    hashes = hashes_of(tiny_cfg)
    assert base == {
        "sobol_parameters": hashes.points,
        "operator_specs": hashes.specs,
        "rollouts_hdf5": hashes.rollouts,
        "sdf_features": hashes.features,
        "renders": hashes.renders,
        "dataset_index": hashes.rollouts,
        "dataset_stats": hashes.rollouts,
        "dataset_card": hashes.rollouts,
    }
    assert len({base["sobol_parameters"], base["operator_specs"], base["rollouts_hdf5"], base["sdf_features"]}) == 4

    # another simulation.num_timesteps: the rollouts and everything made from them change, points and specs not
    longer = _code_versions(tiny_config(tmp_path / "data", **{"simulation.num_timesteps": 4}))
    changed = {k for k in base if base[k] != longer[k]}
    assert changed == {"rollouts_hdf5", "sdf_features", "renders", "dataset_index", "dataset_stats", "dataset_card"}

    # the same experiment written elsewhere (or with another name) is the same data: no code version changes
    moved = _code_versions(tiny_config(tmp_path / "elsewhere", **{"metadata.name": "moved"}))
    assert moved == base

    # another features config: the features and the renders made from them
    feats = tmp_path / "features.yaml"
    feats.write_text(yaml.safe_dump({"aggregation": {"temporal": ["mean", "max"]}}))
    other = _code_versions(tiny_config(tmp_path / "data", **{"features.config": str(feats)}))
    assert {k for k in base if base[k] != other[k]} == {"sdf_features", "renders"}

    # renders settings: the renders only
    renders = _code_versions(tiny_config(tmp_path / "data", **{"renders.fps": 5}))
    assert {k for k in base if base[k] != renders[k]} == {"renders"}


def test_a_partition_materializes_its_files_with_data_versions(tiny_cfg, tiny_config_file):
    cfg = load_config(tiny_config_file)
    res, inst = _materialize(cfg, tiny_config_file, PARTITIONED)
    assert res.success
    layout, hashes = layout_of(cfg), hashes_of(cfg)
    mats = {name: res.asset_materializations_for_node(name) for name in PARTITIONED}
    assert all(len(m) == 1 for m in mats.values()), mats
    mats = {k: v[0] for k, v in mats.items()}
    want_version = {
        "sobol_parameters": hashes.points,
        "operator_specs": hashes.specs,
        "rollouts_hdf5": hashes.rollouts,
        "sdf_features": hashes.features,
        "renders": hashes.renders,
    }
    for name, mat in mats.items():
        assert mat.partition == PART.key
        assert mat.tags[DATA_VERSION_TAG] == want_version[name], name
        assert mat.tags[CODE_VERSION_TAG] == want_version[name], name
        rec = inst.get_latest_data_version_record(dg.AssetKey(name), partition_key=PART.key)
        assert rec is not None and rec.asset_materialization.tags[DATA_VERSION_TAG] == want_version[name]

    # every value is a file in the dataset (nothing pickled)
    assert mats["sobol_parameters"].metadata["path"].value == str(layout.points(PART.batch))
    assert mats["operator_specs"].metadata["path"].value == str(layout.specs(PART.batch))
    assert mats["rollouts_hdf5"].metadata["path"].value == str(layout.rollouts(PART))
    assert mats["sdf_features"].metadata["path"].value == str(layout.features(PART))
    assert mats["renders"].metadata["video"].value == str(layout.render_video(PART))
    assert mats["renders"].metadata["poster"].value == str(layout.render_poster(PART))
    for p in (
        layout.points(1),
        layout.specs(1),
        layout.rollouts(PART),
        layout.features(PART),
        layout.render_video(PART),
        layout.render_poster(PART),
        layout.render_record(PART),
    ):
        assert p.is_file(), p
    for other in (PartitionId(grid=16, batch=1), PartitionId(grid=24, batch=0)):  # only the asked partition
        assert not layout.rollouts(other).exists()
    assert not layout.points(0).exists()

    # the points and specs files hold what the stage functions compute
    points = read_points(layout, 1)
    want = compute_points(cfg, 1)
    assert (points.start, points.stop, points.names, points.hash) == (3, 6, want.names, hashes.points)
    np.testing.assert_array_equal(points.unit, want.unit)
    assert points.metrics == want.metrics and points.metrics["n"] == 6  # the global set's metrics
    specs = read_specs(layout, 1)
    assert specs.specs == [s.to_dict() for s in build_specs(cfg, want)]
    assert [s["index"] for s in specs.specs] == [3, 4, 5]
    assert specs.hash == hashes.specs and specs.points_hash == hashes.points

    sob = mats["sobol_parameters"].metadata
    assert sob["discrepancy"].value > 0 and sob["samples"].value == 3 and sob["first_sample"].value == 3
    assert sob["points_hash"].value == hashes.points
    mat = mats["rollouts_hdf5"].metadata
    assert mat["shape"].value == [3, 2, 4, 3, 24, 24]
    assert mat["diverged_realizations"].value >= 0
    assert mat["samples_per_s"].value > 0 and mat["config_hash"].value == hashes.rollouts
    with h5py.File(layout.rollouts(PART), "r") as f:
        assert f.attrs["partition_key"] == "0001|24" and f.attrs["config_hash"] == hashes.rollouts
        assert f.attrs["points_hash"] == hashes.points and f.attrs["specs_hash"] == hashes.specs
    assert inst.get_materialized_partitions(dg.AssetKey("rollouts_hdf5")) == {"0001|24"}
    md = mats["sdf_features"].metadata
    assert md["feature_count"].value >= 200 and md["nan_fraction"].value == 0.0
    assert md["samples_per_s"].value > 0 and md["feature_cfg_hash"].value == hashes.features_config
    assert len(md["feature_cfg_hash"].value) == 16
    rm = mats["renders"].metadata
    assert rm["enabled"].value is True and rm["frames"].value >= 1 and rm["thumbnail"].value.startswith("![poster]")


def test_the_index_asset_is_the_index_file_with_its_missing_partitions(tmp_path, tiny_config_file):
    cfg = load_config(tiny_config_file)
    res, inst = _materialize(cfg, tiny_config_file, PARTITIONED[:4])
    assert res.success
    assets = build_assets(cfg, make_partitions(cfg))
    out = dg.materialize(
        by_name(assets, "dataset_index"),
        instance=inst,
        resources={"spinlock": SpinlockConfig(config_path=str(tiny_config_file))},
    )
    assert out.success
    (mat,) = out.asset_materializations_for_node("dataset_index")
    layout = layout_of(cfg)
    assert mat.metadata["path"].value == str(layout.index) and layout.index.is_file()
    assert mat.metadata["partition_files"].value == 1 and mat.metadata["rows"].value == 3
    assert mat.metadata["features"].value is True
    assert sorted(mat.metadata["missing_partitions"].value) == ["0000|16", "0000|24", "0001|16"]
    assert mat.tags[DATA_VERSION_TAG] == hashes_of(cfg).rollouts


def test_sdf_features_refuses_rollouts_of_another_config(tmp_path, tiny_config_file):
    """A config edit (here num_timesteps) makes the stored rollouts stale: features are not made from them."""
    cfg = load_config(tiny_config_file)
    res, inst = _materialize(cfg, tiny_config_file, PARTITIONED[:3])
    assert res.success
    edited = tmp_path / "edited.yaml"
    save_config(load_config(tiny_config_file, {"simulation.num_timesteps": 4}), edited)
    out, _ = _materialize(load_config(edited), edited, ("sdf_features",), inst=inst)
    assert not out.success
    failure = next(e for e in out.all_events if e.is_step_failure)
    text = str(failure.event_specific_data.error.to_string())
    assert "StaleInput" in text and "re-materialize rollouts_hdf5" in text
    assert not layout_of(cfg).features(PART).exists()


def test_renders_record_that_they_are_disabled(tmp_path):
    """renders.enabled false: the asset still materializes (no file), and says so."""
    cfg = tiny_config(tmp_path / "data", **{"simulation.grid_sizes": [24], "renders.enabled": False})
    path = tmp_path / "tiny.yaml"
    save_config(cfg, path)
    res, _ = _materialize(cfg, path, PARTITIONED)
    assert res.success
    (mat,) = res.asset_materializations_for_node("renders")
    assert mat.metadata["enabled"].value is False
    assert not layout_of(cfg).render_video(PART).exists()
