"""Values as files store them: JSON text, HDF5 attributes, variable-length strings."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["json_dumps", "attr_value", "decode_attr", "decode_strings"]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def json_dumps(obj: Any, **kw: Any) -> str:
    """JSON text of ``obj`` (numpy scalars and arrays, sets and paths allowed)."""
    return json.dumps(obj, default=_json_default, **kw)


def attr_value(value: Any) -> Any:
    """Python value -> something h5py stores as an attribute (mappings and lists of str as JSON)."""
    if value is None:
        raise ValueError("attribute values must not be None")
    if isinstance(value, str | bool | int | float | np.generic):
        return value
    if isinstance(value, Mapping):
        return json_dumps(value)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, Sequence):
        if len(value) and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value):
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


def decode_strings(values: Any) -> np.ndarray:
    """Array of vlen strings (bytes or str) -> numpy ``str`` array of the same shape."""
    flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values, dtype=object).ravel()]
    return np.array(flat, dtype=str).reshape(np.shape(values)) if flat else np.zeros(np.shape(values), dtype=str)
