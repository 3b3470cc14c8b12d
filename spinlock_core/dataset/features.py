"""Feature files: one HDF5 file per partition, written atomically, beside the rollouts.

``<dataset>/features/grid_GGGG/batch_BBBB.h5`` holds the features of partition file
``<dataset>/partitions/grid_GGGG/batch_BBBB.h5`` (re-extraction rewrites only this file)::

    /                               @kind "features", @schema_version, @source (partition file,
                                    relative), @source_config_hash, @features_config_hash,
                                    @num_samples n, @num_realizations M, @num_time_steps Ts,
                                    @num_channels C, @grid_size g, + caller attrs
    /sample [n], /realization [M], /time [Ts], /channel [C]     coordinates (dimension scales)
    /metadata/{sample_index, grid_sizes, ic_types, ic_base_types, rollout_policies,
               noise_regimes} [n], diverged_step [n, M]          copied from the partition
    /features                       @family_versions {"sdf": version}, @extraction_timestamp
    /features/sdf                   @version, @feature_registry (JSON: every feature's name,
                                    category, column, granularity, definition, units, convention,
                                    flag), @num_features, @config (JSON), @config_hash
    /features/sdf/<category>/features   float32, [n, M, Ts, C, F] | [n, M, Ts, F] | [n, M, C, F]
                                        | [n, M, F] | [n, F] by granularity; @names, @axes,
                                        @granularity, @masked (JSON {name: reason})
    /features/sdf/aggregated/features   [n, F_summary] float32; @names, @aggregation (JSON)
    /features/sdf/metadata/extraction_time [n] float64   seconds per sample
    /features/sdf/metadata/nan_counts [n, K] int32       NaNs per category (masked columns
                                                          excluded); @categories

The feature package computes :class:`FeatureTable` values; this module only stores them (it
knows nothing of how features are computed). :class:`StoredRegistry` reads back the registry
JSON a file carries (names, categories, columns, definitions) without the feature code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from spinlock_core.files import commit_tmp, remove_quietly, tmp_path_for

from . import hdf5 as H
from . import schema as S
from .codec import attr_value, decode_attr

__all__ = ["FeatureTable", "StoredFeature", "StoredRegistry", "FeatureFileWriter", "write_feature_views"]


@dataclass(frozen=True)
class FeatureTable:
    """One category's features for a batch of rows, as stored.

    ``values`` float32 ``[rows, *axes sizes, F]`` (``axes`` name the leading axes, from
    :data:`schema.FEATURE_DIMS`, ``"sample"`` first); columns in ``names`` order; ``masked``
    maps each masked feature to its reason (its column is NaN by design).
    """

    category: str
    granularity: str
    axes: tuple[str, ...]
    names: list[str]
    values: np.ndarray
    masked: dict[str, str] = field(default_factory=dict)

    def nan_count(self) -> np.ndarray:
        """NaNs per row among the unmasked columns ``[rows]`` int32."""
        keep = [j for j, n in enumerate(self.names) if n not in self.masked]
        rows = self.values.shape[0]
        if not keep:
            return np.zeros(rows, dtype=np.int32)
        return np.isnan(self.values[..., keep]).reshape(rows, -1).sum(axis=1).astype(np.int32)


@dataclass(frozen=True)
class StoredFeature:
    """One feature as its file describes it (the registry JSON row)."""

    name: str
    category: str
    column: int
    index: int
    granularity: str
    units: str
    definition: str
    info: dict[str, Any]

    @property
    def family(self) -> str:
        return self.category

    def to_dict(self) -> dict[str, Any]:
        return dict(self.info)


class StoredRegistry:
    """The registry a feature file was written with: which feature is in which column.

    Read-only view of the ``feature_registry`` JSON (the features package's ``FeatureRegistry``
    writes it; ``FeatureRegistry.from_json(stored.to_json())`` rebuilds that class).
    """

    def __init__(self, text: str) -> None:
        d = json.loads(text)
        self._json = text
        self.specs: tuple[StoredFeature, ...] = tuple(
            StoredFeature(
                name=str(r["name"]),
                category=str(r["category"]),
                column=int(r["column"]),
                index=int(r["index"]),
                granularity=str(r.get("granularity", "")),
                units=str(r.get("units", "")),
                definition=str(r.get("definition", "")),
                info=dict(r),
            )
            for r in d["features"]
        )
        self._by_name = {s.name: s for s in self.specs}
        if len(self._by_name) != len(self.specs):
            raise ValueError("stored registry lists a feature twice")

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[StoredFeature]:
        return iter(self.specs)

    @property
    def num_features(self) -> int:
        return len(self.specs)

    @property
    def categories(self) -> list[str]:
        """Categories with at least one feature, in storage order."""
        return list(dict.fromkeys(s.category for s in self.specs))

    def get_feature_names(self, category: str | None = None) -> list[str]:
        return [s.name for s in self.specs if category is None or s.category == category]

    def spec(self, name: str) -> StoredFeature:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no feature named {name!r} (the file has {len(self.specs)} features)") from None

    def column(self, name: str) -> int:
        return self.spec(name).column

    def index(self, name: str) -> int:
        return self.spec(name).index

    def to_json(self) -> str:
        return self._json

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredRegistry) and [s.info for s in self.specs] == [s.info for s in other.specs]

    def __hash__(self) -> int:
        return hash(tuple(s.name for s in self.specs))


class FeatureFileWriter:
    """Write one partition's features in row batches, atomically (tmp file renamed on close).

    Use as a context manager; rows are written with :meth:`write`; the file appears under its
    final name only when the ``with`` block ends without an exception and every row was written.

    Args:
        path: the feature file.
        source: the open rollouts file of the partition (coordinates and metadata are copied).
        registry_json, config_json, config_hash, version: the features config and registry.
        summary_names, aggregation_json: the summary columns and how they were aggregated.
        attrs: extra root attributes (partition key, ...).
    """

    def __init__(
        self,
        path: str | Path,
        source: H.File,
        *,
        registry_json: str,
        config_json: str,
        config_hash: str,
        version: str,
        summary_names: Sequence[str],
        aggregation_json: str,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.tmp = tmp_path_for(self.path)
        self._src = source
        self._meta: dict[str, Any] = dict(
            registry_json=registry_json,
            config_json=config_json,
            config_hash=config_hash,
            version=version,
            summary_names=list(summary_names),
            aggregation_json=aggregation_json,
            attrs=dict(attrs or {}),
        )
        self._f: H.File | None = None
        self._written = 0
        self._scales: dict[str, H.Dataset] = {}

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> FeatureFileWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = H.File(self.tmp, "w")
        try:
            self._init_file()
        except BaseException:
            self._f.close()
            remove_quietly(self.tmp)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._f is not None
        try:
            self._f.close()
        finally:
            self._f = None
        if exc_type is None and self._written != self.n:
            remove_quietly(self.tmp)
            raise RuntimeError(f"{self.path}: {self._written} of {self.n} rows written; file not committed")
        if exc_type is None:
            commit_tmp(self.tmp, self.path)
        else:
            remove_quietly(self.tmp)

    @property
    def file(self) -> H.File:
        assert self._f is not None, "use FeatureFileWriter as a context manager"
        return self._f

    def _init_file(self) -> None:
        f, src, m = self.file, self._src, self._meta
        fields = src[S.OUTPUTS_FIELDS]
        self.n, self.m, self.ts, self.c = (int(v) for v in fields.shape[:4])
        f.attrs.update(
            {
                "kind": S.FEATURES_KIND,
                "schema_version": S.FEATURES_SCHEMA_VERSION,
                "source": str(Path("..") / ".." / "partitions" / self.path.parent.name / self.path.name),
                "source_config_hash": decode_attr(src.attrs.get("config_hash", "")),
                "features_config_hash": m["config_hash"],
                "num_samples": self.n,
                "num_realizations": self.m,
                "num_time_steps": self.ts,
                "num_channels": self.c,
                "grid_size": int(decode_attr(src.attrs.get("grid_size", fields.shape[-1]))),
            }
        )
        for k, v in m["attrs"].items():
            f.attrs[k] = attr_value(v)
        coords = {
            S.DIM_SAMPLE: src[S.META.SAMPLE_INDEX][()].astype(np.int64),
            S.DIM_REALIZATION: np.arange(self.m, dtype=np.int64),
            S.DIM_TIME: src[S.DIM_TIME][()].astype(np.int64) if S.DIM_TIME in src else np.arange(self.ts),
            S.DIM_CHANNEL: np.arange(self.c, dtype=np.int64),
        }
        for name, vals in coords.items():
            d = f.create_dataset(name, data=vals)
            d.make_scale(name)
            self._scales[name] = d
        for path in S.COPIED_METADATA:
            if path in src:
                src.copy(src[path], f, name=path)
                H.relabel_dims(f[path], S.dataset_spec(path).dims, self._scales)
        top = f.create_group("features")
        top.attrs["family_versions"] = json.dumps({"sdf": m["version"]})
        top.attrs["extraction_timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
        sdf = f.create_group(S.SDF)
        sdf.attrs.update(
            {
                "version": m["version"],
                "feature_registry": m["registry_json"],
                "num_features": int(json.loads(m["registry_json"])["num_features"]),
                "config": m["config_json"],
                "config_hash": m["config_hash"],
            }
        )
        names = m["summary_names"]
        d = f.create_dataset(
            S.SDF_AGGREGATED,
            shape=(self.n, len(names)),
            dtype=np.float32,
            chunks=(max(1, min(self.n, 256)), max(1, len(names))),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
            fillvalue=np.nan,
        )
        d.attrs["names"] = json.dumps(names)
        d.attrs["aggregation"] = m["aggregation_json"]
        d.dims[0].attach_scale(self._scales[S.DIM_SAMPLE])
        d.dims[1].attach_scale(H.create_label_scale(d.parent, S.DIM_FEATURE, names))
        md = f.require_group(S.SDF_METADATA)
        t = md.create_dataset("extraction_time", shape=(self.n,), dtype=np.float64, fillvalue=np.nan)
        t.attrs["units"] = "s"
        t.dims[0].attach_scale(self._scales[S.DIM_SAMPLE])

    def _ensure_table(self, t: FeatureTable) -> H.Dataset:
        key = f"{S.SDF}/{t.category}/features"
        f = self.file
        if key in f:
            return f[key]
        if not t.axes or t.axes[0] != S.DIM_SAMPLE or not set(t.axes) <= set(S.FEATURE_DIMS):
            raise ValueError(f"{t.category}: axes {t.axes} must start with 'sample' and use {S.FEATURE_DIMS}")
        row = t.values.shape[1:]
        chunks: tuple[int, ...] | None = (1, *row) if row else None
        if chunks is not None and max(1, int(np.prod(chunks))) * 4 < 4096:  # small rows: chunk several samples
            chunks = (max(1, min(self.n, 4096 // max(1, int(np.prod(chunks[1:]) * 4)))), *chunks[1:])
        d = f.create_dataset(
            key,
            shape=(self.n, *row),
            dtype=np.float32,
            chunks=chunks,
            compression="gzip",
            compression_opts=4,
            shuffle=True,
            fillvalue=np.nan,
        )
        axes = (*t.axes, S.DIM_FEATURE)
        d.attrs.update(
            {
                "names": json.dumps(t.names),
                "axes": json.dumps(list(axes)),
                "granularity": t.granularity,
                "masked": json.dumps(t.masked),
            }
        )
        for i, ax in enumerate(t.axes):
            d.dims[i].attach_scale(self._scales[ax])
        d.dims[len(t.axes)].attach_scale(H.create_label_scale(d.parent, S.DIM_FEATURE, t.names))
        return d

    # ---------------------------------------------------------------- rows
    def write(
        self, rows: slice, tables: Mapping[str, FeatureTable], summary: np.ndarray, extraction_time: np.ndarray
    ) -> None:
        """Write rows ``rows`` (a slice of the partition's rows) of every table and the summary."""
        lo, hi = rows.start, rows.stop
        f = self.file
        for t in tables.values():
            d = self._ensure_table(t)
            if json.loads(d.attrs["masked"]) != t.masked:
                raise ValueError(f"{t.category}: masked features changed between row batches")
            d[lo:hi] = t.values
        f[S.SDF_AGGREGATED][lo:hi] = summary
        f[f"{S.SDF_METADATA}/extraction_time"][lo:hi] = extraction_time
        key = f"{S.SDF_METADATA}/nan_counts"
        cats = list(tables)
        if key not in f:
            d = f.create_dataset(key, shape=(self.n, len(cats)), dtype=np.int32)
            d.attrs["categories"] = json.dumps(cats)
            d.dims[0].attach_scale(self._scales[S.DIM_SAMPLE])
            d.dims[1].attach_scale(H.create_label_scale(d.parent, S.DIM_CATEGORY, cats))
        counts = np.stack([t.nan_count() for t in tables.values()], axis=1) if cats else np.zeros((hi - lo, 0))
        f[key][lo:hi] = counts
        self._written += hi - lo


def write_feature_views(
    index: H.File, feature_files: Sequence[Path], grid: np.ndarray, sample: np.ndarray
) -> list[str]:
    """Add ``/features/sdf/...`` virtual datasets over ``feature_files`` to an index file.

    ``grid``/``sample`` are the index's rows in order. Every feature file must have the same
    config hash and block shapes (else nothing is added and the reason is returned); rows with
    no feature file stay NaN (fill value). Returns problems (empty = added).
    """
    if not feature_files:
        return ["no feature files"]
    base = Path(index.filename).parent
    files = [H.open_read(p, root=base) for p in feature_files]
    try:
        hashes = {decode_attr(f[S.SDF].attrs["config_hash"]) for f in files}
        if len(hashes) != 1:
            return [
                f"feature files were extracted with different configs {sorted(hashes)}: re-extract stale partitions"
            ]
        first = files[0]
        row_of = {(int(g), int(s)): i for i, (g, s) in enumerate(zip(grid, sample))}
        n_rows = len(grid)
        index.require_group("features").attrs.update(dict(first["features"].attrs.items()))
        sdf = index.require_group(S.SDF)
        for k, v in first[S.SDF].attrs.items():
            sdf.attrs[k] = v
        datasets: list[str] = []
        first[S.SDF].visititems(lambda name, obj: datasets.append(name) if H.is_dataset(obj) else None)
        scales = [n for n in datasets if H.is_scale(first[S.SDF][n])]
        for name in scales:  # the column labels (feature names, categories): small, copied
            parent, _, leaf = name.rpartition("/")
            H.create_label_scale(sdf.require_group(parent) if parent else sdf, leaf, _labels(first[S.SDF][name]))
        for name in datasets:
            if name in scales:
                continue
            ref = first[S.SDF][name]
            layout = H.VirtualLayout(shape=(n_rows, *ref.shape[1:]), dtype=ref.dtype)
            for f, path in zip(files, feature_files):
                d = f[S.SDF][name]
                if d.shape[1:] != ref.shape[1:]:
                    return [f"{path}: {name} has shape {d.shape[1:]} per row, expected {ref.shape[1:]}"]
                g = int(decode_attr(f.attrs["grid_size"]))
                rel = os.path.relpath(Path(path).resolve(), base.resolve())  # relative: the dataset folder can move
                src = H.VirtualSource(rel, f"{S.SDF}/{name}", shape=d.shape)
                targets = [(local, row_of.get((g, int(s)))) for local, s in enumerate(f[S.DIM_SAMPLE][()])]
                for lo_src, lo_dst, length in _runs([(a, b) for a, b in targets if b is not None]):
                    layout[lo_dst : lo_dst + length] = src[lo_src : lo_src + length]
            fill = np.nan if ref.dtype.kind == "f" else 0
            out = sdf.create_virtual_dataset(name, layout, fillvalue=fill)
            for k, v in ref.attrs.items():
                if k not in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"):
                    out.attrs[k] = v
            _label_like(out, ref, index)
        return []
    finally:
        for f in files:
            f.close()


def _labels(scale: H.Dataset) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in scale[()].tolist()]


def _label_like(out: H.Dataset, ref: H.Dataset, index: H.File) -> None:
    """Attach to each axis of the index view ``out`` the index's scale of the same name as ``ref``'s.

    Row and per-row axes (sample, realization, time, channel) take the index root's coordinates;
    column axes (feature, category) the labels copied beside the view.
    """
    group = out.parent
    for i in range(ref.ndim):
        names = list(ref.dims[i].keys())
        if not names:
            continue
        name = names[0]
        if name in group and H.is_scale(group[name]):
            out.dims[i].attach_scale(group[name])
        elif name in index and H.is_scale(index[name]):
            out.dims[i].attach_scale(index[name])


def _runs(pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Group (source row, target row) pairs into maximal runs consecutive in both: (src, dst, len)."""
    out: list[tuple[int, int, int]] = []
    for a, b in sorted(pairs, key=lambda p: p[1]):
        if out and out[-1][0] + out[-1][2] == a and out[-1][1] + out[-1][2] == b:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + 1)
        else:
            out.append((a, b, 1))
    return out
