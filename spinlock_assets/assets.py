"""The assets, generated from the stage table (:data:`spinlock_core.stages.STAGES`).

Every asset is thin: one stage call, metadata out. Its value is the file the stage wrote in
the dataset (no IO manager, nothing pickled); its **code version** is the stage hash of the
config the definitions were loaded with and its **data version** the hash the file was made
from, so editing the config marks exactly the affected assets' partitions stale in the UI.
Partitioned assets share the (batch x grid size) partitions (identity mapping); the index
depends on all partitions of its inputs.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from spinlock_assets.partitions import part_of
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import ExperimentConfig
from spinlock_core.stages import STAGES, Markdown, PathValue, Stage, StageHashSet, hashes_of

__all__ = ["build_assets", "by_name", "to_metadata", "compute_pool"]


def to_metadata(values: Mapping[str, Any]) -> dict[str, dg.MetadataValue]:
    """Dagster metadata of a stage result's plain values (numbers plot over partitions in the UI)."""
    out: dict[str, dg.MetadataValue] = {}
    for k, v in values.items():
        if isinstance(v, PathValue):
            out[k] = dg.MetadataValue.path(v.path)
        elif isinstance(v, Markdown):
            out[k] = dg.MetadataValue.md(v.text)
        elif isinstance(v, bool):
            out[k] = dg.MetadataValue.bool(v)
        elif isinstance(v, int):
            out[k] = dg.MetadataValue.int(v)
        elif isinstance(v, float):
            out[k] = dg.MetadataValue.float(v)
        elif isinstance(v, str):
            out[k] = dg.MetadataValue.text(v)
        else:
            out[k] = dg.MetadataValue.json(v)
    return out


def by_name(assets: list[dg.AssetsDefinition], *names: str) -> list[dg.AssetsDefinition]:
    """The assets called ``names`` (in that order) among ``assets``."""
    found = {k.to_user_string(): a for a in assets for k in a.keys}
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"no assets {missing}; have {sorted(found)}")
    return [found[n] for n in names]


def compute_pool(cfg: ExperimentConfig) -> str:
    """The pool of torch steps: ``gpu`` when the experiment computes on CUDA, else ``cpu``.

    ``gpu`` gets one slot per GPU of the host and ``cpu`` one per CPU core (set when a home
    is opened, :func:`spinlock_assets.home.open_instance`); under the dask executor the ``gpu``
    pool becomes the worker resource ``GPU=1`` instead (:mod:`spinlock_assets.executor`).
    """
    device = cfg.simulation.device
    if device == "auto":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if device.startswith("cuda") else "cpu"


def _asset(row: Stage, partitions_def: dg.PartitionsDefinition, hashes: StageHashSet, pool: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=row.name,
        partitions_def=partitions_def if row.partitioned else None,
        deps=[dg.AssetKey(n) for n in row.inputs],
        group_name=row.group,
        kinds=set(row.kinds) or None,
        pool=pool if row.pool == "gpu" else row.pool,
        code_version=hashes.of(row.hash_of),
        description=row.description,
    )
    def _stage_asset(context: dg.AssetExecutionContext, spinlock: SpinlockConfig) -> dg.MaterializeResult:
        cfg: ExperimentConfig = spinlock.load()
        part = part_of(context.partition_key) if row.partitioned else None
        res = row.run(cfg, part)
        context.log.info(res.message)
        return dg.MaterializeResult(metadata=to_metadata(res.metadata), data_version=dg.DataVersion(res.data_version))

    return _stage_asset


def build_assets(cfg: ExperimentConfig, partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """One asset per row of the stage table, versioned by ``cfg``'s stage hashes."""
    hashes = hashes_of(cfg)
    pool = compute_pool(cfg)
    return [_asset(row, partitions_def, hashes, pool) for row in STAGES]
