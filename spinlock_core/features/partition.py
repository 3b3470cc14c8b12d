"""Extract one partition file's features into its feature file (the ``sdf_features`` stage).

Reads ``/outputs/fields`` in batches of ``extraction.batch_size`` samples (the next batch is
read and decompressed in a background thread while the current one is computed), extracts
every enabled family on the device, summarises each sample, and writes
``<dataset>/features/grid_G/batch_B.h5`` atomically (see :mod:`.storage`).

Operator-sensitivity features come from the partition file (measured during rollout) when
they were measured with the current parameters; otherwise they are re-measured by rebuilding
the operators from their stored specs (same weights and noise seeds), or masked with the
reason when that is not possible.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from pydantic import BaseModel

from spinlock_core.features.aggregate import summarize, summary_names
from spinlock_core.features.config import FEATURES_VERSION, features_config_hash
from spinlock_core.features.extract import FeatureExtractor
from spinlock_core.features.storage import FeatureFileWriter, features_path_for

__all__ = ["FeatureSummary", "extract_partition", "operator_values_from"]


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


def operator_values_from(src: h5py.File, cfg: BaseModel, device: str) -> tuple[dict[str, np.ndarray], str]:
    """Operator-sensitivity values for the partition ``src`` and, if missing, the reason."""
    fam_cfg = getattr(cfg, "operator_sensitivity", None)
    if fam_cfg is None or not fam_cfg.enabled:
        return {}, "operator_sensitivity disabled"
    from spinlock_core.rollout.sensitivity import values_for_partition  # rollout imports features: import late

    return values_for_partition(src, fam_cfg, device)


def extract_partition(
    partition_file: str | Path,
    cfg: BaseModel,
    *,
    out_path: str | Path | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    attrs: dict | None = None,
) -> FeatureSummary:
    """Extract the features of ``partition_file`` under features config ``cfg`` (atomic write).

    Args:
        partition_file: a rollout partition file.
        cfg: validated features config.
        out_path: where to write (default :func:`features_path_for`).
        device: overrides ``cfg.extraction.device``.
        batch_size: overrides ``cfg.extraction.batch_size``.
        progress: called with the number of samples done after each batch.
        attrs: extra root attributes (partition key, ...).
    """
    t0 = time.perf_counter()
    src_path = Path(partition_file)
    out = Path(out_path) if out_path is not None else features_path_for(src_path)
    extractor = FeatureExtractor(cfg, device or cfg.extraction.device)
    bs = int(batch_size or cfg.extraction.batch_size)
    chash = features_config_hash(cfg)
    with h5py.File(src_path, "r") as src:
        fields = src["outputs/fields"]
        n, m, ts, c = (int(v) for v in fields.shape[:4])
        names = summary_names(extractor.registry, cfg.aggregation, c)
        op_values, op_reason = operator_values_from(src, cfg, str(extractor.device))
        writer = FeatureFileWriter(
            out,
            src,
            registry_json=extractor.registry.to_json(),
            config_json=json.dumps(cfg.model_dump(mode="json")),
            config_hash=chash,
            version=FEATURES_VERSION,
            summary_names=names,
            aggregation_json=json.dumps(cfg.aggregation.model_dump(mode="json")),
            attrs={"features_config_hash": chash, **(attrs or {})},
        )
        masked: dict[str, str] = {}
        nan_total = 0
        live_total = 0
        with writer, ThreadPoolExecutor(max_workers=1) as pool:
            bounds = [(lo, min(n, lo + bs)) for lo in range(0, n, bs)]
            pending = pool.submit(lambda b: fields[b[0] : b[1]], bounds[0]) if bounds else None
            for k, (lo, hi) in enumerate(bounds):
                traj = pending.result()
                if k + 1 < len(bounds):
                    pending = pool.submit(lambda b: fields[b[0] : b[1]], bounds[k + 1])
                tb = time.perf_counter()
                ops = {key: v[lo:hi] for key, v in op_values.items()}
                blocks = extractor.extract(traj, ops, op_reason)
                got_names, summary = summarize(blocks, cfg.aggregation)
                if got_names != names:
                    raise RuntimeError("summary columns differ from the registry's (extractor bug)")
                dt = time.perf_counter() - tb
                writer.write(slice(lo, hi), blocks, summary, np.full(hi - lo, dt / (hi - lo)))
                for blk in blocks.values():
                    masked.update(blk.masked)
                    keep = [j for j, nm in enumerate(blk.names) if nm not in blk.masked]
                    if keep:
                        v = blk.values[..., keep]
                        nan_total += int(np.isnan(v).sum())
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
