"""The dataset manifest (``dataset.json``): what the dataset is and which partitions it must hold.

Written before any partition (``spinlock generate``'s preflight, and every ``sobol_parameters``
materialization), it records the experiment's name, the hashes of the config parts each kind
of file comes from, and the expected partition set (every batch x every grid size). Readers,
``info``, ``validate`` and renders compare the files present with it, so a missing partition
is reported by name instead of silently shrinking the dataset or reading as zeros.

Updates are read-modify-write under an exclusive lock (``.spinlock.lock``), so concurrent
partitions adding a grid size never lose each other's update.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from spinlock_core.files import file_lock

from .errors import DatasetError
from .layout import DatasetLayout, PartitionId
from .records import read_record, write_record

__all__ = ["HASH_KINDS", "Manifest", "read_manifest", "write_manifest", "merge_manifest"]

#: The hashes a manifest carries (``rollouts`` is the dataset's data identity).
HASH_KINDS: tuple[str, ...] = ("points", "specs", "rollouts", "features", "renders")


@dataclass(frozen=True)
class Manifest:
    """Identity and expected contents of a dataset.

    Attributes:
        experiment: ``metadata.name`` of the experiment.
        hashes: ``{kind: hash}`` for :data:`HASH_KINDS` (features/renders: "" when not made).
        total_samples, batch_size: the sampling; batches ``0 .. num_batches - 1``.
        grid_sizes: every grid size the dataset must hold (sorted).
        stages: the per-partition file kinds expected for every partition, e.g.
            ``["rollouts", "features", "renders"]``.
    """

    experiment: str
    hashes: dict[str, str]
    total_samples: int
    batch_size: int
    grid_sizes: list[int]
    stages: list[str] = field(default_factory=lambda: ["rollouts"])
    updated: str = ""

    @property
    def num_batches(self) -> int:
        return -(-self.total_samples // self.batch_size)

    @property
    def data_hash(self) -> str:
        return self.hashes.get("rollouts", "")

    def expected_partitions(self) -> list[PartitionId]:
        """Every partition the dataset must hold, grid-major."""
        return [PartitionId(grid=g, batch=b) for g in sorted(self.grid_sizes) for b in range(self.num_batches)]

    def to_body(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "hashes": dict(self.hashes),
            "total_samples": self.total_samples,
            "batch_size": self.batch_size,
            "num_batches": self.num_batches,
            "grid_sizes": sorted(self.grid_sizes),
            "stages": list(self.stages),
            "updated": self.updated or datetime.now(UTC).isoformat(timespec="seconds"),
        }


def read_manifest(layout: DatasetLayout) -> Manifest | None:
    """The manifest of the dataset, or None when it has none (a dataset of an older Spinlock).

    Raises:
        DatasetError: the manifest exists but is corrupt.
    """
    if not layout.manifest.exists():
        return None
    d = read_record(layout.manifest, "manifest")
    try:
        hashes = {str(k): str(v) for k, v in dict(d["hashes"]).items()}
        m = Manifest(
            experiment=str(d["experiment"]),
            hashes=hashes,
            total_samples=int(d["total_samples"]),
            batch_size=int(d["batch_size"]),
            grid_sizes=sorted(int(g) for g in d["grid_sizes"]),
            stages=[str(s) for s in d.get("stages", ["rollouts"])],
            updated=str(d.get("updated", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(layout.manifest, f"malformed manifest ({type(exc).__name__}: {exc})") from None
    if m.total_samples < 1 or m.batch_size < 1 or not m.grid_sizes:
        raise DatasetError(layout.manifest, "manifest needs total_samples >= 1, batch_size >= 1 and grid sizes")
    return m


def write_manifest(layout: DatasetLayout, manifest: Manifest) -> None:
    """Write ``manifest`` atomically (replacing any other)."""
    write_record(layout.manifest, "manifest", manifest.data_hash or "none", manifest.to_body())


def merge_manifest(layout: DatasetLayout, manifest: Manifest) -> Manifest:
    """Record ``manifest``, keeping grid sizes already expected when the data hash is unchanged.

    Under the dataset lock. A manifest of another data hash (the config changed what the
    dataset holds) is replaced: its partitions are then stale, which validation reports.
    Returns what was written.
    """
    with file_lock(layout.lock):
        old = read_manifest(layout)
        new = manifest
        if old is not None and old.data_hash == manifest.data_hash:
            new = replace(manifest, grid_sizes=sorted(set(old.grid_sizes) | set(manifest.grid_sizes)))
            if new.to_body() | {"updated": ""} == old.to_body() | {"updated": ""}:
                return old
        new = replace(new, updated=datetime.now(UTC).isoformat(timespec="seconds"))
        write_manifest(layout, new)
        return new
