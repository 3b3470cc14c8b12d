"""Hashes of what changes the data: one per stage, each covering only the config it depends on.

A dataset file carries the hash of the config parts that determined its content, so a stage
can refuse an upstream file made from another config, validation can name stale partitions,
and Dagster (code versions) marks them stale. A hash never covers where or how a dataset is
written (``dataset.output_dir``, compression threads), what it is called (``metadata``),
which grid sizes it holds (grid sizes are a partition dimension: adding one leaves the other
partitions current) or the checks' thresholds:

=============  ================================================================================
stage          covers
=============  ================================================================================
``points``     version, ``parameter_space``, ``sampling`` except ``validation`` thresholds, and the
               ordered Sobol dimensions (including the sampled IC type)
``specs``      points + ``simulation.input_generation`` + ``simulation.num_channels``
``rollouts``   specs + the rest of ``simulation`` except ``grid_sizes`` + ``dataset.storage``
               except ``compression_threads`` (the dataset's data identity, ``config_hash()``)
``features``   rollouts + the features config hash (``spinlock_core.features.features_config_hash``)
``renders``    features + the ``renders`` section
=============  ================================================================================

Each hash is the first 16 hex digits of the SHA-256 of canonical JSON (sorted keys).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spinlock_core.config.models import ExperimentConfig

__all__ = ["canonical_hash", "StageHashes", "stage_hashes"]


def canonical_hash(payload: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``payload``'s canonical JSON."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StageHashes:
    """The hash of each stage's output (see module docstring)."""

    points: str
    specs: str
    rollouts: str

    def features(self, features_config_hash: str) -> str:
        return canonical_hash({"rollouts": self.rollouts, "features": features_config_hash})

    def renders(self, features_config_hash: str, renders: dict[str, Any]) -> str:
        return canonical_hash({"features": self.features(features_config_hash), "renders": renders})


def stage_hashes(cfg: ExperimentConfig) -> StageHashes:
    """The points, specs and rollouts hashes of ``cfg``."""
    d = cfg.model_dump(mode="json")
    sampling = {k: v for k, v in d["sampling"].items() if k != "validation"}
    dims = [[name, spec.model_dump(mode="json")] for name, spec in cfg.sobol_dimensions()]
    points = canonical_hash(
        {"version": d["version"], "parameter_space": d["parameter_space"], "sampling": sampling, "dimensions": dims}
    )
    sim = d["simulation"]
    specs = canonical_hash(
        {"points": points, "input_generation": sim["input_generation"], "num_channels": sim["num_channels"]}
    )
    rest = {k: v for k, v in sim.items() if k not in ("grid_sizes", "input_generation", "num_channels")}
    storage = {k: v for k, v in d["dataset"]["storage"].items() if k != "compression_threads"}
    rollouts = canonical_hash({"specs": specs, "simulation": rest, "storage": storage})
    return StageHashes(points=points, specs=specs, rollouts=rollouts)
