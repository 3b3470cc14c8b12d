"""PartitionWriter: exact round trips, HDF5-compatible direct-chunk gzip, xarray dims, atomicity."""

from __future__ import annotations

import json
import os
import re
import threading
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from spinlock_core.dataset import PartitionWriter, byte_shuffle, open_dataset, validate_structure
from spinlock_core.testing import PARAM_NAMES, write_partition


@pytest.mark.parametrize("compression,shuffle", [("gzip", True), ("gzip", False), ("lzf", True), ("none", False)])
def test_round_trip_exact(tmp_path: Path, compression: str, shuffle: bool) -> None:
    w = write_partition(tmp_path / "p.h5", compression=compression, shuffle=shuffle, n=5, chunk_rows=2)
    with h5py.File(w.path, "r") as f:
        d = f["outputs/fields"]
        assert d.dtype == np.dtype("<f4")
        assert d.chunks == (1, 1, 4, 2, 8, 8)  # one trajectory per chunk
        assert d.compression == (None if compression == "none" else compression)
        assert d.shuffle == (shuffle and compression != "none")
        np.testing.assert_array_equal(d[()], w.traj)
        np.testing.assert_array_equal(f["inputs/fields"][()], w.inputs)
        np.testing.assert_array_equal(f["parameters/params"][()], w.params)
        assert f["trajectories"].id == d.id  # root alias is the same object, not a copy
    with open_dataset(w.path) as r:
        np.testing.assert_array_equal(r.trajectories(), w.traj)
        np.testing.assert_array_equal(r.inputs(), w.inputs)
        np.testing.assert_array_equal(r.params(), w.params)
        assert r.param_names == list(PARAM_NAMES)
        assert [json.dumps(v) for v in r.param_values()] == w.values
        meta = r.metadata()
        np.testing.assert_array_equal(meta["sample_index"], w.sample_index)
        assert meta["ic_types"].tolist() == w.meta["ic_types"]
        assert meta["weight_seeds"].dtype == np.uint64
        np.testing.assert_array_equal(meta["weight_seeds"], w.meta["weight_seeds"])
        np.testing.assert_array_equal(meta["noise_seeds"], w.meta["noise_seeds"])
        np.testing.assert_array_equal(meta["grid_sizes"], np.full(5, 8))
        assert r.specs()[1] == {"sample": 1, "layers": 2}
        assert r.attrs["config_hash"] == "cafe" and r.attrs["schema_version"] == "1.0"
        assert json.loads(r.attrs["library_versions"]) == {"numpy": np.__version__}
        assert r.config == {"experiment": "test", "hash": "cafe"}
        assert r.sampling_metrics == {"discrepancy": 0.01, "max_corr": 0.2}
        np.testing.assert_array_equal(r.trajectories(3), w.traj[3])
        np.testing.assert_array_equal(r.trajectories([4, 0, 4]), w.traj[[4, 0, 4]])


def test_xarray_opens_partition_with_named_dims(tmp_path: Path) -> None:
    w = write_partition(tmp_path / "p.h5", start=40, n=3, g=8, time_steps=[0, 5, 10, 15])
    with xr.open_dataset(w.path, engine="h5netcdf") as ds:
        t = ds["trajectories"]
        assert t.dims == ("sample", "realization", "time", "channel", "y", "x")
        np.testing.assert_array_equal(t.values, w.traj)
        assert ds["initial_conditions"].dims == ("sample", "channel", "y", "x")
        np.testing.assert_array_equal(ds["initial_conditions"].values, w.inputs)
        assert ds["params"].dims == ("sample", "param")
        assert ds["diverged_step"].dims == ("sample", "realization")
        np.testing.assert_array_equal(ds["sample"].values, [40, 41, 42])
        np.testing.assert_array_equal(ds["time"].values, [0, 5, 10, 15])
        np.testing.assert_allclose(ds["x"].values, (np.arange(8) + 0.5) / 8)
        assert ds["param"].values.tolist() == list(PARAM_NAMES)
        assert ds["ic_types"].values.tolist() == w.meta["ic_types"]
        assert t.encoding["chunksizes"] == (1, 1, 4, 2, 8, 8)
        assert t.attrs["long_name"] == "trajectories" and "units" in t.attrs and "description" in t.attrs
        # label-based selection works on the stored coordinates
        np.testing.assert_array_equal(t.sel(sample=41, time=10).values, w.traj[1, :, 2])
        assert ds.attrs["schema_version"] == "1.0"
    with h5py.File(w.path, "r") as f:  # the seed's layout is there too
        assert {"outputs", "inputs", "parameters", "metadata"} <= set(f.keys())


def test_byte_shuffle_matches_hdf5_shuffle_filter(tmp_path: Path) -> None:
    data = np.random.default_rng(1).standard_normal((3, 5, 7)).astype("<f4")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        d = f.create_dataset("x", data=data, chunks=data.shape, shuffle=True)  # shuffle filter only
        mask, raw = d.id.read_direct_chunk((0, 0, 0))
    assert mask == 0
    assert bytes(raw) == byte_shuffle(data).tobytes()
    # hand check on two elements: bytes grouped by significance
    two = np.array([0x04030201, 0x08070605], dtype="<u4")
    assert byte_shuffle(two).tolist() == [1, 5, 2, 6, 3, 7, 4, 8]


def test_direct_chunks_are_plain_deflate_of_shuffled_bytes(tmp_path: Path) -> None:
    w = write_partition(tmp_path / "p.h5", compression="gzip", shuffle=True, n=2)
    with h5py.File(w.path, "r") as f:
        d = f["outputs/fields"]
        assert d.compression_opts == 4
        mask, raw = d.id.read_direct_chunk((1, 1, 0, 0, 0, 0))
    assert mask == 0
    unshuffled = np.frombuffer(zlib.decompress(raw), np.uint8).reshape(4, -1).T.copy().view("<f4")
    np.testing.assert_array_equal(unshuffled.reshape(w.traj[1, 1].shape), w.traj[1, 1])


def test_final_state_only_and_concurrent_writer_threads(tmp_path: Path) -> None:
    n, m, c, g = 6, 3, 1, 4
    data = np.random.default_rng(2).standard_normal((n, m, 1, c, g, g)).astype(np.float32)
    path = tmp_path / "final.h5"
    with PartitionWriter(
        path,
        num_samples=n,
        num_realizations=m,
        time_steps=[50],
        num_channels=c,
        grid_size=g,
        param_names=["a"],
        compression="gzip",
        compression_level=1,
        shuffle=True,
        compression_threads=2,
        root_attrs={},
    ) as w:
        threads = [
            threading.Thread(target=w.write_trajectories, args=(slice(i, i + 2), data[i : i + 2])) for i in (0, 2, 4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        w.write_inputs(slice(0, n), data[:, 0, 0])
        w.write_parameters(np.full((n, 1), 0.5), ["{}"] * n)
        w.write_metadata(
            sample_index=np.arange(n),
            ic_types=["a"] * n,
            ic_base_types=["a"] * n,
            rollout_policies=["residual"] * n,
            noise_regimes=["low"] * n,
            operator_specs=["{}"] * n,
            weight_seeds=np.arange(n),
            ic_seeds=np.arange(n),
            noise_seeds=np.zeros((n, m), np.uint64),
            diverged_step=np.full((n, m), -1),
            config_json="{}",
            sampling_metrics={},
        )
    with open_dataset(path) as r:
        assert r.num_time_steps == 1 and r.time_steps.tolist() == [50]
        np.testing.assert_array_equal(r.trajectories(), data)
    assert validate_structure(path).ok


def test_incomplete_partition_is_not_committed(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    w = PartitionWriter(
        path,
        num_samples=4,
        num_realizations=1,
        time_steps=[0, 1],
        num_channels=1,
        grid_size=4,
        param_names=[],
        compression="lzf",
        compression_level=0,
        shuffle=False,
        compression_threads=1,
        root_attrs={},
    )
    w.write_trajectories(slice(0, 2), np.zeros((2, 1, 2, 1, 4, 4), np.float32))
    with pytest.raises(RuntimeError, match=r"trajectories rows \[2, 3\]"):
        w.close()
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_exception_in_context_removes_tmp_and_keeps_previous_file(tmp_path: Path) -> None:
    old = write_partition(tmp_path / "p.h5", seed=5)
    with pytest.raises(ZeroDivisionError):
        with PartitionWriter(
            old.path,
            num_samples=4,
            num_realizations=2,
            time_steps=range(4),
            num_channels=2,
            grid_size=8,
            param_names=PARAM_NAMES,
            compression="gzip",
            compression_level=4,
            shuffle=True,
            compression_threads=2,
            root_attrs={},
        ) as w:
            w.write_trajectories(slice(0, 4), np.ones((4, 2, 4, 2, 8, 8), np.float32))
            # written under <name>.<pid>.<8 hex>.tmp beside the final file, never at p.h5 itself
            tmps = [p.name for p in tmp_path.iterdir() if p.name != "p.h5"]
            assert len(tmps) == 1 and re.fullmatch(rf"p\.h5\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", tmps[0]), tmps
            raise ZeroDivisionError
    assert [p.name for p in tmp_path.iterdir()] == ["p.h5"]
    with open_dataset(old.path) as r:
        np.testing.assert_array_equal(r.trajectories(), old.traj)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"compression": "zstd"}, "compression must be one of"),
        ({"compression_level": 12}, "compression_level"),
        ({"time_steps": [0, 2, 1]}, "time_steps"),
        ({"num_samples": 0}, "num_samples"),
        ({"root_attrs": {"grid_size": 16}}, r"root_attrs\['grid_size'\]"),
        ({"param_names": ["a", "a"]}, "param_names"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = dict(
        num_samples=2,
        num_realizations=1,
        time_steps=[0, 1],
        num_channels=1,
        grid_size=8,
        param_names=["a"],
        compression="gzip",
        compression_level=4,
        shuffle=True,
        compression_threads=1,
        root_attrs={},
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        PartitionWriter(tmp_path / "p.h5", **args)
    assert list(tmp_path.iterdir()) == []


def test_bad_writes_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with PartitionWriter(
            tmp_path / "p.h5",
            num_samples=2,
            num_realizations=1,
            time_steps=[0],
            num_channels=1,
            grid_size=4,
            param_names=["a"],
            compression="none",
            compression_level=0,
            shuffle=False,
            compression_threads=1,
            root_attrs={},
        ) as w:
            with pytest.raises(ValueError, match=r"expected shape \(2, 1, 1, 1, 4, 4\)"):
                w.write_trajectories(slice(0, 2), np.zeros((2, 1, 1, 1, 4, 5), np.float32))
            with pytest.raises(ValueError, match="rows must be a non-empty slice"):
                w.write_inputs(slice(1, 3), np.zeros((2, 1, 4, 4), np.float32))
            with pytest.raises(ValueError, match="ic_types\\[1\\] must be a non-empty string"):
                w.write_metadata(
                    sample_index=np.arange(2),
                    ic_types=["a", ""],
                    ic_base_types=["a"] * 2,
                    rollout_policies=["r"] * 2,
                    noise_regimes=["low"] * 2,
                    operator_specs=["{}"] * 2,
                    weight_seeds=np.arange(2),
                    ic_seeds=np.arange(2),
                    noise_seeds=np.zeros((2, 1), np.uint64),
                    diverged_step=np.full((2, 1), -1),
                    config_json="{}",
                    sampling_metrics={},
                )
            raise ValueError("abandon")
    assert list(tmp_path.iterdir()) == []
