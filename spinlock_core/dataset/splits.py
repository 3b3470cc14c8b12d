"""``splits.json``: which samples (operators) are train, valid, test and ood.

Assignment (:func:`assign_splits`), a pure function of the sample indices, the ``splits``
config section and the root seed:

1. with ``holdout``, the samples it selects (IC type, or a unit-cube range of one Sobol
   dimension) become ``ood``;
2. the other samples are ranked by a key drawn from stream ``(SPLIT, sample)`` of the split seed
   (``splits.seed``, else the root seed), ties broken by sample index;
3. the first ``n_train`` of that order are train, the next ``n_valid`` valid, the rest test,
   with counts from the fractions by largest remainder (every non-zero fraction gets at least
   one sample while there are enough).

A sample is one operator: all its realizations, steps and grid sizes share its split. The file
(written atomically) holds, per split, the sorted global sample indices, plus the config, the
seed used, the total and a hash of all of it; :func:`read_splits` refuses a file that does not
parse or whose hash does not match its content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spinlock_core.config import SPLIT_NAMES, SplitsConfig, canonical_hash
from spinlock_core.files import write_text_atomic
from spinlock_core.seeding import Stream, derive_seed

from .errors import DatasetError
from .layout import DatasetLayout
from .records import read_hashed_json

__all__ = ["SPLIT_NAMES", "Splits", "assign_splits", "split_counts", "dataset_splits", "write_splits", "read_splits"]

SPLITS_FORMAT = "spinlock-splits/1"


@dataclass(frozen=True)
class Splits:
    """Global sample indices of each split (sorted int64 arrays), and what made them."""

    samples: dict[str, np.ndarray]
    config: dict[str, Any]
    seed: int

    @property
    def hash(self) -> str:
        """16 hex digits over the config, the seed and every split's indices."""
        return canonical_hash(
            {"config": self.config, "seed": self.seed, "samples": {k: v.tolist() for k, v in self.samples.items()}}
        )

    def of(self, name: str) -> np.ndarray:
        """Indices of split ``name`` (one of :data:`SPLIT_NAMES`)."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {name!r}")
        return self.samples[name]

    def counts(self) -> dict[str, int]:
        return {k: int(v.size) for k, v in self.samples.items()}


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Integer counts summing to ``n`` closest to ``n * fractions`` (largest remainder).

    Every non-zero fraction gets at least one while ``n`` is at least the number of them (taken
    from the largest count).
    """
    f = np.asarray(fractions, dtype=np.float64)
    exact = n * f / f.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    nonzero = np.flatnonzero(f > 0)
    if n >= nonzero.size:
        for i in nonzero:
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    return [int(c) for c in counts]


def assign_splits(
    sample_index: np.ndarray,
    cfg: SplitsConfig,
    root_seed: int,
    *,
    ic_types: Sequence[str] | None = None,
    params: np.ndarray | None = None,
    param_names: Sequence[str] = (),
) -> Splits:
    """Split the samples ``sample_index [n]`` (distinct global indices); see module docstring.

    Args:
        ic_types: IC type of each sample (needed by ``holdout.ic_types``).
        params: unit-cube points ``[n, P]`` with columns ``param_names`` (needed by ``holdout.param``).

    Raises:
        ValueError: repeated indices, or a holdout naming an unknown IC type or dimension, or
            holding out every sample.
    """
    idx = np.asarray(sample_index, dtype=np.int64).reshape(-1)
    if np.unique(idx).size != idx.size:
        raise ValueError("sample indices must be distinct")
    ood = np.zeros(idx.size, dtype=bool)
    h = cfg.holdout
    if h is not None and h.ic_types:
        if ic_types is None:
            raise ValueError("holdout.ic_types needs the IC type of every sample")
        types = np.asarray([str(t) for t in ic_types])
        unknown = sorted(set(h.ic_types) - set(types.tolist()))
        if unknown:
            raise ValueError(
                f"holdout.ic_types: {unknown} not in the dataset (IC types: {sorted(set(types.tolist()))})"
            )
        ood = np.isin(types, h.ic_types)
    elif h is not None and h.param is not None:
        if h.param not in param_names or params is None:
            raise ValueError(f"holdout.param: {h.param!r} is not a Sobol dimension (dimensions: {list(param_names)})")
        u = np.asarray(params, dtype=np.float64)[:, list(param_names).index(h.param)]
        ood = (u >= h.low) & (u <= h.high)
    if h is not None and ood.all():
        raise ValueError("holdout selects every sample: nothing is left to train on")
    seed = int(cfg.seed if cfg.seed is not None else root_seed)
    rest = idx[~ood]
    keys = np.array([derive_seed(seed, Stream.SPLIT, int(i)) for i in rest.tolist()], dtype=np.int64)
    ranked = rest[np.lexsort((rest, keys))]
    n_train, n_valid, _ = split_counts(rest.size, [cfg.train, cfg.valid, cfg.test])
    parts = {
        "train": ranked[:n_train],
        "valid": ranked[n_train : n_train + n_valid],
        "test": ranked[n_train + n_valid :],
        "ood": idx[ood],
    }
    return Splits({k: np.sort(v) for k, v in parts.items()}, cfg.model_dump(mode="json"), seed)


def dataset_splits(layout: DatasetLayout, cfg: SplitsConfig, root_seed: int) -> Splits:
    """Assign the splits of every sample the dataset holds (any grid size), from its files.

    Raises:
        DatasetError: the dataset cannot be read (see :func:`~spinlock_core.dataset.open_dataset`),
            or the holdout does not fit it.
    """
    from .rollouts import open_dataset

    with open_dataset(layout.root, allow_missing=True) as reader:
        idx, first = np.unique(reader.sample_index, return_index=True)
        ic_types = reader.metadata(first)["ic_types"]
        params = reader.params(first)
        names = list(reader.param_names)
    try:
        return assign_splits(idx, cfg, root_seed, ic_types=[str(t) for t in ic_types], params=params, param_names=names)
    except ValueError as exc:
        raise DatasetError(layout.root, f"splits: {exc}", "change the splits section of the config") from None


def write_splits(layout: DatasetLayout, splits: Splits) -> Path:
    """Write ``<dataset>/splits.json`` atomically."""
    doc = {
        "format": SPLITS_FORMAT,
        "hash": splits.hash,
        "config": splits.config,
        "seed": splits.seed,
        "counts": splits.counts(),
        "samples": {k: splits.samples[k].tolist() for k in SPLIT_NAMES},
    }
    return write_text_atomic(layout.splits, json.dumps(doc, indent=1) + "\n")


def read_splits(layout: DatasetLayout) -> Splits:
    """Read ``<dataset>/splits.json``.

    Raises:
        DatasetError: missing, unparsable, or its hash does not match its content.
    """
    fix = f"rebuild the index: spinlock index --dataset {layout.root} (or materialize dataset_index)"

    def parse(doc: dict[str, Any]) -> Splits:
        samples = {k: np.asarray(doc["samples"][k], dtype=np.int64) for k in SPLIT_NAMES}
        return Splits(samples, dict(doc["config"]), int(doc["seed"]))

    return read_hashed_json(
        layout.splits, fmt=SPLITS_FORMAT, what="splits", fix=fix, parse=parse, hash_of=lambda s: s.hash
    )
