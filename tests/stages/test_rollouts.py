"""Stage ``rollouts_hdf5``: complete partition files from the batch's points and specs, byte-identical rebuilds."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from spinlock_core.dataset import DatasetError, PartitionId, build_index, read_manifest
from spinlock_core.stages import StaleInput, layout_of, rollout_stage, sobol_stage, specs_stage
from spinlock_core.testing import DEFAULT_CONFIG, tiny_config, tiny_overrides


def _prepare(cfg, *batches):
    for b in batches:
        sobol_stage(cfg, b)
        specs_stage(cfg, b)


def test_rollout_stage_writes_a_complete_partition(tiny_cfg):
    _prepare(tiny_cfg, 0)
    part = PartitionId(grid=16, batch=0)
    summary = rollout_stage(tiny_cfg, part)
    path = layout_of(tiny_cfg).rollouts(part)
    assert summary.path == str(path) and path.exists()
    assert summary.shape == [3, 2, 4, 3, 16, 16]
    assert (summary.batch, summary.grid_size, summary.config_hash) == (0, 16, tiny_cfg.config_hash())
    h = tiny_cfg.stage_hashes()
    with h5py.File(path, "r") as f:
        assert f["outputs/fields"].shape == (3, 2, 4, 3, 16, 16)
        assert f["outputs/fields"].chunks == (1, 1, 4, 3, 16, 16)
        np.testing.assert_array_equal(f["outputs/fields"][:, 0, 0], f["inputs/fields"][()])
        assert [json.loads(s)["index"] for s in f["metadata/operator_specs"][()]] == [0, 1, 2]
        assert f.attrs["config_hash"] == tiny_cfg.config_hash()
        assert f.attrs["points_hash"] == h.points and f.attrs["specs_hash"] == h.specs
        assert f.attrs["partition_key"] == part.key and int(f.attrs["grid_size"]) == 16
        # the stored parameters are the points file's, the stored specs the specs file's
        points = json.loads(layout_of(tiny_cfg).points(0).read_text())
        assert f["parameters/params"][()].tobytes() == np.asarray(points["unit"], dtype=np.float64).tobytes()
        specs = json.loads(layout_of(tiny_cfg).specs(0).read_text())["specs"]
        assert [json.loads(s) for s in f["metadata/operator_specs"][()]] == specs
    assert not list(path.parent.glob("*.tmp*"))


def test_rollout_stage_needs_the_points_and_specs_files(tiny_cfg):
    part = PartitionId(grid=16, batch=0)
    path = layout_of(tiny_cfg).rollouts(part)
    with pytest.raises(DatasetError, match="points") as err:
        rollout_stage(tiny_cfg, part)
    assert not isinstance(err.value, StaleInput)
    sobol_stage(tiny_cfg, 0)
    with pytest.raises(DatasetError, match="specs") as err:
        rollout_stage(tiny_cfg, part)
    assert not isinstance(err.value, StaleInput)
    assert not path.exists()


def test_a_backfilled_grid_size_becomes_expected_by_the_manifest(tiny_cfg):
    _prepare(tiny_cfg, 0)
    layout = layout_of(tiny_cfg)
    assert read_manifest(layout).grid_sizes == [16, 24]
    part = PartitionId(grid=32, batch=0)
    summary = rollout_stage(tiny_cfg, part)
    assert summary.shape == [3, 2, 4, 3, 32, 32] and summary.config_hash == tiny_cfg.config_hash()
    assert layout.rollouts(part).exists() and read_manifest(layout).grid_sizes == [16, 24, 32]
    sobol_stage(tiny_cfg, 0)  # the config's own grid sizes do not drop the backfilled one
    assert read_manifest(layout).grid_sizes == [16, 24, 32]


_REBUILD = """
import hashlib, sys, h5py
from spinlock_core.config import load_config
from spinlock_core.dataset import PartitionId
from spinlock_core.stages import layout_of, rollout_stage, sobol_stage, specs_stage
cfg = load_config(sys.argv[1], {overrides})
sobol_stage(cfg, 1)
specs_stage(cfg, 1)
part = PartitionId(grid=24, batch=1)
rollout_stage(cfg, part)
layout = layout_of(cfg)
h = hashlib.sha256()
h.update(layout.points(1).read_bytes())
h.update(layout.specs(1).read_bytes())
with h5py.File(layout.rollouts(part), "r") as f:
    for name in ("inputs/fields", "outputs/fields", "parameters/params", "metadata/noise_seeds"):
        h.update(f[name][()].tobytes())
print(h.hexdigest())
"""


def test_rebuilding_a_partition_in_new_processes_is_byte_identical(tmp_path):
    digests = []
    for run in range(2):
        overrides = tiny_overrides(tmp_path / f"run{run}")
        code = _REBUILD.format(overrides=repr(overrides))
        out = subprocess.run(
            [sys.executable, "-c", code, str(DEFAULT_CONFIG)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(run), "PATH": "/usr/bin:/bin"},
        )
        digests.append(out.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_xarray_opens_a_generated_partition_with_named_dims(tiny_cfg):
    import xarray as xr

    _prepare(tiny_cfg, 0)
    part = PartitionId(grid=16, batch=0)
    rollout_stage(tiny_cfg, part)
    with xr.open_dataset(layout_of(tiny_cfg).rollouts(part), engine="h5netcdf") as ds:
        dims_seen = {tuple(v.dims) for v in ds.data_vars.values()}
        assert ("sample", "realization", "time", "channel", "y", "x") in dims_seen
        assert ds.sizes["time"] == 4 and list(ds["time"].values) == [0, 1, 2, 3]
        assert list(ds["sample"].values) == [0, 1, 2]


def test_index_covers_every_rollout_partition(tiny_cfg):
    _prepare(tiny_cfg, 0, 1)
    for g in (16, 24):
        for b in range(2):
            rollout_stage(tiny_cfg, PartitionId(grid=g, batch=b))
    summary = build_index(layout_of(tiny_cfg))
    assert summary.path == layout_of(tiny_cfg).index
    assert summary.partitions == 4 and summary.rows == 12 and sorted(summary.grid_sizes) == [16, 24]
    assert not summary.missing
    with h5py.File(summary.path, "r") as f:
        assert f["outputs/fields"].shape == (12, 2, 4, 3, 24, 24)
        assert sorted(set(f["metadata/grid_sizes"][()].tolist())) == [16, 24]
        np.testing.assert_array_equal(f["outputs/fields"][0, :, :, :, 4:20, 4:20].shape, (2, 4, 3, 16, 16))


def test_named_ic_variant_parameters_reach_the_generator(tmp_path):
    cfg = tiny_config(tmp_path / "v", **{"simulation.input_generation.method": "gaussian_random_field_smooth"})
    points = sobol_stage(cfg, 0)
    specs = specs_stage(cfg, 0).specs
    assert "ic_type" not in points.names  # a single IC type is not a Sobol dimension
    assert all(
        s["ic_type"] == "gaussian_random_field_smooth" and s["ic_base"] == "gaussian_random_field" for s in specs
    )
    assert all(s["ic_params"]["length_scale"] == 0.25 for s in specs)
    part = PartitionId(grid=16, batch=0)
    rollout_stage(cfg, part)
    with h5py.File(layout_of(cfg).rollouts(part), "r") as f:
        assert [t.decode() if isinstance(t, bytes) else t for t in f["metadata/ic_types"][()]] == [
            "gaussian_random_field_smooth"
        ] * 3
        smooth = f["inputs/fields"][()]
    # the smoother variant really is smoother than the base type's default (length 0.1)
    base = tiny_config(tmp_path / "b", **{"simulation.input_generation.method": "gaussian_random_field"})
    _prepare(base, 0)
    rollout_stage(base, part)
    with h5py.File(layout_of(base).rollouts(part), "r") as f:
        rough = f["inputs/fields"][()]

    def roughness(x):
        return float(np.mean(np.diff(x, axis=-1) ** 2) / np.mean(x**2))

    assert roughness(smooth) < 0.5 * roughness(rough)
