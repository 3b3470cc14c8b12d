"""Helpers for the storage tests: write small partition files with fully known content."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinlock_core.storage import PartitionWriter

PARAM_NAMES = ("alpha", "beta", "gamma")
IC_TYPES = ("grf_low", "grf_high", "vortex")
POLICIES = ("residual", "convex")
REGIMES = ("low", "medium", "high")


@dataclass
class Written:
    """Everything a test partition holds (the truth to compare against)."""

    path: Path
    sample_index: np.ndarray
    traj: np.ndarray  # [n, M, Ts, C, g, g]
    inputs: np.ndarray  # [n, C, g, g]
    params: np.ndarray  # [n, P]
    values: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    time_steps: list[int] = field(default_factory=list)


def make_partition(
    path: Path,
    *,
    start: int = 0,
    n: int = 4,
    m: int = 2,
    time_steps: list[int] | None = None,
    c: int = 2,
    g: int = 8,
    compression: str = "gzip",
    shuffle: bool = True,
    seed: int = 0,
    config_hash: str = "cafe",
    diverged_step: np.ndarray | None = None,
    chunk_rows: int = 2,
    batch: int = 0,
) -> Written:
    """Write a partition of samples ``start..start+n-1`` with seeded random content."""
    steps = list(time_steps if time_steps is not None else range(4))
    rng = np.random.default_rng(seed)
    traj = rng.standard_normal((n, m, len(steps), c, g, g)).astype(np.float32)
    inputs = traj[:, 0, 0].copy()
    # parameters depend on the sample only (same operator at every grid size), fields on the seed
    params = (np.arange(start, start + n)[:, None] * 0.137 + np.arange(len(PARAM_NAMES))[None, :] * 0.31) % 1.0
    values = [json.dumps({"alpha": float(p[0]), "beta": int(10 * p[1])}) for p in params]
    idx = np.arange(start, start + n, dtype=np.int64)
    div = np.full((n, m), -1, dtype=np.int32) if diverged_step is None else np.asarray(diverged_step, dtype=np.int32)
    meta = dict(
        sample_index=idx,
        ic_types=[IC_TYPES[i % 3] for i in idx],
        ic_base_types=[IC_TYPES[i % 3].split("_")[0] for i in idx],
        rollout_policies=[POLICIES[i % 2] for i in idx],
        noise_regimes=[REGIMES[i % 3] for i in idx],
        operator_specs=[json.dumps({"sample": int(i), "layers": 2}) for i in idx],
        weight_seeds=idx.astype(np.uint64) * np.uint64(7) + np.uint64(2**63),
        ic_seeds=(idx * 11).astype(np.uint64),
        noise_seeds=(idx[:, None] * 100 + np.arange(m)[None, :]).astype(np.uint64),
        diverged_step=div,
        config_json=json.dumps({"experiment": "test", "hash": config_hash}),
        sampling_metrics={"discrepancy": 0.01, "max_corr": 0.2},
    )
    with PartitionWriter(
        path,
        num_samples=n,
        num_realizations=m,
        time_steps=steps,
        num_channels=c,
        grid_size=g,
        param_names=PARAM_NAMES,
        compression=compression,  # type: ignore[arg-type]
        compression_level=4,
        shuffle=shuffle,
        compression_threads=2,
        root_attrs={
            "batch": batch,
            "config_hash": config_hash,
            "root_seed": 123,
            "library_versions": {"numpy": np.__version__},
        },
    ) as w:
        for r0 in range(0, n, chunk_rows):
            w.write_trajectories(slice(r0, min(n, r0 + chunk_rows)), traj[r0 : r0 + chunk_rows])
        w.write_inputs(slice(0, n), inputs)
        w.write_parameters(params, values)
        w.write_metadata(**meta)
    return Written(path, idx, traj, inputs, params, values, meta, steps)
