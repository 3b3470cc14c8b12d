"""The whole-dataset index: one HDF5 file over all partition files, without copying big arrays.

``build_index(dataset_dir)`` writes ``<dataset>/index.h5`` (atomically) in the partition
layout, with:

* one row per (grid size, sample): every sample is generated at every grid size, so a sample
  index appears once per grid size; rows ordered by ``(grid size, global sample index)``;
* ``/outputs/fields [N, M, Ts, C, G, G]`` and ``/inputs/fields [N, C, G, G]``: HDF5 *virtual*
  datasets mapping the partition files' rows; ``G`` = largest grid size; a ``g``-grid sample
  sits in the centre, at ``[pad, pad + g)`` on both spatial axes with ``pad = (G - g) // 2``;
  the rest reads as the fill value 0;
* ``/grids/<g>/outputs/fields [N_g, M, Ts, C, g, g]`` and ``/grids/<g>/inputs/fields``:
  unpadded virtual views of the ``g``-grid rows (same row order), with their own coordinates
  (``/grids/<g>/sample, y, x, ...``) and root-style aliases (``/grids/<g>/trajectories``,
  ``/grids/<g>/initial_conditions``);
* the small per-sample arrays (metadata, parameters) copied, plus ``/metadata/source_file``
  and ``/metadata/source_row`` (provenance of each row);
* ``/features/sdf/...`` views of the feature files when every partition has features from one
  features config (else ``@features_note`` says why);
* ``/metadata/index_sources``: every rollouts and feature file present when the index was
  built, with its size, modification time, config hash and rows. :func:`index_problems`
  compares that with the files now: any file changed, gone or added makes the index stale,
  and readers then read the files themselves (or refuse a stale index named directly).

Source file names are stored *relative to the index file's directory*; HDF5 resolves a
relative virtual-source name against the directory of the file holding the virtual dataset,
so the dataset directory can be moved as a whole. A missing source file would read as fill
values silently in HDF5: freshness catches it first.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import hdf5 as H
from . import schema as S
from .codec import decode_attr, decode_strings, json_dumps
from .errors import DatasetError
from .features import write_feature_views
from .layout import DatasetLayout, PartitionId
from .manifest import read_manifest
from .validate_rollouts import validate_structure

__all__ = ["IndexSummary", "build_index", "index_sources", "index_problems"]

# Root attributes that differ between partitions by construction (not carried to the index).
_PER_PARTITION_ATTRS = {
    "kind",
    "num_samples",
    "grid_size",
    "batch",
    "partition",
    "partition_key",
    "sample_start",
    "sample_stop",
}


@dataclass
class _Part:
    path: Path
    rel: str  # relative to the index directory, POSIX separators
    grid: int
    sample_index: np.ndarray  # [n] int64
    attrs: dict[str, Any]
    raw_attrs: dict[str, Any]
    meta_attrs: dict[str, Any]


def _read_part(path: Path, out_dir: Path) -> _Part:
    if path.suffix != ".h5":
        raise ValueError(f"partition files must end in .h5, got {path}")
    with H.open_read(path, root=out_dir) as f:
        raw_attrs = dict(f.attrs.items())
        attrs = {k: decode_attr(v) for k, v in raw_attrs.items()}
        if attrs.get("kind") != S.KIND_PARTITION:
            raise ValueError(f"{path}: root attribute kind must be {S.KIND_PARTITION!r}, got {attrs.get('kind')!r}")
        if str(attrs.get("schema_version", "")).split(".")[0] != S.SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"{path}: schema_version {attrs.get('schema_version')!r} is not compatible with {S.SCHEMA_VERSION}"
            )
        shape = f[S.OUTPUTS_FIELDS].shape
        grid = int(shape[-1])
        meta_attrs = {k: decode_attr(v) for k, v in f[S.GROUP_METADATA].attrs.items()}
        attrs["_shape"] = shape
        attrs["_time"] = f[S.DIM_TIME][()].tolist()
        attrs["_param_names"] = decode_attr(f[S.PARAMS].attrs["names"])
        sample_index = f[S.META.SAMPLE_INDEX][()].astype(np.int64)
    rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))).as_posix()
    return _Part(path, rel, grid, sample_index, attrs, raw_attrs, meta_attrs)


def _check_agreement(parts: list[_Part]) -> None:
    ref = parts[0]
    checks = {
        "M (num_realizations)": lambda p: p.attrs["_shape"][1],
        "Ts (stored frames)": lambda p: p.attrs["_shape"][2],
        "time coordinate": lambda p: p.attrs["_time"],
        "C (num_channels)": lambda p: p.attrs["_shape"][3],
        "parameter names": lambda p: p.attrs["_param_names"],
        "config_hash": lambda p: p.attrs.get("config_hash"),
    }
    for what, get in checks.items():
        values = {p.rel: get(p) for p in parts}
        if len({json.dumps(v, default=str) for v in values.values()}) > 1:
            detail = ", ".join(f"{k}: {v}" for k, v in list(values.items())[:6])
            raise ValueError(f"partitions disagree on {what}: {detail}")
    for p in parts:
        if p.attrs["_shape"][-2] != p.grid:
            raise ValueError(f"{p.path}: fields are not square ({p.attrs['_shape']})")
    if ref.attrs.get("config_hash") is None:
        configs = {p.rel: p.meta_attrs.get("config") for p in parts}
        if len(set(configs.values())) > 1:
            raise ValueError("partitions have no config_hash and their /metadata config attributes differ")
    seen: dict[tuple[int, int], str] = {}
    for p in parts:  # every grid size holds the same samples; a (grid, sample) pair appears once
        for s in p.sample_index.tolist():
            if (p.grid, s) in seen:
                raise ValueError(f"sample {s} at grid {p.grid} appears in both {seen[(p.grid, s)]} and {p.rel}")
            seen[(p.grid, s)] = p.rel


def _runs(target: np.ndarray, source: np.ndarray) -> list[tuple[int, int, int]]:
    """Split row pairs into maximal runs contiguous in both: (target_start, source_start, length)."""
    runs: list[tuple[int, int, int]] = []
    order = np.argsort(target, kind="stable")
    t, s = target[order], source[order]
    start = 0
    for i in range(1, t.size + 1):
        if i == t.size or t[i] != t[i - 1] + 1 or s[i] != s[i - 1] + 1:
            runs.append((int(t[start]), int(s[start]), i - start))
            start = i
    return runs


def _common_attrs(parts: list[_Part]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parts[0].attrs.items():
        if key.startswith("_") or key in _PER_PARTITION_ATTRS:
            continue
        if all(json.dumps(p.attrs.get(key), default=str) == json.dumps(value, default=str) for p in parts):
            out[key] = parts[0].raw_attrs[key]
    return out


@dataclass(frozen=True)
class IndexSummary:
    """What :func:`build_index` wrote."""

    path: Path
    partitions: int
    rows: int
    grid_sizes: list[int]
    features: bool
    features_note: str
    missing: list[str]


def index_sources(layout: DatasetLayout) -> list[dict[str, Any]]:
    """Every rollouts and feature file of the dataset as the index records it (path relative to root)."""
    rows: list[dict[str, Any]] = []
    for kind, parts, where in (
        ("rollouts", layout.rollout_partitions(), layout.rollouts),
        ("features", layout.feature_partitions(), layout.features),
    ):
        for p in parts:
            path = where(p)
            st = path.stat()
            rows.append(
                {
                    "path": path.relative_to(layout.root).as_posix(),
                    "kind": kind,
                    "partition": p.key,
                    "size": int(st.st_size),
                    "mtime_ns": int(st.st_mtime_ns),
                }
            )
    return rows


def _recorded_sources(layout: DatasetLayout) -> list[dict[str, Any]]:
    with H.open_read(layout.index, root=layout.root) as f:
        if S.INDEX_SOURCES not in f:
            raise DatasetError(
                layout.index,
                "has no source table (built by an older Spinlock)",
                f"rebuild it: spinlock index --dataset {layout.root}",
            )
        return [json.loads(v) for v in decode_strings(f[S.INDEX_SOURCES][()]).tolist()]


def index_problems(layout: DatasetLayout) -> list[str]:
    """Why ``layout.index`` does not describe the files now (empty: it is current).

    Compares the recorded source table with the rollouts and feature files present: a file
    changed (size or modification time), gone, or added since the index was built.
    """
    if not layout.index.is_file():
        return [f"{layout.index} does not exist"]
    try:
        recorded = _recorded_sources(layout)
    except DatasetError as exc:
        return [exc.problem]
    except Exception as exc:  # unreadable source table
        return [f"cannot read its source table ({type(exc).__name__}: {exc})"]
    now = {r["path"]: r for r in index_sources(layout)}
    problems: list[str] = []
    seen = set()
    for r in recorded:
        seen.add(r["path"])
        cur = now.get(r["path"])
        if cur is None:
            problems.append(f"{r['path']} is gone")
        elif (cur["size"], cur["mtime_ns"]) != (r["size"], r["mtime_ns"]):
            problems.append(f"{r['path']} changed after the index was built")
    problems += [f"{p} was added after the index was built" for p in sorted(set(now) - seen)]
    return problems


def build_index(dataset_dir: str | Path | DatasetLayout) -> IndexSummary:
    """Write ``<dataset>/index.h5`` over every rollouts file there (and their features); see module doc.

    Raises:
        DatasetError: no rollouts files, or partitions disagree on M, Ts/time, C, parameter
            names or config hash, or a (grid size, sample index) pair occurs twice.
    """
    layout = dataset_dir if isinstance(dataset_dir, DatasetLayout) else DatasetLayout(dataset_dir)
    paths = layout.rollout_files()
    if not paths:
        raise DatasetError(
            layout.root,
            "no rollouts files (partitions/grid_*/batch_*.h5)",
            "materialize rollouts_hdf5 (spinlock generate) first",
        )
    sources = index_sources(layout)  # before reading: a file written meanwhile makes the index stale
    for p in paths:  # a malformed partition would be indexed as zeros or crash: refuse it by name
        report = validate_structure(p, check_data=False, root=layout.root)
        if not report.ok:
            raise DatasetError(
                p,
                f"cannot be indexed: {report.errors[0]}",
                f"see spinlock validate --dataset {layout.root}; re-materialize the partition",
            )
    try:
        parts = [_read_part(p, layout.root) for p in paths]
        _check_agreement(parts)
    except DatasetError:
        raise
    except Exception as exc:  # inconsistent partitions (ValueError) or anything the checks missed
        raise DatasetError(layout.root, f"cannot index: {exc}") from None
    manifest = read_manifest(layout)
    present = set(layout.rollout_partitions())
    missing = [p.key for p in (manifest.expected_partitions() if manifest else []) if p not in present]
    feature_parts = set(layout.feature_partitions())
    try:
        return _write_index(layout, parts, sources, present, feature_parts, missing)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(layout.index, f"cannot be written ({type(exc).__name__}: {exc})") from None


def _write_index(
    layout: DatasetLayout,
    parts: list[_Part],
    sources: list[dict[str, Any]],
    present: set[PartitionId],
    feature_parts: set[PartitionId],
    missing: list[str],
) -> IndexSummary:
    # Global row order: (grid size, global sample index).
    part_id = np.concatenate([np.full(p.sample_index.size, i) for i, p in enumerate(parts)])
    local_row = np.concatenate([np.arange(p.sample_index.size) for p in parts])
    grid = np.concatenate([np.full(p.sample_index.size, p.grid) for p in parts])
    sample = np.concatenate([p.sample_index for p in parts])
    order = np.lexsort((sample, grid))
    part_id, local_row, grid, sample = part_id[order], local_row[order], grid[order], sample[order]
    n_rows = int(order.size)
    _, m, ts, c, _, _ = parts[0].attrs["_shape"]
    grids = sorted({p.grid for p in parts})
    big = grids[-1]
    note = ""
    with H.create_atomic(layout.index) as f:
        scales = _write_views(f, parts, part_id, local_row, grid, sample, m, ts, c, grids)
        _copy_small(f, parts, part_id, local_row, scales)
        if len(feature_parts & present) != len(present):
            note = f"{len(present - feature_parts)} of {len(present)} partitions have no features yet"
        else:
            problems = write_feature_views(f, [layout.features(p) for p in sorted(present)], grid, sample)
            note = "; ".join(problems)
        if note:
            f.attrs["features_note"] = note
        meta = f[S.GROUP_METADATA]
        for key in ("config", "sampling_metrics"):
            vals = [p.meta_attrs.get(key, "") for p in parts]
            if key == "sampling_metrics" and len(set(vals)) > 1:
                meta.attrs[key] = json_dumps(
                    {"per_partition": {p.rel: json.loads(v or "null") for p, v in zip(parts, vals)}}
                )
            else:
                meta.attrs[key] = vals[0]
        meta.attrs["version"] = S.SCHEMA_VERSION
        meta.attrs["creation_date"] = datetime.now(UTC).isoformat(timespec="seconds")
        f.create_dataset(
            S.INDEX_SOURCES, data=np.asarray([json.dumps(r) for r in sources], dtype=object), dtype=H.STR_DTYPE
        )
        for key, value in _common_attrs(parts).items():
            f.attrs[key] = value
        f.attrs.update(
            {
                "schema_version": S.SCHEMA_VERSION,
                "kind": S.KIND_INDEX,
                "num_samples": n_rows,
                "num_realizations": m,
                "num_time_steps": ts,
                "num_channels": c,
                "grid_size": big,
                "grid_sizes": np.asarray(grids, dtype=np.int64),
                "padding": "centre",
                "num_partitions": len(parts),
                "missing_partitions": json.dumps(missing),
            }
        )
    return IndexSummary(layout.index, len(parts), n_rows, grids, not note, note, missing)


def _write_views(
    f: H.File,
    parts: list[_Part],
    part_id: np.ndarray,
    local_row: np.ndarray,
    grid: np.ndarray,
    sample: np.ndarray,
    m: int,
    ts: int,
    c: int,
    grids: list[int],
) -> dict[str, H.Dataset]:
    big = grids[-1]
    time = np.asarray(parts[0].attrs["_time"], dtype=np.int64)
    names = parts[0].attrs["_param_names"]
    scales = H.create_coordinates(
        f,
        {
            S.DIM_SAMPLE: sample,
            S.DIM_REALIZATION: np.arange(m),
            S.DIM_TIME: time,
            S.DIM_CHANNEL: np.arange(c),
            S.DIM_Y: np.arange(big, dtype=np.float64),
            S.DIM_X: np.arange(big, dtype=np.float64),
            S.DIM_PARAM: names,
        },
        yx_units="pixel",
        yx_description=f"pixel index on the padded {big} x {big} canvas; a g-grid sample occupies [(G-g)//2, (G-g)//2 + g)",
    )
    rows = np.arange(part_id.size)
    out_lay = H.VirtualLayout((rows.size, m, ts, c, big, big), dtype="<f4")
    in_lay = H.VirtualLayout((rows.size, c, big, big), dtype="<f4")
    for g in grids:
        sel = grid == g
        g_rows = np.flatnonzero(sel)
        grp = f.require_group(f"{S.GROUP_GRIDS}/{g}")
        g_out = H.VirtualLayout((g_rows.size, m, ts, c, g, g), dtype="<f4")
        g_in = H.VirtualLayout((g_rows.size, c, g, g), dtype="<f4")
        pad = (big - g) // 2
        for pi, part in enumerate(parts):
            if part.grid != g:
                continue
            mine = part_id == pi
            n = part.sample_index.size
            src_out = H.VirtualSource(part.rel, S.OUTPUTS_FIELDS, shape=(n, m, ts, c, g, g), dtype="<f4")
            src_in = H.VirtualSource(part.rel, S.INPUTS_FIELDS, shape=(n, c, g, g), dtype="<f4")
            for t0, s0, length in _runs(rows[mine], local_row[mine]):
                out_lay[t0 : t0 + length, :, :, :, pad : pad + g, pad : pad + g] = src_out[s0 : s0 + length]
                in_lay[t0 : t0 + length, :, pad : pad + g, pad : pad + g] = src_in[s0 : s0 + length]
            pos_in_grid = np.searchsorted(g_rows, rows[mine])
            for t0, s0, length in _runs(pos_in_grid, local_row[mine]):
                g_out[t0 : t0 + length] = src_out[s0 : s0 + length]
                g_in[t0 : t0 + length] = src_in[s0 : s0 + length]
        g_scales = H.create_coordinates(
            grp,
            {
                S.DIM_SAMPLE: sample[sel],
                S.DIM_REALIZATION: np.arange(m),
                S.DIM_TIME: time,
                S.DIM_CHANNEL: np.arange(c),
                S.DIM_Y: H.pixel_centres(g),
                S.DIM_X: H.pixel_centres(g),
            },
            yx_units="1",
            yx_description=f"pixel centre (i + 0.5) / {g} in domain units (unit square)",
        )
        grp.create_virtual_dataset(S.OUTPUTS_FIELDS, g_out, fillvalue=0.0)
        grp.create_virtual_dataset(S.INPUTS_FIELDS, g_in, fillvalue=0.0)
        H.finish_variable(grp, S.OUTPUTS_FIELDS, g_scales)
        H.finish_variable(grp, S.INPUTS_FIELDS, g_scales)
        grp.attrs["grid_size"] = g
        grp.attrs["num_samples"] = int(g_rows.size)
        grp.attrs["rows"] = g_rows.astype(np.int64)
    f.create_virtual_dataset(S.OUTPUTS_FIELDS, out_lay, fillvalue=0.0)
    f.create_virtual_dataset(S.INPUTS_FIELDS, in_lay, fillvalue=0.0)
    return scales


def _copy_small(
    f: H.File, parts: list[_Part], part_id: np.ndarray, local_row: np.ndarray, scales: dict[str, H.Dataset]
) -> None:
    sources = [H.open_read(p.path, root=Path(f.filename).parent) for p in parts]
    try:
        for spec in S.datasets_for(S.KIND_INDEX):
            if spec.path in (S.OUTPUTS_FIELDS, S.INPUTS_FIELDS):
                continue
            if spec.path == S.META.SOURCE_FILE:
                data: np.ndarray = np.asarray([parts[i].rel for i in part_id], dtype=object)
            elif spec.path == S.META.SOURCE_ROW:
                data = local_row.astype(np.int64)
            else:
                first = sources[0][spec.path]
                data = np.empty((part_id.size, *first.shape[1:]), dtype=object if spec.dtype == "str" else first.dtype)
                for i, src in enumerate(sources):
                    mine = part_id == i
                    data[mine] = src[spec.path][()][local_row[mine]]
            dtype = H.STR_DTYPE if spec.dtype == "str" else np.dtype(spec.dtype)
            d = f.create_dataset(spec.path, data=data, dtype=dtype)
            if spec.path == S.PARAMS:
                d.attrs["names"] = sources[0][S.PARAMS].attrs["names"]
        for spec in S.datasets_for(S.KIND_INDEX):
            H.finish_variable(f, spec.path, scales)
    finally:
        for src in sources:
            src.close()
