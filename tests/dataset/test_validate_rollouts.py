"""validate_structure on good and broken rollouts files: every problem is one report line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from spinlock_core.dataset import validate_files, validate_structure
from spinlock_core.testing import WrittenPartition, corrupt, write_partition


def _div(n: int = 4, m: int = 2) -> np.ndarray:
    d = np.full((n, m), -1, dtype=np.int32)
    d[1, 0] = 2  # sample 1, realization 0 diverged at step 2
    return d


@pytest.fixture
def good(tmp_path: Path) -> WrittenPartition:
    return write_partition(tmp_path / "p.h5", n=4, m=2, time_steps=[0, 1, 2, 3], diverged_step=_div())


def test_good_file_passes(good: WrittenPartition) -> None:
    report = validate_structure(good.path)
    assert report.ok, report.format()
    assert report.errors == [] and report.warnings == []
    assert any("trajectories finite before divergence (4 x 2" in c for c in report.checks)
    assert "OK:" in report.format()


def _set(path: Path, key: str, value) -> None:
    with h5py.File(path, "r+") as f:
        f[key][value[0]] = value[1]


def test_nan_at_or_after_divergence_is_allowed(good: WrittenPartition) -> None:
    _set(good.path, "outputs/fields", ((1, 0, 2), np.nan))  # step 2 = diverged_step
    _set(good.path, "outputs/fields", ((1, 0, 3), np.inf))
    assert validate_structure(good.path).ok


def test_nan_before_divergence_is_an_error(good: WrittenPartition) -> None:
    _set(good.path, "outputs/fields", ((1, 0, 1, 0, 3, 3), np.nan))  # step 1 < diverged_step 2
    report = validate_structure(good.path)
    assert not report.ok
    assert report.errors == [
        "non-finite values in /outputs/fields at sample 1 (row 1) realization 0 steps [1] before its diverged_step 2"
    ]


def test_nan_in_non_diverged_realization_is_an_error(good: WrittenPartition) -> None:
    _set(good.path, "outputs/fields", ((2, 1, 3, 1, 0, 0), np.inf))
    report = validate_structure(good.path)
    assert (
        len(report.errors) == 1
        and "sample 2 (row 2) realization 1 steps [3] in a realization that never diverged" in report.errors[0]
    )


def test_params_out_of_unit_cube(good: WrittenPartition) -> None:
    _set(good.path, "parameters/params", ((3, 1), 1.25))
    _set(good.path, "parameters/params", ((0, 0), np.nan))
    errors = validate_structure(good.path).errors
    assert any("non-finite values in 1 rows (rows [0])" in e for e in errors)
    assert any("values outside [0, 1] in 1 rows (rows [3]" in e for e in errors)


def test_wrong_shape_is_reported(good: WrittenPartition) -> None:
    with h5py.File(good.path, "r+") as f:
        del f["metadata/ic_types"], f["ic_types"]
        d = f.create_dataset(
            "metadata/ic_types", data=np.array(["a", "b", "c"], dtype=object), dtype=h5py.string_dtype()
        )
        f["ic_types"] = d
    errors = validate_structure(good.path).errors
    assert any("dim 'sample' has length 3 in /metadata/ic_types but 4" in e for e in errors), errors


def test_missing_group_is_reported(good: WrittenPartition) -> None:
    with h5py.File(good.path, "r+") as f:
        del f["parameters"]
    report = validate_structure(good.path)
    assert "missing group /parameters" in report.errors


def test_empty_string_and_bad_version_are_reported(good: WrittenPartition, tmp_path: Path) -> None:
    with h5py.File(good.path, "r+") as f:
        f["metadata/noise_regimes"][2] = ""
    assert any(
        "/metadata/noise_regimes has 1 empty strings (rows [2])" in e for e in validate_structure(good.path).errors
    )
    other = write_partition(tmp_path / "q.h5")
    with h5py.File(other.path, "r+") as f:
        f.attrs["schema_version"] = "2.0"
    assert validate_structure(other.path).errors == ["schema_version 2.0 is incompatible with 1.0"]
    nope = tmp_path / "nope.h5"
    report = validate_structure(nope)
    assert report.errors == ["no such file"] and report.path == str(nope)
    assert report.format().startswith(f"INVALID: {nope} (1 errors")
    assert validate_files(nope).errors == [f"{nope}: no such dataset file or directory"]


@pytest.mark.parametrize(
    "how,kw,needle",
    [
        ("truncated", {}, "not a readable HDF5 file"),
        ("empty", {}, "empty file"),
        ("garbage", {}, "not a readable HDF5 file"),
        ("header_bitflip", {}, "not a readable HDF5 file"),
        ("data_bitflip", {}, "cannot be read"),
        ("dataset_removed", {"dataset": "inputs/fields"}, "missing dataset /inputs/fields"),
        ("shape_changed", {"dataset": "metadata/ic_types"}, "dim 'sample' has length 3 in /metadata/ic_types"),
        ("nonfinite", {"dataset": "inputs/fields", "value": np.inf}, "non-finite values in /inputs/fields"),
    ],
)
def test_damaged_file_is_report_lines_not_an_exception(good: WrittenPartition, how: str, kw: dict, needle: str) -> None:
    corrupt(good.path, how, **kw)
    report = validate_structure(good.path)
    assert not report.ok and any(needle in e for e in report.errors), report.errors
    assert all("\n" not in e for e in report.errors)
    errors = validate_files(good.path).errors  # the same problems, each line naming the file
    assert errors and all("p.h5: " in e for e in errors) and any(needle in e for e in errors), errors


def test_reference_outside_the_dataset_is_an_error(good: WrittenPartition, tmp_path: Path) -> None:
    other = write_partition(tmp_path / "elsewhere" / "q.h5")
    corrupt(good.path, "external_link", target=other.path)
    assert validate_structure(good.path).errors == [
        f"refers outside the dataset: /stolen is an external link to {other.path}:/"
    ]
