"""Stage ``sobol_parameters``: the batch's slice of the experiment's one global Sobol point set.

Writes ``points/batch_BBBB.json`` (unit-cube points, global indices, dimension names, the
whole set's quality metrics, the points hash) and records the dataset manifest (expected
partitions and hashes) before any data is written. Every grid size of a batch shares the
file: the points do not depend on the grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

import numpy as np

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import CheckOutcome, PointsFile, merge_manifest, write_points
from spinlock_core.sampling import metrics_pass, sampling_metrics, sobol_points
from spinlock_core.stages.context import layout_of, manifest_of

__all__ = ["global_points", "compute_points", "sobol_stage", "sobol_quality"]


@lru_cache(maxsize=8)
def _global_points_cached(
    n: int, d: int, seed: int, scramble: bool, method: Literal["owen", "lms_shift"]
) -> np.ndarray:
    pts = sobol_points(d, 0, n, seed=seed, scramble=scramble, method=method)
    pts.setflags(write=False)
    return pts


@lru_cache(maxsize=8)
def _metrics_cached(n: int, d: int, seed: int, scramble: bool, method: str) -> tuple[tuple[str, object], ...]:
    pts = _global_points_cached(n, d, seed, scramble, method)
    return tuple(sampling_metrics(pts).items())  # O(n^2 d): once per process and point set


def global_points(cfg: ExperimentConfig) -> np.ndarray:
    """The experiment's whole Sobol point set ``[total_samples, P]`` (cached per process, read-only)."""
    dims = cfg.sobol_dimensions()
    s = cfg.sampling
    return _global_points_cached(
        s.total_samples, max(len(dims), 1), s.sobol.seed, s.sobol.scramble, s.sobol.scramble_method
    )


def compute_points(cfg: ExperimentConfig, batch: int) -> PointsFile:
    """The batch's points and the global set's metrics (nothing written).

    Raises:
        ValueError: ``batch`` is not a batch of the experiment.
    """
    if not 0 <= batch < cfg.sampling.num_batches:
        raise ValueError(f"batch {batch} out of range (the experiment has {cfg.sampling.num_batches} batches)")
    dims = cfg.sobol_dimensions()
    s = cfg.sampling
    allpts = global_points(cfg)
    start, stop = s.batch_bounds(batch)
    if dims:
        metrics = dict(
            _metrics_cached(s.total_samples, len(dims), s.sobol.seed, s.sobol.scramble, s.sobol.scramble_method)
        )
    else:
        metrics = {"n": len(allpts), "d": 0}
    # pass/fail against sampling.validation is not stored (the points hash excludes the thresholds):
    # the sobol_quality check judges the stored metrics against the current thresholds
    metrics["scramble_method"] = s.sobol.scramble_method if s.sobol.scramble else "none"
    return PointsFile(
        batch=batch,
        start=start,
        stop=stop,
        names=[n for n, _ in dims],
        unit=np.array(allpts[start:stop, : len(dims)]),
        metrics=metrics,
        hash=cfg.stage_hashes().points,
    )


def sobol_stage(cfg: ExperimentConfig, batch: int) -> PointsFile:
    """Compute the batch's points, record the manifest, write ``points/batch_BBBB.json``."""
    points = compute_points(cfg, batch)
    layout = layout_of(cfg)
    merge_manifest(layout, manifest_of(cfg))
    write_points(layout, points)
    return points


def sobol_quality(
    metrics: Mapping[str, object], max_discrepancy: float, max_pairwise_correlation: float
) -> CheckOutcome:
    """Quality of the global Sobol set from its :func:`~spinlock_core.sampling.sampling_metrics`.

    Passes when ``centered_l2_discrepancy < max_discrepancy`` and ``max_abs_correlation <
    max_pairwise_correlation`` (strict, as :func:`~spinlock_core.sampling.metrics_pass`). A point
    set without Sobol dimensions (no metrics) passes trivially.
    """
    meta: dict[str, object] = {
        "max_discrepancy": float(max_discrepancy),
        "max_pairwise_correlation": float(max_pairwise_correlation),
    }
    if "centered_l2_discrepancy" not in metrics:
        return CheckOutcome(True, "no Sobol dimensions: nothing to check", meta)
    disc, corr = float(metrics["centered_l2_discrepancy"]), float(metrics["max_abs_correlation"])  # type: ignore[arg-type]
    ok = metrics_pass(dict(metrics), max_discrepancy, max_pairwise_correlation)  # type: ignore[arg-type]
    meta.update(
        discrepancy=disc,
        max_abs_correlation=corr,
        discrepancy_pass=ok["discrepancy_pass"],
        correlation_pass=ok["correlation_pass"],
        samples=int(metrics.get("n", 0)),  # type: ignore[call-overload]
        dimensions=int(metrics.get("d", 0)),  # type: ignore[call-overload]
    )
    parts = [
        f"discrepancy {disc:.4g} {'<' if ok['discrepancy_pass'] else '>='} {max_discrepancy:g}",
        f"max |r| {corr:.4g} {'<' if ok['correlation_pass'] else '>='} {max_pairwise_correlation:g}",
    ]
    return CheckOutcome(ok["discrepancy_pass"] and ok["correlation_pass"], "; ".join(parts), meta)
