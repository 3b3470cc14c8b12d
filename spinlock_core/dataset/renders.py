"""Render files of a partition: the preview video (MP4 or GIF), its poster PNG and a JSON record.

The video and poster are written by the render code (atomically); the record
(``renders/grid_G/batch_B.json``) is written last and names them, with the hash of the
rollouts and of the render options they came from, so a stale preview is recognisable and a
half-written one (no record) never counts as done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import DatasetError
from .layout import DatasetLayout, PartitionId
from .records import read_record, write_record

__all__ = ["write_render_record", "read_render_record", "check_media_file"]

_SIGNATURES = {".mp4": (4, b"ftyp"), ".gif": (0, b"GIF8"), ".png": (0, b"\x89PNG\r\n\x1a\n")}


def write_render_record(
    layout: DatasetLayout,
    part: PartitionId,
    renders_hash: str,
    rollouts_hash: str,
    files: dict[str, Path],
    stats: dict[str, Any],
) -> Path:
    """Record the render of ``part``: ``files`` maps "video"/"poster" to paths inside the dataset."""
    names = {k: Path(v).resolve().relative_to(layout.root.resolve()).as_posix() for k, v in files.items()}
    body = {"partition": part.key, "rollouts_hash": rollouts_hash, "files": names, "stats": stats}
    return write_record(layout.render_record(part), "renders", renders_hash, body)


def read_render_record(layout: DatasetLayout, part: PartitionId) -> dict[str, Any]:
    """The render record of ``part``, with its media files checked (:func:`check_media_file`).

    Raises:
        DatasetError: missing or corrupt record, or a missing or corrupt video or poster.
    """
    path = layout.render_record(part)
    rec = read_record(path, "renders")
    files = rec.get("files")
    if not isinstance(files, dict) or not files:
        raise DatasetError(path, "render record names no files")
    for name in files.values():
        media = (layout.root / str(name)).resolve()
        if not str(media).startswith(str(layout.root.resolve())):
            raise DatasetError(path, f"render record points outside the dataset: {name}")
        check_media_file(media)
    return rec


def check_media_file(path: Path) -> None:
    """A video or image file exists, is not empty and starts with its format's signature.

    Raises:
        DatasetError: it does not.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "render file missing")
    sig = _SIGNATURES.get(path.suffix.lower())
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise DatasetError(path, "render file is empty")
    if sig is not None and head[sig[0] : sig[0] + len(sig[1])] != sig[1]:
        raise DatasetError(path, f"not a {path.suffix[1:].upper()} file (bad signature)")
