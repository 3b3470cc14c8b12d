"""Structural validation of one rollouts partition file or index file.

``validate_structure(path)`` reads the real layout (fixing the reference's B9: it checks the
datasets that exist, not invented names) and reports every problem at once:

* schema version (major must match, a different minor is a warning), kind, required root and
  ``/metadata`` attributes, ``config``/``sampling_metrics`` JSON;
* required groups, datasets, coordinates (dimension scales) and root aliases (same object);
* shapes: every named dim has one length across all datasets and coordinates; root
  attributes (num_samples, ...) agree with them; dtypes as in the schema;
* metadata: lengths, unique non-negative sample indices equal to the ``sample`` coordinate,
  grid sizes matching the field sizes (index: at most G, per-grid views present with the right
  row counts), strictly increasing time steps, ``diverged_step`` in {-1} or [0, max step],
  non-empty strings, valid JSON specs/values;
* parameters finite and in [0, 1];
* data: initial conditions finite; trajectory frames finite except frames at or after their
  realization's ``diverged_step`` (read one trajectory chunk at a time: bounded memory);
* index: every virtual source file exists (HDF5 would silently read fill values otherwise);
* optional datasets (``/operator_sensitivity/values``): absent is fine; present ones must have
  the schema dtype, dims (and their coordinate), alias and attributes (``names`` a JSON list
  equal to the ``sensitivity_feature`` coordinate, ``params`` JSON, ``params_hash``); non-finite
  sensitivity values of operators that never diverged are a warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from . import hdf5 as H
from . import schema as S
from .codec import decode_attr, decode_strings
from .errors import DatasetError
from .layout import dataset_root_of
from .report import MAX_LISTED, Collector, ValidationReport

__all__ = ["ValidationReport", "validate_structure"]

_DTYPE_KINDS = {"float32": ("f", 4), "float64": ("f", 8), "int32": ("i", 4), "int64": ("i", 8), "uint64": ("u", 8)}


def validate_structure(path: Path, *, check_data: bool = True, root: Path | None = None) -> ValidationReport:
    """Validate one rollouts partition file or index file (see module docstring).

    ``check_data=False`` checks attributes, layout, shapes, metadata and parameters only, without
    scanning the trajectories for non-finite values (:func:`iter_nonfinite` does that). ``root``
    is the dataset directory no reference may leave (default: the file's dataset). Never
    raises on bad data: every problem is a line of the report.
    """
    path = Path(path)
    report = ValidationReport(str(path))
    if root is None:
        root = dataset_root_of(path)
    try:
        f = H.open_read(path, root=root)
    except DatasetError as exc:
        report.errors.append(exc.problem)
        return report
    try:
        with f:
            _validate_open_file(f, report, check_data)
    except Exception as exc:  # damaged beyond what the checks expect: one line, never a traceback
        report.errors.append(f"cannot be read ({type(exc).__name__}: {exc})")
    return report


def _validate_open_file(f: H.File, report: ValidationReport, check_data: bool = True) -> None:
    kind = _check_attrs(f, report)
    if kind is None:
        return
    present = _check_layout(f, kind, report)
    sizes = _check_dims(f, kind, present, report)
    if report.errors:
        return  # data checks need a sound layout
    if kind == S.KIND_INDEX:
        missing = _missing_virtual_sources(f)
        if missing:
            report.errors.append(f"missing partition files referenced by the index: {missing[:MAX_LISTED]}")
            return
        report.checks.append("all virtual source files exist")
    _check_metadata(f, kind, sizes, report)
    if kind == S.KIND_INDEX:
        _check_cross_grid(f, report)
    _check_params(f, report)
    _check_sensitivity_values(f, report)
    if check_data:
        _check_data(f, report)


def _missing_virtual_sources(f: H.File) -> list[str]:
    """Source files of the index's virtual datasets that do not exist (relative to its directory)."""
    base = Path(f.filename).parent
    missing: set[str] = set()
    for path in (S.OUTPUTS_FIELDS, S.INPUTS_FIELDS):
        if path in f and f[path].is_virtual:
            for vs in f[path].virtual_sources():
                if vs.file_name != "." and not (base / vs.file_name).is_file():
                    missing.add(vs.file_name)
    return sorted(missing)


def _check_attrs(f: H.File, report: ValidationReport) -> str | None:
    attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
    version = attrs.get("schema_version")
    if version is None:
        report.errors.append("root attribute schema_version missing (not a Spinlock file?)")
        return None
    major, _, minor = str(version).partition(".")
    want_major, _, want_minor = S.SCHEMA_VERSION.partition(".")
    if major != want_major:
        report.errors.append(f"schema_version {version} is incompatible with {S.SCHEMA_VERSION}")
        return None
    if minor != want_minor:
        report.warnings.append(f"schema_version {version} differs from this library's {S.SCHEMA_VERSION}")
    kind = attrs.get("kind")
    if kind not in (S.KIND_PARTITION, S.KIND_INDEX):
        report.errors.append(f"root attribute kind must be 'partition' or 'index', got {kind!r}")
        return None
    missing = [a.name for a in S.ROOT_ATTRS if kind in a.kinds and a.name not in attrs]
    if missing:
        report.errors.append(f"missing root attributes {missing}")
    if S.GROUP_METADATA in f:
        meta = {k: decode_attr(v) for k, v in f[S.GROUP_METADATA].attrs.items()}
        miss = [a.name for a in S.METADATA_ATTRS if a.name not in meta]
        if miss:
            report.errors.append(f"missing /metadata attributes {miss}")
        for key in ("config", "sampling_metrics"):
            if key in meta:
                try:
                    json.loads(meta[key])
                except (TypeError, ValueError):
                    report.errors.append(f"/metadata attribute {key} is not valid JSON")
        if "creation_date" in meta:
            try:
                datetime.fromisoformat(str(meta["creation_date"]))
            except ValueError:
                report.errors.append(f"/metadata creation_date is not ISO-8601: {meta['creation_date']!r}")
    if not missing:
        report.checks.append(f"schema_version {version}, kind {kind}, required attributes present")
    return str(kind)


def _check_layout(f: H.File, kind: str, report: ValidationReport) -> list[S.DatasetSpec]:
    before = len(report.errors)
    present = []
    groups = {d.path.split("/")[0] for d in S.datasets_for(kind) if "/" in d.path}
    for g in sorted(groups):
        if not H.is_group(f.get(g)):
            report.errors.append(f"missing group /{g}")
    optional = [spec for spec in S.datasets_for(kind, optional=True) if spec.path.split("/")[0] in f]
    for spec in (*S.datasets_for(kind), *optional):
        group = spec.path.split("/")[0]
        if group in f and not H.is_dataset(f.get(spec.path)):
            report.errors.append(f"missing dataset /{spec.path}")
            continue
        if group not in f:
            continue
        d = f[spec.path]
        present.append(spec)
        if spec.dtype == "str":
            if not H.is_string_dtype(d.dtype):
                report.errors.append(f"/{spec.path} must hold strings, has dtype {d.dtype}")
        elif (d.dtype.kind, d.dtype.itemsize) != _DTYPE_KINDS[spec.dtype]:
            report.errors.append(f"/{spec.path} must be {spec.dtype}, has dtype {d.dtype}")
        if spec.alias:
            alias = f.get(spec.alias)
            if not H.is_dataset(alias) or alias.id != d.id:
                report.errors.append(f"root alias /{spec.alias} missing or not the same object as /{spec.path}")
        labels = [(dim.keys() or [""])[-1] for dim in d.dims] if d.ndim == len(spec.dims) else []
        if labels and labels != list(spec.dims):
            report.warnings.append(
                f"/{spec.path} dimension scales {labels} != {list(spec.dims)} (xarray shows other dim names)"
            )
    used = {dim for spec in present for dim in spec.dims}
    for c in S.COORDINATES:
        d = f.get(c.name)
        if c.optional and d is None and c.name not in used:
            continue
        if not H.is_dataset(d) or d.attrs.get("CLASS") != b"DIMENSION_SCALE":
            report.errors.append(f"missing coordinate /{c.name} (a dimension scale)")
    for spec in present:
        if spec.optional:
            _check_optional_attrs(f, spec, report)
    if len(report.errors) == before:
        n_opt = sum(1 for spec in present if spec.optional)
        n_coord = sum(1 for c in S.COORDINATES if c.name in f)
        report.checks.append(
            f"{len(present) - n_opt} required datasets{f' (+{n_opt} optional)' if n_opt else ''}, {n_coord} coordinates "
            "and root aliases present with schema dtypes"
        )
    return present


def _check_optional_attrs(f: H.File, spec: S.DatasetSpec, report: ValidationReport) -> None:
    """Attributes of a present optional dataset (today: the operator-sensitivity table)."""
    d = f[spec.path]
    attrs = {k: decode_attr(v) for k, v in d.attrs.items()}
    missing = [a for a in spec.attrs if a not in attrs]
    if missing:
        report.errors.append(f"/{spec.path} lacks attributes {missing}")
        return
    if spec.path != S.OPERATOR_SENSITIVITY:
        return
    try:
        names = json.loads(attrs["names"])
        json.loads(attrs["params"])
    except (TypeError, ValueError):
        report.errors.append(f"/{spec.path} attributes names and params must be JSON")
        return
    if not isinstance(names, list) or d.ndim != 2 or len(names) != d.shape[1]:
        report.errors.append(f"/{spec.path} attribute names must list its {d.shape[-1]} columns, got {names!r}")
        return
    coord = f.get(S.DIM_SENSITIVITY_FEATURE)
    if H.is_dataset(coord) and decode_strings(coord[()]).tolist() != names:
        report.errors.append(f"/{spec.path} attribute names differs from the /{S.DIM_SENSITIVITY_FEATURE} coordinate")
    if not str(attrs["params_hash"]):
        report.errors.append(f"/{spec.path} attribute params_hash is empty")


def _check_dims(f: H.File, kind: str, present: list[S.DatasetSpec], report: ValidationReport) -> dict[str, int]:
    before = len(report.errors)
    sizes: dict[str, tuple[int, str]] = {}

    def see(dim: str, n: int, where: str) -> None:
        if dim not in sizes:
            sizes[dim] = (n, where)
        elif sizes[dim][0] != n:
            report.errors.append(f"dim {dim!r} has length {n} in {where} but {sizes[dim][0]} in {sizes[dim][1]}")

    for spec in present:
        shape = f[spec.path].shape
        if len(shape) != len(spec.dims):
            report.errors.append(f"/{spec.path} has shape {shape}, expected dims ({', '.join(spec.dims)})")
            continue
        for dim, n in zip(spec.dims, shape):
            see(dim, n, f"/{spec.path}")
    for c in S.COORDINATES:
        if H.is_dataset(f.get(c.name)):
            see(c.name, f[c.name].shape[0] if f[c.name].ndim == 1 else -1, f"coordinate /{c.name}")
    out = {k: v[0] for k, v in sizes.items()}
    attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
    for attr, dim in (
        ("num_samples", S.DIM_SAMPLE),
        ("num_realizations", S.DIM_REALIZATION),
        ("num_time_steps", S.DIM_TIME),
        ("num_channels", S.DIM_CHANNEL),
        ("grid_size", S.DIM_Y),
    ):
        if attr in attrs and dim in out and attrs[attr] != out[dim]:
            report.errors.append(f"root attribute {attr} = {attrs[attr]} but dim {dim!r} has length {out[dim]}")
    if S.DIM_Y in out and S.DIM_X in out and out[S.DIM_Y] != out[S.DIM_X]:
        report.errors.append(f"fields are not square: y = {out[S.DIM_Y]}, x = {out[S.DIM_X]}")
    if (
        S.PARAMS in f
        and "names" in f[S.PARAMS].attrs
        and S.DIM_PARAM in out
        and len(f[S.PARAMS].attrs["names"]) != out[S.DIM_PARAM]
    ):
        report.errors.append(
            f"/{S.PARAMS} attribute names has {len(f[S.PARAMS].attrs['names'])} entries for {out[S.DIM_PARAM]} columns"
        )
    if kind == S.KIND_PARTITION and S.OUTPUTS_FIELDS in f:
        d = f[S.OUTPUTS_FIELDS]
        if d.ndim == 6 and d.chunks != (1, 1, *d.shape[2:]):
            report.warnings.append(
                f"/{S.OUTPUTS_FIELDS} chunks {d.chunks} are not one trajectory {(1, 1, *d.shape[2:])}"
            )
    if len(report.errors) == before:
        report.checks.append("shapes consistent: " + ", ".join(f"{k}={v}" for k, v in out.items()))
    return out


def _check_metadata(f: H.File, kind: str, sizes: dict[str, int], report: ValidationReport) -> None:
    before = len(report.errors)
    idx = f[S.META.SAMPLE_INDEX][()]
    grids = f[S.META.GRID_SIZES][()] if S.META.GRID_SIZES in f else np.zeros_like(idx)
    pairs = np.stack([np.asarray(grids, dtype=np.int64), idx.astype(np.int64)], axis=1)
    if (idx < 0).any() or np.unique(pairs, axis=0).shape[0] != idx.size:
        report.errors.append("/metadata/sample_index must hold non-negative indices, distinct within each grid size")
    if not np.array_equal(f[S.DIM_SAMPLE][()], idx):
        report.errors.append("coordinate /sample differs from /metadata/sample_index")
    time = f[S.DIM_TIME][()]
    if (time < 0).any() or (np.diff(time) <= 0).any():
        report.errors.append(f"time coordinate must be strictly increasing step numbers >= 0, got {time.tolist()[:10]}")
    grids = f[S.META.GRID_SIZES][()]
    side = sizes[S.DIM_Y]
    if kind == S.KIND_PARTITION:
        if (grids != side).any():
            report.errors.append(
                f"/metadata/grid_sizes {sorted(set(grids.tolist()))} do not match the field size {side}"
            )
    else:
        if grids.size and grids.max() != side:
            report.errors.append(f"index padded size {side} != largest grid size {grids.max()}")
        declared = sorted(int(g) for g in np.atleast_1d(f.attrs.get("grid_sizes", [])))
        if declared != sorted(set(grids.tolist())):
            report.errors.append(
                f"root attribute grid_sizes {declared} != grid sizes in /metadata/grid_sizes {sorted(set(grids.tolist()))}"
            )
        for g in sorted(set(grids.tolist())):
            v = f.get(f"{S.GROUP_GRIDS}/{g}/{S.OUTPUTS_FIELDS}")
            want = (int((grids == g).sum()), *f[S.OUTPUTS_FIELDS].shape[1:4], g, g)
            if not H.is_dataset(v) or v.shape != want:
                report.errors.append(
                    f"per-grid view /{S.GROUP_GRIDS}/{g}/{S.OUTPUTS_FIELDS} missing or not of shape {want}"
                )
    div = f[S.META.DIVERGED_STEP][()]
    bad = (div < -1) | (div > (time.max() if time.size else 0))
    if bad.any():
        report.errors.append(
            f"/metadata/diverged_step has {int(bad.sum())} values outside {{-1}} or [0, {int(time.max())}]"
        )
    for path in S.STRING_METADATA:
        values = decode_strings(f[path][()])
        empty = np.flatnonzero(np.char.str_len(values) == 0) if values.size else np.zeros(0, int)
        if empty.size:
            report.errors.append(f"/{path} has {empty.size} empty strings (rows {empty[:5].tolist()})")
        elif path in S.JSON_METADATA:
            for i, v in enumerate(values.tolist()):
                try:
                    json.loads(v)
                except ValueError:
                    report.errors.append(f"/{path}[{i}] is not valid JSON: {v[:60]!r}")
                    break
    if len(report.errors) == before:
        report.checks.append(
            "metadata consistent (sample indices, grid sizes, time steps, diverged_step, strings, JSON)"
        )


_SAME_AT_EVERY_GRID = (
    S.PARAMS,
    S.PARAM_VALUES,
    S.META.WEIGHT_SEEDS,
    S.META.IC_SEEDS,
    S.META.NOISE_SEEDS,
    S.META.IC_TYPES,
    S.META.IC_BASE_TYPES,
    S.META.ROLLOUT_POLICIES,
    S.META.NOISE_REGIMES,
)


def _check_cross_grid(f: H.File, report: ValidationReport) -> None:
    """Index: a sample stored at several grid sizes is the same operator (parameters, seeds, labels)."""
    idx = f[S.META.SAMPLE_INDEX][()]
    _, first, inverse = np.unique(idx, return_index=True, return_inverse=True)
    if first.size == idx.size:
        return
    bad = Collector(report, "cross-grid")
    for path in _SAME_AT_EVERY_GRID:
        data = f[path][()]
        ref = data[first[inverse]]
        same = data == ref
        if data.dtype.kind == "f":
            same |= np.isnan(data) & np.isnan(ref)
        rows = np.flatnonzero(~same.reshape(idx.size, -1).all(axis=1))
        for r in rows[:3].tolist():
            bad.add(f"sample {idx[r]}: /{path} differs between grid sizes (row {r}, grid {f[S.META.GRID_SIZES][r]})")
    bad.done("samples stored at several grid sizes share parameters, seeds and labels")


def _check_sensitivity_values(f: H.File, report: ValidationReport) -> None:
    """Operator-sensitivity values (when stored): non-finite only for operators that diverged (else a warning)."""
    d = f.get(S.OPERATOR_SENSITIVITY)
    if not H.is_dataset(d):
        return
    v = d[()]
    bad = ~np.isfinite(v).all(axis=1)
    diverged = (f[S.META.DIVERGED_STEP][()] >= 0).any(axis=1)
    odd = np.flatnonzero(bad & ~diverged)
    if odd.size:
        report.warnings.append(
            f"/{S.OPERATOR_SENSITIVITY} has non-finite values for {odd.size} operators that never diverged (rows {odd[:5].tolist()})"
        )
    else:
        report.checks.append(
            f"operator sensitivity {v.shape[0]} x {v.shape[1]} finite (except diverged operators: {int(bad.sum())} rows)"
        )


def _check_params(f: H.File, report: ValidationReport) -> None:
    p = f[S.PARAMS][()]
    finite = np.isfinite(p)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        report.errors.append(f"/{S.PARAMS} has non-finite values in {rows.size} rows (rows {rows[:5].tolist()})")
    out = finite & ((p < 0) | (p > 1))
    if out.any():
        rows = np.flatnonzero(out.any(axis=1))
        report.errors.append(
            f"/{S.PARAMS} has values outside [0, 1] in {rows.size} rows (rows {rows[:5].tolist()}, range [{p[finite].min():.4g}, {p[finite].max():.4g}])"
        )
    if finite.all() and not out.any():
        report.checks.append(f"parameters finite and in [0, 1] ({p.shape[0]} x {p.shape[1]})")


def iter_nonfinite(f: H.File) -> Iterator[tuple[str, str]]:
    """Non-finite data outside flagged divergence, as ``(kind, message)`` pairs.

    ``kind`` is "initial-condition" or "trajectory". Reads one trajectory chunk at a time
    (bounded memory); in an index file only each row's native grid (inside the padding) is read.
    Frame ``t`` of realization ``(r, j)`` may be non-finite only if
    ``0 <= diverged_step[r, j] <= time[t]``.
    """
    traj, inp = f[S.OUTPUTS_FIELDS], f[S.INPUTS_FIELDS]
    n, m, ts = traj.shape[:3]
    side = traj.shape[-1]
    time = f[S.DIM_TIME][()]
    sample = f[S.META.SAMPLE_INDEX][()]
    grids = f[S.META.GRID_SIZES][()]
    div = f[S.META.DIVERGED_STEP][()]
    for r in range(n):
        g = int(grids[r])
        o = (side - g) // 2
        crop = (slice(o, o + g), slice(o, o + g))
        if not np.isfinite(inp[(r, slice(None), *crop)]).all():
            yield "initial-condition", f"non-finite values in /{S.INPUTS_FIELDS} at sample {sample[r]} (row {r})"
        for j in range(m):
            block = traj[(r, j, slice(None), slice(None), *crop)]  # one trajectory chunk
            finite = np.isfinite(block.reshape(ts, -1)).all(axis=1)
            if finite.all():
                continue
            d = int(div[r, j])
            allowed = (time >= d) if d >= 0 else np.zeros(ts, dtype=bool)
            bad = np.flatnonzero(~finite & ~allowed)
            if bad.size:
                why = (
                    f"before its diverged_step {d}"
                    if d >= 0
                    else "in a realization that never diverged (never flagged: diverged_step = -1)"
                )
                yield (
                    "trajectory",
                    (
                        f"non-finite values in /{S.OUTPUTS_FIELDS} at sample {sample[r]} (row {r}) "
                        f"realization {j} steps {time[bad][:5].tolist()} {why}"
                    ),
                )


def _check_data(f: H.File, report: ValidationReport) -> None:
    n, m, ts = f[S.OUTPUTS_FIELDS].shape[:3]
    collectors = {k: Collector(report, k) for k in ("initial-condition", "trajectory")}
    for kind, message in iter_nonfinite(f):
        collectors[kind].add(message)
    collectors["initial-condition"].done(f"initial conditions finite ({n} samples)")
    collectors["trajectory"].done(f"trajectories finite before divergence ({n} x {m} trajectories of {ts} frames)")
