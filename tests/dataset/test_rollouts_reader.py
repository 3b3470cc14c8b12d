"""DatasetReader: expected partitions, and damaged or foreign files (one DatasetError naming the file, never a raw error)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spinlock_core.dataset import (
    DatasetError,
    DatasetLayout,
    Manifest,
    PartitionId,
    build_index,
    dataset_info,
    format_info,
    open_dataset,
    validate_files,
    write_manifest,
)
from spinlock_core.testing import WrittenPartition, corrupt, write_partition


@pytest.fixture
def part(tmp_path: Path) -> WrittenPartition:
    return write_partition(DatasetLayout(tmp_path / "ds").rollouts(PartitionId(grid=8, batch=0)))


def _one_line_error_naming(exc: pytest.ExceptionInfo[DatasetError], path: Path) -> None:
    assert exc.value.path == str(path) and str(exc.value).startswith(f"{path}: ")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "header_bitflip"])
def test_unreadable_file_is_refused_at_open(part: WrittenPartition, how: str) -> None:
    corrupt(part.path, how)
    for target in (part.path, part.path.parents[2]):  # the file, and the dataset directory holding it
        with pytest.raises(DatasetError) as exc:
            open_dataset(target)
        _one_line_error_naming(exc, part.path)


def test_references_outside_the_dataset_are_refused(part: WrittenPartition, tmp_path: Path) -> None:
    outside = write_partition(tmp_path / "outside.h5", seed=7)
    corrupt(part.path, "external_link", target=outside.path)
    with pytest.raises(DatasetError, match="refers outside the dataset") as exc:
        open_dataset(part.path)
    _one_line_error_naming(exc, part.path)


def test_missing_required_dataset_is_refused_at_open(part: WrittenPartition) -> None:
    corrupt(part.path, "dataset_removed", dataset="parameters/params")
    with pytest.raises(DatasetError, match="not a readable Spinlock file") as exc:
        open_dataset(part.path)
    _one_line_error_naming(exc, part.path)


def test_damaged_chunk_is_one_error_on_read(part: WrittenPartition) -> None:
    corrupt(part.path, "data_bitflip")
    with open_dataset(part.path) as r, pytest.raises(DatasetError) as exc:
        r.trajectories()
    _one_line_error_naming(exc, part.path)


def test_missing_inputs_is_one_error(part: WrittenPartition) -> None:
    corrupt(part.path, "dataset_removed", dataset="inputs/fields")
    with pytest.raises(DatasetError) as exc:  # at open or at read
        with open_dataset(part.path) as r:
            r.inputs()
    _one_line_error_naming(exc, part.path)


def test_short_metadata_is_one_error(part: WrittenPartition) -> None:
    corrupt(part.path, "shape_changed", dataset="metadata/ic_types")
    with pytest.raises(DatasetError) as exc:  # at open or at read
        with open_dataset(part.path) as r:
            r.metadata()
    _one_line_error_naming(exc, part.path)


def test_directory_with_one_incomplete_partition_is_one_error(tmp_path: Path) -> None:
    layout = DatasetLayout(tmp_path / "ds")
    parts = [write_partition(layout.rollouts(PartitionId(grid=8, batch=b)), start=3 * b, n=3, batch=b) for b in (0, 1)]
    corrupt(parts[1].path, "dataset_removed", dataset="parameters/params")
    with pytest.raises(DatasetError) as exc:  # at open or at read
        with open_dataset(layout.root) as r:
            r.params()
    _one_line_error_naming(exc, parts[1].path)


def test_manifest_makes_missing_partitions_an_error(four_partitions: tuple[Path, list[WrittenPartition]]) -> None:
    root, written = four_partitions
    layout = DatasetLayout(root)
    write_manifest(
        layout,
        Manifest(experiment="test", hashes={"rollouts": "cafe"}, total_samples=6, batch_size=3, grid_sizes=[8, 16]),
    )
    with open_dataset(root) as r:  # complete: every expected partition is there
        assert r.num_samples == 12
    written[3].path.unlink()  # grid 16, batch 1
    with pytest.raises(DatasetError, match=r"1 of 4 expected partitions have no rollouts file: 0001\|16") as exc:
        open_dataset(root)
    assert exc.value.path == str(root) and "allow_missing=True" in exc.value.fix and "\n" not in str(exc.value)
    with open_dataset(root, allow_missing=True) as r:  # what is there, on request
        assert r.num_samples == 9 and r.sample_index.tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2]
        np.testing.assert_array_equal(r.trajectories(8), written[1].traj[2])  # grid 16, sample 2
        np.testing.assert_array_equal(r.trajectories(4)[..., 4:12, 4:12], written[2].traj[1])  # grid 8, sample 4
    summary = build_index(root)  # the index records what is missing
    assert summary.missing == ["0001|16"] and summary.rows == 9
    info = dataset_info(root)
    assert info["missing"] == ["0001|16"] and info["expected_partitions"] == 4
    assert "MISSING 1 of 4 expected partitions: 0001|16" in format_info(info)
    report = validate_files(root)
    assert not report.ok and any("0001|16" in e for e in report.errors), report.errors
