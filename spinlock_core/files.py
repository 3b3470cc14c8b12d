"""Atomic files: write under a temporary name, rename when complete; clean what dead writers left.

The one owner of temporary names in Spinlock (dataset files, videos, images). Every file is
written as ``<name>.<pid>.<token>.tmp`` (``...tmp.<ext>`` where the format needs its
extension) in its final directory
(same filesystem, so :func:`os.replace` is atomic) and renamed onto ``<name>`` only when
complete, after an ``fsync`` of the file and then of the directory. A crash or a kill at any
moment leaves either the old file or the new one under ``<name>``, plus at most a ``*.tmp``
file that no reader ever takes (readers only list final names). :func:`remove_stale_temps`
deletes the temporary files of writers whose process is gone (the pid is in the name).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TMP_SUFFIX",
    "tmp_path_for",
    "commit_tmp",
    "fsync_dir",
    "remove_quietly",
    "write_bytes_atomic",
    "write_text_atomic",
    "writable_dir_problem",
    "temp_owner_pid",
    "pid_alive",
    "remove_stale_temps",
    "own_temps",
    "remove_own_temps",
    "file_lock",
]

TMP_SUFFIX = ".tmp"
_TMP_RE = re.compile(r"^(?P<name>.+)\.(?P<pid>[0-9]+)\.(?P<token>[0-9a-f]{8})\.tmp(\.[A-Za-z0-9]+)?$")


def tmp_path_for(path: Path, *, keep_suffix: bool = False) -> Path:
    """``<path>.<pid>.<random token>.tmp`` beside ``path`` (two writers never share one).

    ``keep_suffix``: append ``path``'s extension again (``x.mp4.<pid>.<token>.tmp.mp4``) for
    encoders that choose the format from the name.
    """
    path = Path(path)
    ext = path.suffix if keep_suffix else ""
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}{ext}")


def fsync_dir(directory: Path) -> None:
    """fsync a directory (a rename in it is then durable); a no-op where directories have no fd."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def commit_tmp(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, atomically rename it onto ``path``, fsync the directory."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (its directory is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        commit_tmp(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def writable_dir_problem(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (None: they can).

    Probes by creating and deleting a temporary file (permission bits do not tell for root,
    read-only mounts or full quotas); nothing is left behind.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return f"{directory} is not a directory"
    try:
        fd, name = tempfile.mkstemp(prefix=".spinlock-probe.", dir=directory)
    except OSError as exc:
        return f"{directory} is not writable ({exc.strerror or exc})"
    os.close(fd)
    remove_quietly(Path(name))
    return None


def temp_owner_pid(path: Path) -> int | None:
    """The pid in a temporary file's name, or None when ``path`` is not one of ours."""
    m = _TMP_RE.match(Path(path).name)
    return int(m.group("pid")) if m else None


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(root: Path) -> list[Path]:
    """Delete every ``*.<pid>.<token>.tmp`` under ``root`` whose writer process is gone; returns them."""
    removed: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for tmp in root.rglob(f"*{TMP_SUFFIX}*"):
        pid = temp_owner_pid(tmp)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            _remove_tree_or_file(tmp)
            removed.append(tmp)
    return removed


def _remove_tree_or_file(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        remove_quietly(path)


def own_temps(root: Path) -> list[Path]:
    """The temporary files under ``root`` written by this process (for cleanup on interrupt)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [p for p in root.rglob(f"*{TMP_SUFFIX}*") if temp_owner_pid(p) == os.getpid()]


def remove_own_temps(root: Path) -> list[Path]:
    """Delete this process's temporary files (and directories) under ``root``; returns them."""
    out = own_temps(root)
    for p in out:
        _remove_tree_or_file(p)
    return out


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created; released on exit, also when the process dies)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                break
            except OSError as exc:  # pragma: no cover - EINTR on old kernels
                if exc.errno != errno.EINTR:
                    raise
        yield
    finally:
        os.close(fd)
