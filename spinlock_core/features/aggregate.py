"""Per-sample summary rows: every feature reduced to numbers per sample, in a recorded order.

For each enabled feature (registry order):

1. per-timestep features are reduced over the stored frames by each ``aggregation.temporal``
   reduction (``mean``, ``std`` (population), ``min``, ``max``: NaN-aware over frames;
   ``initial`` = frame 0, ``final`` = last frame);
2. a channel axis is averaged (NaN-aware), or kept with ``aggregation.per_channel`` (one
   column per channel, suffix ``_c<k>``);
3. everything but operator features is reduced over the M realizations by each
   ``aggregation.realization`` reduction (NaN-aware: a diverged realization's NaN features are
   skipped; ``std`` is the population std, ``cv = std / (|mean| + 1e-12)``).

Column names: ``<feature>[_c<k>][__t<temporal>]__r<realization>`` (per-trajectory features
have no ``__t`` part; operator features keep their bare name). Loop order: feature, channel,
temporal reduction, realization reduction.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from spinlock_core.features.config import AggregationConfig
from spinlock_core.features.extract import FeatureBlock

__all__ = ["summarize", "summary_names"]

_CV_EPS = 1e-12


def _reduce(v: np.ndarray, how: str, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        if how == "mean":
            return np.nanmean(v, axis=axis)
        if how == "std":
            return np.nanstd(v, axis=axis)
        if how == "min":
            return np.nanmin(v, axis=axis)
        if how == "max":
            return np.nanmax(v, axis=axis)
        if how == "cv":
            return np.nanstd(v, axis=axis) / (np.abs(np.nanmean(v, axis=axis)) + _CV_EPS)
        if how == "initial":
            return np.take(v, 0, axis=axis)
        if how == "final":
            return np.take(v, -1, axis=axis)
    raise ValueError(f"unknown reduction {how!r}")


def summarize(blocks: Mapping[str, FeatureBlock], agg: AggregationConfig) -> tuple[list[str], np.ndarray]:
    """``(names, values [b, F_summary] float32)`` of ``blocks`` under an ``AggregationConfig``.

    Each block is reduced with a handful of whole-array numpy reductions (not per feature).
    """
    names: list[str] = []
    cols: list[np.ndarray] = []
    for blk in blocks.values():
        g, v = blk.granularity, blk.values
        b = v.shape[0]
        if g == "operator":
            names.extend(blk.names)
            cols.append(v.reshape(b, -1))
            continue
        per_t = g in ("timestep_channel", "timestep")
        has_c = g in ("timestep_channel", "trajectory_channel")
        # -> [b, M, (C), F, T]
        tv = np.stack([_reduce(v, t, axis=2) for t in agg.temporal], axis=-1) if per_t else v[..., None]
        if has_c and agg.per_channel:
            tv = np.moveaxis(tv, 2, 3)  # [b, M, F, C, T]
        else:
            if has_c:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", category=RuntimeWarning)
                    tv = np.nanmean(tv, axis=2)
            tv = tv[:, :, :, None, :]  # [b, M, F, 1, T]
        rv = np.stack([_reduce(tv, r, axis=1) for r in agg.realization], axis=-1)  # [b, F, K, T, R]
        cols.append(rv.reshape(b, -1))
        channels = v.shape[-2] if has_c else 0
        for feat in blk.names:
            names.extend(_column_names(feat, g, agg, channels))
    b = next(iter(blocks.values())).values.shape[0] if blocks else 0
    values = np.concatenate(cols, axis=1).astype(np.float32) if cols else np.zeros((b, 0), np.float32)
    return names, values


def _column_names(feature: str, granularity: str, agg: AggregationConfig, num_channels: int) -> list[str]:
    """Summary columns of one feature, in loop order channel, temporal, realization reduction."""
    if granularity == "operator":
        return [feature]
    has_c = granularity in ("timestep_channel", "trajectory_channel")
    chans = [f"_c{k}" for k in range(num_channels)] if (has_c and agg.per_channel) else [""]
    temps = [f"__t{t}" for t in agg.temporal] if granularity in ("timestep_channel", "timestep") else [""]
    return [f"{feature}{c}{t}__r{r}" for c in chans for t in temps for r in agg.realization]


def summary_names(specs, agg: AggregationConfig, num_channels: int) -> list[str]:
    """The summary column names of ``specs`` (a registry; no data needed), as :func:`summarize` makes them."""
    return [n for s in specs for n in _column_names(s.name, s.granularity, agg, num_channels)]
