"""What every stage derives from an experiment config: its dataset layout, features config, hashes.

One place for the rules that turn a config into file identity, so a stage, an asset, a sensor
and the CLI always agree:

* :func:`layout_of`: the dataset directory ``dataset.output_dir``;
* :func:`features_config`: the validated features config (``features.config`` YAML);
* :func:`hashes_of`: every stage hash (points, specs, rollouts, features, renders);
* :func:`manifest_of`: the manifest the dataset must carry (expected partitions, hashes);
* :class:`StaleInput`: the error a stage raises when an upstream file was made from another config.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

from spinlock_core import __version__
from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import DatasetError, DatasetLayout, Manifest, PartitionId
from spinlock_core.dataset.hdf5 import H5PY_VERSION
from spinlock_core.features import FeaturesConfig, features_config_hash, load_features_config

__all__ = [
    "PROJECT_ROOT",
    "StaleInput",
    "StageHashSet",
    "layout_of",
    "features_config",
    "hashes_of",
    "manifest_of",
    "partition",
    "rollouts_made_from",
    "library_versions",
]

#: The Spinlock checkout (where the shipped ``configs/`` live).
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


class StaleInput(DatasetError):
    """An upstream file of the stage was made from another config than the current one."""


@dataclass(frozen=True)
class StageHashSet:
    """The hash of every stage's output under one experiment config (and its features config)."""

    points: str
    specs: str
    rollouts: str
    features: str
    features_config: str
    renders: str

    def of(self, stage: str) -> str:
        return str(getattr(self, stage))


def layout_of(cfg: ExperimentConfig) -> DatasetLayout:
    """The dataset directory of the experiment."""
    return DatasetLayout(cfg.dataset.output_dir)


def partition(batch: int, grid: int) -> PartitionId:
    return PartitionId(grid=int(grid), batch=int(batch))


def rollouts_made_from(cfg: ExperimentConfig, part: PartitionId, *, needed_by: str) -> Path:
    """The partition's rollouts file, refused when missing or made from another config than ``cfg``.

    Raises:
        DatasetError: no rollouts file (materialize rollouts_hdf5 first); StaleInput: made from
            another config.
    """
    from spinlock_core.dataset import hdf5 as H
    from spinlock_core.dataset.codec import decode_attr

    layout = layout_of(cfg)
    src = layout.rollouts(part)
    if not src.is_file():
        raise DatasetError(
            src,
            f"no rollouts file for partition {part.key} ({needed_by} reads it)",
            f"materialize rollouts_hdf5 for partition {part.key} first",
        )
    with H.open_read(src, root=layout.root) as f:
        made_from = str(decode_attr(f.attrs.get("config_hash", "")))
    want = cfg.config_hash()
    if made_from != want:
        raise StaleInput(
            src,
            f"rollouts made from config hash {made_from}, the current config's is {want}",
            f"re-materialize rollouts_hdf5 for partition {part.key} first",
        )
    return src


def features_config(cfg: ExperimentConfig) -> FeaturesConfig:
    """The experiment's validated features config (``features.config`` YAML, or defaults).

    A relative path is taken relative to the working directory; when no such file exists there,
    relative to the Spinlock checkout (where the shipped ``configs/`` live), so the shipped
    experiments work from any directory.

    Raises:
        ConfigError: the features YAML is missing or invalid.
    """
    path = cfg.features.config
    if path is not None and not Path(path).is_absolute() and not Path(path).exists():
        shipped = PROJECT_ROOT / path
        if shipped.exists():
            path = str(shipped)
    return load_features_config(path)


def hashes_of(cfg: ExperimentConfig, fcfg: BaseModel | None = None) -> StageHashSet:
    """Every stage hash of ``cfg`` (``fcfg``: its features config, loaded when not given)."""
    h = cfg.stage_hashes()
    fh = features_config_hash(fcfg if fcfg is not None else features_config(cfg))
    return StageHashSet(
        points=h.points,
        specs=h.specs,
        rollouts=h.rollouts,
        features=h.features(fh),
        features_config=fh,
        renders=h.renders(fh, cfg.renders.model_dump(mode="json")),
    )


def manifest_of(cfg: ExperimentConfig, fcfg: BaseModel | None = None) -> Manifest:
    """The manifest of the experiment's dataset (every batch x every configured grid size)."""
    h = hashes_of(cfg, fcfg)
    stages = ["rollouts"]
    if cfg.features.extract:
        stages.append("features")
        if cfg.renders.enabled:
            stages.append("renders")
    return Manifest(
        experiment=cfg.metadata.name,
        hashes={
            "points": h.points,
            "specs": h.specs,
            "rollouts": h.rollouts,
            "features": h.features_config if cfg.features.extract else "",
            "renders": h.renders if "renders" in stages else "",
        },
        total_samples=cfg.sampling.total_samples,
        batch_size=cfg.sampling.batch_size,
        grid_sizes=list(cfg.simulation.grid_sizes),
        stages=stages,
    )


def library_versions() -> dict[str, str]:
    """Versions recorded in every file, for replay."""
    return {
        "spinlock": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": H5PY_VERSION,
    }
