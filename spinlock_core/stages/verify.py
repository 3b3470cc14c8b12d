"""Validate a dataset: every file (the dataset package), parameter ranges and seed replay.

:func:`validate_dataset` runs :func:`spinlock_core.dataset.validate_files` (every file kind,
hashes, completeness, index freshness), then checks that every stored knob value lies in the
domain the stored config declares, and finally *replays* a few samples per partition from
their stored specs and seeds: the initial condition must match the stored one and the
re-simulated first frames must match the stored trajectory (relative RMS error below ``1e-3``
for float32 runs, ``5e-2`` for 16-bit ones; exact on the same device in practice). It never
raises on bad data: every problem is a line of the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from spinlock_core.config import ConfigError, ExperimentConfig, load_config
from spinlock_core.dataset import DatasetError, DatasetLayout, ValidationReport, validate_files
from spinlock_core.dataset import hdf5 as H
from spinlock_core.dataset import schema as S
from spinlock_core.dataset.codec import decode_attr, decode_strings
from spinlock_core.dataset.layout import dataset_root_of
from spinlock_core.operators import OperatorSpec
from spinlock_core.stages.replay import replay_sample

__all__ = ["validate_dataset", "partition_files_of"]


def partition_files_of(path: Path) -> list[Path]:
    """The rollouts files behind ``path`` (a dataset directory, an index file or a partition)."""
    path = Path(path)
    if path.is_dir():
        return DatasetLayout(path).rollout_files()
    if path.name == "index.h5":
        return DatasetLayout(path.parent).rollout_files()
    return [path]


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


def _replay_partition(f: H.File, name: str, replay_samples: int, report: ValidationReport) -> None:
    specs = [OperatorSpec.from_json(s) for s in decode_strings(f[S.META.OPERATOR_SPECS][()]).tolist()]
    grid = int(decode_attr(f.attrs["grid_size"]))
    steps = int(decode_attr(f.attrs["num_timesteps"]))
    store = bool(decode_attr(f.attrs["store_trajectories"]))
    precision = str(decode_attr(f.attrs.get("precision", "float32")))
    m = f[S.OUTPUTS_FIELDS].shape[1]
    div = f[S.META.DIVERGED_STEP][()]
    tol = 1e-3 if precision == "float32" else 5e-2
    made_on = torch.device(str(decode_attr(f.attrs.get("device", "cpu"))))
    if made_on.type == "cuda" and not torch.cuda.is_available():
        report.warnings.append(f"{name}: generated on {made_on}; no CUDA here, so seed replay is skipped")
        return
    for row in range(min(replay_samples, len(specs))):
        ic, traj = replay_sample(specs[row], grid, m, steps, precision, store, made_on)
        stored_ic = f[S.INPUTS_FIELDS][row]
        if not np.allclose(ic, stored_ic, rtol=1e-5, atol=1e-5 * (1 + float(np.abs(stored_ic).max()))):
            report.errors.append(f"{name}: sample row {row}: initial condition does not replay from its seed")
            continue
        frames = min(traj.shape[1], 3)
        stored = f[S.OUTPUTS_FIELDS][row, :, :frames]
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


def validate_dataset(
    path: str | Path, *, replay_samples: int = 1, features_hash: str | None = None
) -> ValidationReport:
    """Validate a dataset directory, index file, partition or feature file (module docstring).

    ``features_hash``: the features config hash features must come from (default: the
    dataset manifest's).
    """
    path = Path(path)
    report = validate_files(path, features_hash=features_hash)
    files = [p for p in partition_files_of(path) if p.is_file()]
    for pf in files:
        name = str(pf)
        try:
            with H.open_read(pf, root=dataset_root_of(pf)) as f:
                if decode_attr(f.attrs.get("kind", "")) != S.KIND_PARTITION:
                    continue
                cfg = load_config(json.loads(decode_attr(f[S.GROUP_METADATA].attrs["config"])))
                values = [json.loads(v) for v in decode_strings(f[S.PARAM_VALUES][()]).tolist()]
                _check_ranges(cfg, values, name, report)
                if replay_samples > 0:
                    _replay_partition(f, name, replay_samples, report)
        except (DatasetError, ConfigError) as exc:
            report.errors.append(f"{name}: {exc}")
        except Exception as exc:  # a damaged file: one line, never a traceback
            report.errors.append(f"{name}: cannot be checked ({type(exc).__name__}: {exc})")
    return report
