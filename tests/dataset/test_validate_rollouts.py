"""validate_structure on good and broken files; dataset_info counts and histograms; schema doc."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from storage_helpers import Written, make_partition

from spinlock_core.storage import (
    build_index,
    dataset_info,
    find_partitions,
    format_info,
    schema_markdown,
    validate_structure,
)

REPO = Path(__file__).resolve().parents[2]


def _div(n: int = 4, m: int = 2) -> np.ndarray:
    d = np.full((n, m), -1, dtype=np.int32)
    d[1, 0] = 2  # sample 1, realization 0 diverged at step 2
    return d


@pytest.fixture
def good(tmp_path: Path) -> Written:
    return make_partition(tmp_path / "p.h5", n=4, m=2, time_steps=[0, 1, 2, 3], diverged_step=_div())


def test_good_file_passes(good: Written) -> None:
    report = validate_structure(good.path)
    assert report.ok, report.format()
    assert report.errors == [] and report.warnings == []
    assert any("trajectories finite before divergence (4 x 2" in c for c in report.checks)
    assert "OK:" in report.format()


def _set(path: Path, key: str, value) -> None:
    with h5py.File(path, "r+") as f:
        f[key][value[0]] = value[1]


def test_nan_at_or_after_divergence_is_allowed(good: Written) -> None:
    _set(good.path, "outputs/fields", ((1, 0, 2), np.nan))  # step 2 = diverged_step
    _set(good.path, "outputs/fields", ((1, 0, 3), np.inf))
    assert validate_structure(good.path).ok


def test_nan_before_divergence_is_an_error(good: Written) -> None:
    _set(good.path, "outputs/fields", ((1, 0, 1, 0, 3, 3), np.nan))  # step 1 < diverged_step 2
    report = validate_structure(good.path)
    assert not report.ok
    assert report.errors == [
        "non-finite values in /outputs/fields at sample 1 (row 1) realization 0 steps [1] before its diverged_step 2"
    ]


def test_nan_in_non_diverged_realization_is_an_error(good: Written) -> None:
    _set(good.path, "outputs/fields", ((2, 1, 3, 1, 0, 0), np.inf))
    report = validate_structure(good.path)
    assert (
        len(report.errors) == 1
        and "sample 2 (row 2) realization 1 steps [3] in a realization that never diverged" in report.errors[0]
    )


def test_params_out_of_unit_cube(good: Written) -> None:
    _set(good.path, "parameters/params", ((3, 1), 1.25))
    _set(good.path, "parameters/params", ((0, 0), np.nan))
    errors = validate_structure(good.path).errors
    assert any("non-finite values in 1 rows (rows [0])" in e for e in errors)
    assert any("values outside [0, 1] in 1 rows (rows [3]" in e for e in errors)


def test_wrong_shape_is_reported(good: Written) -> None:
    with h5py.File(good.path, "r+") as f:
        del f["metadata/ic_types"], f["ic_types"]
        d = f.create_dataset(
            "metadata/ic_types", data=np.array(["a", "b", "c"], dtype=object), dtype=h5py.string_dtype()
        )
        f["ic_types"] = d
    errors = validate_structure(good.path).errors
    assert any("dim 'sample' has length 3 in /metadata/ic_types but 4" in e for e in errors), errors


def test_missing_group_is_reported(good: Written) -> None:
    with h5py.File(good.path, "r+") as f:
        del f["parameters"]
    report = validate_structure(good.path)
    assert "missing group /parameters" in report.errors


def test_empty_string_and_bad_version_are_reported(good: Written, tmp_path: Path) -> None:
    with h5py.File(good.path, "r+") as f:
        f["metadata/noise_regimes"][2] = ""
    assert any(
        "/metadata/noise_regimes has 1 empty strings (rows [2])" in e for e in validate_structure(good.path).errors
    )
    other = make_partition(tmp_path / "q.h5")
    with h5py.File(other.path, "r+") as f:
        f.attrs["schema_version"] = "2.0"
    assert validate_structure(other.path).errors == ["schema_version 2.0 is incompatible with 1.0"]
    assert validate_structure(tmp_path / "nope.h5").errors == [
        f"no such dataset file or directory: {tmp_path / 'nope.h5'}"
    ]


def test_dataset_info_counts_and_histograms(four_partitions: tuple[Path, list[Written]]) -> None:
    root, written = four_partitions
    build_index(find_partitions(root), root / "index.h5")
    info = dataset_info(root)
    c = info["counts"]
    assert (c["num_samples"], c["num_rows"], c["num_realizations"], c["num_time_steps"], c["num_channels"]) == (
        6,
        12,
        2,
        4,
        2,
    )
    assert c["grid_sizes"] == [8, 16] and c["grid_size"] == 16 and c["num_partitions"] == 4
    per_sample = [w for w in written if w.traj.shape[-1] == 8]  # each sample once
    for key in ("ic_types", "rollout_policies", "noise_regimes"):
        values = [v for w in per_sample for v in w.meta[key]]
        assert len(values) == 6
        assert info["histograms"][key] == dict(sorted(Counter(values).items()))
    assert info["histograms"]["grid_sizes"] == {8: 6, 16: 6}
    assert info["sampling_metrics"] == {"discrepancy": 0.01, "max_corr": 0.2}
    assert info["diverged"] == {"realizations": 0, "samples_any": 0, "samples_all": 0, "total_realizations": 24}
    part_bytes = sum(w.path.stat().st_size for w in written)
    assert info["bytes"]["partitions"] == part_bytes
    assert info["bytes"]["total"] == part_bytes + (root / "index.h5").stat().st_size
    layout = {e["path"]: e for e in info["layout"]}
    assert layout["/outputs/fields"]["virtual"] and layout["/outputs/fields"]["aliases"] == ["/trajectories"]
    assert layout["/outputs/fields"]["dims"] == ["sample", "realization", "time", "channel", "y", "x"]
    text = format_info(info)
    assert "N=6 (12 rows over 2 grid sizes)" in text and "/outputs/fields (12, 2, 4, 2, 16, 16) float32" in text


def test_dataset_info_partition_file(good: Written) -> None:
    info = dataset_info(good.path)
    assert info["kind"] == "partition"
    assert info["diverged"] == {"realizations": 1, "samples_any": 1, "samples_all": 0, "total_realizations": 8}
    e = {x["path"]: x for x in info["layout"]}["/outputs/fields"]
    assert e["chunks"] == (1, 1, 4, 2, 8, 8) and e["compression"] == "gzip" and not e["virtual"]
    assert info["bytes"]["file"] == good.path.stat().st_size == info["bytes"]["total"]


def test_schema_doc_holds_the_generated_tables() -> None:
    doc = (REPO / "docs" / "schema.md").read_text()
    assert schema_markdown() in doc, (
        "docs/schema.md is out of date: paste spinlock_core.storage.schema_markdown() into it"
    )
