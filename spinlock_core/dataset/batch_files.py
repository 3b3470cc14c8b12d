"""Per-batch files: the Sobol points (``points/batch_BBBB.json``) and operator specs (``specs/...``).

They are the values of the ``sobol_parameters`` and ``operator_specs`` stages: every grid size
of a batch reads the same two files, and each carries the hash of the config it came from, so
a downstream stage can refuse a file made from another config (:mod:`.records`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError
from .layout import DatasetLayout
from .records import read_record, write_record

__all__ = ["PointsFile", "SpecsFile", "write_points", "read_points", "write_specs", "read_specs"]


@dataclass(frozen=True)
class PointsFile:
    """Batch ``batch``'s slice ``[start, stop)`` of the experiment's global Sobol point set.

    ``unit`` ``[stop - start, P]`` float64 in [0, 1), columns named by ``names`` (declaration
    order); ``metrics`` describe the whole global point set; ``hash`` is the points hash of the
    config (:func:`spinlock_core.config.stage_hashes`).
    """

    batch: int
    start: int
    stop: int
    names: list[str]
    unit: np.ndarray
    metrics: dict[str, Any]
    hash: str

    @property
    def indices(self) -> np.ndarray:
        """Global sample indices ``[n]`` int64."""
        return np.arange(self.start, self.stop, dtype=np.int64)

    @property
    def num_samples(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class SpecsFile:
    """Batch ``batch``'s operator specs (JSON objects, one per sample, in sample order)."""

    batch: int
    specs: list[dict[str, Any]]
    hash: str
    points_hash: str
    extra: dict[str, Any] = field(default_factory=dict)


def write_points(layout: DatasetLayout, points: PointsFile) -> Path:
    """Write ``points`` to ``layout.points(batch)`` atomically."""
    unit = np.asarray(points.unit, dtype=np.float64)
    if unit.shape != (points.num_samples, len(points.names)):
        raise ValueError(f"points: unit has shape {unit.shape}, expected {(points.num_samples, len(points.names))}")
    body = {
        "batch": int(points.batch),
        "start": int(points.start),
        "stop": int(points.stop),
        "names": list(points.names),
        "unit": unit.tolist(),
        "metrics": points.metrics,
    }
    return write_record(layout.points(points.batch), "points", points.hash, body)


def read_points(layout: DatasetLayout, batch: int) -> PointsFile:
    """The points of ``batch``, checked (shape, range, batch number).

    Raises:
        DatasetError: missing, corrupt or inconsistent.
    """
    path = layout.points(batch)
    d = read_record(path, "points")
    try:
        start, stop, names = int(d["start"]), int(d["stop"]), [str(n) for n in d["names"]]
        unit = np.asarray(d["unit"], dtype=np.float64).reshape(stop - start, len(names))
        metrics = dict(d["metrics"])
        got_batch = int(d["batch"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(path, f"malformed points file ({type(exc).__name__}: {exc})") from None
    if got_batch != batch:
        raise DatasetError(path, f"holds batch {got_batch}, not {batch}")
    if unit.size and (not np.isfinite(unit).all() or unit.min() < 0 or unit.max() >= 1):
        raise DatasetError(path, "unit-cube points must be finite and in [0, 1)")
    return PointsFile(got_batch, start, stop, names, unit, metrics, str(d["hash"]))


def write_specs(layout: DatasetLayout, specs: SpecsFile) -> Path:
    """Write ``specs`` to ``layout.specs(batch)`` atomically."""
    body = {"batch": int(specs.batch), "points_hash": specs.points_hash, "specs": list(specs.specs), **specs.extra}
    return write_record(layout.specs(specs.batch), "specs", specs.hash, body)


def read_specs(layout: DatasetLayout, batch: int) -> SpecsFile:
    """The operator specs of ``batch``.

    Raises:
        DatasetError: missing, corrupt or for another batch.
    """
    path = layout.specs(batch)
    d = read_record(path, "specs")
    try:
        got_batch, specs, points_hash = int(d["batch"]), list(d["specs"]), str(d["points_hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(path, f"malformed specs file ({type(exc).__name__}: {exc})") from None
    if got_batch != batch:
        raise DatasetError(path, f"holds batch {got_batch}, not {batch}")
    if not all(isinstance(s, dict) for s in specs):
        raise DatasetError(path, "every spec must be a JSON object")
    extra = {k: v for k, v in d.items() if k not in ("kind", "format", "hash", "batch", "specs", "points_hash")}
    return SpecsFile(got_batch, specs, str(d["hash"]), points_hash, extra)
