"""Read extracted features: :class:`HDF5FeatureReader`.

Accepts a dataset directory (its ``index.h5`` when that holds features, else every
``features/grid_*/batch_*.h5``), an index file, or one feature file. Rows are ordered by
``(grid size, global sample index)`` like the rollout reader. Every file must come from the
same features config (same hash); otherwise the reader names the stale files.

Example::

    with HDF5FeatureReader("datasets/default") as r:
        reg = r.get_sdf_registry()                 # StoredRegistry: names, categories, columns
        spatial = r.get_sdf_features("spatial")    # [N, M, Ts, C, F_spatial]
        allf = r.get_all_sdf_features()            # {category: array}
        sel = r.select(["spatial_mean", "spectral_centroid"])   # {name: [N, M, Ts, C]}
        df = r.to_dataframe()                      # one row per sample: metadata + summary columns
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import hdf5 as H
from . import schema as S
from .codec import decode_attr
from .errors import DatasetError
from .features import StoredRegistry
from .index import index_problems
from .layout import DatasetLayout, dataset_root_of
from .rows import RowIndexedFiles, RowSelection, tensor_or_array
from .sources import missing_partitions

__all__ = ["HDF5FeatureReader", "find_feature_files"]

SDF = S.SDF

_META_COLUMNS = {
    "ic_type": "metadata/ic_types",
    "ic_base_type": "metadata/ic_base_types",
    "policy": "metadata/rollout_policies",
    "noise_regime": "metadata/noise_regimes",
}


def find_feature_files(dataset_dir: str | Path) -> list[Path]:
    """``<dataset>/features/grid_*/batch_*.h5``, grid-major (never ``*.tmp``)."""
    layout = DatasetLayout(dataset_dir)
    return [layout.features(p) for p in layout.feature_partitions()]


class HDF5FeatureReader(RowIndexedFiles):
    """Read-only access to SDF features (see module docstring). A context manager.

    Row selections (``idx``) are those of the rollout reader: an int, a slice, ints or a boolean
    mask over the rows in ``(grid size, sample)`` order; None = all. A dataset directory must
    have the features of every expected partition (``allow_missing=True`` reads those present).

    Raises:
        DatasetError: no features, missing or stale feature files, a corrupt or foreign file.
    """

    def __init__(self, path: str | Path, *, allow_missing: bool = False) -> None:
        self.path = Path(path)
        files, root = self._resolve(self.path, allow_missing)
        self._open(files, self._setup, root=root)

    @staticmethod
    def _resolve(path: Path, allow_missing: bool) -> tuple[list[Path], Path]:
        if path.is_dir():
            layout = DatasetLayout(path)
            missing, expected = missing_partitions(layout, "features")
            if missing and not allow_missing:
                keys = ", ".join(p.key for p in missing[:5]) + (" ..." if len(missing) > 5 else "")
                raise DatasetError(
                    path,
                    f"{len(missing)} of {expected} expected partitions have no features: {keys}",
                    f"extract them: spinlock extract-features --dataset {path}",
                )
            if layout.index.is_file() and not index_problems(layout):
                with H.open_read(layout.index, root=path) as f:
                    if SDF in f:
                        return [layout.index], path
            files = find_feature_files(path)
            if not files:
                raise DatasetError(
                    path, "holds no features", f"extract them: spinlock extract-features --dataset {path}"
                )
            return files, path
        if not path.is_file():
            raise DatasetError(path, "no such features file or dataset directory")
        return [path], dataset_root_of(path)

    def _setup(self) -> None:
        for f in self._files:
            if SDF not in f:
                raise DatasetError(f.filename, f"holds no /{SDF} group (not a feature file)")
        hashes = {decode_attr(f[SDF].attrs["config_hash"]) for f in self._files}
        if len(hashes) > 1:
            by = {Path(f.filename).name: decode_attr(f[SDF].attrs["config_hash"]) for f in self._files}
            raise DatasetError(
                self.path,
                f"feature files come from different features configs {by}",
                f"re-extract the stale ones: spinlock extract-features --dataset {self.path}",
            )
        self.config_hash: str = hashes.pop()
        self._registry = StoredRegistry(decode_attr(self._files[0][SDF].attrs["feature_registry"]))

    # ---------------------------------------------------------------- discovery
    def get_feature_families(self) -> list[str]:
        return list(self._files[0]["features"].keys())

    def get_sdf_registry(self) -> StoredRegistry:
        """The registry stored with the features (names, categories, columns, definitions)."""
        return self._registry

    @property
    def config(self) -> dict[str, Any]:
        """The features config the files were extracted with."""
        return json.loads(decode_attr(self._files[0][SDF].attrs["config"]))

    def masked(self, category: str) -> dict[str, str]:
        """Masked features of ``category`` and why (NaN columns by design, e.g. C = 1)."""
        return json.loads(decode_attr(self._files[0][f"{SDF}/{category}/features"].attrs["masked"]))

    def axes(self, category: str) -> list[str]:
        """Axis names of ``get_sdf_features(category)`` (feature axis last)."""
        return json.loads(decode_attr(self._files[0][f"{SDF}/{category}/features"].attrs["axes"]))

    # ---------------------------------------------------------------- data
    def get_sdf_features(self, category: str, idx: RowSelection = None, *, as_tensor: bool = False) -> Any:
        """``category``'s features, shape by granularity (see :meth:`axes`), rows ``idx`` (default all).

        ``as_tensor=True``: a CPU ``torch.Tensor`` over the same memory.
        """
        path = f"{SDF}/{category}/features"
        if path not in self._files[0]:
            cats = self._registry.categories + ["aggregated"]
            raise KeyError(f"no feature category {category!r}; stored: {cats}")
        return tensor_or_array(self._small(path, idx), as_tensor)

    def get_all_sdf_features(self) -> dict[str, np.ndarray]:
        """``{category: array}`` for every stored category (registry order)."""
        return {c: self.get_sdf_features(c) for c in self._registry.categories}

    def get_sdf_aggregated(self, idx: RowSelection = None, *, as_tensor: bool = False) -> Any:
        """Summary rows ``[N, F_summary]`` (see :attr:`aggregated_names`; ``as_tensor`` as above)."""
        return tensor_or_array(self._small(f"{SDF}/aggregated/features", idx), as_tensor)

    @property
    def aggregated_names(self) -> list[str]:
        return json.loads(decode_attr(self._files[0][f"{SDF}/aggregated/features"].attrs["names"]))

    def select(self, names: Sequence[str], idx: RowSelection = None) -> dict[str, np.ndarray]:
        """``{name: values}`` for feature names (per-feature arrays, feature axis dropped)
        or summary column names (``[N]``)."""
        out: dict[str, np.ndarray] = {}
        agg = self.aggregated_names
        cache: dict[str, np.ndarray] = {}
        for n in names:
            if n in self._registry.get_feature_names():
                cat = self._registry.spec(n).family
                if cat not in cache:
                    cache[cat] = self.get_sdf_features(cat, idx)
                out[n] = cache[cat][..., self._registry.column(n)]
            elif n in agg:
                if "__agg" not in cache:
                    cache["__agg"] = self.get_sdf_aggregated(idx)
                out[n] = cache["__agg"][..., agg.index(n)]
            else:
                raise KeyError(f"unknown feature or summary column {n!r}")
        return out

    def extraction_time(self) -> np.ndarray:
        return self._small(f"{SDF}/metadata/extraction_time", None)

    def nan_counts(self) -> tuple[list[str], np.ndarray]:
        path = f"{SDF}/metadata/nan_counts"
        return json.loads(decode_attr(self._files[0][path].attrs["categories"])), self._small(path, None)

    def to_dataframe(self, columns: Sequence[str] | None = None):
        """pandas DataFrame, one row per (grid size, sample): metadata then summary columns.

        Metadata columns: ``sample_index``, ``grid_size``, ``ic_type``, ``ic_base_type``,
        ``policy``, ``noise_regime``, ``diverged_realizations``. ``columns`` selects summary
        columns by name (default all).
        """
        import pandas as pd

        data: dict[str, Any] = {"sample_index": self.sample_index, "grid_size": self.grid_sizes}
        for col, path in _META_COLUMNS.items():
            if path in self._files[0]:
                data[col] = self._small(path, None)
        if "metadata/diverged_step" in self._files[0]:
            data["diverged_realizations"] = (self._small("metadata/diverged_step", None) >= 0).sum(axis=1)
        names = self.aggregated_names
        vals = self.get_sdf_aggregated()
        keep = range(len(names)) if columns is None else [names.index(c) for c in columns]
        meta = pd.DataFrame(data)
        feats = pd.DataFrame(vals[:, list(keep)], columns=[names[i] for i in keep])
        return pd.concat([meta, feats], axis=1)
