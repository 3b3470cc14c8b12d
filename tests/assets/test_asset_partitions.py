"""Partitions (spinlock_assets.partitions): static batches x dynamic grid sizes, keys "<batch>|<grid>"."""

from __future__ import annotations

import dagster as dg
import pytest

from spinlock_assets.partitions import (
    BATCH_DIMENSION,
    GRID_DIMENSION,
    ensure_grid_partitions,
    make_partitions,
    part_of,
    partition_key,
)
from spinlock_core.dataset import PartitionId


def test_partition_keys_round_trip(tiny_cfg):
    key = partition_key(PartitionId(grid=24, batch=1))
    assert isinstance(key, dg.MultiPartitionKey)
    assert str(key) == "0001|24"  # dimensions ordered alphabetically: batch|grid_size
    assert key.keys_by_dimension == {BATCH_DIMENSION: "0001", GRID_DIMENSION: "24"}
    assert part_of(key) == PartitionId(grid=24, batch=1) == part_of("0001|24")
    assert PartitionId(grid=24, batch=1).key == str(key)
    with pytest.raises(ValueError):
        part_of("not a key")


def test_partitions_are_batches_times_registered_grid_sizes(tiny_cfg):
    parts = make_partitions(tiny_cfg)
    inst = dg.DagsterInstance.ephemeral()
    assert parts.get_partition_keys(dynamic_partitions_store=inst) == []  # no grid size registered yet
    assert ensure_grid_partitions(inst, [16, 24]) == ["16", "24"]
    assert ensure_grid_partitions(inst, [16, 24]) == []
    assert ensure_grid_partitions(inst, [24, 40]) == ["40"]
    keys = parts.get_partition_keys(dynamic_partitions_store=inst)
    assert len(keys) == 2 * 3
    assert {part_of(k) for k in keys} == {PartitionId(grid=g, batch=b) for g in (16, 24, 40) for b in (0, 1)}
    assert all(str(partition_key(part_of(k))) == str(k) for k in keys)
    assert sorted(parts.get_partitions_def_for_dimension(BATCH_DIMENSION).get_partition_keys()) == ["0000", "0001"]
