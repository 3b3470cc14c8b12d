"""Pure data-quality checks behind the Dagster asset checks (no Dagster here).

Every check returns a :class:`CheckOutcome`: ``passed``, a one-line ``description`` and
JSON-ready ``metadata`` (plain ints, floats, strings and lists). They never raise on bad
*data*: an unreadable or malformed file is a failed outcome that says why.

* :func:`rollout_finiteness`: a partition file's initial conditions are finite, and every
  trajectory frame is finite except frames at or after the realization's flagged
  ``/metadata/diverged_step`` (``-1`` = never diverged: every frame must be finite).
* :func:`rollout_divergence`: the fraction of diverged realizations (``diverged_step >= 0``)
  over all ``N x M`` realizations of the file is at most ``max_diverged_fraction``.
* :func:`rollout_schema`: :func:`~spinlock_core.dataset.validate_structure` reports no error.
* :func:`features_schema`: a partition's feature file holds exactly the current registry
  (same names per category, array widths equal to the registry's counts, summary columns as
  the aggregation implies) and the current features config hash.
* :func:`features_nan`: the fraction of non-finite values (NaN or Inf) among the unmasked
  features of realizations that never diverged is at most ``max_nan_fraction`` (finite input must give finite features; masked
  columns and diverged realizations are NaN by design and excluded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import hdf5 as H
from . import schema as S
from .errors import DatasetError
from .layout import dataset_root_of
from .validate_rollouts import iter_nonfinite, validate_structure

__all__ = [
    "DEFAULT_MAX_DIVERGED_FRACTION",
    "CheckOutcome",
    "rollout_finiteness",
    "rollout_divergence",
    "rollout_schema",
    "DEFAULT_MAX_FEATURE_NAN_FRACTION",
    "features_schema",
    "features_nan",
]

DEFAULT_MAX_FEATURE_NAN_FRACTION: float = 0.0
"""Default cap on NaN features of never-diverged realizations (0: every one must be finite)."""

DEFAULT_MAX_DIVERGED_FRACTION: float = 0.5
"""Default cap on the fraction of diverged realizations in one partition file (inclusive)."""

_MAX_LISTED = 8


@dataclass
class CheckOutcome:
    """Result of one check: ``passed``, a one-line ``description`` and JSON-ready ``metadata``."""

    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def _unreadable(path: Path, exc: BaseException) -> CheckOutcome:
    return CheckOutcome(False, f"cannot read {path}: {exc}", {"path": str(path), "error": str(exc)})


def rollout_finiteness(path: str | Path) -> CheckOutcome:
    """Non-finite values of a partition file outside flagged divergence.

    Scans with :func:`~spinlock_core.dataset.iter_nonfinite` (one trajectory at a time). Frame
    ``t`` of realization ``(r, j)`` may be non-finite only if ``0 <= diverged_step[r, j] <= time[t]``. Metadata: ``offences`` (count
    of offending trajectories + initial conditions) and up to 8 ``examples``.
    """
    path = Path(path)
    try:
        with H.open_read(path, root=dataset_root_of(Path(path))) as f:
            traj = f[S.OUTPUTS_FIELDS]
            div, time = f[S.META.DIVERGED_STEP], f[S.DIM_TIME]
            if traj.ndim != 6 or div.shape != traj.shape[:2] or time.shape != traj.shape[2:3]:
                raise ValueError(
                    f"inconsistent shapes: fields {traj.shape}, diverged_step {div.shape}, time {time.shape}"
                )
            n, m = traj.shape[:2]
            examples = [message for _, message in iter_nonfinite(f)]
            offences = len(examples)
    except (DatasetError, OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        return _unreadable(path, exc)
    meta: dict[str, object] = {
        "path": str(path),
        "offences": offences,
        "trajectories": n * m,
        "examples": examples[:_MAX_LISTED],
    }
    if offences:
        return CheckOutcome(False, f"{offences} non-finite trajectories/ICs outside flagged divergence", meta)
    return CheckOutcome(True, f"{n} x {m} trajectories finite before divergence", meta)


def rollout_divergence(path: str | Path, max_diverged_fraction: float = DEFAULT_MAX_DIVERGED_FRACTION) -> CheckOutcome:
    """Fraction of diverged realizations of a partition file, at most ``max_diverged_fraction``.

    ``fraction = #(diverged_step >= 0) / (N * M)``; passes when ``fraction <=
    max_diverged_fraction`` (0 tolerates no divergence, 1 disables the check).

    Raises:
        ValueError: if ``max_diverged_fraction`` is not in [0, 1].
    """
    if not 0.0 <= float(max_diverged_fraction) <= 1.0:
        raise ValueError(f"max_diverged_fraction must be in [0, 1], got {max_diverged_fraction}")
    path = Path(path)
    try:
        with H.open_read(path, root=dataset_root_of(Path(path))) as f:
            div = np.asarray(f[S.META.DIVERGED_STEP][()])
    except (DatasetError, OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        return _unreadable(path, exc)
    total = int(div.size)
    flagged = div >= 0
    count = int(flagged.sum())
    frac = count / total if total else 0.0
    meta: dict[str, object] = {
        "path": str(path),
        "diverged_realizations": count,
        "realizations": total,
        "diverged_operators": int(flagged.reshape(div.shape[0], -1).any(axis=1).sum()) if div.ndim else 0,
        "diverged_fraction": frac,
        "max_diverged_fraction": float(max_diverged_fraction),
    }
    ok = frac <= float(max_diverged_fraction)
    rel = "<=" if ok else ">"
    return CheckOutcome(ok, f"{count}/{total} realizations diverged ({frac:.3g} {rel} {max_diverged_fraction:g})", meta)


def rollout_schema(path: str | Path) -> CheckOutcome:
    """Layout of the file (:func:`~spinlock_core.dataset.validate_structure` without the data scan,
    which :func:`rollout_finiteness` does): passes iff no errors."""
    report = validate_structure(Path(path), check_data=False)
    meta: dict[str, object] = {
        "path": str(path),
        "errors": report.errors[:_MAX_LISTED],
        "error_count": len(report.errors),
        "warnings": report.warnings[:_MAX_LISTED],
        "checks_passed": len(report.checks),
    }
    if report.ok:
        return CheckOutcome(True, f"valid ({len(report.checks)} checks, {len(report.warnings)} warnings)", meta)
    return CheckOutcome(False, f"{len(report.errors)} errors, first: {report.errors[0]}", meta)


def features_schema(
    path: str | Path,
    expected: Mapping[str, list[str]],
    expected_summary: list[str],
    config_hash: str,
) -> CheckOutcome:
    """The feature file at ``path`` matches the registry ``expected`` ({category: names}),
    the summary columns ``expected_summary`` and ``config_hash``."""
    problems: list[str] = []
    meta: dict[str, object] = {"path": str(path)}
    try:
        with H.open_read(path, root=dataset_root_of(Path(path))) as f:
            sdf = f["features/sdf"]
            stored_hash = str(sdf.attrs.get("config_hash", ""))
            if stored_hash != config_hash:
                problems.append(f"config hash {stored_hash} != current {config_hash}")
            for cat, names in expected.items():
                key = f"{cat}/features"
                if key not in sdf:
                    problems.append(f"missing category {cat}")
                    continue
                d = sdf[key]
                got = json.loads(d.attrs["names"])
                if got != names:
                    problems.append(f"{cat}: stored names differ from the registry ({len(got)} vs {len(names)})")
                if d.shape[-1] != len(names):
                    problems.append(f"{cat}: width {d.shape[-1]} != registry {len(names)}")
            extra = sorted(set(sdf.keys()) - set(expected) - {"aggregated", "metadata"})
            if extra:
                problems.append(f"categories not in the registry: {extra}")
            agg = sdf["aggregated/features"]
            if json.loads(agg.attrs["names"]) != expected_summary or agg.shape[-1] != len(expected_summary):
                problems.append(f"summary: {agg.shape[-1]} columns, expected {len(expected_summary)}")
            meta["num_features"] = int(sum(len(v) for v in expected.values()))
            meta["summary_columns"] = int(agg.shape[-1])
    except (DatasetError, OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        return _unreadable(Path(path), exc)
    meta["problems"] = problems[:_MAX_LISTED]
    if problems:
        return CheckOutcome(False, f"{len(problems)} problems, first: {problems[0]}", meta)
    return CheckOutcome(True, f"{meta['num_features']} features in {len(expected)} categories match the registry", meta)


def features_nan(path: str | Path, max_nan_fraction: float = DEFAULT_MAX_FEATURE_NAN_FRACTION) -> CheckOutcome:
    """NaN fraction of unmasked features of never-diverged realizations (see module doc)."""
    nan = total = 0
    worst: dict[str, int] = {}
    try:
        with H.open_read(path, root=dataset_root_of(Path(path))) as f:
            ok_real = f["metadata/diverged_step"][()] < 0  # [n, M]
            ok_op = ok_real.any(axis=1)  # operators with at least one clean realization
            sdf = f["features/sdf"]
            for cat in sdf:
                if cat in ("aggregated", "metadata"):
                    continue
                d = sdf[f"{cat}/features"]
                names = json.loads(d.attrs["names"])
                masked = json.loads(d.attrs["masked"])
                keep = [j for j, n in enumerate(names) if n not in masked]
                if not keep:
                    continue
                v = d[()][..., keep]
                rows = v[ok_op] if v.ndim == 2 else v[ok_real]
                bad = ~np.isfinite(rows)  # NaN and +-Inf
                nan += int(bad.sum())
                total += int(bad.size)
                per = bad.reshape(-1, len(keep)).sum(axis=0)
                for j, c in zip(keep, per):
                    if c:
                        worst[names[j]] = int(c)
    except (DatasetError, OSError, KeyError, ValueError, TypeError, IndexError) as exc:
        return _unreadable(Path(path), exc)
    frac = nan / total if total else 0.0
    top = sorted(worst.items(), key=lambda kv: -kv[1])[:_MAX_LISTED]
    meta: dict[str, object] = {
        "path": str(path),
        "nan_fraction": float(frac),
        "nan_values": nan,
        "values": total,
        "worst_features": [f"{k}: {v}" for k, v in top],
    }
    ok = frac <= float(max_nan_fraction)
    rel = "<=" if ok else ">"
    return CheckOutcome(
        ok,
        f"non-finite (NaN or Inf) fraction {frac:.3g} {rel} {max_nan_fraction:g} over {total} values of clean realizations",
        meta,
    )
