"""``stats.json``: normalisation statistics of the train split, per grid size and channel.

For the fields and for their one-step deltas (``x[t+1] - x[t]`` between consecutive stored
frames), over the train split's samples, every realization, every frame before the
realization's divergence (diverged frames never enter): count, mean, std (population), rms,
min, max and quantiles. Sums are accumulated in float64 by Chan's parallel update (one block
per realization), so the result does not depend on how the data are chunked beyond float64
rounding.

Quantiles come from a sample of at most ``QUANTILE_SAMPLE`` values per channel, drawn
proportionally from every block with a generator seeded from the root seed by position
(stream ``STATS``, grid size): exact (``numpy.quantile``, linear) when the split holds fewer
values, an unbiased estimate otherwise. ``robust_center`` is the median and ``robust_scale``
the interquartile range / 1.349 (the std of a normal with that IQR), for heavy-tailed fields.

The file records the splits hash and the rollouts config hash it was computed from; a reader
given the current splits refuses stale statistics.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spinlock_core.config import canonical_hash
from spinlock_core.files import write_text_atomic
from spinlock_core.seeding import Stream, derive_seed, numpy_rng

from . import hdf5 as H
from . import schema as S
from .errors import DatasetError
from .layout import DatasetLayout
from .records import read_hashed_json
from .splits import Splits

__all__ = [
    "QUANTILES",
    "QUANTILE_SAMPLE",
    "ChannelStats",
    "Moments",
    "DatasetStats",
    "compute_stats",
    "write_stats",
    "read_stats",
]

STATS_FORMAT = "spinlock-stats/1"
#: Quantile levels stored for every channel.
QUANTILES: tuple[float, ...] = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
#: Most values per channel kept for the quantiles.
QUANTILE_SAMPLE = 1_000_000


@dataclass
class Moments:
    """Running count, mean, M2 (sum of squared deviations), min and max of one channel (float64)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        """Merge a block of values (Chan et al.'s pairwise update)."""
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        n = int(x.size)
        if n == 0:
            return
        mean = float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else float("nan")

    @property
    def rms(self) -> float:
        return math.sqrt(self.m2 / self.count + self.mean**2) if self.count else float("nan")


@dataclass(frozen=True)
class ChannelStats:
    """Statistics of one channel (fields or deltas)."""

    count: int
    mean: float
    std: float
    rms: float
    min: float
    max: float
    quantiles: dict[str, float]

    @property
    def robust_center(self) -> float:
        return self.quantiles["0.5"]

    @property
    def robust_scale(self) -> float:
        return (self.quantiles["0.75"] - self.quantiles["0.25"]) / 1.349

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (non-finite values, e.g. of an empty channel, as null)."""
        return {
            "count": self.count,
            "mean": _num(self.mean),
            "std": _num(self.std),
            "rms": _num(self.rms),
            "min": _num(self.min),
            "max": _num(self.max),
            "robust_center": _num(self.robust_center),
            "robust_scale": _num(self.robust_scale),
            "quantiles": {k: _num(v) for k, v in self.quantiles.items()},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChannelStats:
        return cls(
            int(d["count"]),
            _val(d["mean"]),
            _val(d["std"]),
            _val(d["rms"]),
            _val(d["min"]),
            _val(d["max"]),
            {str(k): _val(v) for k, v in d["quantiles"].items()},
        )


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _val(v: float | None) -> float:
    return float("nan") if v is None else float(v)


@dataclass(frozen=True)
class DatasetStats:
    """``grids[g]["fields" | "deltas"][c]``: the statistics of channel ``c`` at grid size ``g``."""

    grids: dict[int, dict[str, list[ChannelStats]]]
    splits_hash: str
    data_hash: str
    split: str = "train"

    def of(self, grid_size: int, kind: str = "fields") -> list[ChannelStats]:
        if grid_size not in self.grids:
            raise ValueError(f"no statistics for grid size {grid_size} (have {sorted(self.grids)})")
        if kind not in ("fields", "deltas"):
            raise ValueError(f"kind must be fields or deltas, got {kind!r}")
        return self.grids[grid_size][kind]

    def to_json(self) -> dict[str, Any]:
        body = {
            "split": self.split,
            "splits_hash": self.splits_hash,
            "data_hash": self.data_hash,
            "quantile_levels": list(QUANTILES),
            "grids": {
                str(g): {k: [c.to_json() for c in v] for k, v in kinds.items()}
                for g, kinds in sorted(self.grids.items())
            },
        }
        return {"format": STATS_FORMAT, "hash": canonical_hash(body), **body}


def _quantiles(sample: np.ndarray) -> dict[str, float]:
    if sample.size == 0:
        return {f"{q:g}": float("nan") for q in QUANTILES}
    return {f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(sample, QUANTILES), strict=True)}


def _take(rng: np.random.Generator, values: np.ndarray, want: float) -> np.ndarray:
    """About ``want`` of ``values`` (all when ``want >= size``), positions drawn by ``rng``."""
    n = values.size
    if want >= n:
        return values
    k = int(math.floor(want)) + int(rng.random() < want - math.floor(want))
    return values[np.sort(rng.choice(n, size=k, replace=False))]


def compute_stats(
    layout: DatasetLayout,
    splits: Splits,
    root_seed: int,
    *,
    split: str = "train",
    progress: Callable[[int], None] | None = None,
) -> DatasetStats:
    """Statistics of ``split``'s samples at every grid size of the dataset (see module docstring).

    Reads the partition files there (through :func:`~spinlock_core.dataset.open_dataset`'s
    checks, missing partitions allowed as in the index: the statistics are remade when they
    arrive), one realization at a time. ``progress(n)`` after each sample.

    Raises:
        DatasetError: unreadable or stale files, or no sample of ``split`` in the dataset.
    """
    from .rollouts import open_dataset

    wanted = splits.of(split)
    out: dict[int, dict[str, list[ChannelStats]]] = {}
    with open_dataset(layout.root, allow_missing=True) as reader:
        data_hash = str(reader.attrs.get("config_hash", ""))
        time = reader.time_steps
        c = reader.num_channels
        for g in reader.grids:
            rows = reader.rows_for_grid(g)
            rows = rows[np.isin(reader.sample_index[rows], wanted)]
            if rows.size == 0:
                raise DatasetError(layout.root, f"no {split} sample at grid size {g}", "check the splits config")
            files, file_of, local = reader.row_sources(rows)
            diverged = np.asarray(reader.metadata(rows)["diverged_step"], dtype=np.int64).reshape(rows.size, -1)
            usable = np.where(diverged < 0, time.size, np.searchsorted(time, diverged, side="left"))
            total = {"fields": int(usable.sum()) * g * g, "deltas": int(np.maximum(usable - 1, 0).sum()) * g * g}
            rng = numpy_rng(derive_seed(root_seed, Stream.STATS, g))
            moments = {k: [Moments() for _ in range(c)] for k in total}
            samples: dict[str, list[list[np.ndarray]]] = {k: [[] for _ in range(c)] for k in total}
            handles = [H.open_read(p, root=layout.root) for p in files]
            try:
                for j in range(rows.size):
                    dset = handles[int(file_of[j])][S.OUTPUTS_FIELDS]
                    for m in range(usable.shape[1]):
                        n = int(usable[j, m])
                        if n == 0:
                            continue
                        x = np.asarray(dset[int(local[j]), m, :n], dtype=np.float32)  # [n, C, g, g]
                        blocks = {"fields": x, "deltas": np.diff(x, axis=0)}
                        for kind, block in blocks.items():
                            for ch in range(c):
                                vals = block[:, ch].reshape(-1)
                                moments[kind][ch].add(vals)
                                want = QUANTILE_SAMPLE * vals.size / max(total[kind], 1)
                                samples[kind][ch].append(_take(rng, vals, want))
                    if progress is not None:
                        progress(1)
            except DatasetError:
                raise
            except Exception as exc:  # a damaged chunk: one error naming the dataset
                raise DatasetError(layout.root, f"cannot read trajectories for statistics ({exc})") from None
            finally:
                for h in handles:
                    h.close()
            out[int(g)] = {
                kind: [
                    ChannelStats(
                        mo.count,
                        mo.mean,
                        mo.std,
                        mo.rms,
                        mo.lo,
                        mo.hi,
                        _quantiles(np.concatenate(samples[kind][ch]) if samples[kind][ch] else np.zeros(0)),
                    )
                    for ch, mo in enumerate(moments[kind])
                ]
                for kind in moments
            }
    return DatasetStats(out, splits.hash, data_hash, split)


def write_stats(layout: DatasetLayout, stats: DatasetStats) -> Path:
    """Write ``<dataset>/stats.json`` atomically."""
    return write_text_atomic(layout.stats, json.dumps(stats.to_json(), indent=1, allow_nan=False) + "\n")


def read_stats(layout: DatasetLayout, splits: Splits | None = None, data_hash: str | None = None) -> DatasetStats:
    """Read ``<dataset>/stats.json``; refuse statistics of other ``splits`` or another ``data_hash``.

    Raises:
        DatasetError: missing, unparsable, edited, or computed from other splits.
    """
    path = layout.stats
    fix = f"recompute them: spinlock index --dataset {layout.root} (or materialize dataset_stats)"

    def parse(doc: dict[str, Any]) -> DatasetStats:
        grids = {
            int(g): {k: [ChannelStats.from_json(c) for c in v] for k, v in kinds.items()}
            for g, kinds in doc["grids"].items()
        }
        return DatasetStats(grids, str(doc["splits_hash"]), str(doc["data_hash"]), str(doc["split"]))

    out = read_hashed_json(
        path, fmt=STATS_FORMAT, what="statistics", fix=fix, parse=parse, hash_of=lambda s: str(s.to_json()["hash"])
    )
    if splits is not None and out.splits_hash != splits.hash:
        raise DatasetError(path, f"computed from other splits (hash {out.splits_hash}, now {splits.hash})", fix)
    if data_hash is not None and out.data_hash != data_hash:
        raise DatasetError(path, f"computed from other rollouts (config hash {out.data_hash}, now {data_hash})", fix)
    return out
