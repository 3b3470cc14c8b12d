"""Asset checks (spinlock_assets.checks): pass on good partitions, fail on planted bad files, blocking ones
stop everything downstream (features, renders, the index)."""

from __future__ import annotations

import math

import dagster as dg
import h5py
import numpy as np
import pytest

from spinlock_assets.assets import build_assets, by_name
from spinlock_assets.build import build_definitions
from spinlock_assets.checks import CHECK_NAMES, build_checks
from spinlock_assets.partitions import GRID_DIMENSION, make_partitions, partition_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import save_config
from spinlock_core.dataset import PartitionId
from spinlock_core.dataset import quality as C
from spinlock_core.sampling import sampling_metrics
from spinlock_core.stages import global_points, layout_of, sobol_quality
from spinlock_core.stages import table as stage_table
from spinlock_core.testing import tiny_config

# 6 samples in 15 dimensions cannot meet the shipped Sobol targets: loosen them for "good" data.
LOOSE = {"sampling.validation.max_discrepancy": 100.0, "sampling.validation.max_pairwise_correlation": 1.0}
PART = PartitionId(grid=16, batch=0)

ALL = ("sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features", "renders", "dataset_index")
DOWNSTREAM_OF_ROLLOUTS = {"sdf_features", "renders", "dataset_index"}


def _config(tmp_path, **extra):
    cfg = tiny_config(tmp_path / "data", **{"simulation.grid_sizes": [16], **extra})
    path = tmp_path / "tiny.yaml"
    save_config(cfg, path)
    return cfg, path


def _run(cfg, path, names):
    """Materialize ``names`` and every check of them for partition 0000|16 in an ephemeral instance."""
    parts = make_partitions(cfg)
    assets = build_assets(cfg, parts)
    checks = [
        c for c in build_checks(assets, parts) if {k.asset_key.to_user_string() for k in c.check_keys} <= set(names)
    ]
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions(GRID_DIMENSION, ["16"])
    res = dg.materialize(
        [*by_name(assets, *names), *checks],
        partition_key=str(partition_key(PART)),
        instance=inst,
        resources={"spinlock": SpinlockConfig(config_path=str(path))},
        raise_on_error=False,
    )
    evals = {e.check_name: e for e in res.get_asset_check_evaluations()}
    done = {e.asset_key.to_user_string() for e in res.get_asset_materialization_events()}
    return res, evals, done


def _plant(monkeypatch, stage_fn: str, edit):
    """Let the stage function ``stage_fn`` of the stage table write its file, then ``edit(h5py.File)`` it."""
    original = getattr(stage_table, stage_fn)

    def planted(*a, **kw):
        summary = original(*a, **kw)
        with h5py.File(summary.path, "r+") as f:
            edit(f)
        return summary

    monkeypatch.setattr(stage_table, stage_fn, planted)


def _meta(evaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def test_every_check_passes_on_good_data_and_the_index_materializes(tmp_path):
    cfg, path = _config(tmp_path, **LOOSE)
    res, evals, done = _run(cfg, path, ALL)
    assert res.success
    assert set(evals) == set(CHECK_NAMES)
    assert all(e.passed for e in evals.values()), {k: e.description for k, e in evals.items()}
    assert done == set(ALL) and layout_of(cfg).index.exists()
    assert evals["sobol_quality"].severity == dg.AssetCheckSeverity.WARN
    assert evals["rollouts_finite"].severity == dg.AssetCheckSeverity.ERROR
    assert evals["rollouts_schema"].severity == dg.AssetCheckSeverity.ERROR
    assert evals["specs_match_points"].severity == dg.AssetCheckSeverity.ERROR
    assert evals["renders_files"].severity == dg.AssetCheckSeverity.WARN
    # the sobol metadata is the global set's metrics (all 6 samples, not the batch's 3)
    sob = _meta(evals["sobol_quality"])
    want = sampling_metrics(np.asarray(global_points(cfg)))
    assert sob["samples"] == 6 and math.isclose(sob["discrepancy"], want["centered_l2_discrepancy"])
    assert math.isclose(sob["max_abs_correlation"], want["max_abs_correlation"])
    assert (sob["max_discrepancy"], sob["max_pairwise_correlation"]) == (100.0, 1.0)
    assert _meta(evals["specs_match_points"])["samples"] == 3
    fin = _meta(evals["rollouts_finite"])
    assert fin["offences"] == 0 and fin["trajectories"] == 3 * 2
    assert fin["path"] == str(layout_of(cfg).rollouts(PART))
    div = _meta(evals["rollouts_divergence"])
    assert div["realizations"] == 6 and div["max_diverged_fraction"] == C.DEFAULT_MAX_DIVERGED_FRACTION
    fnan = _meta(evals["features_nan"])
    assert fnan["nan_values"] == 0 and fnan["values"] > 0 and fnan["path"] == str(layout_of(cfg).features(PART))


def test_sobol_quality_warns_without_blocking_when_thresholds_are_tiny(tmp_path):
    cfg, path = _config(
        tmp_path, **{"sampling.validation.max_discrepancy": 1e-9, "sampling.validation.max_pairwise_correlation": 1e-9}
    )
    res, evals, done = _run(cfg, path, ("sobol_parameters", "operator_specs"))
    assert res.success and done == {"sobol_parameters", "operator_specs"}  # WARN never blocks
    assert set(evals) == {"sobol_quality", "specs_match_points"} and evals["specs_match_points"].passed
    e = evals["sobol_quality"]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    m = _meta(e)
    assert m["discrepancy"] >= 1e-9 and not m["discrepancy_pass"] and not m["correlation_pass"]
    assert m["max_discrepancy"] == 1e-9


def test_nan_in_an_undiverged_realization_fails_and_blocks_everything_downstream(tmp_path, monkeypatch):
    def nan_never_diverged(f):
        f["outputs/fields"][0, 1, -1, 0, 0, 0] = np.nan
        div = f["metadata/diverged_step"][()]
        div[0, 1] = -1
        f["metadata/diverged_step"][...] = div

    _plant(monkeypatch, "rollout_stage", nan_never_diverged)
    cfg, path = _config(tmp_path, **LOOSE)
    res, evals, done = _run(cfg, path, ALL)
    assert not res.success
    e = evals["rollouts_finite"]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    m = _meta(e)
    assert m["offences"] == 1 and "realization 1" in m["examples"][0] and "never flagged" in m["examples"][0]
    assert "rollouts_hdf5" in done and not done & DOWNSTREAM_OF_ROLLOUTS  # the blocking check stopped them
    layout = layout_of(cfg)
    assert not layout.index.exists() and not layout.features(PART).exists()
    assert not layout.render_record(PART).exists()


def test_nan_after_a_flagged_divergence_is_allowed_but_counts_as_diverged(tmp_path, monkeypatch):
    def nan_after_divergence(f):
        f["outputs/fields"][2, 0, -1, 1, 3, 4] = np.nan
        last = int(f["time"][-1])  # diverged at the last stored step
        div = np.full(f["metadata/diverged_step"].shape, -1, dtype=np.int32)
        div[0, :] = last  # operator 0: both realizations
        div[1, 0] = last
        div[2, 0] = last  # the NaN frame is at the flagged step
        f["metadata/diverged_step"][...] = div

    _plant(monkeypatch, "rollout_stage", nan_after_divergence)
    cfg, path = _config(tmp_path, **LOOSE)
    res, evals, done = _run(cfg, path, ALL)
    assert res.success and "dataset_index" in done  # rollouts_divergence is WARN, non-blocking
    assert evals["rollouts_finite"].passed and evals["rollouts_schema"].passed
    d = evals["rollouts_divergence"]
    assert not d.passed and d.severity == dg.AssetCheckSeverity.WARN
    m = _meta(d)
    assert (m["diverged_realizations"], m["realizations"], m["diverged_operators"]) == (4, 6, 3)
    assert math.isclose(m["diverged_fraction"], 4 / 6) and m["max_diverged_fraction"] == 0.5
    assert evals["features_nan"].passed  # diverged realizations are excluded from the NaN count


@pytest.mark.parametrize(
    "edit, expect",
    [
        (lambda f: f.__delitem__("parameters"), "missing group /parameters"),
        (
            lambda f: (
                f["metadata"].__delitem__("noise_seeds"),
                f["metadata"].create_dataset("noise_seeds", data=np.zeros((3, 5), dtype=np.uint64)),
            ),
            "has length 5",
        ),
    ],
    ids=["missing_group", "wrong_shape"],
)
def test_rollouts_schema_fails_on_a_malformed_file(tmp_path, monkeypatch, edit, expect):
    _plant(monkeypatch, "rollout_stage", edit)
    cfg, path = _config(tmp_path, **LOOSE)
    res, evals, done = _run(cfg, path, ALL)
    assert not res.success and not done & DOWNSTREAM_OF_ROLLOUTS
    e = evals["rollouts_schema"]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    m = _meta(e)
    assert m["error_count"] >= 1 and any(expect in err for err in m["errors"]), m["errors"]
    assert evals["rollouts_finite"].passed  # fields and diverged_step are intact


def _plant_nan(f):
    d = f["features/sdf/spatial/features"]
    v = d[()]
    v[0, 0, 0, 0, 0] = np.nan
    d[...] = v


def _plant_inf(f):
    d = f["features/sdf/temporal/features"]
    v = d[()]
    v[1, 0, 0, 0] = np.inf
    d[...] = v


def _plant_width(f):
    d = f["features/sdf/spectral/features"]
    v = d[()][..., :-1]
    attrs = dict(d.attrs)
    del f["features/sdf/spectral/features"]
    n = f.create_dataset("features/sdf/spectral/features", data=v)
    for k in ("names", "masked", "granularity", "axes"):
        n.attrs[k] = attrs[k]


@pytest.mark.parametrize(
    "plant, check",
    [(_plant_nan, "features_nan"), (_plant_inf, "features_nan"), (_plant_width, "features_schema")],
    ids=["nan", "inf", "width"],
)
def test_feature_checks_fail_on_planted_bad_files_and_block_renders_and_the_index(tmp_path, monkeypatch, plant, check):
    _plant(monkeypatch, "features_stage", plant)
    cfg, path = _config(tmp_path, **LOOSE)
    res, evals, done = _run(cfg, path, ALL)
    assert not res.success
    e = evals[check]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    if check == "features_nan":
        m = _meta(e)
        assert m["nan_values"] == 1 and m["worst_features"], m
    else:
        problems = _meta(e)["problems"]
        assert any(p.startswith("spectral: width") for p in problems), problems
    assert "sdf_features" in done and not done & {"renders", "dataset_index"}
    assert not layout_of(cfg).index.exists()


def test_definitions_wire_the_checks_with_their_blocking_flags(tiny_config_file):
    defs = build_definitions(tiny_config_file, claim=False)
    graph = defs.resolve_asset_graph()
    specs = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys}
    assert set(specs) == set(CHECK_NAMES)
    assert {n: s.asset_key.to_user_string() for n, s in specs.items()} == {
        "sobol_quality": "sobol_parameters",
        "specs_match_points": "operator_specs",
        "rollouts_schema": "rollouts_hdf5",
        "rollouts_finite": "rollouts_hdf5",
        "rollouts_divergence": "rollouts_hdf5",
        "features_schema": "sdf_features",
        "features_nan": "sdf_features",
        "renders_files": "renders",
    }
    assert {n for n, s in specs.items() if s.blocking} == {
        "specs_match_points",
        "rollouts_schema",
        "rollouts_finite",
        "features_schema",
        "features_nan",
    }
    # every check is partitioned like its asset
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).partitions_def is not None, key


def test_core_checks_reject_bad_input_and_report_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match="max_diverged_fraction"):
        C.rollout_divergence(tmp_path / "x.h5", -0.1)
    with pytest.raises(ValueError, match="max_diverged_fraction"):
        C.rollout_divergence(tmp_path / "x.h5", 1.5)
    for fn in (C.rollout_finiteness, C.rollout_divergence, C.rollout_schema, C.features_nan):
        out = fn(tmp_path / "missing.h5")
        assert not out.passed
    assert not C.features_schema(tmp_path / "missing.h5", {"spatial": ["a"]}, ["a__mean"], "cafe").passed
    # strict thresholds, as spinlock_core.sampling.metrics_pass
    m = {"centered_l2_discrepancy": 0.2, "max_abs_correlation": 0.3, "n": 8, "d": 2}
    assert not sobol_quality(m, 0.25, 0.3).passed and sobol_quality(m, 0.25, 0.31).passed
    assert sobol_quality({"n": 8, "d": 0}, 0.25, 0.3).passed


def test_a_check_whose_file_is_unreadable_fails_and_says_why_instead_of_crashing(tmp_path, monkeypatch):
    """A check that raises (here: the points file is gone) becomes a failed evaluation naming the error."""
    original = stage_table.sobol_stage

    def vanishing(cfg, batch):
        out = original(cfg, batch)
        layout_of(cfg).points(batch).unlink()
        return out

    monkeypatch.setattr(stage_table, "sobol_stage", vanishing)
    cfg, path = _config(tmp_path, **LOOSE)
    res, evals, done = _run(cfg, path, ("sobol_parameters",))
    assert res.success and done == {"sobol_parameters"}  # a WARN check: the run goes on
    e = evals["sobol_quality"]
    assert not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    assert e.description.startswith("DatasetError:") and str(layout_of(cfg).points(0)) in e.description
