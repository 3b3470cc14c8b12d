"""`spinlock generate` (spinlock_cli.generate): every stage and its asset checks through Dagster, then the
index; the dataset's files (experiment.yaml, dataset.json, points/, specs/, partitions, features, renders)
and the lineage in DAGSTER_HOME; clean refusals that write nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import h5py
import numpy as np
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.instance.ref import InstanceRef

from spinlock_assets.build import GENERATE_JOB, INDEX_JOB
from spinlock_assets.checks import CHECK_NAMES
from spinlock_cli.main import main
from spinlock_core.config import load_config
from spinlock_core.dataset import PartitionId, index_problems, read_manifest, read_points, read_specs
from spinlock_core.stages import build_specs, compute_points, hashes_of, layout_of, manifest_of
from spinlock_core.testing import DEFAULT_CONFIG, assert_no_temp_files, assert_one_line_error

KEYS = {"0000|16", "0001|16", "0000|24", "0001|24"}
PARTITIONED = ("sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features", "renders")
OVERRIDES = {
    "sampling.total_samples": 4,
    "sampling.batch_size": 2,
    "simulation.grid_sizes": [16, 24],
    "simulation.num_realizations": 2,
    "simulation.num_timesteps": 2,
    "simulation.device": "cpu",
}


def _generate_args(out) -> list[str]:
    return [
        "generate",
        "--config",
        str(DEFAULT_CONFIG),
        "--output",
        str(out),
        "--total-samples",
        "4",
        "--batch-size",
        "2",
        "--grid-sizes",
        "16",
        "24",
        "--num-realizations",
        "2",
        "--num-timesteps",
        "2",
        "--device",
        "cpu",
        "--quiet",
    ]


def _cli(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "spinlock_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def _env(home):
    env = dict(os.environ, DAGSTER_HOME=str(home))
    env.pop("SPINLOCK_CONFIG", None)
    return env


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    out, home = base / "data", base / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))  # restored afterwards (generate sets it for the process)
        assert main(_generate_args(out)) == 0
    cfg = load_config(DEFAULT_CONFIG, {**OVERRIDES, "dataset.output_dir": str(out)})
    inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    yield out, home, cfg, inst
    inst.dispose()


def test_generate_writes_every_file_of_the_dataset(generated):
    out, _, cfg, _ = generated
    layout = layout_of(cfg)
    assert sorted(p.key for p in layout.rollout_partitions()) == sorted(KEYS)  # 2 batches x 2 grids
    assert sorted(p.key for p in layout.feature_partitions()) == sorted(KEYS)
    for p in layout.rollout_partitions():
        for path in (layout.render_video(p), layout.render_poster(p), layout.render_record(p)):
            assert path.is_file(), path
    assert layout.index.is_file() and index_problems(layout) == []
    with h5py.File(layout.index, "r") as f:
        assert f["outputs/fields"].shape[0] == 8 and f["outputs/fields"].is_virtual
        assert f["features/sdf/aggregated/features"].shape[0] == 8
    assert_no_temp_files(out)

    # experiment.yaml: the effective config (flags applied), which reads back to the same data identity
    written = load_config(layout.experiment)
    assert written.config_hash() == cfg.config_hash() and written.stage_hashes() == cfg.stage_hashes()
    assert written.sampling.total_samples == 4 and written.simulation.grid_sizes == [16, 24]

    # dataset.json: the manifest of the experiment (expected partitions, stage hashes)
    manifest = read_manifest(layout)
    want = manifest_of(cfg)
    assert manifest.hashes == want.hashes and manifest.stages == ["rollouts", "features", "renders"]
    assert {p.key for p in manifest.expected_partitions()} == KEYS
    assert (manifest.total_samples, manifest.batch_size, manifest.grid_sizes) == (4, 2, [16, 24])

    # points/ and specs/: one file per batch, holding what the stage functions compute
    assert sorted(p.name for p in (out / "points").iterdir()) == ["batch_0000.json", "batch_0001.json"]
    assert sorted(p.name for p in (out / "specs").iterdir()) == ["batch_0000.json", "batch_0001.json"]
    hashes = hashes_of(cfg)
    for b in (0, 1):
        points, expect = read_points(layout, b), compute_points(cfg, b)
        np.testing.assert_array_equal(points.unit, expect.unit)
        assert points.indices.tolist() == [2 * b, 2 * b + 1] and points.hash == hashes.points
        specs = read_specs(layout, b)
        assert specs.specs == [s.to_dict() for s in build_specs(cfg, expect)] and specs.hash == hashes.specs
        for g in (16, 24):  # every grid of a batch simulates the same operators
            with h5py.File(layout.rollouts(PartitionId(grid=g, batch=b)), "r") as f:
                stored = [json.loads(s) for s in f["metadata/operator_specs"].asstr()[()]]
                assert [s["index"] for s in stored] == [s["index"] for s in specs.specs]
                assert f.attrs["specs_hash"] == hashes.specs and f.attrs["config_hash"] == hashes.rollouts


def test_generate_records_lineage_data_versions_and_check_evaluations(generated):
    _, _, cfg, inst = generated
    hashes = hashes_of(cfg)
    for name in PARTITIONED:
        assert inst.get_materialized_partitions(dg.AssetKey(name)) == KEYS, name
    assert inst.get_latest_materialization_event(dg.AssetKey("dataset_index")) is not None
    for key in KEYS:
        rec = inst.get_latest_data_version_record(dg.AssetKey("rollouts_hdf5"), partition_key=key)
        assert rec.asset_materialization.tags["dagster/data_version"] == hashes.rollouts
        assert rec.asset_materialization.tags["dagster/code_version"] == hashes.rollouts

    runs = [r.dagster_run for r in inst.get_run_records(dg.RunsFilter(tags={"spinlock/cli": "generate"}))]
    gen = [r for r in runs if r.job_name == GENERATE_JOB]
    assert sorted(r.tags["dagster/partition"] for r in gen) == sorted(KEYS)
    assert [r.job_name for r in runs if r.job_name != GENERATE_JOB] == [INDEX_JOB]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert all(r.tags["spinlock/pid"].isdigit() and r.tags["spinlock/host"] for r in runs)
    for run in gen:
        evals = [
            e.dagster_event.event_specific_data
            for e in inst.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        ]
        assert sorted(e.check_name for e in evals) == sorted(CHECK_NAMES), run.tags["dagster/partition"]
        errors = [e for e in evals if e.severity == dg.AssetCheckSeverity.ERROR]
        assert errors and all(e.passed for e in errors), [(e.check_name, e.description) for e in errors]
    for name in CHECK_NAMES:
        asset = {
            "sobol_quality": "sobol_parameters",
            "specs_match_points": "operator_specs",
            "features_schema": "sdf_features",
            "features_nan": "sdf_features",
            "renders_files": "renders",
        }.get(name, "rollouts_hdf5")
        rec = inst.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(dg.AssetKey(asset), name))
        assert rec is not None and rec.run_id in {r.run_id for r in gen}, name


def test_the_generated_dataset_validates_and_reads(generated):
    out, *_ = generated
    res = _cli("validate", "--dataset", out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VALID" in res.stdout and "FAIL" not in res.stdout
    res = _cli("info", "--dataset", out)
    assert res.returncode == 0 and "outputs/fields" in res.stdout


def test_generating_again_is_a_no_op_for_the_data(generated, monkeypatch):
    """Same home, same experiment: the runs are redone, but the data identity and file set are unchanged."""
    out, home, cfg, _ = generated
    before = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(_generate_args(out)) == 0
    assert {p.relative_to(out) for p in out.rglob("*") if p.is_file()} == before
    assert read_manifest(layout_of(cfg)).hashes == manifest_of(cfg).hashes
    assert index_problems(layout_of(cfg)) == []


def test_another_experiment_in_the_same_home_is_refused(generated, tmp_path, monkeypatch):
    _, home, _, _ = generated
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    other = tmp_path / "other.yaml"
    other.write_text(DEFAULT_CONFIG.read_text().replace("name: default", "name: other_experiment"))
    out = tmp_path / "never"
    res = _cli(*_generate_args(out)[:1], "--config", other, *_generate_args(out)[3:], env=_env(home))
    assert_one_line_error(res, 2, "belongs to experiment 'default'", "other_experiment")
    assert not out.exists()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    out, home = tmp_path / "never", tmp_path / "home"
    res = _cli(*_generate_args(out), "--dry-run", env=_env(home))
    assert res.returncode == 0, res.stderr
    assert "plan for default" in res.stdout and "partitions: 4" in res.stdout and "time: rollouts about" in res.stdout
    assert not out.exists() and not home.exists()


def test_bad_config_exits_2_and_writes_nothing(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(DEFAULT_CONFIG.read_text().replace("num_realizations: 3", "num_realizations: 0"))
    out = tmp_path / "never"
    res = _cli("generate", "--config", cfg, "--output", out, env=_env(tmp_path / "home"))
    assert_one_line_error(res, 2, "simulation.num_realizations")
    assert not out.exists() and not (tmp_path / "home").exists()


def test_output_that_is_a_file_exits_2(tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    res = _cli(*_generate_args(out), env=_env(tmp_path / "home"))
    assert_one_line_error(res, 2, "cannot generate", "is a file")
    assert out.read_text() == "x"


def test_an_h5_file_name_as_output_is_refused_with_what_to_pass(tmp_path):
    out = tmp_path / "data.h5"
    res = _cli(*_generate_args(out), env=_env(tmp_path / "home"))
    err = assert_one_line_error(res, 2, "dataset.output_dir: must be a directory", f"'{tmp_path / 'data'}'")
    assert "index.h5" in err
    assert not out.exists() and not (tmp_path / "data").exists() and not (tmp_path / "home").exists()


def test_bad_argument_exits_2(tmp_path):
    res = _cli("generate", "--config", "x.yaml", "--total-samples", "many")
    assert res.returncode == 2 and "invalid int value" in res.stderr
    res = _cli("info", "--dataset", tmp_path / "nope")
    assert_one_line_error(res, 2, "no such file")


def test_unavailable_device_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    out = tmp_path / "never"
    code = main(["generate", "--config", str(DEFAULT_CONFIG), "--output", str(out), "--device", "cuda"])
    assert code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert not out.exists()
