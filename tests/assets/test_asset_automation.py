"""Sensors and the schedule (spinlock_assets.automation): grid sizes become partitions, features are
extracted for every partition that has none or stale ones, the index is rebuilt when it is stale."""

from __future__ import annotations

import json
import os

import dagster as dg
import h5py
import numpy as np
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from spinlock_assets.assets import build_assets, by_name
from spinlock_assets.automation import (
    FEATURES_HASH_TAG,
    build_feature_automation,
    build_grid_sizes_sensor,
    build_index_sensor,
    index_request,
    stale_feature_requests,
)
from spinlock_assets.partitions import GRID_DIMENSION, make_partitions, partition_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import load_config, save_config
from spinlock_core.dataset import PartitionId, index_problems
from spinlock_core.features import features_config_hash
from spinlock_core.stages import features_config, layout_of, stored_features_hash
from spinlock_core.testing import run_stages, tiny_config

LOOSE = {"sampling.validation.max_discrepancy": 100.0, "sampling.validation.max_pairwise_correlation": 1.0}
GEN = ("sobol_parameters", "operator_specs", "rollouts_hdf5")
ROLLOUT_CHECKS = {dg.AssetCheckKey(dg.AssetKey("rollouts_hdf5"), n) for n in ("rollouts_schema", "rollouts_finite")}
FEATURE_CHECKS = {dg.AssetCheckKey(dg.AssetKey("sdf_features"), n) for n in ("features_schema", "features_nan")}


class Setup:
    def __init__(self, cfg, path, feats, parts, assets, inst, res):
        self.cfg, self.path, self.feats, self.parts, self.assets, self.inst, self.res = (
            cfg,
            path,
            feats,
            parts,
            assets,
            inst,
            res,
        )
        self.layout = layout_of(cfg)

    def materialize(self, names, batch, checks=()):
        return dg.materialize(
            [*by_name(self.assets, *names), *checks],
            partition_key=str(partition_key(PartitionId(grid=16, batch=batch))),
            instance=self.inst,
            resources={"spinlock": self.res},
            raise_on_error=False,
        )

    def run_request(self, request: dg.RunRequest, sensor: str = "stale_features_sensor"):
        """Execute a run request of ``sensor`` as the daemon does: the request's assets and asset checks (the
        sensor's target holds them), for its partition."""
        from spinlock_assets.checks import build_checks

        assert sensor in ("stale_features_sensor", "index_sensor")
        selection = dg.AssetSelection.assets(*request.asset_selection)
        if request.asset_check_keys is not None:
            selection = selection.without_checks() | dg.AssetSelection.checks(*request.asset_check_keys)
        return dg.materialize(
            [*self.assets, *build_checks(self.assets, self.parts)],
            selection=selection,
            partition_key=request.partition_key,
            instance=self.inst,
            resources={"spinlock": self.res},
            tags=request.tags,
            raise_on_error=False,
        )

    def sensor_context(self):
        return dg.build_sensor_context(instance=self.inst, resources={"spinlock": self.res})

    def features_file(self, batch):
        return self.layout.features(PartitionId(grid=16, batch=batch))

    def stored_hash(self, batch):
        return stored_features_hash(self.features_file(batch))


@pytest.fixture
def setup(tmp_path):
    """A tiny experiment (2 batches x grid 16) with its own features YAML, and a real SQLite instance."""
    feats = tmp_path / "features.yaml"
    feats.write_text(yaml.safe_dump({"aggregation": {"temporal": ["mean", "std"]}}))
    cfg = tiny_config(tmp_path / "data", **{"simulation.grid_sizes": [16], "features.config": str(feats), **LOOSE})
    path = tmp_path / "tiny.yaml"
    save_config(cfg, path)
    parts = make_partitions(cfg)
    assets = build_assets(cfg, parts)
    res = SpinlockConfig(config_path=str(path))
    # a real (temporary SQLite) instance, since schedules need an instance ref; not entered as a
    # context manager (dg.instance_for_test leaves a stale context-global storage behind that
    # breaks later tests' instances)
    home = tmp_path / "dagster_home"
    home.mkdir()
    inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    inst.add_dynamic_partitions(GRID_DIMENSION, ["16"])
    yield Setup(cfg, path, feats, parts, assets, inst, res)
    inst.dispose()


INDEX_ASSETS = [dg.AssetKey("dataset_index"), dg.AssetKey("dataset_stats"), dg.AssetKey("dataset_card")]
CURRENT = "index.h5, splits.json, stats.json and the card are current"


def _in_flight(inst, **tags) -> None:
    inst.add_run(
        DagsterRun(job_name="__ASSET_JOB", run_id=os.urandom(16).hex()[:36], status=DagsterRunStatus.STARTED, tags=tags)
    )


# ----------------------------------------------------------------------------- grid sizes


def test_grid_sizes_sensor_adds_configured_grids_then_skips(tiny_config_file):
    sensor = build_grid_sizes_sensor()
    inst = dg.DagsterInstance.ephemeral()
    ctx = lambda: dg.build_sensor_context(
        instance=inst, resources={"spinlock": SpinlockConfig(config_path=str(tiny_config_file))}
    )
    result = sensor(ctx())
    requests = result.dynamic_partitions_requests
    assert len(requests) == 1 and requests[0].partitions_def_name == GRID_DIMENSION
    assert sorted(requests[0].partition_keys) == ["16", "24"]
    inst.add_dynamic_partitions(GRID_DIMENSION, ["16", "24"])
    again = sensor(ctx())
    assert not again.dynamic_partitions_requests and "all configured grid sizes" in again.skip_reason.skip_message


# ----------------------------------------------------------------------------- features


def test_never_extracted_partitions_are_requested_with_the_rollouts_checks(setup):
    s = setup
    for b in (0, 1):
        assert s.materialize(GEN, b).success
    current = features_config_hash(features_config(s.cfg))
    sensor, _ = build_feature_automation(by_name(s.assets, "sdf_features")[0])
    result = sensor(s.sensor_context())
    reqs = result.run_requests
    assert [r.partition_key for r in reqs] == ["0000|16", "0001|16"]
    for r in reqs:
        assert list(r.asset_selection) == [dg.AssetKey("sdf_features")]
        assert set(r.asset_check_keys) >= ROLLOUT_CHECKS
        assert r.tags[FEATURES_HASH_TAG] == current and r.tags["spinlock/stale_hash"] == "none"
    assert len({r.run_key for r in reqs}) == 2
    # running what it asked for extracts both partitions after the rollouts' checks pass
    for r in reqs:
        out = s.run_request(r)
        assert out.success
        evals = {e.check_name: e.passed for e in out.get_asset_check_evaluations()}
        assert evals["rollouts_schema"] and evals["rollouts_finite"] and all(evals.values()), evals
    assert s.stored_hash(0) == s.stored_hash(1) == current
    after = sensor(s.sensor_context())
    assert not after.run_requests and f"features hash {current}" in after.skip_reason.skip_message


def test_partitions_outside_the_experiment_are_not_requested(setup):
    s = setup
    assert s.materialize(GEN, 0).success
    run_stages(s.cfg, [PartitionId(grid=24, batch=0)], stages=GEN)  # a grid size that is no partition
    assert s.layout.rollouts(PartitionId(grid=24, batch=0)).exists()
    reqs = stale_feature_requests(s.inst, s.res)
    assert [r.partition_key for r in reqs] == ["0000|16"]


def test_a_partition_failing_the_rollouts_checks_gets_no_features(setup):
    s = setup
    assert s.materialize(GEN, 0).success
    with h5py.File(s.layout.rollouts(PartitionId(grid=16, batch=0)), "r+") as f:
        f["outputs/fields"][0, 1, -1, 0, 0, 0] = np.nan  # never flagged as diverged
    (req,) = stale_feature_requests(s.inst, s.res)
    out = s.run_request(req)
    assert not out.success
    evals = {e.check_name: e.passed for e in out.get_asset_check_evaluations()}
    assert evals["rollouts_finite"] is False and evals["rollouts_schema"] is True
    assert not out.get_asset_materialization_events() and not s.features_file(0).exists()


def test_sensor_runs_also_check_the_features_they_write(setup):
    """checks.py: the checks run on every path that materializes an asset, sensors included."""
    s = setup
    assert s.materialize(GEN, 0).success
    (req,) = stale_feature_requests(s.inst, s.res)
    assert set(req.asset_check_keys) == ROLLOUT_CHECKS | FEATURE_CHECKS
    out = s.run_request(req)
    assert out.success
    ran = {e.check_name for e in out.get_asset_check_evaluations()}
    assert ran == {"rollouts_schema", "rollouts_finite", "features_schema", "features_nan"}


def test_sensor_re_extracts_exactly_the_stale_partitions_and_handles_reverts(setup):
    s = setup
    for b in (0, 1):
        assert s.materialize((*GEN, "sdf_features"), b).success
    sensor, _ = build_feature_automation(by_name(s.assets, "sdf_features")[0])
    first = sensor(s.sensor_context())
    assert not first.run_requests and "current" in first.skip_reason.skip_message  # everything current

    # change one value: both partitions are stale
    text_a = s.feats.read_text()
    s.feats.write_text(yaml.safe_dump({"aggregation": {"temporal": ["mean", "max"]}}))
    hash_a = s.stored_hash(0)
    # partition 1 is re-extracted by hand under the new config: only partition 0 is stale
    assert s.materialize(("sdf_features",), 1).success
    hash_b = s.stored_hash(1)
    assert hash_b != hash_a
    reqs = sensor(s.sensor_context()).run_requests
    assert [r.partition_key for r in reqs] == ["0000|16"]
    assert reqs[0].tags[FEATURES_HASH_TAG] == hash_b and reqs[0].tags["spinlock/stale_hash"] == hash_a
    assert list(reqs[0].asset_selection) == [dg.AssetKey("sdf_features")]
    assert set(reqs[0].asset_check_keys) >= ROLLOUT_CHECKS
    again = sensor(s.sensor_context()).run_requests
    assert [r.run_key for r in again] == [r.run_key for r in reqs]  # same stale state -> same key (deduplicated)

    # "waiting for the sensor": run what it asked for; partition 1's file is not touched
    mtime1 = s.features_file(1).stat().st_mtime_ns
    for r in reqs:
        assert s.run_request(r).success
    assert s.stored_hash(0) == hash_b and s.features_file(1).stat().st_mtime_ns == mtime1
    assert not sensor(s.sensor_context()).run_requests

    # revert: both partitions become stale again, with new run keys
    s.feats.write_text(text_a)
    back = sensor(s.sensor_context()).run_requests
    assert sorted(r.partition_key for r in back) == ["0000|16", "0001|16"]
    assert not {r.run_key for r in back} & {r.run_key for r in reqs}
    assert all(r.tags[FEATURES_HASH_TAG] == hash_a for r in back)


def test_in_flight_runs_are_not_requested_twice_and_the_schedule_agrees(setup):
    s = setup
    assert s.materialize((*GEN, "sdf_features"), 0).success
    s.feats.write_text(yaml.safe_dump({"aggregation": {"realization": ["mean"]}}))
    reqs = stale_feature_requests(s.inst, s.res)
    assert [r.partition_key for r in reqs] == ["0000|16"]
    current = reqs[0].tags[FEATURES_HASH_TAG]
    _, schedule = build_feature_automation(by_name(s.assets, "sdf_features")[0])
    # entered: the context opens its own instance from the ref and must close it (else a context-global
    # storage of a garbage-collected instance breaks every later Definitions load in this process)
    with dg.build_schedule_context(instance=s.inst, resources={"spinlock": s.res}) as ctx:
        sreqs = schedule(ctx)
    assert [r.partition_key for r in sreqs] == ["0000|16"]
    assert [r.run_key for r in sreqs] == [r.run_key for r in reqs]
    assert all(list(r.asset_selection) == [dg.AssetKey("sdf_features")] for r in sreqs)
    _in_flight(s.inst, **{"dagster/partition": "0000|16", FEATURES_HASH_TAG: current})
    out = stale_feature_requests(s.inst, s.res)
    assert isinstance(out, str) and "current" in out
    with dg.build_schedule_context(instance=s.inst, resources={"spinlock": s.res}) as ctx:
        skipped = schedule(ctx)
    assert isinstance(skipped, dg.SkipReason) and "current" in skipped.skip_message


def test_a_running_generate_or_backfill_run_of_the_partition_is_not_duplicated(setup):
    """automation.py: "partitions with a queued or running run for the same target are skipped"."""
    s = setup
    assert s.materialize(GEN, 0).success
    assert [r.partition_key for r in stale_feature_requests(s.inst, s.res)] == ["0000|16"]
    # a `spinlock generate` (job "generate") or backfill run of partition 0000|16, selecting sdf_features too
    s.inst.add_run(
        DagsterRun(
            job_name="generate",
            run_id=os.urandom(16).hex()[:36],
            status=DagsterRunStatus.STARTED,
            asset_selection=frozenset(dg.AssetKey(n) for n in (*GEN, "sdf_features", "renders")),
            tags={"dagster/partition": "0000|16", "spinlock/cli": "generate"},
        )
    )
    out = stale_feature_requests(s.inst, s.res)
    assert isinstance(out, str), [r.partition_key for r in out]


def test_a_tick_over_its_scan_budget_goes_on_at_the_next_one(setup, monkeypatch):
    from spinlock_assets import automation
    from spinlock_core.stages import features as stage

    s = setup
    for b in (0, 1):
        assert s.materialize((*GEN, "sdf_features"), b).success
    monkeypatch.setattr(automation, "SCAN_BUDGET_S", 0.0)  # stop after every newly opened file
    monkeypatch.setattr(stage, "_HASH_CACHE", {})  # as in a freshly started code server
    first = stale_feature_requests(s.inst, s.res)
    assert isinstance(first, str) and "1 of 2 partitions checked" in first and "next tick" in first
    second = stale_feature_requests(s.inst, s.res)
    assert isinstance(second, str) and "every partition's features are current" in second
    s.feats.write_text(yaml.safe_dump({"aggregation": {"temporal": ["mean"]}}))  # both stale now
    assert [r.partition_key for r in stale_feature_requests(s.inst, s.res)] == ["0000|16", "0001|16"]


def test_a_broken_features_config_skips_with_the_reason(setup):
    s = setup
    assert s.materialize((*GEN, "sdf_features"), 0).success
    s.feats.write_text("spatial:\n  bogus: 1\n")
    out = stale_feature_requests(s.inst, s.res)
    assert isinstance(out, str) and "spatial.bogus" in out
    sensor, _ = build_feature_automation(by_name(s.assets, "sdf_features")[0])
    assert "spatial.bogus" in sensor(s.sensor_context()).skip_reason.skip_message


def test_no_extraction_when_features_are_off(setup, tmp_path):
    s = setup
    assert s.materialize(GEN, 0).success
    off = tmp_path / "off.yaml"
    save_config(tiny_config(s.layout.root, **{"simulation.grid_sizes": [16], "features.extract": False}), off)
    assert stale_feature_requests(s.inst, SpinlockConfig(config_path=str(off))) == "features.extract is false"


# ----------------------------------------------------------------------------- index


def test_index_sensor_rebuilds_a_missing_or_stale_index_and_skips_a_current_one(setup):
    s = setup
    sensor = build_index_sensor(by_name(s.assets, "dataset_index", "dataset_stats", "dataset_card"))
    first = sensor(s.sensor_context())
    assert not first.run_requests and first.skip_reason.skip_message == "no rollouts yet"

    for b in (0, 1):
        assert s.materialize((*GEN, "sdf_features"), b).success
    assert index_problems(s.layout)  # no index yet
    (req,) = sensor(s.sensor_context()).run_requests
    assert list(req.asset_selection) == INDEX_ASSETS and req.partition_key is None
    assert req.run_key.startswith("index:") and "does not exist" in req.tags["spinlock/reason"]
    assert index_request(s.inst, s.res).run_key == req.run_key  # same state, same key

    assert s.run_request(req, "index_sensor").success and s.layout.index.is_file()
    assert index_problems(s.layout) == []
    current = sensor(s.sensor_context())
    assert not current.run_requests and current.skip_reason.skip_message == CURRENT

    # a feature file changes (re-extracted): the index no longer describes the files
    assert s.materialize(("sdf_features",), 1).success
    assert any("features/grid_0016/batch_0001.h5" in p for p in index_problems(s.layout))
    (again,) = sensor(s.sensor_context()).run_requests
    assert again.run_key != req.run_key and list(again.asset_selection) == INDEX_ASSETS
    assert "features/grid_0016/batch_0001.h5 changed after the index was built" in again.tags["spinlock/reason"]
    assert s.run_request(again, "index_sensor").success
    assert sensor(s.sensor_context()).skip_reason.skip_message == CURRENT

    # another splits config: splits and statistics are remade, from the YAML re-read on the tick
    old_splits = s.layout.splits.read_text()
    resplit = s.path.with_name("resplit.yaml")
    save_config(load_config(s.path, {"splits.seed": 7}), resplit)
    res = SpinlockConfig(config_path=str(resplit))
    (split_req,) = sensor(dg.build_sensor_context(instance=s.inst, resources={"spinlock": res})).run_requests
    assert "another splits config" in split_req.tags["spinlock/reason"]
    assert index_request(s.inst, SpinlockConfig(config_path=str(s.path))) == CURRENT  # the old config: current
    # a statistics file edited by hand is remade too
    doc = json.loads(s.layout.stats.read_text())
    doc["grids"]["16"]["fields"][0]["std"] *= 2
    s.layout.stats.write_text(json.dumps(doc))
    req_stats = index_request(s.inst, s.res)
    assert isinstance(req_stats, dg.RunRequest) and "stats.json" in req_stats.tags["spinlock/reason"]
    assert s.run_request(req_stats, "index_sensor").success and index_request(s.inst, s.res) == CURRENT
    assert s.layout.splits.read_text() == old_splits  # the same config: the same splits

    # a new rollouts file, while a run is in progress: wait for it
    s.feats.write_text(yaml.safe_dump({"aggregation": {"temporal": ["mean", "max"]}}))
    run_stages(s.cfg, [PartitionId(grid=16, batch=0)], stages=("rollouts_hdf5",))
    _in_flight(s.inst, **{"dagster/partition": "0000|16"})
    waiting = sensor(s.sensor_context())
    assert not waiting.run_requests
    msg = waiting.skip_reason.skip_message
    assert msg.startswith("index.h5 is stale (") and "waiting for 1 run(s) in progress" in msg
    assert "partitions/grid_0016/batch_0000.h5 changed" in msg


def test_index_sensor_rebuilds_an_unreadable_index(setup):
    s = setup
    assert s.materialize(GEN, 0).success
    s.layout.index.write_bytes(b"not an hdf5 file")
    req = index_request(s.inst, s.res)
    assert isinstance(req, dg.RunRequest) and list(req.asset_selection) == INDEX_ASSETS
    assert s.run_request(req, "index_sensor").success and index_problems(s.layout) == []
