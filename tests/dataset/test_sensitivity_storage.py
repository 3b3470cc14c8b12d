"""The optional /operator_sensitivity/values table: writer, validation, xarray, stored_sensitivity, rollout_stage."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from spinlock_core.dataset import PartitionId, PartitionWriter, stored_sensitivity, validate_structure
from spinlock_core.testing import PARAM_NAMES, write_partition

NAMES = ["sensitivity_lipschitz_eps0p01", "sensitivity_base_gain", "sensitivity_curvature"]


def write(
    path: Path,
    values: np.ndarray | None,
    *,
    n: int = 3,
    m: int = 2,
    skip_rows: int = 0,
    diverged: np.ndarray | None = None,
) -> Path:
    """A small partition with (or without) the sensitivity table."""
    c, g, steps = 2, 8, [0, 1, 2]
    rng = np.random.default_rng(0)
    traj = rng.standard_normal((n, m, len(steps), c, g, g)).astype(np.float32)
    idx = np.arange(n, dtype=np.int64)
    kw = {}
    if values is not None:
        kw = dict(
            sensitivity_names=NAMES,
            sensitivity_params={"enabled": True, "lipschitz_eps": [0.01]},
            sensitivity_params_hash="0123456789abcdef",
        )
    with PartitionWriter(
        path,
        num_samples=n,
        num_realizations=m,
        time_steps=steps,
        num_channels=c,
        grid_size=g,
        param_names=PARAM_NAMES,
        compression="none",
        **kw,
    ) as w:
        w.write_trajectories(slice(0, n), traj)
        w.write_inputs(slice(0, n), traj[:, 0, 0])
        w.write_parameters(np.full((n, 3), 0.5), [json.dumps({"a": 1})] * n)
        w.write_metadata(
            sample_index=idx,
            ic_types=["t"] * n,
            ic_base_types=["t"] * n,
            rollout_policies=["residual"] * n,
            noise_regimes=["low"] * n,
            operator_specs=[json.dumps({"i": int(i)}) for i in idx],
            weight_seeds=idx.astype(np.uint64),
            ic_seeds=idx.astype(np.uint64),
            noise_seeds=np.zeros((n, m), dtype=np.uint64),
            diverged_step=np.full((n, m), -1, dtype=np.int32) if diverged is None else diverged,
            config_json="{}",
            sampling_metrics={},
        )
        if values is not None:
            for r in range(n - skip_rows):
                w.write_sensitivity(slice(r, r + 1), values[r : r + 1])
    return path


def test_partition_with_sensitivity_round_trips_and_validates(tmp_path: Path) -> None:
    vals = np.arange(9, dtype=np.float64).reshape(3, 3) / 7
    p = write(tmp_path / "s.h5", vals)
    with h5py.File(p, "r") as f:
        d = f["operator_sensitivity/values"]
        assert d.dtype == np.dtype("<f4") and d.shape == (3, 3)
        np.testing.assert_array_equal(d[()], vals.astype(np.float32))
        assert json.loads(d.attrs["names"]) == NAMES and d.attrs["params_hash"] == "0123456789abcdef"
        assert json.loads(d.attrs["params"])["lipschitz_eps"] == [0.01]
        assert f["sensitivity"].id == d.id  # root alias
        assert [s.decode() for s in f["sensitivity_feature"][()]] == NAMES
    report = validate_structure(p)
    assert report.ok, report.format()
    assert any("+1 optional" in c for c in report.checks)
    with xr.open_dataset(p, engine="h5netcdf") as ds:
        assert ds["sensitivity"].dims == ("sample", "sensitivity_feature")
        assert list(ds["sensitivity_feature"].values) == NAMES
    with h5py.File(p, "r") as f:
        stored = stored_sensitivity(f)
    assert stored is not None
    got, names, params_hash = stored
    assert names == NAMES and params_hash == "0123456789abcdef"
    assert got.dtype == np.float32 and got.shape == (3, 3)
    np.testing.assert_array_equal(got, vals.astype(np.float32))
    # without the table: valid too, and stored_sensitivity says so
    q = write(tmp_path / "plain.h5", None)
    assert validate_structure(q).ok
    with h5py.File(q, "r") as f:
        assert stored_sensitivity(f) is None
        assert "operator_sensitivity" not in f and "sensitivity_feature" not in f


def test_incomplete_or_inconsistent_tables_are_caught(tmp_path: Path) -> None:
    vals = np.ones((3, 3))
    with pytest.raises(RuntimeError, match="operator sensitivity rows"):
        write(tmp_path / "missing.h5", vals, skip_rows=1)
    assert not (tmp_path / "missing.h5").exists()
    with pytest.raises(ValueError, match="sensitivity_params"):
        PartitionWriter(
            tmp_path / "x.h5",
            num_samples=1,
            num_realizations=1,
            time_steps=[0],
            num_channels=1,
            grid_size=4,
            param_names=[],
            sensitivity_names=NAMES,
        )
    p = write(tmp_path / "bad.h5", vals)
    with h5py.File(p, "r+") as f:
        f["operator_sensitivity/values"].attrs["names"] = json.dumps(NAMES[:2])
    report = validate_structure(p)
    assert not report.ok and any("names" in e for e in report.errors)
    # NaN for an operator that never diverged: a warning; for a diverged one: fine
    nan_vals = vals.copy()
    nan_vals[1] = np.nan
    assert any("never diverged" in w for w in validate_structure(write(tmp_path / "nan.h5", nan_vals)).warnings)
    div = np.full((3, 2), -1, dtype=np.int32)
    div[1, 0] = 2
    rep = validate_structure(write(tmp_path / "nan_div.h5", nan_vals, diverged=div))
    assert rep.ok and not any("never diverged" in w for w in rep.warnings)


def test_old_layout_files_still_validate(tmp_path: Path) -> None:
    w = write_partition(tmp_path / "old.h5")
    assert validate_structure(w.path).ok


def test_rollout_stage_stores_sensitivity_unless_disabled(tiny_cfg, tmp_path: Path) -> None:
    import torch

    from spinlock_core.config import load_config
    from spinlock_core.features.config import load_features_config
    from spinlock_core.operators import OperatorSpec
    from spinlock_core.sensitivity import (
        sensitivity_feature_names,
        sensitivity_for_specs,
        sensitivity_params_hash,
    )
    from spinlock_core.stages import features_config, layout_of, rollout_stage, sobol_stage, specs_stage

    part = PartitionId(grid=16, batch=0)
    sobol_stage(tiny_cfg, 0)
    specs_stage(tiny_cfg, 0)
    rollout_stage(tiny_cfg, part)
    path = layout_of(tiny_cfg).rollouts(part)
    params = features_config(tiny_cfg).operator_sensitivity
    assert validate_structure(path).ok
    with h5py.File(path, "r") as f:
        got = stored_sensitivity(f)
        assert got is not None
        vals, names, params_hash = got
        stored_specs = [OperatorSpec.from_json(s) for s in f["metadata/operator_specs"][()]]
        ics = torch.from_numpy(f["inputs/fields"][()])
    assert names == sensitivity_feature_names(params, 3) and vals.shape == (3, len(names)) and np.isfinite(vals).all()
    assert params_hash == sensitivity_params_hash(params)  # measured under the current parameters
    other = load_features_config({"operator_sensitivity": {"gain_alphas": [0.5, 2.0]}}).operator_sensitivity
    assert sensitivity_params_hash(other) != params_hash  # measured under other parameters: recompute
    again = sensitivity_for_specs(stored_specs, ics, params, eval_batch=tiny_cfg.simulation.num_realizations)
    np.testing.assert_allclose(again, vals, rtol=1e-4, atol=1e-6)
    # disabled in the features config: no table
    yaml = tmp_path / "features.yaml"
    yaml.write_text("operator_sensitivity:\n  enabled: false\n")
    cfg_off = load_config(
        tiny_cfg.model_dump(mode="json") | {"features": {"config": str(yaml)}},
        {"dataset.output_dir": str(tmp_path / "off")},
    )
    sobol_stage(cfg_off, 0)
    specs_stage(cfg_off, 0)
    rollout_stage(cfg_off, part)
    off = layout_of(cfg_off).rollouts(part)
    assert validate_structure(off).ok
    with h5py.File(off, "r") as f:
        assert stored_sensitivity(f) is None and "operator_sensitivity" not in f
