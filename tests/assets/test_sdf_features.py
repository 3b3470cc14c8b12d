"""sdf_features: materialization, checks, and automatic re-extraction of stale partitions."""

from __future__ import annotations

import dagster as dg
import h5py
import numpy as np
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from spinlock_fixtures import DEFAULT, tiny_overrides

from spinlock_assets.assets import build_assets, by_name
from spinlock_assets.automation import FEATURES_HASH_TAG, build_feature_automation, stale_feature_requests
from spinlock_assets.checks import build_checks
from spinlock_assets.partitions import GRID_DIMENSION, make_partitions, partition_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core import pipeline
from spinlock_core.config import load_config, save_config

LOOSE = {"sampling.validation.max_discrepancy": 100.0, "sampling.validation.max_pairwise_correlation": 1.0}


@pytest.fixture
def setup(tmp_path):
    """A tiny experiment (2 batches x grid 16) with its own features YAML."""
    feats = tmp_path / "features.yaml"
    feats.write_text(yaml.safe_dump({"aggregation": {"temporal": ["mean", "std"]}}))
    cfg = load_config(
        DEFAULT,
        tiny_overrides(tmp_path / "data", **{"simulation.grid_sizes": [16], "features.config": str(feats), **LOOSE}),
    )
    path = tmp_path / "tiny.yaml"
    save_config(cfg, path)
    parts = make_partitions(cfg)
    assets = build_assets(parts)
    res = SpinlockConfig(config_path=str(path))
    # a real (temporary SQLite) instance, since schedules need an instance ref; not entered as a
    # context manager (dg.instance_for_test leaves a stale context-global storage behind that
    # breaks later tests' instances)
    home = tmp_path / "dagster_home"
    home.mkdir()
    inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    inst.add_dynamic_partitions(GRID_DIMENSION, ["16"])
    yield cfg, path, feats, parts, assets, inst, res
    inst.dispose()


def _materialize(assets, names, inst, res, batch, checks=()):
    return dg.materialize(
        [*by_name(assets, *names), *checks],
        partition_key=partition_key(batch, 16),
        instance=inst,
        resources={"spinlock": res},
        raise_on_error=False,
    )


GEN = ("sobol_parameters", "operator_specs", "rollouts_hdf5")


def test_sdf_features_materializes_with_metadata_and_passing_checks(setup):
    cfg, path, feats, parts, assets, inst, res = setup
    checks = [
        c for c in build_checks(assets, parts) if {k.name for k in c.check_keys} & {"features_schema", "features_nan"}
    ]
    out = _materialize(assets, (*GEN, "sdf_features"), inst, res, 0, checks)
    assert out.success
    md = out.asset_materializations_for_node("sdf_features")[0].metadata
    assert md["feature_count"].value >= 200 and md["nan_fraction"].value == 0.0
    assert md["samples_per_s"].value > 0 and len(md["feature_cfg_hash"].value) == 16
    evals = {e.check_name: e for e in out.get_asset_check_evaluations()}
    assert evals["features_schema"].passed and evals["features_nan"].passed
    assert pipeline.features_file(cfg, 0, 16).is_file()


def _plant_nan(path):
    with h5py.File(path, "r+") as f:
        d = f["features/sdf/spatial/features"]
        v = d[()]
        v[0, 0, 0, 0, 0] = np.nan
        d[...] = v


def _plant_width(path):
    with h5py.File(path, "r+") as f:
        d = f["features/sdf/spectral/features"]
        v = d[()][..., :-1]
        attrs = dict(d.attrs)
        del f["features/sdf/spectral/features"]
        n = f.create_dataset("features/sdf/spectral/features", data=v)
        for k in ("names", "masked", "granularity", "axes"):
            n.attrs[k] = attrs[k]


@pytest.mark.parametrize("plant, check", [(_plant_nan, "features_nan"), (_plant_width, "features_schema")])
def test_feature_checks_fail_on_planted_bad_files_and_block_the_index(setup, monkeypatch, plant, check):
    cfg, path, feats, parts, assets, inst, res = setup
    original = pipeline.features_stage

    def planted(*a, **k):
        s = original(*a, **k)
        plant(s.path)
        return s

    monkeypatch.setattr(pipeline, "features_stage", planted)
    checks = build_checks(assets, parts)
    out = dg.materialize(
        [*by_name(assets, *GEN, "sdf_features", "dataset_index"), *checks],
        partition_key=partition_key(0, 16),
        instance=inst,
        resources={"spinlock": res},
        raise_on_error=False,
    )
    assert not out.success
    evals = {e.check_name: e for e in out.get_asset_check_evaluations()}
    assert not evals[check].passed
    done = {e.asset_key.to_user_string() for e in out.get_asset_materialization_events()}
    assert "dataset_index" not in done


def _hash_of(cfg, batch):
    return pipeline.stored_features_hash(pipeline.features_file(cfg, batch, 16))


def test_sensor_re_extracts_exactly_the_stale_partitions_and_handles_reverts(setup):
    cfg, path, feats, parts, assets, inst, res = setup
    for b in (0, 1):
        assert _materialize(assets, (*GEN, "sdf_features"), inst, res, b).success
    sensor, schedule = build_feature_automation(by_name(assets, "sdf_features")[0])
    ctx = lambda: dg.build_sensor_context(instance=inst, resources={"spinlock": res})
    first = sensor(ctx())
    assert not first.run_requests  # everything current

    # change one value: both partitions are stale
    text_a = feats.read_text()
    feats.write_text(yaml.safe_dump({"aggregation": {"temporal": ["mean", "max"]}}))
    hash_a = _hash_of(cfg, 0)
    # partition 1 is re-extracted by hand under the new config: only partition 0 is stale
    assert _materialize(assets, ("sdf_features",), inst, res, 1).success
    hash_b = _hash_of(cfg, 1)
    assert hash_b != hash_a
    reqs = sensor(ctx()).run_requests
    assert [r.partition_key for r in reqs] == ["0000|16"]
    assert reqs[0].tags[FEATURES_HASH_TAG] == hash_b
    again = sensor(ctx()).run_requests
    assert [r.run_key for r in again] == [r.run_key for r in reqs]  # same stale state -> same key (deduplicated)

    # "waiting for the sensor": run what it asked for; partition 1's file is not touched
    mtime1 = pipeline.features_file(cfg, 1, 16).stat().st_mtime_ns
    for r in reqs:
        batch = int(r.partition_key.split("|")[0])
        assert _materialize(assets, ("sdf_features",), inst, res, batch).success
    assert _hash_of(cfg, 0) == hash_b and pipeline.features_file(cfg, 1, 16).stat().st_mtime_ns == mtime1
    assert not sensor(ctx()).run_requests

    # revert: both partitions become stale again, with new run keys
    feats.write_text(text_a)
    back = sensor(ctx()).run_requests
    assert sorted(r.partition_key for r in back) == ["0000|16", "0001|16"]
    assert not {r.run_key for r in back} & {r.run_key for r in reqs}
    assert all(r.tags[FEATURES_HASH_TAG] == hash_a for r in back)


def test_in_flight_runs_are_not_requested_twice_and_the_schedule_agrees(setup):
    cfg, path, feats, parts, assets, inst, res = setup
    assert _materialize(assets, (*GEN, "sdf_features"), inst, res, 0).success
    feats.write_text(yaml.safe_dump({"aggregation": {"realization": ["mean"]}}))
    reqs = stale_feature_requests(inst, res)
    assert [r.partition_key for r in reqs] == ["0000|16"]
    current = reqs[0].tags[FEATURES_HASH_TAG]
    _, schedule = build_feature_automation(by_name(assets, "sdf_features")[0])
    sreqs = schedule(dg.build_schedule_context(instance=inst, resources={"spinlock": res}))
    assert [r.partition_key for r in sreqs] == ["0000|16"]
    run = DagsterRun(
        job_name="__ASSET_JOB",
        run_id="f" * 36,
        status=DagsterRunStatus.STARTED,
        tags={"dagster/partition": "0000|16", FEATURES_HASH_TAG: current},
    )
    inst.add_run(run)
    out = stale_feature_requests(inst, res)
    assert isinstance(out, str) and "current" in out


def test_a_broken_features_config_skips_with_the_reason(setup):
    cfg, path, feats, parts, assets, inst, res = setup
    assert _materialize(assets, (*GEN, "sdf_features"), inst, res, 0).success
    feats.write_text("spatial:\n  bogus: 1\n")
    out = stale_feature_requests(inst, res)
    assert isinstance(out, str) and "spatial.bogus" in out
