"""export_the_well: the_well's layout, values equal to Spinlock's, diverged realizations absent, errors, atomicity.

The export is checked here against the_well's reader contract (attributes and groups that
``WellDataset`` reads); ``test_the_well_loads_and_trains_on_the_export`` runs the_well itself
(``tests/export/well_check.py`` with ``SPINLOCK_THE_WELL_PYTHON``, an environment made by
``.ci/the_well_env.sh``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from spinlock_core.dataset import DatasetError, DatasetLayout, open_dataset, read_splits, read_stats
from spinlock_core.export import ExportError, WellExport, export_the_well
from spinlock_core.export import the_well as W
from spinlock_core.testing import assert_no_temp_files, build_dataset

HERE = Path(__file__).resolve().parent
GRIDS = (16, 24)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The tiny dataset (6 samples, grids 16 and 24, M = 2, 4 frames), IC type ``structured``
    (sample 5) held out: train [1, 3, 4], valid [2], test [0], ood [5]."""
    root = tmp_path_factory.mktemp("well") / "ds"
    build_dataset(root, **{"splits.holdout.ic_types": ["structured"]})
    return root


@pytest.fixture
def copy(dataset, tmp_path) -> Path:
    """A private copy of the dataset, to damage."""
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def _diverge(root: Path, sample: int, realization: int, step: int, *, grids=GRIDS, poison: bool = True) -> None:
    """Record a divergence of (sample, realization) at ``step`` (NaN frames from there, as rollouts leave them)."""
    with open_dataset(root) as r:
        sources = []
        for g in grids:
            rows = r.rows_for_grid(g)
            files, _, local = r.row_sources(rows[r.sample_index[rows] == sample])
            sources.append((files[0], int(local[0])))
    for path, row in sources:
        with h5py.File(path, "r+") as f:
            if step >= 0:
                f["metadata/diverged_step"][row, realization] = step
            if poison:
                d = f["outputs/fields"]
                x = d[row, realization]
                x[max(step, 0) :] = np.nan
                d[row, realization] = x


def _files(out: Path, g: int, split: str) -> list[Path]:
    return sorted((out / f"grid_{g:04d}" / "data" / split).glob("*.h5"))


def _pairs(out: Path, g: int, split: str) -> list[tuple[int, int]]:
    pairs = []
    for p in _files(out, g, split):
        with h5py.File(p, "r") as f:
            pairs += list(zip(f["spinlock/sample_index"][()].tolist(), f["spinlock/realization"][()].tolist()))
    return pairs


def _s(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


# ----------------------------------------------------------------------------- layout


def test_files_follow_the_well_layout(dataset, tmp_path):
    out = tmp_path / "well"
    res = export_the_well(dataset, out)
    assert isinstance(res, WellExport) and res.output == out and res.grid_sizes == GRIDS
    assert res.dataset_name == "default"  # the experiment's name
    assert res.fields == ("channel_0", "channel_1", "channel_2")
    with open_dataset(dataset) as r:
        params = list(r.param_names)
        steps = r.time_steps
    assert list(res.scalars) == params
    assert sorted(p.name for p in out.iterdir()) == ["grid_0016", "grid_0024", W.MARKER_FILE]
    for g in GRIDS:
        gdir = out / f"grid_{g:04d}"
        assert sorted(p.name for p in (gdir / "data").iterdir()) == ["ood", "test", "train", "valid"]
        for split in ("train", "valid", "test", "ood"):
            assert res.files[g][split] == tuple(_files(out, g, split)) and res.files[g][split]
            for path in res.files[g][split]:
                with h5py.File(path, "r") as f:
                    n = int(f.attrs["n_trajectories"])
                    assert f.attrs["dataset_name"] == "default" and f.attrs["grid_type"] == "cartesian"
                    assert int(f.attrs["n_spatial_dims"]) == 2
                    dims = f["dimensions"]
                    assert _s(dims.attrs["spatial_dims"]) == ["y", "x"]  # array order of Spinlock's [..., y, x]
                    np.testing.assert_array_equal(dims["time"][()], steps.astype(np.float32))
                    assert not dims["time"].attrs["sample_varying"] and dims["time"].attrs["time_varying"]
                    for d in ("y", "x"):
                        np.testing.assert_allclose(dims[d][()], (np.arange(g) + 0.5) / g, rtol=1e-6)
                        assert not dims[d].attrs["sample_varying"] and not dims[d].attrs["time_varying"]
                        bc = f["boundary_conditions"][f"{d}_periodic"]
                        assert bc.attrs["bc_type"].upper() == "PERIODIC" and _s(bc.attrs["associated_dims"]) == [d]
                        mask = bc["mask"][()]
                        assert mask.shape == (g,) and mask[0] and mask[-1] and not mask[1:-1].any()
                    assert len(f["boundary_conditions"]) == 2
                    assert _s(f["scalars"].attrs["field_names"]) == params
                    for p in params:
                        s = f["scalars"][p]
                        assert s.shape == (n,) and s.attrs["sample_varying"] and not s.attrs["time_varying"]
                    t0 = f["t0_fields"]
                    assert _s(t0.attrs["field_names"]) == list(res.fields)
                    for name in res.fields:
                        d = t0[name]
                        assert d.shape == (n, steps.size, g, g) and d.dtype == np.float32
                        assert d.attrs["sample_varying"] and d.attrs["time_varying"]
                        assert d.attrs["dim_varying"].tolist() == [True, True]
                    for order in (1, 2):
                        assert len(f[f"t{order}_fields"].attrs["field_names"]) == 0
                    assert f["spinlock/sample_index"].shape == (n,) and f["spinlock/realization"].shape == (n,)
    marker = json.loads((out / W.MARKER_FILE).read_text())
    assert marker["format"] == W.MARKER_FORMAT and marker["trajectories"]["16"] == res.trajectories[16]
    assert_no_temp_files(tmp_path)


def test_values_are_spinlock_trajectories_and_splits_are_by_operator(dataset, tmp_path):
    out = tmp_path / "well"
    res = export_the_well(dataset, out, grid_sizes=[16])
    splits = read_splits(DatasetLayout(dataset))
    seen: dict[str, set[int]] = {}
    with open_dataset(dataset) as r:
        rows = r.rows_for_grid(16)
        row_of = {int(i): k for k, i in enumerate(r.sample_index[rows].tolist())}
        params = r.params(rows)
        for split in ("train", "valid", "test", "ood"):
            pairs = _pairs(out, 16, split)
            # every (sample, realization) of the split, once: nothing diverged in this dataset
            assert sorted(pairs) == [(int(i), m) for i in splits.of(split).tolist() for m in range(2)]
            assert res.trajectories[16][split] == len(pairs) and res.dropped[16][split] == 0
            seen[split] = {i for i, _ in pairs}
            for path in _files(out, 16, split):
                with h5py.File(path, "r") as f:
                    for k, (i, m) in enumerate(
                        zip(f["spinlock/sample_index"][()].tolist(), f["spinlock/realization"][()].tolist())
                    ):
                        traj = r.trajectories(row_of[i], grid_size=16)[m]  # [Ts, C, g, g]
                        for c, name in enumerate(res.fields):
                            np.testing.assert_array_equal(f["t0_fields"][name][k], traj[:, c])
                        got = [f["scalars"][p][k] for p in res.scalars]
                        np.testing.assert_array_equal(got, params[row_of[i]])
    names = list(seen)
    for a in names:
        for b in names:
            assert a == b or not seen[a] & seen[b], f"{a} and {b} share operators"
    assert seen["ood"] == {5}  # the held-out IC type is its own folder, not part of test


def test_stats_yaml_holds_stats_json_values(dataset, tmp_path):
    out = tmp_path / "well"
    export_the_well(dataset, out)
    layout = DatasetLayout(dataset)
    stats = read_stats(layout, read_splits(layout))
    for g in GRIDS:
        doc = yaml.safe_load((out / f"grid_{g:04d}" / "stats.yaml").read_text())
        assert set(doc) == {"mean", "std", "rms", "mean_delta", "std_delta", "rms_delta"}
        for c, name in enumerate(["channel_0", "channel_1", "channel_2"]):
            fields, deltas = stats.of(g, "fields")[c], stats.of(g, "deltas")[c]
            assert doc["mean"][name] == fields.mean and doc["std"][name] == fields.std
            assert doc["rms"][name] == fields.rms
            assert doc["mean_delta"][name] == deltas.mean and doc["std_delta"][name] == deltas.std
            assert doc["rms_delta"][name] == deltas.rms


def test_delta_statistics_are_one_step_differences_of_the_train_frames(dataset, tmp_path):
    """What the_well's DeltaWellDataset normalises: x[t+1] - x[t] of the train files (none diverged here)."""
    out = tmp_path / "well"
    export_the_well(dataset, out, grid_sizes=[16])
    doc = yaml.safe_load((out / "grid_0016" / "stats.yaml").read_text())
    for name in ("channel_0", "channel_2"):
        frames = np.concatenate([h5py.File(p, "r")["t0_fields"][name][()] for p in _files(out, 16, "train")]).astype(
            np.float64
        )
        delta = np.diff(frames, axis=1)
        assert doc["mean"][name] == pytest.approx(frames.mean(), rel=1e-6, abs=1e-9)
        assert doc["std_delta"][name] == pytest.approx(delta.std(), rel=1e-6)
        assert doc["rms_delta"][name] == pytest.approx(np.sqrt((delta**2).mean()), rel=1e-6)


# ----------------------------------------------------------------------------- divergence


def test_exported_realizations_keep_only_those_complete_at_every_stored_frame():
    steps = np.array([0, 1, 2, 3])
    div = np.array([[-1, 0], [1, 3], [4, 9]])
    assert W.exported_realizations(div, steps).tolist() == [[True, False], [False, False], [True, True]]
    strided = np.array([0, 2, 4])  # frames every 2 steps: a divergence at step 5 is after the last one
    assert W.exported_realizations(np.array([[5, 4, 3]]), strided).tolist() == [[True, False, False]]


def test_diverged_realizations_are_absent(copy, tmp_path):
    _diverge(copy, 3, 1, 2)  # train sample 3, realization 1: frames 2, 3 are NaN
    out = tmp_path / "well"
    res = export_the_well(copy, out)
    for g in GRIDS:
        pairs = _pairs(out, g, "train")
        assert (3, 1) not in pairs and (3, 0) in pairs and len(pairs) == 5
        assert res.dropped[g] == {"train": 1, "valid": 0, "test": 0, "ood": 0}
        assert res.trajectories[g]["train"] == 5
        for p in _files(out, g, "train"):
            with h5py.File(p, "r") as f:
                assert int(f.attrs["n_trajectories"]) == f["t0_fields/channel_0"].shape[0]
                assert all(np.isfinite(f["t0_fields"][n][()]).all() for n in res.fields)


def test_a_split_with_no_usable_trajectory_holds_one_empty_file(copy, tmp_path):
    for m in range(2):
        _diverge(copy, 2, m, 3, grids=(16,))  # the only valid sample, at grid 16 only
    out = tmp_path / "well"
    res = export_the_well(copy, out)
    assert res.files[16]["valid"] == (out / "grid_0016" / "data" / "valid" / "empty.h5",)
    assert res.trajectories[16]["valid"] == 0 and res.dropped[16]["valid"] == 2
    assert res.trajectories[24]["valid"] == 2
    with h5py.File(res.files[16]["valid"][0], "r") as f:
        assert int(f.attrs["n_trajectories"]) == 0 and f["t0_fields/channel_0"].shape == (0, 4, 16, 16)
        assert f["scalars"][res.scalars[0]].shape == (0,)


def test_no_train_trajectory_is_a_data_error(copy, tmp_path):
    for i in (1, 3, 4):
        for m in range(2):
            _diverge(copy, i, m, 1, grids=(24,))
    with pytest.raises(DatasetError, match="no train trajectory at grid size 24"):
        export_the_well(copy, tmp_path / "well")
    assert not (tmp_path / "well").exists()
    export_the_well(copy, tmp_path / "well", grid_sizes=[16])  # the other grid still exports


def test_nonfinite_values_without_a_recorded_divergence_are_refused(copy, tmp_path):
    _diverge(copy, 0, 0, -1, grids=(16,))  # NaN everywhere, diverged_step left at -1
    with pytest.raises(DatasetError, match="sample 0 realization 0 has non-finite values"):
        export_the_well(copy, tmp_path / "well")
    assert not (tmp_path / "well").exists()
    assert_no_temp_files(tmp_path)


# ----------------------------------------------------------------------------- arguments and files


def test_bad_arguments_raise_export_error_and_write_nothing(dataset, tmp_path):
    out = tmp_path / "well"
    cases = [
        (dict(grid_sizes=[32]), "grid_sizes: 32 is not a grid size of the dataset (have 16, 24)"),
        (dict(grid_sizes=[]), "grid_sizes is empty"),
        (dict(grid_sizes=16), "grid_sizes must be a list"),
        (dict(grid_sizes=[True]), "grid_sizes: True"),
        (dict(dataset_name=""), "dataset_name must be a non-empty printable string"),
        (dict(dataset_name="a\nb"), "dataset_name"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ExportError) as err:
            export_the_well(dataset, out, **kwargs)
        assert message in str(err.value) and "\n" not in str(err.value)
    for target, message in [
        (dataset / "export", "is inside the dataset"),
        (dataset, "is inside the dataset"),
        (dataset.parent, "contains the dataset"),
    ]:
        with pytest.raises(ExportError, match=message):
            export_the_well(dataset, target)
    assert not (dataset / "export").exists()
    with pytest.raises(ExportError, match="dataset_dir: .* is a file"):
        export_the_well(dataset / "splits.json", out)
    assert not out.exists()
    assert_no_temp_files(tmp_path)
    assert_no_temp_files(dataset)


def test_existing_outputs(dataset, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_the_well(dataset, afile, overwrite=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists; pass overwrite=True"):
        export_the_well(dataset, other)
    with pytest.raises(ExportError, match="is not a the_well export of Spinlock"):
        export_the_well(dataset, other, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    export_the_well(dataset, empty, overwrite=True, grid_sizes=[24])  # an empty directory may be replaced
    assert sorted(p.name for p in empty.iterdir()) == ["grid_0024", W.MARKER_FILE]


def test_overwrite_replaces_a_previous_export_only_when_the_new_one_is_complete(dataset, tmp_path, monkeypatch):
    out = tmp_path / "nested" / "well"  # parents are created
    export_the_well(dataset, out, grid_sizes=[16], dataset_name="first")
    with pytest.raises(ExportError, match="exists"):
        export_the_well(dataset, out)
    real = W._write_file
    calls = []

    def crash(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(path, *args, **kwargs)

    monkeypatch.setattr(W, "_write_file", crash)
    with pytest.raises(OSError, match="disk full"):
        export_the_well(dataset, out, overwrite=True, grid_sizes=[24])
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["grid_0016", W.MARKER_FILE]  # the old export, intact
    with h5py.File(_files(out, 16, "train")[0], "r") as f:
        assert f.attrs["dataset_name"] == "first"
    assert_no_temp_files(tmp_path)
    res = export_the_well(dataset, out, overwrite=True, grid_sizes=[24])
    assert res.grid_sizes == (24,) and sorted(p.name for p in out.iterdir()) == ["grid_0024", W.MARKER_FILE]
    assert_no_temp_files(tmp_path)


def test_a_crash_leaves_no_export_and_stale_temporaries_are_removed(dataset, tmp_path, monkeypatch):
    out = tmp_path / "well"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(W, "_write_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_the_well(dataset, out)
    monkeypatch.undo()
    assert not out.exists()
    assert_no_temp_files(tmp_path)
    dead = tmp_path / "well.4194303.deadbeef.tmp"  # a killed export (no such pid)
    (dead / "grid_0016").mkdir(parents=True)
    alive = tmp_path / f"well.{os.getpid()}.deadbeef.tmp"  # ours: never touched
    alive.mkdir()
    unrelated = tmp_path / "wellness.4194303.deadbeef.tmp"
    unrelated.mkdir()
    export_the_well(dataset, out, grid_sizes=[16])
    assert not dead.exists() and alive.exists() and unrelated.exists()


def test_missing_splits_or_stats_say_to_run_spinlock_index(copy, tmp_path):
    (copy / "stats.json").unlink()
    with pytest.raises(DatasetError, match="spinlock index"):
        export_the_well(copy, tmp_path / "well")
    (copy / "splits.json").unlink()
    with pytest.raises(DatasetError, match="spinlock index"):
        export_the_well(copy, tmp_path / "well")
    with pytest.raises(DatasetError):
        export_the_well(tmp_path / "nothing", tmp_path / "well")
    assert not (tmp_path / "well").exists()
    assert_no_temp_files(tmp_path)


# ----------------------------------------------------------------------------- the_well itself


def _the_well_python() -> str:
    py = os.environ.get("SPINLOCK_THE_WELL_PYTHON")
    if py:
        return py
    what = "SPINLOCK_THE_WELL_PYTHON (a python with the-well 1.2.0: .ci/the_well_env.sh PATH)"
    if os.environ.get("SPINLOCK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required here (SPINLOCK_REQUIRE_SERVICES=1) but is not set")
    pytest.skip(f"{what} not set")


def test_the_well_loads_and_trains_on_the_export(copy, tmp_path):
    py = _the_well_python()
    _diverge(copy, 3, 1, 2)  # a dropped realization: the files still hold equal-length trajectories only
    out = tmp_path / "well"
    res = export_the_well(copy, out)
    proc = subprocess.run(
        [py, str(HERE / "well_check.py"), str(out), "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads(proc.stdout)
    assert report["ok"] and report["the_well"] == "1.2.0"
    for g in GRIDS:
        entry = report["grids"][str(g)]
        for split in ("train", "valid", "test", "ood"):
            assert entry["splits"][split]["trajectories"] == res.trajectories[g][split]
            assert entry["splits"][split]["windows"] == res.trajectories[g][split] * 3  # 4 frames, 1 in + 1 out
        losses = entry["FNO"]["losses"]
        assert len(losses["train"]) == 2 and all(np.isfinite(v) for vs in losses.values() for v in vs)
    assert len(report["grids"]["16"]["UNetClassic"]["losses"]["train"]) == 2


def test_the_well_check_fails_on_boundaries_that_read_as_open(dataset, tmp_path):
    """All-False periodic masks read as OPEN in the_well (augmentations then never roll): the check must say so."""
    py = _the_well_python()
    out = tmp_path / "well"
    export_the_well(dataset, out, grid_sizes=[16])
    for path in (out / "grid_0016" / "data").glob("*/*.h5"):
        with h5py.File(path, "r+") as f:
            for d in ("y", "x"):
                f["boundary_conditions"][f"{d}_periodic"]["mask"][...] = False
    proc = subprocess.run([py, str(HERE / "well_check.py"), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert not report["ok"] and report["error"].startswith("AssertionError: bcs")
