"""Fixtures for the storage tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_helpers import Written, make_partition


@pytest.fixture
def four_partitions(tmp_path: Path) -> tuple[Path, list[Written]]:
    """2 batches x 2 grid sizes (8, 16) under ``<tmp>/ds/partitions/``; samples interleave by batch."""
    root = tmp_path / "ds"
    written = []
    for b in range(2):
        for k, g in enumerate((8, 16)):
            start = 10 * b + 5 * k  # batch b: grid 8 gets 10b..10b+4, grid 16 gets 10b+5..10b+9
            n = 3 if g == 8 else 2
            written.append(
                make_partition(
                    root / "partitions" / f"b{b:04d}" / f"g{g}.h5",
                    start=start,
                    n=n,
                    g=g,
                    seed=100 + 10 * b + k,
                    batch=b,
                    compression="gzip" if b == 0 else "lzf",
                )
            )
    return root, written
