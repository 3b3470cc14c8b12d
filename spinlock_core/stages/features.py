"""Stage ``sdf_features``: extract one partition's SDF features into its feature file.

Reads ``/outputs/fields`` in batches of ``extraction.batch_size`` samples (the next batch is
read and decompressed in a background thread while the current one is computed), extracts
every enabled family on the device, summarises each sample, and writes
``features/grid_G/batch_B.h5`` atomically (:class:`~spinlock_core.dataset.FeatureFileWriter`).

Operator-sensitivity features come from the partition file (measured during rollout) when
they were measured with the current parameters; otherwise they are re-measured by rebuilding
the operators from their stored specs (same weights and noise seeds), or masked with the
reason when that is not possible.

:func:`features_stage` refuses rollouts made from another experiment config than the current
one; :func:`extract_partition` extracts any partition file as it is (``spinlock
extract-features``); :func:`stale_feature_partitions` lists what re-extraction must redo
(:func:`scan_feature_partitions` within a time budget, for the sensors).
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import DatasetLayout, FeatureFileWriter, FeatureTable, PartitionId, stored_sensitivity
from spinlock_core.dataset import hdf5 as H
from spinlock_core.dataset import schema as S
from spinlock_core.dataset.codec import decode_attr, decode_strings
from spinlock_core.device import cpu_workers
from spinlock_core.features import (
    FEATURES_VERSION,
    GRANULARITY_AXES,
    FeatureBlock,
    FeatureExtractor,
    FeaturesConfig,
    features_config_hash,
    summarize,
    summary_names,
)
from spinlock_core.operators import OperatorSpec
from spinlock_core.sensitivity import sensitivity_feature_names, sensitivity_for_specs, sensitivity_params_hash
from spinlock_core.stages.context import features_config, rollouts_made_from

__all__ = [
    "FeatureSummary",
    "extract_partition",
    "features_stage",
    "stored_features_hash",
    "FeatureScan",
    "scan_feature_partitions",
    "stale_feature_partitions",
    "operator_values",
]


@dataclass
class FeatureSummary:
    """What one extraction did (Dagster metadata, CLI output)."""

    path: str
    source: str
    num_samples: int
    num_features: int
    num_summary_columns: int
    nan_fraction: float
    masked: dict[str, str]
    seconds: float
    samples_per_s: float
    config_hash: str
    device: str
    seconds_by_family: dict[str, float] = field(default_factory=dict)


def operator_values(src: H.File, cfg: BaseModel, device: str) -> tuple[dict[str, np.ndarray], str]:
    """Operator-sensitivity values of the partition ``src`` (``{name: [n]}``) and, for missing ones, why.

    Uses the table measured during rollout when its parameters match the features config;
    otherwise rebuilds the operators from ``/metadata/operator_specs`` and measures them at their
    stored initial conditions on ``device`` (weights and noise are drawn on the device, so values
    measured on another kind of device than the rollout's differ, like the trajectories would).
    """
    fam_cfg = getattr(cfg, "operator_sensitivity", None)
    if fam_cfg is None or not fam_cfg.enabled:
        return {}, "operator_sensitivity disabled"
    stored = stored_sensitivity(src)
    if stored is not None and stored[2] == sensitivity_params_hash(fam_cfg):
        values, names, _ = stored
        return {n: values[:, j] for j, n in enumerate(names)}, "not stored with the rollout"
    if S.META.OPERATOR_SPECS not in src or S.INPUTS_FIELDS not in src:
        return {}, "partition file holds no operator specs or initial conditions to measure"
    specs = [OperatorSpec.from_dict(json.loads(v)) for v in decode_strings(src[S.META.OPERATOR_SPECS][()]).tolist()]
    ics = src[S.INPUTS_FIELDS][()]
    m = int(src[S.OUTPUTS_FIELDS].shape[1]) if S.OUTPUTS_FIELDS in src else 3
    values = sensitivity_for_specs(specs, ics, fam_cfg, device, eval_batch=max(1, m))
    names = sensitivity_feature_names(fam_cfg, int(ics.shape[1]))
    return {n: values[:, j] for j, n in enumerate(names)}, "not measured"


def _tables(blocks: Mapping[str, FeatureBlock]) -> dict[str, FeatureTable]:
    return {
        k: FeatureTable(b.category, b.granularity, GRANULARITY_AXES[b.granularity], b.names, b.values, b.masked)
        for k, b in blocks.items()
    }


def extract_partition(
    partition_file: str | Path,
    cfg: FeaturesConfig,
    *,
    out_path: str | Path | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    attrs: dict[str, Any] | None = None,
) -> FeatureSummary:
    """Extract the features of ``partition_file`` under features config ``cfg`` (atomic write).

    Args:
        partition_file: a rollout partition file.
        cfg: validated features config.
        out_path: where to write (default: the partition's feature file in its dataset).
        device: overrides ``cfg.extraction.device``.
        batch_size: overrides ``cfg.extraction.batch_size``.
        progress: called with the number of samples done after each batch.
        attrs: extra root attributes (partition key, ...).
    """
    t0 = time.perf_counter()
    src_path = Path(partition_file)
    layout = DatasetLayout.of_partition_file(src_path)
    out = Path(out_path) if out_path is not None else layout.features_for(src_path)
    extractor = FeatureExtractor(cfg, device or cfg.extraction.device)
    bs = int(batch_size or cfg.extraction.batch_size)
    chash = features_config_hash(cfg)
    with H.open_read(src_path, root=layout.root) as src:
        fields = src[S.OUTPUTS_FIELDS]
        n, _, _, c = (int(v) for v in fields.shape[:4])
        names = summary_names(extractor.registry, cfg.aggregation, c)
        op_values, op_reason = operator_values(src, cfg, str(extractor.device))
        writer = FeatureFileWriter(
            out,
            src,
            registry_json=extractor.registry.to_json(),
            config_json=json.dumps(cfg.model_dump(mode="json")),
            config_hash=chash,
            version=FEATURES_VERSION,
            summary_names=names,
            aggregation_json=json.dumps(cfg.aggregation.model_dump(mode="json")),
            attrs=dict(attrs or {}),
        )
        masked: dict[str, str] = {}
        nan_total = 0
        live_total = 0
        # On the CPU, ``workers`` threads read and extract batches at once (a sample's features do not
        # depend on its batch or thread: tests/features/test_batch_independence.py); the main thread
        # writes them in order. Elsewhere one thread reads the next batch while this one computes.
        workers = cpu_workers(torch.get_num_threads()) if extractor.device.type == "cpu" else 1

        def work(lo: int, hi: int) -> tuple[dict[str, Any], np.ndarray, float]:
            traj = fields[lo:hi]
            tb = time.perf_counter()
            ops = {key: v[lo:hi] for key, v in op_values.items()}
            blocks = extractor.extract(traj, ops, op_reason)
            got_names, summary = summarize(blocks, cfg.aggregation)
            if got_names != names:
                raise RuntimeError("summary columns differ from the registry's (extractor bug)")
            return blocks, summary, time.perf_counter() - tb

        with writer, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="spinlock-features") as pool:
            bounds = [(lo, min(n, lo + bs)) for lo in range(0, n, bs)]
            pending: deque[tuple[int, int, Future[tuple[dict[str, Any], np.ndarray, float]]]] = deque()
            todo = iter(bounds)
            for lo, hi in itertools.islice(todo, workers + 1):
                pending.append((lo, hi, pool.submit(work, lo, hi)))
            while pending:
                lo, hi, fut = pending.popleft()
                try:
                    blocks, summary, dt = fut.result()
                except BaseException:
                    for _, _, f in pending:
                        f.cancel()
                    raise
                for nxt in itertools.islice(todo, 1):
                    pending.append((*nxt, pool.submit(work, *nxt)))
                writer.write(slice(lo, hi), _tables(blocks), summary, np.full(hi - lo, dt / (hi - lo)))
                for blk in blocks.values():
                    masked.update(blk.masked)
                    keep = [j for j, nm in enumerate(blk.names) if nm not in blk.masked]
                    if keep:
                        v = blk.values[..., keep]
                        nan_total += int((~np.isfinite(v)).sum())
                        live_total += int(v.size)
                if progress is not None:
                    progress(hi - lo)
    seconds = time.perf_counter() - t0
    return FeatureSummary(
        path=str(out),
        source=str(src_path),
        num_samples=n,
        num_features=extractor.registry.num_features,
        num_summary_columns=len(names),
        nan_fraction=float(nan_total / live_total) if live_total else 0.0,
        masked=masked,
        seconds=seconds,
        samples_per_s=n / seconds if seconds > 0 else float("inf"),
        config_hash=chash,
        device=str(extractor.device),
        seconds_by_family=dict(extractor.seconds_by_family),
    )


def features_stage(
    cfg: ExperimentConfig,
    part: PartitionId,
    *,
    features_cfg: FeaturesConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> FeatureSummary:
    """Extract the features of partition ``part`` of the experiment into its feature file.

    Raises:
        DatasetError: no rollouts file for the partition; StaleInput: its rollouts were made
            from another config than ``cfg`` (re-materialize ``rollouts_hdf5`` first).
    """
    src = rollouts_made_from(cfg, part, needed_by="sdf_features")
    fcfg = features_cfg if features_cfg is not None else features_config(cfg)
    return extract_partition(src, fcfg, progress=progress, attrs={"batch": part.batch, "partition_key": part.key})


# Stored hashes by path, each valid for one file version: (device, inode, mtime, size). Feature
# files are only ever replaced by rename (a new inode), never rewritten in place, so an unchanged
# key means unchanged contents. A long-lived process (the code server evaluating the sensors every
# 30 s) then opens only the files that changed since its last tick instead of every file.
_HASH_CACHE: dict[str, tuple[tuple[int, int, int, int], str | None]] = {}
_HASH_CACHE_LIMIT = 1_000_000


def _stored_hash(path: Path) -> tuple[str | None, bool]:
    """``(stored hash or None, whether the file had to be opened)``."""
    try:
        st = os.stat(path)
    except OSError:
        return None, False
    if not stat.S_ISREG(st.st_mode):
        return None, False
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    name = str(path)
    hit = _HASH_CACHE.get(name)
    if hit is not None and hit[0] == key:
        return hit[1], False
    try:
        with H.open_read(path) as f:
            value: str | None = str(decode_attr(f[S.SDF].attrs["config_hash"]))
    except Exception:  # unreadable or not a feature file: counts as missing
        value = None
    if len(_HASH_CACHE) >= _HASH_CACHE_LIMIT:
        _HASH_CACHE.clear()
    # A file renamed over this path between the stat and the open is read under the old key,
    # which the next call's stat no longer matches: it is then read again.
    _HASH_CACHE[name] = (key, value)
    return value, True


def stored_features_hash(path: Path) -> str | None:
    """The features config hash a feature file was extracted with (None: no readable file).

    Files already read by this process are not opened again while their (inode, mtime, size)
    are unchanged.
    """
    return _stored_hash(Path(path))[0]


@dataclass(frozen=True)
class FeatureScan:
    """What :func:`scan_feature_partitions` found.

    ``stale`` holds ``(partition, stored hash or None)`` for the partitions scanned whose features
    are missing or from another config, grid-major; ``scanned`` of ``total`` partitions with
    rollouts were looked at (``complete`` when all of them).
    """

    stale: list[tuple[PartitionId, str | None]]
    scanned: int
    total: int

    @property
    def complete(self) -> bool:
        return self.scanned == self.total


def scan_feature_partitions(layout: DatasetLayout, current_hash: str, budget_s: float | None = None) -> FeatureScan:
    """Compare every partition's stored features hash with ``current_hash``, within ``budget_s``.

    Once ``budget_s`` seconds have passed the scan stops after the next file it has to open;
    files seen before (unchanged since) cost one ``stat`` and never stop it, so repeated scans
    in one process advance by at least one new file each and soon cover everything.
    """
    deadline = None if budget_s is None else time.monotonic() + budget_s
    parts = layout.rollout_partitions()
    out = []
    scanned = 0
    for p in parts:
        stored, opened = _stored_hash(layout.features(p))
        scanned += 1
        if stored != current_hash:
            out.append((p, stored))
        if opened and deadline is not None and time.monotonic() > deadline:
            break
    return FeatureScan(stale=out, scanned=scanned, total=len(parts))


def stale_feature_partitions(layout: DatasetLayout, current_hash: str) -> list[tuple[PartitionId, str | None]]:
    """Partitions with rollouts whose features are missing (None) or from another features config.

    Returns ``(partition, stored hash or None)`` for each, grid-major (a complete scan).
    """
    return scan_feature_partitions(layout, current_hash).stale
