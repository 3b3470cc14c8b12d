"""Partitions: batch of the parameter space x grid size.

* ``batch``: static, one key per batch of ``sampling.batch_size`` samples ("0000", "0001", ...).
* ``grid_size``: dynamic, so grid sizes can be added at run time (by the CLI, the
  ``grid_sizes_sensor`` or the UI) without editing code.

Dagster orders a multi-partition key's dimensions alphabetically: key ``"0003|128"`` is
batch 0003 at grid 128 (:class:`spinlock_core.dataset.PartitionId` owns that format).
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import PartitionId, batch_key

__all__ = [
    "GRID_DIMENSION",
    "BATCH_DIMENSION",
    "grid_partitions",
    "make_partitions",
    "partition_key",
    "part_of",
    "ensure_grid_partitions",
]

GRID_DIMENSION = "grid_size"
BATCH_DIMENSION = "batch"

grid_partitions = dg.DynamicPartitionsDefinition(name=GRID_DIMENSION)


def make_partitions(cfg: ExperimentConfig) -> dg.MultiPartitionsDefinition:
    """The (batch x grid size) partitions of an experiment."""
    batches = dg.StaticPartitionsDefinition([batch_key(b) for b in range(cfg.sampling.num_batches)])
    return dg.MultiPartitionsDefinition({BATCH_DIMENSION: batches, GRID_DIMENSION: grid_partitions})


def partition_key(part: PartitionId) -> dg.MultiPartitionKey:
    """The Dagster key of a partition."""
    return dg.MultiPartitionKey({BATCH_DIMENSION: batch_key(part.batch), GRID_DIMENSION: str(part.grid)})


def part_of(key: dg.MultiPartitionKey | str) -> PartitionId:
    """The partition of a Dagster key (a MultiPartitionKey or its ``"batch|grid"`` string)."""
    if isinstance(key, dg.MultiPartitionKey):
        d = key.keys_by_dimension
        return PartitionId(grid=int(d[GRID_DIMENSION]), batch=int(d[BATCH_DIMENSION]))
    return PartitionId.parse(str(key))


def ensure_grid_partitions(instance: dg.DagsterInstance, grid_sizes: Iterable[int]) -> list[str]:
    """Register missing grid sizes as dynamic partitions; returns the ones added."""
    have = set(instance.get_dynamic_partitions(GRID_DIMENSION))
    new = [str(g) for g in grid_sizes if str(g) not in have]
    if new:
        instance.add_dynamic_partitions(GRID_DIMENSION, new)
    return new
