"""Private helpers shared by the writer, the index and the reader."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import schema as S

STR_DTYPE = h5py.string_dtype("utf-8")


def tmp_path_for(path: Path) -> Path:
    """``<path>.<pid>.tmp`` in the same directory (same filesystem, so ``os.replace`` is atomic)."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def commit_tmp(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, atomically rename it onto ``path``, fsync the directory."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def json_dumps(obj: Any) -> str:
    """JSON text of ``obj`` (numpy scalars/arrays allowed)."""
    return json.dumps(obj, default=_json_default)


def attr_value(value: Any) -> Any:
    """Python value -> something h5py stores as an attribute (mappings/lists of str as JSON)."""
    if value is None:
        raise ValueError("attribute values must not be None")
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    if isinstance(value, Mapping):
        return json_dumps(value)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Sequence):
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value) and len(value):
            return np.asarray(value, dtype=np.int64)
        return json_dumps(list(value))
    return json_dumps(value)


def decode_attr(value: Any) -> Any:
    """h5py attribute -> plain Python (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [decode_attr(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode_strings(values: np.ndarray) -> np.ndarray:
    """Array of vlen strings (bytes or str) -> numpy ``str`` array of the same shape."""
    flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values, dtype=object).ravel()]
    return np.array(flat, dtype=str).reshape(np.shape(values)) if flat else np.zeros(np.shape(values), dtype=str)


def pixel_centres(g: int) -> np.ndarray:
    """``(i + 0.5) / g`` for i in 0..g-1: pixel centres of a g-grid on the unit square."""
    return (np.arange(g, dtype=np.float64) + 0.5) / g


_COORD_ATTRS = {c.name: c for c in S.COORDINATES}


def create_coordinates(
    group: h5py.Group, values: Mapping[str, np.ndarray], *, yx_units: str, yx_description: str
) -> dict[str, h5py.Dataset]:
    """Create one dimension scale per entry of ``values`` (name = dim name) in ``group``."""
    scales: dict[str, h5py.Dataset] = {}
    for name, vals in values.items():
        spec = _COORD_ATTRS[name]
        if spec.dtype == "str":
            d = group.create_dataset(name, data=np.asarray(list(vals), dtype=object), dtype=STR_DTYPE)
        else:
            d = group.create_dataset(name, data=np.asarray(vals, dtype=spec.dtype))
        d.make_scale(name)
        d.attrs["long_name"] = name
        if name in (S.DIM_Y, S.DIM_X):
            d.attrs["units"] = yx_units
            d.attrs["description"] = yx_description
        else:
            d.attrs["description"] = spec.description
            if spec.units:
                d.attrs["units"] = spec.units
        scales[name] = d
    return scales


def attach_dims(dset: h5py.Dataset, dims: Sequence[str], scales: Mapping[str, h5py.Dataset]) -> None:
    for axis, name in enumerate(dims):
        dset.dims[axis].attach_scale(scales[name])


def describe(dset: h5py.Dataset, spec: S.DatasetSpec) -> None:
    """CF-ish attributes (long_name, units, description) on a data variable."""
    dset.attrs["long_name"] = spec.alias or spec.path.rsplit("/", 1)[-1]
    dset.attrs["description"] = spec.description
    if spec.units:
        dset.attrs["units"] = spec.units


def spec_by_path(path: str) -> S.DatasetSpec:
    for d in S.DATASETS:
        if d.path == path:
            return d
    raise KeyError(path)


def finish_variable(root: h5py.File | h5py.Group, path: str, scales: Mapping[str, h5py.Dataset]) -> None:
    """Attach scales, CF attrs and the root alias (a hard link) of the dataset at ``path``."""
    spec = spec_by_path(path)
    dset = root[path]
    describe(dset, spec)
    attach_dims(dset, spec.dims, scales)
    if spec.alias:
        root[spec.alias] = dset


def check_rows(rows: slice, n: int, name: str) -> tuple[int, int]:
    """Validate a row slice (step 1) against ``n`` rows; returns (start, stop)."""
    if not isinstance(rows, slice):
        raise ValueError(f"{name}: rows must be a slice, got {type(rows).__name__}")
    start, stop, step = rows.indices(n)
    if (
        step != 1
        or (rows.start is not None and rows.start < 0)
        or (rows.stop is not None and rows.stop > n)
        or start >= stop
    ):
        raise ValueError(f"{name}: rows must be a non-empty slice within [0, {n}) with step 1, got {rows}")
    return start, stop
