"""Fixtures for the storage tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from storage_helpers import Written, make_partition


@pytest.fixture
def four_partitions(tmp_path: Path) -> tuple[Path, list[Written]]:
    """2 batches x 2 grid sizes (8, 16) under ``<tmp>/ds/partitions/``.

    As in the pipeline, every sample is generated at every grid size: batch 0 holds samples
    0..2, batch 1 samples 3..5, each at g = 8 and g = 16 (different content per grid).
    """
    root = tmp_path / "ds"
    written = []
    for b in range(2):
        for k, g in enumerate((8, 16)):
            written.append(
                make_partition(
                    root / "partitions" / f"grid_{g:04d}" / f"batch_{b:04d}.h5",
                    start=3 * b,
                    n=3,
                    g=g,
                    seed=100 + 10 * b + k,
                    batch=b,
                    compression="gzip" if b == 0 else "lzf",
                )
            )
    return root, written
