"""Small JSON files of a dataset: the manifest, points, specs and render records.

Each is one JSON object with ``kind`` and ``format`` (:data:`RECORD_FORMAT`) and the ``hash``
of the config it was made from, written atomically (:mod:`spinlock_core.files`). Nothing is pickled:
floats are written with ``repr`` precision, so float64 values round-trip exactly.

=============  ==========================================================================
kind           body
=============  ==========================================================================
``manifest``   experiment name, hashes (points, specs, rollouts, features, renders), samples,
               batch size, batches, expected grid sizes, which stages are expected
``points``     batch, ``start``/``stop`` global indices, dimension ``names``, ``unit``
               ``[n][P]`` points in [0, 1), ``metrics`` of the whole point set
``specs``      batch, ``points_hash``, ``specs`` (one operator-spec object per sample)
``renders``    partition, ``rollouts_hash``, video/poster names, render statistics
=============  ==========================================================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from spinlock_core.files import write_text_atomic

from .codec import json_dumps
from .errors import DatasetError

T = TypeVar("T")

__all__ = ["RECORD_FORMAT", "RECORD_KINDS", "write_record", "read_record", "read_hashed_json"]

RECORD_FORMAT = 1
RECORD_KINDS: tuple[str, ...] = ("manifest", "points", "specs", "renders")


def _finite(obj: Any, where: str) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where}: non-finite number {obj!r} cannot be stored")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{where}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _finite(v, f"{where}[{i}]")


def write_record(path: str | Path, kind: str, config_hash: str, body: dict[str, Any]) -> Path:
    """Write the record ``{kind, format, hash, **body}`` to ``path`` atomically."""
    if kind not in RECORD_KINDS:
        raise ValueError(f"record kind must be one of {RECORD_KINDS}, got {kind!r}")
    if not config_hash:
        raise ValueError(f"a {kind} record needs the hash of the config it was made from")
    payload = {"kind": kind, "format": RECORD_FORMAT, "hash": str(config_hash), **body}
    _finite(payload, kind)
    return write_text_atomic(Path(path), json_dumps(payload, indent=1, allow_nan=False) + "\n")


def read_record(path: str | Path, kind: str) -> dict[str, Any]:
    """The record at ``path``, checked to be a ``kind`` record of this format.

    Raises:
        DatasetError: missing, unreadable, not JSON, not an object, another kind or format,
            or without a hash.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, f"no {kind} file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot read the {kind} file ({exc})") from None
    except ValueError as exc:
        raise DatasetError(path, f"the {kind} file is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(path, f"the {kind} file must hold a JSON object, got {type(data).__name__}")
    if data.get("kind") != kind:
        raise DatasetError(path, f"expected a {kind} file, found kind {data.get('kind')!r}")
    if data.get("format") != RECORD_FORMAT:
        raise DatasetError(path, f"{kind} file format {data.get('format')!r} is not {RECORD_FORMAT}")
    if not isinstance(data.get("hash"), str) or not data["hash"]:
        raise DatasetError(path, f"the {kind} file carries no config hash")
    return data


def read_hashed_json(
    path: Path, *, fmt: str, what: str, fix: str, parse: Callable[[dict[str, Any]], T], hash_of: Callable[[T], str]
) -> T:
    """A JSON document that carries its own content hash (``splits.json``, ``stats.json``).

    ``parse`` builds the value from the document (any exception = malformed); ``hash_of`` is
    the hash the value must have (the document's ``hash``).

    Raises:
        DatasetError: missing (``no <what> file``), unparsable, another format, or edited (the
            hash differs); ``fix`` says what rebuilds it.
    """
    if not path.is_file():
        raise DatasetError(path, f"no {what} file", fix)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != fmt:
            raise ValueError(f"format is {doc.get('format')!r}, expected {fmt!r}")
        out = parse(doc)
    except Exception as exc:  # any malformed content: one error naming the file
        raise DatasetError(path, f"not a {what} file ({type(exc).__name__}: {exc})", fix) from None
    if hash_of(out) != doc.get("hash"):
        raise DatasetError(path, f"content does not match its hash {doc.get('hash')!r} (edited by hand?)", fix)
    return out
