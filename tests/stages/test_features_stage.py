"""Stage ``sdf_features``: operator sensitivity from the rollout, re-measured when stale; stale rollouts refused."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from spinlock_core.dataset import HDF5FeatureReader, PartitionId, stored_sensitivity
from spinlock_core.features import load_features_config
from spinlock_core.sensitivity import sensitivity_feature_names, sensitivity_params_hash
from spinlock_core.stages import (
    StaleInput,
    extract_partition,
    features_config,
    features_stage,
    layout_of,
    rollout_stage,
    sobol_stage,
    specs_stage,
)
from spinlock_core.stages.features import operator_values
from spinlock_core.testing import tiny_config

PART = PartitionId(grid=16, batch=0)


def _partition(tmp_path, **extra):
    cfg = tiny_config(tmp_path / "data", **{"simulation.grid_sizes": [16], "sampling.total_samples": 3, **extra})
    sobol_stage(cfg, 0)
    specs_stage(cfg, 0)
    summary = rollout_stage(cfg, PART)
    return cfg, layout_of(cfg).rollouts(PART), summary


def test_stored_sensitivity_is_used_and_a_re_measurement_agrees(tmp_path):
    cfg, part, rolled = _partition(tmp_path)
    assert rolled.sensitivity_seconds > 0.0
    fcfg = features_config(cfg)
    summary = features_stage(cfg, PART, features_cfg=fcfg)
    assert summary.path == str(layout_of(cfg).features(PART))
    with h5py.File(part, "r") as f:
        got_stored = stored_sensitivity(f)
    assert got_stored is not None
    stored, names, params_hash = got_stored
    assert params_hash == sensitivity_params_hash(fcfg.operator_sensitivity)
    assert names == sensitivity_feature_names(fcfg.operator_sensitivity, 3)
    assert stored.shape == (3, len(names)) and np.isfinite(stored).all()
    with HDF5FeatureReader(layout_of(cfg).features(PART)) as r:
        got = r.get_sdf_features("operator_sensitivity")
        cols = r.get_sdf_registry().get_feature_names("operator_sensitivity")
        assert not r.masked("operator_sensitivity")
    # the stored table is taken as it is (bit-identical)
    np.testing.assert_array_equal(got[:, [cols.index(n) for n in names]], stored)
    with h5py.File(part, "r") as f:
        vals, _ = operator_values(f, fcfg, "cpu")
    assert np.stack([vals[n] for n in names], axis=1).tobytes() == stored.tobytes()
    # without the stored table the stage re-measures from the specs: same values (float32 rounding)
    bare = tmp_path / "bare.h5"
    shutil.copy(part, bare)
    with h5py.File(bare, "r+") as f:
        del f["operator_sensitivity/values"]
        assert stored_sensitivity(f) is None
        vals, reason = operator_values(f, fcfg, "cpu")
    assert sorted(vals) == sorted(names) and reason
    again = np.stack([vals[n] for n in names], axis=1)
    np.testing.assert_allclose(again, stored, rtol=2e-3, atol=1e-5)


def test_changed_sensitivity_parameters_are_re_measured_not_masked(tmp_path):
    cfg, part, _ = _partition(tmp_path)
    fcfg = load_features_config(None, {"operator_sensitivity.gain_alphas": [0.25, 2.0]})
    with h5py.File(part, "r") as f:
        got = stored_sensitivity(f)
        assert got is not None  # measured with other params: the hash says so
        assert got[2] != sensitivity_params_hash(fcfg.operator_sensitivity)
        vals, _ = operator_values(f, fcfg, "cpu")
    new_names = sensitivity_feature_names(fcfg.operator_sensitivity, 3)
    assert sorted(vals) == sorted(new_names) and any("alpha0p25" in n for n in vals)
    features_stage(cfg, PART, features_cfg=fcfg)
    with HDF5FeatureReader(layout_of(cfg).features(PART)) as r:
        cols = r.get_sdf_registry().get_feature_names("operator_sensitivity")
        v = r.get_sdf_features("operator_sensitivity")
        assert any("alpha0p25" in c for c in cols) and not r.masked("operator_sensitivity")
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(
            v[:, [cols.index(n) for n in new_names]], np.stack([vals[n] for n in new_names], 1)
        )


def test_disabled_sensitivity_is_neither_measured_nor_stored(tmp_path):
    fyaml = tmp_path / "features.yaml"
    fyaml.write_text("operator_sensitivity:\n  enabled: false\n")
    cfg, part, summary = _partition(tmp_path, **{"features.config": str(fyaml)})
    assert summary.sensitivity_seconds == 0.0
    with h5py.File(part, "r") as f:
        assert stored_sensitivity(f) is None and "operator_sensitivity" not in f
        assert operator_values(f, features_config(cfg), "cpu") == ({}, "operator_sensitivity disabled")


def test_features_stage_refuses_rollouts_from_another_config(tmp_path):
    cfg, part, _ = _partition(tmp_path)
    other = tiny_config(
        tmp_path / "data",
        **{"simulation.grid_sizes": [16], "sampling.total_samples": 3, "simulation.num_timesteps": 4},
    )
    assert layout_of(other).rollouts(PART) == part
    with pytest.raises(StaleInput) as err:
        features_stage(other, PART)
    msg = str(err.value)
    assert str(part) in msg and cfg.config_hash() in msg and other.config_hash() in msg and PART.key in msg
    assert not layout_of(cfg).features(PART).exists()
    # extract_partition extracts a partition file as it is, whatever config made it
    out = tmp_path / "as_is.h5"
    s = extract_partition(part, features_config(cfg), out_path=out)
    assert s.path == str(out) and out.exists() and s.num_samples == 3
    # a config that differs only in what the data hash leaves out is the same data: not refused
    same = tiny_config(
        tmp_path / "data",
        **{"simulation.grid_sizes": [16, 32], "sampling.total_samples": 3, "metadata.name": "renamed"},
    )
    assert features_stage(same, PART).path == str(layout_of(cfg).features(PART))


def _fake_features(path, chash):
    """A minimal feature file: only the stored config hash, written by rename like the real writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_group("features/sdf").attrs["config_hash"] = chash
    tmp.replace(path)


def _fake_dataset(tmp_path, n):
    from spinlock_core.dataset import DatasetLayout

    layout = DatasetLayout(tmp_path / "ds")
    for b in range(n):
        part = PartitionId(grid=8, batch=b)
        layout.rollouts(part).parent.mkdir(parents=True, exist_ok=True)
        layout.rollouts(part).write_bytes(b"")
        _fake_features(layout.features(part), "old" if b % 2 else "cur")
    return layout


def test_stored_hash_is_read_once_per_file_version(tmp_path, monkeypatch):
    from spinlock_core.dataset import hdf5 as H
    from spinlock_core.stages import features as stage
    from spinlock_core.stages import stored_features_hash

    opened = []
    real_open = H.open_read
    monkeypatch.setattr(H, "open_read", lambda p, **kw: opened.append(str(p)) or real_open(p, **kw))
    monkeypatch.setattr(stage, "_HASH_CACHE", {})
    path = tmp_path / "batch_0000.h5"
    assert stored_features_hash(path) is None and opened == []  # missing: nothing opened
    _fake_features(path, "aaaa")
    assert [stored_features_hash(path) for _ in range(3)] == ["aaaa"] * 3
    assert opened == [str(path)]  # read once, then remembered
    _fake_features(path, "bbbb")  # replaced by rename: another inode, read again
    assert stored_features_hash(path) == "bbbb" and len(opened) == 2
    path.write_bytes(b"not hdf5")  # rewritten in place (size changes): read again, unreadable
    assert stored_features_hash(path) is None and len(opened) == 3
    path.unlink()
    assert stored_features_hash(path) is None and len(opened) == 3


def test_scan_within_a_budget_advances_over_calls_and_agrees_with_a_full_scan(tmp_path, monkeypatch):
    from spinlock_core.stages import features as stage
    from spinlock_core.stages import scan_feature_partitions, stale_feature_partitions

    layout = _fake_dataset(tmp_path, 6)
    monkeypatch.setattr(stage, "_HASH_CACHE", {})
    seen = []
    for _ in range(6):
        scan = scan_feature_partitions(layout, "cur", budget_s=0.0)  # stops after each newly opened file
        seen.append(scan.scanned)
        if scan.complete:
            break
    assert seen == [1, 2, 3, 4, 5, 6] and scan.total == 6
    full = stale_feature_partitions(layout, "cur")
    assert scan.stale == full == [(PartitionId(grid=8, batch=b), "old") for b in (1, 3, 5)]
    # everything remembered: a zero budget now covers the whole dataset in one call
    assert scan_feature_partitions(layout, "cur", budget_s=0.0).complete
    _fake_features(layout.features(PartitionId(grid=8, batch=1)), "cur")  # re-extracted
    again = scan_feature_partitions(layout, "cur", budget_s=0.0)
    assert again.scanned == 2 and again.stale == []  # the changed file is opened again, then the budget stops it
    again = scan_feature_partitions(layout, "cur", budget_s=0.0)
    assert again.complete and [p.batch for p, _ in again.stale] == [3, 5]


def test_batches_extracted_in_threads_give_the_same_file(tmp_path, monkeypatch):
    """$SPINLOCK_CPU_WORKERS threads extract batches at once; the file is byte-for-byte the same content."""
    from spinlock_core.dataset import file_digest
    from spinlock_core.device import CPU_WORKERS_ENV

    cfg, part, _ = _partition(tmp_path, **{"sampling.total_samples": 5, "sampling.batch_size": 5})
    fcfg = features_config(cfg)
    digests = []
    for workers in ("1", "2"):
        monkeypatch.setenv(CPU_WORKERS_ENV, workers)
        out = tmp_path / f"w{workers}" / part.parent.name / part.name  # the file records grid dir and name
        s = extract_partition(part, fcfg, out_path=out, batch_size=2)  # 3 batches: 2 + 2 + 1 samples
        assert s.num_samples == 5
        digests.append(file_digest(out))
    assert digests[0] == digests[1]
