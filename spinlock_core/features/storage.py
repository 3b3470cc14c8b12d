"""Feature files: one HDF5 file per partition, written atomically, beside the rollouts.

``<dataset>/features/grid_GGGG/batch_BBBB.h5`` holds the features of partition file
``<dataset>/partitions/grid_GGGG/batch_BBBB.h5`` (re-extraction rewrites only this file)::

    /                               @kind "features", @schema_version, @source (partition file,
                                    relative), @source_config_hash, @num_samples n, @num_realizations M,
                                    @num_time_steps Ts, @num_channels C, @grid_size g, + caller attrs
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
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spinlock_core.features.extract import FeatureBlock, nan_counts
from spinlock_core.features.spec import GRANULARITY_AXES
from spinlock_core.storage import _common as U

__all__ = [
    "FEATURES_KIND",
    "FEATURES_SCHEMA_VERSION",
    "SDF",
    "COPIED_METADATA",
    "features_path_for",
    "FeatureFileWriter",
    "write_feature_views",
]

FEATURES_KIND = "features"
FEATURES_SCHEMA_VERSION = "1.0"
SDF = "features/sdf"
#: Per-sample metadata copied from the partition file (for DataFrames without the rollouts).
COPIED_METADATA: tuple[str, ...] = (
    "metadata/sample_index",
    "metadata/grid_sizes",
    "metadata/ic_types",
    "metadata/ic_base_types",
    "metadata/rollout_policies",
    "metadata/noise_regimes",
    "metadata/diverged_step",
)


def features_path_for(partition_file: str | Path) -> Path:
    """``<d>/partitions/grid_G/batch_B.h5`` -> ``<d>/features/grid_G/batch_B.h5`` (one rule)."""
    p = Path(partition_file)
    if p.parent.parent.name != "partitions":
        raise ValueError(f"{p} is not a partition file (<dataset>/partitions/grid_*/batch_*.h5)")
    return p.parent.parent.parent / "features" / p.parent.name / p.name


class FeatureFileWriter:
    """Write one partition's features in row batches, atomically (tmp file renamed on close).

    Use as a context manager; rows are written with :meth:`write`; the file appears under its
    final name only when the ``with`` block ends without an exception and every row was written.
    """

    def __init__(
        self,
        path: str | Path,
        source: h5py.File,
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
        self.tmp = U.tmp_path_for(self.path)
        self._src = source
        self._meta = dict(
            registry_json=registry_json,
            config_json=config_json,
            config_hash=config_hash,
            version=version,
            summary_names=list(summary_names),
            aggregation_json=aggregation_json,
            attrs=dict(attrs or {}),
        )
        self._f: h5py.File | None = None
        self._written = 0
        self._cats: list[str] = []

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> FeatureFileWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = h5py.File(self.tmp, "w")
        self._init_file()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._f is not None
        try:
            self._f.close()
        finally:
            self._f = None
        if exc_type is None and self._written != self.n:
            U.remove_quietly(self.tmp)
            raise RuntimeError(f"{self.path}: {self._written} of {self.n} rows written; file not committed")
        if exc_type is None:
            U.commit_tmp(self.tmp, self.path)
        else:
            U.remove_quietly(self.tmp)

    def _init_file(self) -> None:
        f, src, m = self._f, self._src, self._meta
        fields = src["outputs/fields"]
        self.n, self.m, self.ts, self.c = (int(v) for v in fields.shape[:4])
        f.attrs.update(
            {
                "kind": FEATURES_KIND,
                "schema_version": FEATURES_SCHEMA_VERSION,
                "source": str(Path("..") / ".." / "partitions" / self.path.parent.name / self.path.name),
                "source_config_hash": U.decode_attr(src.attrs.get("config_hash", "")),
                "num_samples": self.n,
                "num_realizations": self.m,
                "num_time_steps": self.ts,
                "num_channels": self.c,
                "grid_size": int(U.decode_attr(src.attrs.get("grid_size", fields.shape[-1]))),
            }
        )
        for k, v in m["attrs"].items():
            f.attrs[k] = U.attr_value(v)
        coords = {
            "sample": src["metadata/sample_index"][()].astype(np.int64),
            "realization": np.arange(self.m, dtype=np.int64),
            "time": src["time"][()].astype(np.int64) if "time" in src else np.arange(self.ts, dtype=np.int64),
            "channel": np.arange(self.c, dtype=np.int64),
        }
        self._scales = {}
        for name, vals in coords.items():
            d = f.create_dataset(name, data=vals)
            d.make_scale(name)
            self._scales[name] = d
        for path in COPIED_METADATA:
            if path in src:
                src.copy(src[path], f, name=path)
        top = f.create_group("features")
        top.attrs["family_versions"] = json.dumps({"sdf": m["version"]})
        top.attrs["extraction_timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
        sdf = f.create_group(SDF)
        sdf.attrs.update(
            {
                "version": m["version"],
                "feature_registry": m["registry_json"],
                "num_features": int(json.loads(m["registry_json"])["num_features"]),
                "config": m["config_json"],
                "config_hash": m["config_hash"],
            }
        )
        agg = sdf.create_group("aggregated")
        d = agg.create_dataset(
            "features",
            shape=(self.n, len(m["summary_names"])),
            dtype=np.float32,
            chunks=(max(1, min(self.n, 256)), max(1, len(m["summary_names"]))),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
            fillvalue=np.nan,
        )
        d.attrs["names"] = json.dumps(m["summary_names"])
        d.attrs["aggregation"] = m["aggregation_json"]
        d.dims[0].attach_scale(self._scales["sample"])
        md = sdf.create_group("metadata")
        md.create_dataset("extraction_time", shape=(self.n,), dtype=np.float64, fillvalue=np.nan)

    def _ensure_block(self, blk: FeatureBlock) -> h5py.Dataset:
        key = f"{SDF}/{blk.category}/features"
        if key in self._f:
            return self._f[key]
        shape = (self.n, *blk.values.shape[1:])
        chunks = (1, *blk.values.shape[1:]) if blk.values.shape[1:] else None
        if chunks is not None and max(1, np.prod(chunks)) * 4 < 4096:  # small rows: chunk several samples
            chunks = (max(1, min(self.n, 4096 // max(1, int(np.prod(chunks[1:]) * 4)))), *chunks[1:])
        d = self._f.create_dataset(
            key,
            shape=shape,
            dtype=np.float32,
            chunks=chunks,
            compression="gzip",
            compression_opts=4,
            shuffle=True,
            fillvalue=np.nan,
        )
        axes = (*GRANULARITY_AXES[blk.granularity], "feature")
        d.attrs.update(
            {
                "names": json.dumps(blk.names),
                "axes": json.dumps(list(axes)),
                "granularity": blk.granularity,
                "masked": json.dumps(blk.masked),
            }
        )
        for i, ax in enumerate(axes[:-1]):
            d.dims[i].attach_scale(self._scales[ax])
        self._cats.append(blk.category)
        return d

    # ---------------------------------------------------------------- rows
    def write(
        self,
        rows: slice,
        blocks: Mapping[str, FeatureBlock],
        summary: np.ndarray,
        extraction_time: np.ndarray,
    ) -> None:
        """Write rows ``rows`` (a slice of the partition's rows) of every block and the summary."""
        lo, hi = rows.start, rows.stop
        for blk in blocks.values():
            d = self._ensure_block(blk)
            if json.loads(d.attrs["masked"]) != blk.masked:
                raise ValueError(f"{blk.category}: masked features changed between row batches")
            d[lo:hi] = blk.values
        self._f[f"{SDF}/aggregated/features"][lo:hi] = summary
        self._f[f"{SDF}/metadata/extraction_time"][lo:hi] = extraction_time
        cats = list(blocks)
        key = f"{SDF}/metadata/nan_counts"
        if key not in self._f:
            d = self._f.create_dataset(key, shape=(self.n, len(cats)), dtype=np.int32)
            d.attrs["categories"] = json.dumps(cats)
        self._f[key][lo:hi] = nan_counts(blocks)[1]
        self._written += hi - lo


def write_feature_views(
    index: h5py.File, feature_files: Sequence[Path], grid: np.ndarray, sample: np.ndarray
) -> list[str]:
    """Add ``/features/sdf/...`` virtual datasets over ``feature_files`` to an index file.

    ``grid``/``sample`` are the index's rows in order. Every feature file must have the same
    config hash and block shapes (else nothing is added and the reason is returned); rows with
    no feature file stay NaN (fill value). Returns problems (empty = added).
    """
    if not feature_files:
        return ["no feature files"]
    base = Path(index.filename).parent
    files = [h5py.File(p, "r") for p in feature_files]
    try:
        hashes = {U.decode_attr(f[SDF].attrs["config_hash"]) for f in files}
        if len(hashes) != 1:
            return [
                f"feature files were extracted with different configs {sorted(hashes)}: re-extract stale partitions"
            ]
        first = files[0]
        row_of = {(int(g), int(s)): i for i, (g, s) in enumerate(zip(grid, sample))}
        n_rows = len(grid)
        index.require_group("features").attrs.update({k: v for k, v in first["features"].attrs.items()})
        sdf = index.require_group(SDF)
        for k, v in first[SDF].attrs.items():
            sdf.attrs[k] = v
        datasets = []
        first[SDF].visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in datasets:
            ref = first[SDF][name]
            layout = h5py.VirtualLayout(shape=(n_rows, *ref.shape[1:]), dtype=ref.dtype)
            for f, path in zip(files, feature_files):
                d = f[SDF][name]
                if d.shape[1:] != ref.shape[1:]:
                    return [f"{path}: {name} has shape {d.shape[1:]} per row, expected {ref.shape[1:]}"]
                g = int(U.decode_attr(f.attrs["grid_size"]))
                rel = os.path.relpath(Path(path).resolve(), base.resolve())  # relative: the dataset folder can move
                src = h5py.VirtualSource(rel, f"{SDF}/{name}", shape=d.shape)
                targets = [(local, row_of.get((g, int(s)))) for local, s in enumerate(f["sample"][()])]
                for lo_src, lo_dst, length in _runs([(a, b) for a, b in targets if b is not None]):
                    layout[lo_dst : lo_dst + length] = src[lo_src : lo_src + length]
            fill = np.nan if ref.dtype.kind == "f" else 0
            out = sdf.create_virtual_dataset(name, layout, fillvalue=fill)
            for k, v in ref.attrs.items():
                if k not in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"):
                    out.attrs[k] = v
        return []
    finally:
        for f in files:
            f.close()


def _runs(pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Group (source row, target row) pairs into maximal runs consecutive in both: (src, dst, len)."""
    out: list[tuple[int, int, int]] = []
    for a, b in sorted(pairs, key=lambda p: p[1]):
        if out and out[-1][0] + out[-1][2] == a and out[-1][1] + out[-1][2] == b:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + 1)
        else:
            out.append((a, b, 1))
    return out
