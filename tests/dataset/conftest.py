"""Fixtures for the dataset-contract tests (files written with spinlock_core.testing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spinlock_core.dataset import DatasetLayout, PartitionId
from spinlock_core.testing import WrittenPartition, write_partition


@pytest.fixture
def four_partitions(tmp_path: Path) -> tuple[Path, list[WrittenPartition]]:
    """2 batches x 2 grid sizes (8, 16) under ``<tmp>/ds/partitions/grid_GGGG/batch_BBBB.h5``.

    As in the pipeline, every sample is generated at every grid size: batch 0 holds samples
    0..2, batch 1 samples 3..5, each at g = 8 and g = 16 (different content per grid).
    """
    root = tmp_path / "ds"
    layout = DatasetLayout(root)
    written = []
    for b in range(2):
        for k, g in enumerate((8, 16)):
            written.append(
                write_partition(
                    layout.rollouts(PartitionId(grid=g, batch=b)),
                    start=3 * b,
                    n=3,
                    g=g,
                    seed=100 + 10 * b + k,
                    batch=b,
                    compression="gzip" if b == 0 else "lzf",
                )
            )
    return root, written
