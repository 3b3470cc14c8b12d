"""Dataset validation: structure (storage), parameter ranges (config) and seed replay.

:func:`validate_dataset` runs :func:`spinlock_core.storage.validate_structure` on every
file, then checks that every stored knob value lies in the domain the stored config
declares, and finally *replays* a few samples per partition from their stored specs and
seeds: the initial condition must match the stored one and the re-simulated first frames
must match the stored trajectory (relative RMS error below ``1e-3`` for float32 runs, ``5e-2``
for 16-bit ones; exact on the same device in practice).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch

from spinlock_core.config import ExperimentConfig, load_config
from spinlock_core.ics import generate_ics
from spinlock_core.operators import OperatorSpec
from spinlock_core.pipeline import list_partition_files
from spinlock_core.rollout import run_rollouts
from spinlock_core.storage import ValidationReport, validate_structure

__all__ = ["validate_dataset", "partition_files_of", "replay_sample"]


def partition_files_of(path: Path) -> list[Path]:
    """The partition files behind ``path`` (a dataset directory, an index file or a partition)."""
    path = Path(path)
    if path.is_dir():
        return list_partition_files(path)
    with h5py.File(path, "r") as f:
        is_partition = "partition_key" in f.attrs or "batch" in f.attrs
    return [path] if is_partition else list_partition_files(path.parent)


def replay_sample(
    spec: OperatorSpec,
    grid_size: int,
    num_realizations: int,
    num_steps: int,
    precision: str,
    store: bool,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Re-simulate one sample alone: ``(ic [C,H,W], trajectories [M, Ts, C, H, W])`` (numpy, float32).

    Noise streams are drawn on ``device``, so a trajectory replays exactly only on the kind of
    device that generated it (weights and seeds are device-independent).
    """
    dev = torch.device(device)
    ic = generate_ics([(spec.ic_base, spec.ic_params, spec.ic_seed)], grid_size, spec.num_channels, dev).cpu()
    out: list[np.ndarray] = []
    run_rollouts(
        [spec],
        ic,
        num_realizations=num_realizations,
        num_steps=num_steps,
        precision=precision,
        device=dev,
        store_trajectories=store,
        on_chunk=lambda r: out.append(r.trajectories[0]),
    )
    return ic[0].numpy(), out[0]


def _check_ranges(cfg: ExperimentConfig, values: list[dict], name: str, report: ValidationReport) -> None:
    for knob, spec in cfg.parameter_space.dimensions():
        vals = [v[knob] for v in values]
        if spec.type == "choice":
            bad = [v for v in vals if v not in spec.choices]
        else:
            lo, hi = spec.bounds
            bad = [v for v in vals if not lo <= v <= hi]
        if bad:
            report.errors.append(f"{name}: {knob} values outside the configured domain: {bad[:3]}")
    report.checks.append(f"{name}: parameter values inside the configured domains")


def _replay_partition(f: h5py.File, name: str, replay_samples: int, report: ValidationReport) -> None:
    specs = [
        OperatorSpec.from_json(s.decode() if isinstance(s, bytes) else s) for s in f["metadata/operator_specs"][()]
    ]
    grid = int(f.attrs["grid_size"])
    steps = int(f.attrs["num_timesteps"])
    store = bool(f.attrs["store_trajectories"])
    precision = str(f.attrs.get("precision", "float32"))
    m = f["outputs/fields"].shape[1]
    div = f["metadata/diverged_step"][()]
    tol = 1e-3 if precision == "float32" else 5e-2
    made_on = torch.device(str(f.attrs.get("device", "cpu")))
    if made_on.type == "cuda" and not torch.cuda.is_available():
        report.warnings.append(f"{name}: generated on {made_on}; no CUDA here, so seed replay is skipped")
        return
    for row in range(min(replay_samples, len(specs))):
        ic, traj = replay_sample(specs[row], grid, m, steps, precision, store, made_on)
        stored_ic = f["inputs/fields"][row]
        if not np.allclose(ic, stored_ic, rtol=1e-5, atol=1e-5 * (1 + float(np.abs(stored_ic).max()))):
            report.errors.append(f"{name}: sample row {row}: initial condition does not replay from its seed")
            continue
        frames = min(traj.shape[1], 3)
        stored = f["outputs/fields"][row, :, :frames]
        ok = div[row] < 0
        if not ok.any():
            report.warnings.append(f"{name}: sample row {row}: every realization diverged; trajectory replay skipped")
            continue
        a, b = traj[ok, :frames], stored[ok]
        err = float(np.sqrt(np.mean((a - b) ** 2)) / (np.sqrt(np.mean(b**2)) + 1e-12))
        if not err <= tol:
            report.errors.append(
                f"{name}: sample row {row}: replayed trajectory differs (relative RMS {err:.2e} > {tol:g})"
            )
        else:
            report.checks.append(f"{name}: sample row {row} replays from its seeds (relative RMS {err:.1e})")


def validate_dataset(path: str | Path, *, replay_samples: int = 1) -> ValidationReport:
    """Validate a dataset directory, index file or partition file; see the module docstring."""
    path = Path(path)
    report = validate_structure(path)  # a directory with an index: the index (which reads every partition)
    try:
        files = partition_files_of(path)
    except OSError as exc:
        report.errors.append(f"{path}: cannot open: {exc}")
        return report
    if not files:
        report.errors.append(f"{path}: no partition files found")
        return report
    for pf in files:
        name = str(pf)
        try:
            with h5py.File(pf, "r") as f:
                cfg = load_config(json.loads(f["metadata"].attrs["config"]))
                values = [json.loads(v) for v in f["parameters/values"][()]]
                _check_ranges(cfg, values, name, report)
                if replay_samples > 0:
                    _replay_partition(f, name, replay_samples, report)
        except (OSError, KeyError, ValueError) as exc:
            report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return report
