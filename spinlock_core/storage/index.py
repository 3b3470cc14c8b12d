"""The whole-dataset index: one HDF5 file over all partition files, without copying big arrays.

``build_index(partition_paths, out_path)`` writes ``out_path`` (atomically, like the partition
writer) in the partition layout, with:

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
  and ``/metadata/source_row`` (provenance of each row).

Source file names are stored *relative to the index file's directory*; HDF5 resolves a
relative virtual-source name against the directory of the file holding the virtual dataset
(before the working directory), so the dataset directory can be moved as a whole. (An
``HDF5_VDS_PREFIX`` environment variable overrides that search; leave it unset.) A missing
source file reads as fill values silently in HDF5, so :func:`spinlock_core.storage.open_dataset`
and :func:`spinlock_core.storage.validate_structure` check that every source exists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import _common as U
from . import schema as S

__all__ = ["build_index", "INDEX_FILENAME"]

INDEX_FILENAME = S.INDEX_FILENAME

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
    with h5py.File(path, "r") as f:
        raw_attrs = dict(f.attrs.items())
        attrs = {k: U.decode_attr(v) for k, v in raw_attrs.items()}
        if attrs.get("kind") != S.KIND_PARTITION:
            raise ValueError(f"{path}: root attribute kind must be {S.KIND_PARTITION!r}, got {attrs.get('kind')!r}")
        if str(attrs.get("schema_version", "")).split(".")[0] != S.SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"{path}: schema_version {attrs.get('schema_version')!r} is not compatible with {S.SCHEMA_VERSION}"
            )
        shape = f[S.OUTPUTS_FIELDS].shape
        grid = int(shape[-1])
        meta_attrs = {k: U.decode_attr(v) for k, v in f[S.GROUP_METADATA].attrs.items()}
        attrs["_shape"] = shape
        attrs["_time"] = f[S.DIM_TIME][()].tolist()
        attrs["_param_names"] = U.decode_attr(f[S.PARAMS].attrs["names"])
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


def build_index(
    partition_paths: Sequence[Path],
    out_path: Path,
    extra: Callable[[h5py.File, np.ndarray, np.ndarray], None] | None = None,
) -> Path:
    """Write the whole-dataset index over ``partition_paths`` to ``out_path`` (atomic); see module doc.

    ``extra(f, grid, sample)``, when given, adds more to the open index file before it is
    committed (``grid``/``sample``: the index rows in order); the features layer uses it to add
    virtual feature datasets.

    Raises:
        ValueError: no partitions, or partitions disagree on M, Ts/time, C, parameter names or
            config hash, or a (grid size, sample index) pair occurs twice.
    """
    out_path = Path(out_path)
    if out_path.suffix != ".h5":
        raise ValueError(f"out_path must end in .h5, got {out_path}")
    paths = sorted({Path(p) for p in partition_paths}, key=lambda p: os.path.abspath(p))
    if not paths:
        raise ValueError("build_index needs at least one partition file")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    parts = [_read_part(p, out_path.parent) for p in paths]
    _check_agreement(parts)

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

    tmp = U.tmp_path_for(out_path)
    try:
        with h5py.File(tmp, "w") as f:
            scales = _write_views(f, parts, part_id, local_row, grid, sample, m, ts, c, grids)
            _copy_small(f, parts, part_id, local_row, scales)
            if extra is not None:
                extra(f, grid, sample)
            meta = f[S.GROUP_METADATA]
            for key in ("config", "sampling_metrics"):
                vals = [p.meta_attrs.get(key, "") for p in parts]
                if key == "sampling_metrics" and len(set(vals)) > 1:
                    meta.attrs[key] = U.json_dumps(
                        {"per_partition": {p.rel: json.loads(v or "null") for p, v in zip(parts, vals)}}
                    )
                else:
                    meta.attrs[key] = vals[0]
            meta.attrs["version"] = S.SCHEMA_VERSION
            meta.attrs["creation_date"] = datetime.now(UTC).isoformat(timespec="seconds")
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
                }
            )
        U.commit_tmp(tmp, out_path)
    except BaseException:
        U.remove_quietly(tmp)
        raise
    return out_path


def _write_views(
    f: h5py.File,
    parts: list[_Part],
    part_id: np.ndarray,
    local_row: np.ndarray,
    grid: np.ndarray,
    sample: np.ndarray,
    m: int,
    ts: int,
    c: int,
    grids: list[int],
) -> dict[str, h5py.Dataset]:
    big = grids[-1]
    time = np.asarray(parts[0].attrs["_time"], dtype=np.int64)
    names = parts[0].attrs["_param_names"]
    scales = U.create_coordinates(
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
    out_lay = h5py.VirtualLayout((rows.size, m, ts, c, big, big), dtype="<f4")
    in_lay = h5py.VirtualLayout((rows.size, c, big, big), dtype="<f4")
    for g in grids:
        sel = grid == g
        g_rows = np.flatnonzero(sel)
        grp = f.require_group(f"{S.GROUP_GRIDS}/{g}")
        g_out = h5py.VirtualLayout((g_rows.size, m, ts, c, g, g), dtype="<f4")
        g_in = h5py.VirtualLayout((g_rows.size, c, g, g), dtype="<f4")
        pad = (big - g) // 2
        for pi, part in enumerate(parts):
            if part.grid != g:
                continue
            mine = part_id == pi
            n = part.sample_index.size
            src_out = h5py.VirtualSource(part.rel, S.OUTPUTS_FIELDS, shape=(n, m, ts, c, g, g), dtype="<f4")
            src_in = h5py.VirtualSource(part.rel, S.INPUTS_FIELDS, shape=(n, c, g, g), dtype="<f4")
            for t0, s0, length in _runs(rows[mine], local_row[mine]):
                out_lay[t0 : t0 + length, :, :, :, pad : pad + g, pad : pad + g] = src_out[s0 : s0 + length]
                in_lay[t0 : t0 + length, :, pad : pad + g, pad : pad + g] = src_in[s0 : s0 + length]
            pos_in_grid = np.searchsorted(g_rows, rows[mine])
            for t0, s0, length in _runs(pos_in_grid, local_row[mine]):
                g_out[t0 : t0 + length] = src_out[s0 : s0 + length]
                g_in[t0 : t0 + length] = src_in[s0 : s0 + length]
        g_scales = U.create_coordinates(
            grp,
            {
                S.DIM_SAMPLE: sample[sel],
                S.DIM_REALIZATION: np.arange(m),
                S.DIM_TIME: time,
                S.DIM_CHANNEL: np.arange(c),
                S.DIM_Y: U.pixel_centres(g),
                S.DIM_X: U.pixel_centres(g),
            },
            yx_units="1",
            yx_description=f"pixel centre (i + 0.5) / {g} in domain units (unit square)",
        )
        grp.create_virtual_dataset(S.OUTPUTS_FIELDS, g_out, fillvalue=0.0)
        grp.create_virtual_dataset(S.INPUTS_FIELDS, g_in, fillvalue=0.0)
        U.finish_variable(grp, S.OUTPUTS_FIELDS, g_scales)
        U.finish_variable(grp, S.INPUTS_FIELDS, g_scales)
        grp.attrs["grid_size"] = g
        grp.attrs["num_samples"] = int(g_rows.size)
        grp.attrs["rows"] = g_rows.astype(np.int64)
    f.create_virtual_dataset(S.OUTPUTS_FIELDS, out_lay, fillvalue=0.0)
    f.create_virtual_dataset(S.INPUTS_FIELDS, in_lay, fillvalue=0.0)
    return scales


def _copy_small(
    f: h5py.File, parts: list[_Part], part_id: np.ndarray, local_row: np.ndarray, scales: dict[str, h5py.Dataset]
) -> None:
    sources = [h5py.File(p.path, "r") for p in parts]
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
            dtype = U.STR_DTYPE if spec.dtype == "str" else np.dtype(spec.dtype)
            d = f.create_dataset(spec.path, data=data, dtype=dtype)
            if spec.path == S.PARAMS:
                d.attrs["names"] = sources[0][S.PARAMS].attrs["names"]
        for spec in S.datasets_for(S.KIND_INDEX):
            U.finish_variable(f, spec.path, scales)
    finally:
        for src in sources:
            src.close()
