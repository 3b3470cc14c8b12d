"""Per-partition stages: slicing, specs, rollouts to files, byte-identical rebuilds."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
from spinlock_fixtures import DEFAULT, tiny_overrides

from spinlock_core import pipeline
from spinlock_core.operators import KNOBS, OperatorSpec


def test_batches_are_slices_of_one_global_set(tiny_cfg):
    allpts = pipeline.global_points(tiny_cfg)
    parts = [pipeline.sobol_stage(tiny_cfg, b) for b in range(tiny_cfg.sampling.num_batches)]
    assert np.array_equal(np.concatenate([p.unit for p in parts]), allpts)
    assert parts[1].start == 3 and parts[1].indices.tolist() == [3, 4, 5]
    assert parts[0].metrics == parts[1].metrics  # metrics describe the whole set
    assert parts[0].names[-1] == "ic_type"


def test_specs_carry_every_knob_and_rebuild_alone(tiny_cfg):
    sob = pipeline.sobol_stage(tiny_cfg, 1)
    specs = pipeline.specs_stage(tiny_cfg, sob)
    assert [s.index for s in specs] == [3, 4, 5]
    for s in specs:
        assert set(s.params) == set(KNOBS)
        assert OperatorSpec.from_json(s.to_json()) == s
        assert s.ic_base in {
            "gaussian_random_field",
            "multiscale_grf",
            "localized",
            "composite",
            "heavy_tailed",
            "structured",
            "mixed",
        }
    again = pipeline.specs_stage(tiny_cfg, pipeline.sobol_stage(tiny_cfg, 1))
    assert [s.to_json() for s in again] == [s.to_json() for s in specs]
    # distinct samples get distinct seeds
    assert len({s.weight_seed for s in specs}) == 3


def test_rollout_stage_writes_a_complete_partition(tiny_cfg):
    sob = pipeline.sobol_stage(tiny_cfg, 0)
    specs = pipeline.specs_stage(tiny_cfg, sob)
    summary = pipeline.rollout_stage(tiny_cfg, sob, specs, 16, partition_key="0000|16")
    path = pipeline.partition_path(tiny_cfg, 0, 16)
    assert summary.path == str(path) and path.exists()
    assert summary.shape == [3, 2, 4, 3, 16, 16]
    with h5py.File(path, "r") as f:
        assert f["outputs/fields"].shape == (3, 2, 4, 3, 16, 16)
        assert f["outputs/fields"].chunks == (1, 1, 4, 3, 16, 16)
        np.testing.assert_array_equal(f["outputs/fields"][:, 0, 0], f["inputs/fields"][()])
        assert [json.loads(s)["index"] for s in f["metadata/operator_specs"][()]] == [0, 1, 2]
        assert f.attrs["config_hash"] == tiny_cfg.config_hash()
    assert not list(path.parent.glob("*.tmp"))


_REBUILD = """
import hashlib, sys, h5py
from spinlock_core.config import load_config
from spinlock_core import pipeline
cfg = load_config(sys.argv[1], {overrides})
sob = pipeline.sobol_stage(cfg, 1)
pipeline.rollout_stage(cfg, sob, pipeline.specs_stage(cfg, sob), 24)
with h5py.File(pipeline.partition_path(cfg, 1, 24), "r") as f:
    h = hashlib.sha256()
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
            [sys.executable, "-c", code, str(DEFAULT)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(run), "PATH": "/usr/bin:/bin"},
        )
        digests.append(out.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_xarray_opens_a_generated_partition_with_named_dims(tiny_cfg):
    import xarray as xr

    sob = pipeline.sobol_stage(tiny_cfg, 0)
    pipeline.rollout_stage(tiny_cfg, sob, pipeline.specs_stage(tiny_cfg, sob), 16)
    with xr.open_dataset(pipeline.partition_path(tiny_cfg, 0, 16), engine="h5netcdf") as ds:
        dims_seen = {tuple(v.dims) for v in ds.data_vars.values()}
        assert ("sample", "realization", "time", "channel", "y", "x") in dims_seen
        assert ds.sizes["time"] == 4 and list(ds["time"].values) == [0, 1, 2, 3]
        assert list(ds["sample"].values) == [0, 1, 2]


def test_index_stage_covers_every_partition(tiny_cfg):
    for g in (16, 24):
        for b in range(2):
            sob = pipeline.sobol_stage(tiny_cfg, b)
            pipeline.rollout_stage(tiny_cfg, sob, pipeline.specs_stage(tiny_cfg, sob), g)
    idx = pipeline.index_stage(tiny_cfg)
    with h5py.File(idx, "r") as f:
        assert f["outputs/fields"].shape == (12, 2, 4, 3, 24, 24)
        assert sorted(set(f["metadata/grid_sizes"][()].tolist())) == [16, 24]
        np.testing.assert_array_equal(f["outputs/fields"][0, :, :, :, 4:20, 4:20].shape, (2, 4, 3, 16, 16))


def test_named_ic_variant_parameters_reach_the_generator(tmp_path):
    from spinlock_core.config import load_config

    cfg = load_config(
        DEFAULT,
        tiny_overrides(tmp_path / "v", **{"simulation.input_generation.method": "gaussian_random_field_smooth"}),
    )
    sob = pipeline.sobol_stage(cfg, 0)
    specs = pipeline.specs_stage(cfg, sob)
    assert "ic_type" not in sob.names  # a single IC type is not a Sobol dimension
    assert all(s.ic_type == "gaussian_random_field_smooth" and s.ic_base == "gaussian_random_field" for s in specs)
    assert all(s.ic_params["length_scale"] == 0.25 for s in specs)
    pipeline.rollout_stage(cfg, sob, specs, 16)
    with h5py.File(pipeline.partition_path(cfg, 0, 16), "r") as f:
        assert [t.decode() if isinstance(t, bytes) else t for t in f["metadata/ic_types"][()]] == [
            "gaussian_random_field_smooth"
        ] * 3
        smooth = f["inputs/fields"][()]
    # the smoother variant really is smoother than the base type's default (length 0.1)
    base = load_config(
        DEFAULT, tiny_overrides(tmp_path / "b", **{"simulation.input_generation.method": "gaussian_random_field"})
    )
    sb = pipeline.sobol_stage(base, 0)
    pipeline.rollout_stage(base, sb, pipeline.specs_stage(base, sb), 16)
    with h5py.File(pipeline.partition_path(base, 0, 16), "r") as f:
        rough = f["inputs/fields"][()]

    def roughness(x):
        return float(np.mean(np.diff(x, axis=-1) ** 2) / np.mean(x**2))

    assert roughness(smooth) < 0.5 * roughness(rough)
