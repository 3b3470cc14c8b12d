"""Test kit: tiny experiments and datasets, files with known content, corrupters, assertions.

Every test of Spinlock builds its data with these instead of private copies:

* :func:`tiny_config` — the shipped default experiment shrunk to seconds on a CPU;
* :func:`run_stages` / :func:`build_dataset` — a real dataset through the stage functions
  (points, specs, rollouts, features, renders, index) without Dagster;
* :func:`write_partition` — a rollouts file of seeded random content that the test knows
  exactly (:class:`WrittenPartition`), for storage, index and reader tests;
* corrupters that damage a file the way disks, people and attackers do (:data:`CORRUPTIONS`):
  truncation, bit flips, emptying, a changed shape, a removed dataset, non-finite values,
  an external link or an absolute virtual source pointing outside the dataset;
* assertions: :func:`assert_one_line_error` (a CLI failed with one clear message, the right
  exit code, no traceback) and :func:`assert_no_temp_files`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinlock_core.config import ExperimentConfig, load_config
from spinlock_core.dataset import DatasetLayout, PartitionId, PartitionWriter
from spinlock_core.dataset import hdf5 as H
from spinlock_core.files import TMP_SUFFIX

__all__ = [
    "ROOT",
    "DEFAULT_CONFIG",
    "FEATURES_CONFIG",
    "tiny_overrides",
    "tiny_config",
    "run_stages",
    "build_dataset",
    "WrittenPartition",
    "write_partition",
    "CORRUPTIONS",
    "corrupt",
    "assert_one_line_error",
    "assert_no_temp_files",
]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "experiments" / "default.yaml"
FEATURES_CONFIG = ROOT / "configs" / "features" / "default.yaml"

# ----------------------------------------------------------------------------- tiny experiments


def tiny_overrides(out: str | Path, **extra: Any) -> dict[str, Any]:
    """Overrides shrinking the default experiment: 6 samples in 2 batches, grids 16 and 24, M=2, T=3, CPU."""
    o: dict[str, Any] = {
        "sampling.total_samples": 6,
        "sampling.batch_size": 3,
        "simulation.grid_sizes": [16, 24],
        "simulation.num_realizations": 2,
        "simulation.num_timesteps": 3,
        "simulation.device": "cpu",
        "dataset.output_dir": str(out),
        "features.config": str(FEATURES_CONFIG),
    }
    o.update(extra)
    return o


def tiny_config(out: str | Path, **extra: Any) -> ExperimentConfig:
    """The default experiment with :func:`tiny_overrides` (``extra``: more dotted overrides)."""
    return load_config(DEFAULT_CONFIG, tiny_overrides(out, **extra))


def run_stages(
    cfg: ExperimentConfig, parts: Iterable[PartitionId] | None = None, *, stages: Sequence[str] | None = None
) -> DatasetLayout:
    """Run the partitioned stages of ``cfg`` (default: every enabled one) on ``parts`` (default: all).

    The dataset index is not built (call :func:`spinlock_core.dataset.build_index`).
    """
    from spinlock_core.dataset import merge_manifest, write_text_atomic
    from spinlock_core.stages import enabled_stages, layout_of, manifest_of

    layout = layout_of(cfg)
    layout.root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(layout.experiment, cfg.to_yaml())
    merge_manifest(layout, manifest_of(cfg))
    rows = [s for s in enabled_stages(cfg) if stages is None or s.name in stages]
    todo = (
        list(parts)
        if parts is not None
        else [PartitionId(grid=g, batch=b) for g in cfg.simulation.grid_sizes for b in range(cfg.sampling.num_batches)]
    )
    for part in todo:
        for row in rows:
            row.run(cfg, part)
    return layout


def build_dataset(out: str | Path, **extra: Any) -> tuple[ExperimentConfig, DatasetLayout]:
    """A complete tiny dataset at ``out`` (every stage of every partition; the index, splits and stats)."""
    from spinlock_core.stages import STAGES

    cfg = tiny_config(out, **extra)
    layout = run_stages(cfg)
    for row in STAGES:
        if not row.partitioned:
            row.run(cfg, None)
    return cfg, layout


# ----------------------------------------------------------------------------- known partitions

PARAM_NAMES = ("alpha", "beta", "gamma")
IC_TYPES = ("grf_low", "grf_high", "vortex")
POLICIES = ("residual", "convex")
REGIMES = ("low", "medium", "high")


@dataclass
class WrittenPartition:
    """Everything a :func:`write_partition` file holds (the truth to compare against)."""

    path: Path
    sample_index: np.ndarray
    traj: np.ndarray  # [n, M, Ts, C, g, g]
    inputs: np.ndarray  # [n, C, g, g]
    params: np.ndarray  # [n, P]
    values: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    time_steps: list[int] = field(default_factory=list)


def write_partition(
    path: str | Path,
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
    compression_level: int = 4,
) -> WrittenPartition:
    """Write a rollouts file of samples ``start .. start+n-1`` with seeded random content."""
    path = Path(path)
    steps = list(time_steps if time_steps is not None else range(4))
    rng = np.random.default_rng(seed)
    traj = rng.standard_normal((n, m, len(steps), c, g, g)).astype(np.float32)
    inputs = traj[:, 0, 0].copy()
    # parameters depend on the sample only (same operator at every grid size), fields on the seed
    params = (np.arange(start, start + n)[:, None] * 0.137 + np.arange(len(PARAM_NAMES))[None, :] * 0.31) % 1.0
    values = [json.dumps({"alpha": float(p[0]), "beta": int(10 * p[1])}) for p in params]
    idx = np.arange(start, start + n, dtype=np.int64)
    div = np.full((n, m), -1, dtype=np.int32) if diverged_step is None else np.asarray(diverged_step, dtype=np.int32)
    meta: dict[str, Any] = dict(
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
        compression_level=compression_level,
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
    return WrittenPartition(path, idx, traj, inputs, params, values, meta, steps)


# ----------------------------------------------------------------------------- corrupters


def _truncate(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _flip_header(path: Path) -> None:
    with open(path, "r+b") as fh:
        head = bytearray(fh.read(64))
        for i in range(0, 8):
            head[i] ^= 0xFF
        fh.seek(0)
        fh.write(bytes(head))


def _flip_data(path: Path) -> None:
    """Flip bytes in the middle of the largest dataset's storage (a damaged chunk)."""
    with H.File(path, "r") as f:
        best: tuple[int, int] | None = None

        def visit(name: str, obj: object) -> None:
            nonlocal best
            if H.is_dataset(obj) and not obj.is_virtual and obj.id.get_offset() is not None:  # type: ignore[attr-defined]
                size = obj.id.get_storage_size()  # type: ignore[attr-defined]
                if best is None or size > best[1]:
                    best = (obj.id.get_offset(), size)  # type: ignore[attr-defined]
            elif H.is_dataset(obj) and obj.chunks is not None and obj.id.get_num_chunks() > 0:  # type: ignore[attr-defined]
                info = obj.id.get_chunk_info(obj.id.get_num_chunks() // 2)  # type: ignore[attr-defined]
                if best is None or info.size > best[1]:
                    best = (info.byte_offset, info.size)

        f.visititems(visit)
    if best is None:
        raise ValueError(f"{path}: no stored dataset to damage")
    offset, size = best
    with open(path, "r+b") as fh:
        fh.seek(offset + size // 3)
        chunk = bytearray(fh.read(min(64, max(1, size // 3))))
        fh.seek(offset + size // 3)
        fh.write(bytes(b ^ 0x5A for b in chunk))


def _reshape(path: Path, dataset: str) -> None:
    with H.File(path, "r+") as f:
        d = f[dataset]
        data = d[()]
        attrs = dict(d.attrs)
        del f[dataset]
        new = f.create_dataset(dataset, data=data[: max(1, data.shape[0] - 1)])
        for k, v in attrs.items():
            if k not in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"):
                new.attrs[k] = v


def _remove(path: Path, dataset: str) -> None:
    with H.File(path, "r+") as f:
        del f[dataset]


def _nonfinite(path: Path, dataset: str, value: float) -> None:
    with H.File(path, "r+") as f:
        d = f[dataset]
        idx = (0,) * d.ndim
        d[idx] = value


def _external_link(path: Path, target: Path) -> None:
    with H.File(path, "r+") as f:
        f["stolen"] = H.ExternalLink(str(target), "/")


def _outside_source(path: Path, target: Path) -> None:
    """Point a virtual dataset of ``path`` at ``target`` (absolute path, outside the dataset)."""
    with H.File(path, "r+") as f:
        d = f["outputs/fields"] if "outputs/fields" in f else f[next(iter(f.keys()))]
        shape, dtype = d.shape, d.dtype
        lay = H.VirtualLayout(shape=shape, dtype=dtype)
        lay[...] = H.VirtualSource(str(Path(target).resolve()), "outputs/fields", shape=shape, dtype=dtype)
        f.create_virtual_dataset("outside_view", lay, fillvalue=0)


#: Corruptions of a file: name -> ``fn(path, **kw)``.
CORRUPTIONS: dict[str, Callable[..., None]] = {
    "truncated": _truncate,
    "empty": _empty,
    "garbage": _garbage,
    "header_bitflip": _flip_header,
    "data_bitflip": _flip_data,
    "shape_changed": _reshape,
    "dataset_removed": _remove,
    "nonfinite": _nonfinite,
    "external_link": _external_link,
    "outside_virtual_source": _outside_source,
}


def corrupt(path: str | Path, how: str, **kw: Any) -> Path:
    """Damage ``path`` in place the way ``how`` (a key of :data:`CORRUPTIONS`) says; returns it."""
    if how not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {how!r}; known: {sorted(CORRUPTIONS)}")
    CORRUPTIONS[how](Path(path), **kw)
    return Path(path)


def copy_dataset(src: str | Path, dst: str | Path) -> Path:
    """A full copy of a dataset directory (to damage without touching the original)."""
    shutil.copytree(src, dst)
    return Path(dst)


# ----------------------------------------------------------------------------- assertions


def assert_one_line_error(result: Any, code: int, *needles: str) -> str:
    """A CLI result (``returncode``/``stdout``/``stderr``, e.g. ``subprocess.run``) failed cleanly.

    Exit code ``code``; stderr holds ``spinlock: error:`` (or ``INVALID``) and every needle; no
    Python traceback anywhere. Returns stderr.
    """
    err = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    out = result.stdout if isinstance(result.stdout, str) else result.stdout.decode()
    assert result.returncode == code, f"exit {result.returncode}, wanted {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in out, f"traceback:\n{err}\n{out}"
    assert "spinlock: error:" in err or "INVALID" in err, err
    for n in needles:
        assert n in err or n in out, f"{n!r} not in\n{err}\n{out}"
    return err


def assert_no_temp_files(root: str | Path) -> None:
    """No temporary file of any writer is left under ``root``."""
    left = [p for p in Path(root).rglob(f"*{TMP_SUFFIX}*")]
    assert not left, f"temporary files left: {left}"
