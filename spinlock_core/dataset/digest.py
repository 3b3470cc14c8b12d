"""Content digests of a dataset: what "the same data" means, file by file.

Two runs of one config must give the same data whatever the executor, worker count or host.
:func:`dataset_digest` hashes every file of a dataset directory by content:

* HDF5 files: every dataset's dtype, shape and values (strings as UTF-8) and every attribute,
  in sorted path order, without the HDF5 bookkeeping (dimension-scale reference lists, whose
  bytes are object addresses) and without the **volatile** entries below;
* JSON files: the parsed document without volatile keys; every other file (videos, posters,
  YAML): its bytes, except ``experiment.yaml``, whose ``dataset.output_dir`` is where the copy
  lives, not what it holds.

Volatile, by design (when and how fast, not what): the attributes ``creation_date`` and
``extraction_timestamp``, the per-sample ``extraction_time`` feature metadata, the index's
table of source files (modification times), the JSON keys ``updated``, ``seconds`` and
``frames_per_s``, and the ``dataset.output_dir`` inside stored configs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from spinlock_core.files import temp_owner_pid

from . import hdf5 as H

__all__ = ["VOLATILE_ATTRS", "VOLATILE_DATASETS", "VOLATILE_KEYS", "file_digest", "dataset_digest"]

VOLATILE_ATTRS = frozenset({"creation_date", "extraction_timestamp", "REFERENCE_LIST", "DIMENSION_LIST"})
VOLATILE_DATASETS = frozenset({"features/sdf/metadata/extraction_time", "metadata/index_sources"})
VOLATILE_KEYS = frozenset({"updated", "seconds", "frames_per_s"})


def _drop_output_dir(text: str) -> str:
    try:
        cfg = json.loads(text)
    except ValueError:
        return text
    if isinstance(cfg, dict) and isinstance(cfg.get("dataset"), dict):
        cfg["dataset"].pop("output_dir", None)
    return json.dumps(cfg, sort_keys=True)


def _value_bytes(value: Any, name: str = "") -> bytes:
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        items = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.ravel().tolist()]
        if name == "config":
            items = [_drop_output_dir(v) for v in items]
        return json.dumps([list(arr.shape), items]).encode()
    return f"{arr.dtype.str}{arr.shape}".encode() + np.ascontiguousarray(arr).tobytes()


def _hdf5_digest(path: Path) -> str:
    h = hashlib.sha256()
    with H.open_read(path, root=path.parent) as f:
        entries: list[tuple[str, Any]] = [("", f)]
        f.visititems(lambda name, obj: entries.append((name, obj)))
        for name, obj in sorted(entries, key=lambda e: e[0]):
            for key in sorted(obj.attrs.keys()):
                if key not in VOLATILE_ATTRS:
                    h.update(f"@{name}/{key}=".encode() + _value_bytes(obj.attrs[key], key))
            if H.is_dataset(obj) and name not in VOLATILE_DATASETS:
                h.update(f"{name}:".encode() + _value_bytes(obj[()]))
    return h.hexdigest()


def _strip(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in VOLATILE_KEYS}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def file_digest(path: str | Path) -> str:
    """SHA-256 of one dataset file's content (see the module docstring)."""
    path = Path(path)
    if path.suffix == ".h5":
        return _hdf5_digest(path)
    if path.suffix == ".json":
        doc = _strip(json.loads(path.read_text(encoding="utf-8")))
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    if path.name == "experiment.yaml":
        import yaml

        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        return hashlib.sha256(_drop_output_dir(json.dumps(cfg)).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dataset_digest(root: str | Path) -> dict[str, str]:
    """Relative path -> :func:`file_digest` of every file under the dataset directory ``root``."""
    root = Path(root)
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and temp_owner_pid(p) is None:  # a writer's temporary file is not data yet
            out[p.relative_to(root).as_posix()] = file_digest(p)
    return out
