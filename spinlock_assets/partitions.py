"""Partitions: batch of the parameter space × grid size.

* ``batch``: static, one key per batch of ``sampling.batch_size`` samples ("0000", "0001", ...).
* ``grid_size``: dynamic, so grid sizes can be added at run time (by the CLI, the
  ``grid_sizes_sensor`` or the UI) without editing code.

Dagster orders a multi-partition key's dimensions alphabetically: key ``"0003|128"`` is
batch 0003 at grid 128.
"""

from __future__ import annotations

import dagster as dg

from spinlock_core.config import ExperimentConfig
from spinlock_core.pipeline import batch_key

GRID_DIMENSION = "grid_size"
BATCH_DIMENSION = "batch"

grid_partitions = dg.DynamicPartitionsDefinition(name=GRID_DIMENSION)


def make_partitions(cfg: ExperimentConfig) -> dg.MultiPartitionsDefinition:
    """The (batch × grid size) partitions of an experiment."""
    batches = dg.StaticPartitionsDefinition([batch_key(b) for b in range(cfg.sampling.num_batches)])
    return dg.MultiPartitionsDefinition({BATCH_DIMENSION: batches, GRID_DIMENSION: grid_partitions})


def partition_key(batch: int, grid_size: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({BATCH_DIMENSION: batch_key(batch), GRID_DIMENSION: str(grid_size)})


def split_key(key: dg.MultiPartitionKey | str) -> tuple[int, int]:
    """(batch, grid size) of a partition key (a MultiPartitionKey or its "batch|grid" string)."""
    if isinstance(key, dg.MultiPartitionKey):
        d = key.keys_by_dimension
        return int(d[BATCH_DIMENSION]), int(d[GRID_DIMENSION])
    batch, grid = str(key).split("|")
    return int(batch), int(grid)


def ensure_grid_partitions(instance: dg.DagsterInstance, grid_sizes) -> list[str]:
    """Register missing grid sizes as dynamic partitions; returns the ones added."""
    have = set(instance.get_dynamic_partitions(GRID_DIMENSION))
    new = [str(g) for g in grid_sizes if str(g) not in have]
    if new:
        instance.add_dynamic_partitions(GRID_DIMENSION, new)
    return new
