"""Stale data is refused or re-made, never served: config changes, re-extraction and the index.

Before the fix ``sobol_parameters`` and ``operator_specs`` were pickled into ``DAGSTER_HOME`` keyed
by partition only: change the config, re-materialize ``rollouts_hdf5``, and the new file claimed
the new seed but held the old operators while ``validate`` said VALID; re-extracted features
left ``dataset_index`` behind (the whole-dataset reader returned all-NaN rows or old features).
"""

from __future__ import annotations

import json
import shutil

import dagster as dg
import numpy as np
import pytest

from spinlock_assets.automation import index_request, stale_feature_requests
from spinlock_assets.build import build_definitions
from spinlock_assets.partitions import ensure_grid_partitions, partition_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import save_config
from spinlock_core.dataset import HDF5FeatureReader, PartitionId, index_problems, open_dataset
from spinlock_core.stages import validate_dataset
from spinlock_core.testing import build_dataset, tiny_config

P0 = PartitionId(grid=16, batch=0)


def _instance(tmp_path):
    (tmp_path / "home").mkdir(exist_ok=True)
    return dg.instance_for_test(temp_dir=str(tmp_path / "home"))


def _defs(cfg, tmp_path, name="exp.yaml"):
    path = tmp_path / name
    save_config(cfg, path)
    return path, build_definitions(path, claim=False)


def _materialize(defs, inst, part: PartitionId, *names: str) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey(n) for n in names})
    return job.execute_in_process(partition_key=partition_key(part), instance=inst, raise_on_error=False)


def test_rollouts_of_a_changed_config_are_refused_not_built_from_old_specs(tmp_path):
    with _instance(tmp_path) as inst:
        cfg_a = tiny_config(tmp_path / "ds")
        ensure_grid_partitions(inst, cfg_a.simulation.grid_sizes)
        path, defs_a = _defs(cfg_a, tmp_path)
        res = _materialize(defs_a, inst, P0, "sobol_parameters", "operator_specs", "rollouts_hdf5")
        assert res.success
        # the researcher changes the root seed and re-materializes rollouts only
        cfg_b = tiny_config(tmp_path / "ds", **{"sampling.sobol.seed": 7})
        save_config(cfg_b, path)
        defs_b = build_definitions(path, claim=False)
        before = (tmp_path / "ds" / "partitions" / "grid_0016" / "batch_0000.h5").read_bytes()
        res = _materialize(defs_b, inst, P0, "rollouts_hdf5")
        assert not res.success
        errors = []
        for ev in res.all_events:
            if ev.is_step_failure:
                err = ev.event_specific_data.error
                while err.cause is not None:
                    err = err.cause
                errors.append(err.message)
        assert any("made from config hash" in e and "materialize sobol_parameters" in e for e in errors), errors
        assert (tmp_path / "ds" / "partitions" / "grid_0016" / "batch_0000.h5").read_bytes() == before
        # with its upstream re-materialized it works and holds the new operators
        res = _materialize(defs_b, inst, P0, "sobol_parameters", "operator_specs", "rollouts_hdf5")
        assert res.success
        with open_dataset(tmp_path / "ds" / "partitions" / "grid_0016" / "batch_0000.h5") as r:
            assert r.attrs["root_seed"] == 7
            assert {s["root_seed"] for s in r.specs()} == {7}


def test_no_asset_output_is_pickled_into_the_dagster_home(tmp_path):
    with _instance(tmp_path) as inst:
        cfg = tiny_config(tmp_path / "ds")
        ensure_grid_partitions(inst, cfg.simulation.grid_sizes)
        _, defs = _defs(cfg, tmp_path)
        res = _materialize(defs, inst, P0, "sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features")
        assert res.success
    storage = tmp_path / "home" / "storage"  # where Dagster's default IO manager would pickle outputs
    names = ("sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features")
    files = [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []
    pickled = [p for p in files if any(n in p.parts for n in names)]
    assert files and all("compute_logs" in p.parts for p in files)  # only step logs are stored there
    assert pickled == []
    assert (tmp_path / "ds" / "points" / "batch_0000.json").is_file()
    assert (tmp_path / "ds" / "specs" / "batch_0000.json").is_file()


def test_a_config_change_marks_exactly_the_affected_assets_stale(tmp_path):
    from dagster._core.definitions.data_version import StaleStatus

    with _instance(tmp_path) as inst:
        cfg = tiny_config(tmp_path / "ds")
        ensure_grid_partitions(inst, cfg.simulation.grid_sizes)
        path, defs = _defs(cfg, tmp_path)
        names = ("sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features")
        assert _materialize(defs, inst, P0, *names).success

        def status(d, name):
            from dagster._utils.test.data_versions import get_stale_status_resolver

            resolver = get_stale_status_resolver(inst, list(d.assets))
            return resolver.get_status(dg.AssetKey(name), str(partition_key(P0)))

        assert {n: status(defs, n) for n in names} == dict.fromkeys(names, StaleStatus.FRESH)
        # more time steps: the points and specs stay current, rollouts and features become stale
        save_config(tiny_config(tmp_path / "ds", **{"simulation.num_timesteps": 4}), path)
        later = build_definitions(path, claim=False)
        got = {n: status(later, n) for n in names}
        assert got["sobol_parameters"] == got["operator_specs"] == StaleStatus.FRESH
        assert got["rollouts_hdf5"] == StaleStatus.STALE
        assert got["sdf_features"] == StaleStatus.STALE


@pytest.fixture
def dataset(tmp_path):
    cfg, layout = build_dataset(tmp_path / "ds", **{"renders.enabled": False})
    return cfg, layout


def _changed_features_config(cfg, tmp_path):
    from spinlock_core.testing import FEATURES_CONFIG

    text = FEATURES_CONFIG.read_text()
    new = tmp_path / "features_b.yaml"
    new.write_text(
        text + "\nspatial:\n  histogram_bins: 17\n"
        if "spatial:" not in text
        else text.replace("spatial:", "spatial:\n  histogram_bins: 17", 1)
    )
    return new


def test_reextraction_never_serves_a_stale_index(dataset, tmp_path):
    from spinlock_core.features import load_features_config
    from spinlock_core.stages import extract_partition

    cfg, layout = dataset
    assert index_problems(layout) == []
    fcfg_b = load_features_config(_changed_features_config(cfg, tmp_path))
    extract_partition(layout.rollouts(P0), fcfg_b)  # one partition re-extracted (as the sensor does)
    assert any("changed after the index was built" in p for p in index_problems(layout))
    # the directory reader does not serve the index's old features: it sees the mixed configs
    with pytest.raises(Exception, match="different features configs"):
        HDF5FeatureReader(layout.root).close()
    # rollouts through the directory are read from the files (the index is skipped while stale)
    with open_dataset(layout.root) as r:
        assert r.kind == "partitions" and np.isfinite(r.trajectories()).all()
    # validate names the partitions whose features come from another features config
    report = validate_dataset(layout.root, replay_samples=0)
    assert not report.ok
    assert any("index.h5 is stale" in e for e in report.errors)
    assert any("features from another features config" in e or "extracted" in e for e in report.errors), report.errors


def test_index_sensor_rebuilds_after_any_change_and_is_idle_when_current(dataset, tmp_path):
    cfg, layout = dataset
    cfg_path = tmp_path / "exp.yaml"
    save_config(cfg, cfg_path)
    spin = SpinlockConfig(config_path=str(cfg_path))
    with _instance(tmp_path) as inst:
        assert index_request(inst, spin) == "index.h5, splits.json, stats.json and the card are current"
        feature_file = layout.features(P0)
        feature_file.touch()  # any change of a source file
        req = index_request(inst, spin)
        assert isinstance(req, dg.RunRequest)
        assert req.asset_selection == [dg.AssetKey(n) for n in ("dataset_index", "dataset_stats", "dataset_card")]
        defs = build_definitions(cfg_path, claim=False)
        res = defs.resolve_job_def("index").execute_in_process(instance=inst)
        assert res.success and index_problems(layout) == []
        assert index_request(inst, spin) == "index.h5, splits.json, stats.json and the card are current"


def test_stale_features_sensor_extracts_never_extracted_partitions(dataset, tmp_path):
    cfg, layout = dataset
    shutil.rmtree(layout.root / "features" / "grid_0024")
    cfg_path = tmp_path / "exp.yaml"
    save_config(cfg, cfg_path)
    with _instance(tmp_path) as inst:
        ensure_grid_partitions(inst, cfg.simulation.grid_sizes)
        out = stale_feature_requests(inst, SpinlockConfig(config_path=str(cfg_path)))
        assert not isinstance(out, str)
        assert sorted(r.partition_key for r in out) == ["0000|24", "0001|24"]
        assert all(r.tags["spinlock/stale_hash"] == "none" for r in out)


def test_points_and_specs_files_carry_their_hashes(dataset):
    cfg, layout = dataset
    h = cfg.stage_hashes()
    points = json.loads(layout.points(0).read_text())
    specs = json.loads(layout.specs(0).read_text())
    assert points["hash"] == h.points and specs["hash"] == h.specs and specs["points_hash"] == h.points
