"""Where every file of a dataset lives: the one owner of paths and partition ids.

A dataset directory ``D`` (``dataset.output_dir``) holds::

    D/experiment.yaml                     the resolved experiment config (what was asked)
    D/dataset.json                        the manifest: identity, hashes, expected partitions
    D/points/batch_BBBB.json              Sobol points of batch B (unit cube, global indices)
    D/specs/batch_BBBB.json               operator specs of batch B (every knob, IC, seeds)
    D/partitions/grid_GGGG/batch_BBBB.h5  rollouts of partition (B, G)
    D/features/grid_GGGG/batch_BBBB.h5    SDF features of partition (B, G)
    D/renders/grid_GGGG/batch_BBBB.mp4    preview video (or .gif), .png poster, .json record
    D/index.h5                            the whole dataset as virtual datasets over the files

A partition is ``(batch, grid size)``; its key is ``"BBBB|G"`` (Dagster orders the dimensions
of a multi-partition key alphabetically: ``batch`` before ``grid_size``). Points and specs are
the same at every grid size (every sample is generated at every grid), so they are per batch.
Only final names are ever listed: temporary files (``*.tmp``) of writers are invisible here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXPERIMENT_FILE",
    "MANIFEST_FILE",
    "INDEX_FILE",
    "SPLITS_FILE",
    "STATS_FILE",
    "CARD_FILE",
    "LOCK_FILE",
    "FILE_KINDS",
    "PartitionId",
    "batch_key",
    "DatasetLayout",
    "dataset_root_of",
    "FILES",
    "layout_markdown",
]

EXPERIMENT_FILE = "experiment.yaml"
MANIFEST_FILE = "dataset.json"
INDEX_FILE = "index.h5"
SPLITS_FILE = "splits.json"
STATS_FILE = "stats.json"
CARD_FILE = "README.md"
LOCK_FILE = ".spinlock.lock"
POINTS_DIR, SPECS_DIR, ROLLOUTS_DIR, FEATURES_DIR, RENDERS_DIR = "points", "specs", "partitions", "features", "renders"

#: Every kind of file of a dataset (the stage table's outputs name these).
FILE_KINDS: tuple[str, ...] = (
    "points",
    "specs",
    "rollouts",
    "features",
    "renders",
    "index",
    "splits",
    "stats",
    "card",
)

_GRID_DIR_RE = re.compile(r"^grid_(?P<grid>[0-9]{4,})$")
_BATCH_FILE_RE = re.compile(r"^batch_(?P<batch>[0-9]{4,})\.(?P<ext>h5|json)$")


def batch_key(batch: int) -> str:
    """Key of batch ``batch``: zero padded to 4 digits, so lexical order is numeric order."""
    if batch < 0:
        raise ValueError(f"batch must be >= 0, got {batch}")
    return f"{batch:04d}"


@dataclass(frozen=True, order=True)
class PartitionId:
    """One partition: batch ``batch`` (samples of one slice of the Sobol set) at grid size ``grid``.

    Ordered grid-major like the index rows: ``(grid, batch)``.
    """

    grid: int
    batch: int

    @property
    def key(self) -> str:
        """The Dagster partition key ``"BBBB|G"``."""
        return f"{batch_key(self.batch)}|{self.grid}"

    @classmethod
    def parse(cls, key: str) -> PartitionId:
        """``"0003|128"`` -> ``PartitionId(grid=128, batch=3)``.

        Raises:
            ValueError: not ``<batch digits>|<grid digits>``.
        """
        m = re.fullmatch(r"(?P<batch>[0-9]+)\|(?P<grid>[0-9]+)", str(key).strip())
        if m is None:
            raise ValueError(f"partition key {key!r} is not '<batch>|<grid size>' (e.g. '0003|128')")
        return cls(grid=int(m.group("grid")), batch=int(m.group("batch")))

    def __str__(self) -> str:
        return self.key


def _grid_dir(grid: int) -> str:
    return f"grid_{grid:04d}"


def _batch_file(batch: int, ext: str) -> str:
    return f"batch_{batch_key(batch)}.{ext}"


@dataclass(frozen=True)
class DatasetLayout:
    """Paths of every file of the dataset at ``root`` (nothing is read or created here)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # ---------------------------------------------------------------- files
    @property
    def experiment(self) -> Path:
        return self.root / EXPERIMENT_FILE

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def index(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def splits(self) -> Path:
        """Which samples are train / valid / test (/ ood): written with the index."""
        return self.root / SPLITS_FILE

    @property
    def stats(self) -> Path:
        """Normalisation statistics of the train split (per grid size and channel)."""
        return self.root / STATS_FILE

    @property
    def card(self) -> Path:
        """The dataset card (Markdown; its charts in ``card/``)."""
        return self.root / CARD_FILE

    @property
    def lock(self) -> Path:
        """Serialises read-modify-write of the manifest between processes."""
        return self.root / LOCK_FILE

    def points(self, batch: int) -> Path:
        return self.root / POINTS_DIR / _batch_file(batch, "json")

    def specs(self, batch: int) -> Path:
        return self.root / SPECS_DIR / _batch_file(batch, "json")

    def rollouts(self, part: PartitionId) -> Path:
        return self.root / ROLLOUTS_DIR / _grid_dir(part.grid) / _batch_file(part.batch, "h5")

    def features(self, part: PartitionId) -> Path:
        return self.root / FEATURES_DIR / _grid_dir(part.grid) / _batch_file(part.batch, "h5")

    def render_video(self, part: PartitionId, fmt: str = "mp4") -> Path:
        if fmt not in ("mp4", "gif"):
            raise ValueError(f"render format must be mp4 or gif, got {fmt!r}")
        return self.root / RENDERS_DIR / _grid_dir(part.grid) / _batch_file(part.batch, fmt)

    def render_poster(self, part: PartitionId) -> Path:
        return self.render_video(part).with_suffix(".png")

    def render_record(self, part: PartitionId) -> Path:
        """JSON beside the video: what was rendered, from which hashes."""
        return self.render_video(part).with_suffix(".json")

    def file(self, kind: str, part: PartitionId) -> Path:
        """The file of ``kind`` (one of :data:`FILE_KINDS`) belonging to partition ``part``."""
        if kind == "points":
            return self.points(part.batch)
        if kind == "specs":
            return self.specs(part.batch)
        if kind == "rollouts":
            return self.rollouts(part)
        if kind == "features":
            return self.features(part)
        if kind == "renders":
            return self.render_record(part)
        if kind == "index":
            return self.index
        if kind == "splits":
            return self.splits
        if kind == "stats":
            return self.stats
        if kind == "card":
            return self.card
        raise ValueError(f"file kind must be one of {FILE_KINDS}, got {kind!r}")

    # ---------------------------------------------------------------- listing
    def _list(self, sub: str, ext: str) -> list[PartitionId]:
        out: list[PartitionId] = []
        base = self.root / sub
        if not base.is_dir():
            return out
        for gdir in base.iterdir():
            gm = _GRID_DIR_RE.match(gdir.name)
            if gm is None or not gdir.is_dir():
                continue
            for f in gdir.iterdir():
                fm = _BATCH_FILE_RE.match(f.name)
                if fm is not None and fm.group("ext") == ext and f.is_file():
                    out.append(PartitionId(grid=int(gm.group("grid")), batch=int(fm.group("batch"))))
        return sorted(out)

    def rollout_partitions(self) -> list[PartitionId]:
        """Partitions with a complete rollouts file, grid-major."""
        return self._list(ROLLOUTS_DIR, "h5")

    def feature_partitions(self) -> list[PartitionId]:
        """Partitions with a complete feature file, grid-major."""
        return self._list(FEATURES_DIR, "h5")

    def rollout_files(self) -> list[Path]:
        return [self.rollouts(p) for p in self.rollout_partitions()]

    def partition_of(self, path: str | Path) -> PartitionId:
        """The partition a rollouts, features or render file belongs to (from its name).

        Raises:
            ValueError: the path is not ``<kind dir>/grid_GGGG/batch_BBBB.<ext>``.
        """
        p = Path(path)
        gm, fm = _GRID_DIR_RE.match(p.parent.name), re.match(r"^batch_(?P<batch>[0-9]{4,})\.", p.name)
        if gm is None or fm is None:
            raise ValueError(f"{p} is not a partition file (<dataset>/<kind>/grid_GGGG/batch_BBBB.<ext>)")
        return PartitionId(grid=int(gm.group("grid")), batch=int(fm.group("batch")))

    @classmethod
    def of_partition_file(cls, path: str | Path) -> DatasetLayout:
        """The layout of the dataset holding the partition, feature or render file ``path``.

        Raises:
            ValueError: the file is not inside ``<dataset>/<kind>/grid_GGGG/``.
        """
        p = Path(path)
        if p.parent.parent.name not in (ROLLOUTS_DIR, FEATURES_DIR, RENDERS_DIR) or not _GRID_DIR_RE.match(
            p.parent.name
        ):
            raise ValueError(f"{p} is not inside <dataset>/partitions|features|renders/grid_GGGG/")
        return cls(p.parent.parent.parent)

    def features_for(self, rollouts_file: str | Path) -> Path:
        """The feature file of the partition whose rollouts are ``rollouts_file``."""
        return self.features(self.partition_of(rollouts_file))


def dataset_root_of(path: str | Path) -> Path:
    """The dataset directory of a file inside one (``<root>/<kind>/grid_G/...``), else the file's directory.

    It bounds what the file may refer to (:func:`spinlock_core.dataset.hdf5.open_read`).
    """
    path = Path(path)
    try:
        return DatasetLayout.of_partition_file(path).root
    except ValueError:
        return path.parent


#: Every file of a dataset: (path pattern, what it holds, written by). The source of the table in docs/schema.md.
FILES: tuple[tuple[str, str, str], ...] = (
    (EXPERIMENT_FILE, "the resolved experiment config (YAML, what was asked)", "spinlock generate"),
    (
        MANIFEST_FILE,
        "manifest: experiment, hashes per stage, samples, batch size, expected grid sizes and stages",
        "sobol_parameters, spinlock generate",
    ),
    (
        f"{POINTS_DIR}/batch_BBBB.json",
        "Sobol points of batch B: global indices, names, unit-cube values, metrics of the whole point set, points hash",
        "sobol_parameters",
    ),
    (
        f"{SPECS_DIR}/batch_BBBB.json",
        "operator specs of batch B (every knob, IC, seeds), specs and points hashes",
        "operator_specs",
    ),
    (
        f"{ROLLOUTS_DIR}/grid_GGGG/batch_BBBB.h5",
        "rollouts of partition (B, G): trajectories, ICs, parameters, metadata, operator sensitivity",
        "rollouts_hdf5",
    ),
    (f"{FEATURES_DIR}/grid_GGGG/batch_BBBB.h5", "SDF features of partition (B, G) (docs/features.md)", "sdf_features"),
    (
        f"{RENDERS_DIR}/grid_GGGG/batch_BBBB.{{mp4,gif,png,json}}",
        "preview video, poster and the record naming them with the rollouts and render hashes",
        "renders",
    ),
    (
        INDEX_FILE,
        "the whole dataset as virtual datasets over the files, and the table of the files it read",
        "dataset_index, spinlock index, extract-features",
    ),
    (
        SPLITS_FILE,
        "the sample indices of each split (train, valid, test, ood), the splits config and its hash",
        "dataset_index, spinlock index",
    ),
    (
        STATS_FILE,
        "per grid size and channel: mean, std, rms, min, max, quantiles of the fields and one-step deltas (train split)",
        "dataset_stats, spinlock index",
    ),
    (
        f"{CARD_FILE}, card/*.png",
        "the dataset card: what generated it, counts, histograms, divergence, splits, statistics, features, how to load it",
        "dataset_card, spinlock index",
    ),
    (
        "<name>.<pid>.<8 hex>.tmp[.<ext>]",
        "a write in progress (or of a killed writer): never read; removed when its writer is gone",
        "every writer",
    ),
)


def layout_markdown() -> str:
    """Markdown table of :data:`FILES` (pasted into ``docs/schema.md``; a test keeps it current)."""
    lines = ["| path (in the dataset directory) | holds | written by |", "|---|---|---|"]
    lines += [f"| `{p}` | {what} | {who} |" for p, what, who in FILES]
    return "\n".join(lines) + "\n"
