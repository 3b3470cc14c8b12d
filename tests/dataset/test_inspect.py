"""dataset_info / format_info: counts, histograms, divergence, bytes and layout of a dataset or one file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from spinlock_core.dataset import DatasetError, build_index, dataset_info, format_info
from spinlock_core.testing import WrittenPartition, corrupt, write_partition


def test_dataset_info_counts_and_histograms(four_partitions: tuple[Path, list[WrittenPartition]]) -> None:
    root, written = four_partitions
    build_index(root)
    info = dataset_info(root)
    assert info["kind"] == "index" and info["layout_of"] == str(root / "index.h5")
    assert info["missing"] == [] and info["expected_partitions"] is None and info["manifest"] is None  # no manifest
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


def test_dataset_info_partition_file(tmp_path: Path) -> None:
    div = np.full((4, 2), -1, dtype=np.int32)
    div[1, 0] = 2  # sample 1, realization 0 diverged at step 2
    good = write_partition(tmp_path / "p.h5", n=4, m=2, time_steps=[0, 1, 2, 3], diverged_step=div)
    info = dataset_info(good.path)
    assert info["kind"] == "partition"
    assert info["diverged"] == {"realizations": 1, "samples_any": 1, "samples_all": 0, "total_realizations": 8}
    e = {x["path"]: x for x in info["layout"]}["/outputs/fields"]
    assert e["chunks"] == (1, 1, 4, 2, 8, 8) and e["compression"] == "gzip" and not e["virtual"]
    assert info["bytes"]["file"] == good.path.stat().st_size == info["bytes"]["total"]


@pytest.mark.parametrize(
    "how,kw",
    [
        ("truncated", {}),
        ("garbage", {}),
        ("dataset_removed", {"dataset": "metadata/diverged_step"}),
        ("shape_changed", {"dataset": "metadata/ic_types"}),
    ],
    ids=["truncated", "garbage", "no_diverged_step", "short_ic_types"],
)
def test_dataset_info_of_a_damaged_partition_is_one_error(
    four_partitions: tuple[Path, list[WrittenPartition]], how: str, kw: dict
) -> None:
    root, written = four_partitions
    corrupt(written[2].path, how, **kw)  # grid 8, batch 1
    for target in (root, written[2].path):
        with pytest.raises(DatasetError) as exc:
            dataset_info(target)
        assert "grid_0008/batch_0001.h5" in str(exc.value) and "\n" not in str(exc.value)
