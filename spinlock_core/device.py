"""Device resolution: the one place that turns a device name into a ``torch.device``.

Names: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
A CUDA name is accepted only where CUDA is available and device N exists; every refusal is a
:class:`DeviceError` whose message names the setting and what is allowed here.

``cuda`` (and ``auto`` on a CUDA machine) means **the GPU this worker owns**:

* one visible GPU (a Dask worker started with ``CUDA_VISIBLE_DEVICES=i``, a one-GPU machine):
  ``cuda:0``;
* several visible GPUs (multiprocess step processes on a multi-GPU host): the first GPU whose
  host-wide lock file (``$SPINLOCK_GPU_LOCK_DIR``, default ``/tmp/spinlock-gpus-<uid>``, one
  file per GPU UUID) no other live process holds (:func:`claim_gpu`). The process keeps it
  until it exits (a killed process releases it: the lock is ``flock``). With the ``gpu`` pool
  given one slot per GPU, concurrent steps never share a GPU; if every GPU is held anyway the
  process shares the first one (never waits).

``cuda:N`` is taken literally. Which GPU a step used never changes its numbers (same model);
the files record the device kind only.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = [
    "DEVICE_NAMES",
    "DeviceError",
    "resolve_device",
    "is_device_name",
    "GPU_LOCK_DIR_ENV",
    "gpu_lock_dir",
    "claim_gpu",
    "torch_threads",
    "available_cpus",
    "CPU_WORKERS_ENV",
    "cpu_workers",
]

GPU_LOCK_DIR_ENV = "SPINLOCK_GPU_LOCK_DIR"
#: GPUs this process claimed: key (the visible GPU ids, joined) -> (index, lock file descriptor).
_CLAIMED: dict[str, tuple[int, int]] = {}

#: What a device setting may say (for messages and help texts).
DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_NAME_RE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


class DeviceError(ValueError):
    """A device name that is malformed or not available on this machine."""


def is_device_name(name: str) -> bool:
    """True when ``name`` is syntactically a device name (availability not checked)."""
    return bool(_NAME_RE.fullmatch(str(name)))


def resolve_device(name: str | torch.device, *, setting: str = "device") -> torch.device:
    """The ``torch.device`` for ``name`` (see module docstring).

    Raises:
        DeviceError: malformed, or CUDA asked for where it is absent, or no such CUDA device.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip()
    if not is_device_name(text):
        raise DeviceError(f"{setting} {text!r} is not a device (allowed: {DEVICE_NAMES})")
    if text == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if text in ("auto", "cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"{setting} is {text!r} but CUDA is not available here (use 'auto' or 'cpu')")
        ids = [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]
        return torch.device("cuda", claim_gpu(ids))
    dev = torch.device(text)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{setting} is {text!r} but CUDA is not available here (use 'auto' or 'cpu')")
        count = torch.cuda.device_count()
        if (dev.index or 0) >= count:
            raise DeviceError(
                f"{setting} is {text!r} but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
    return dev


def gpu_lock_dir() -> Path:
    """Where GPU claims live on this host (``$SPINLOCK_GPU_LOCK_DIR``, default ``/tmp/spinlock-gpus-<uid>``)."""
    return Path(os.environ.get(GPU_LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"spinlock-gpus-{os.getuid()}")


def claim_gpu(gpu_ids: Sequence[str], lock_dir: Path | None = None) -> int:
    """Index into ``gpu_ids`` (the visible GPUs' UUIDs, in CUDA order) of the GPU this process owns.

    One id: 0. Several: the first one no other live process has claimed (an exclusive,
    non-blocking ``flock`` on ``<lock_dir>/<id>.lock``, held until this process exits), the
    same answer on every later call; 0 when all are held (shared rather than waiting).
    """
    if len(gpu_ids) <= 1:
        return 0
    key = "|".join(gpu_ids)
    if key in _CLAIMED:
        return _CLAIMED[key][0]
    where = Path(lock_dir) if lock_dir is not None else gpu_lock_dir()
    where.mkdir(parents=True, exist_ok=True)
    for i, gid in enumerate(gpu_ids):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", gid) + ".lock"
        fd = os.open(where / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _CLAIMED[key] = (i, fd)
        return i
    return 0


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op CPU threads (None: unchanged), then restore.

    CPU results depend on the thread count in their last bits; every compute stage runs under
    ``simulation.cpu_threads`` (see :class:`spinlock_core.config.SimulationConfig`).
    """
    old = torch.get_num_threads()
    if n is not None and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


#: Environment variable: chunks a CPU compute step may run at once in threads (see :func:`cpu_workers`).
CPU_WORKERS_ENV = "SPINLOCK_CPU_WORKERS"


def cpu_workers(cpu_threads: int) -> int:
    """Threads a CPU compute step may run independent chunks in, each with ``cpu_threads`` torch threads.

    ``$SPINLOCK_CPU_WORKERS`` (``spinlock generate`` sets it for in-process runs, where one
    partition runs at a time: the cores this process may use / ``cpu_threads``), capped so that
    ``workers x cpu_threads`` never exceeds :func:`available_cpus`; 1 when unset (runs started
    elsewhere, or several partitions at once, may share the cores). The data never depend on it.
    """
    raw = os.environ.get(CPU_WORKERS_ENV, "").strip()
    if raw and not (raw.isdigit() and int(raw) > 0):
        raise ValueError(f"${CPU_WORKERS_ENV} must be a positive integer, got {raw!r}")
    want = int(raw) if raw else 1
    return max(1, min(want, available_cpus() // max(1, cpu_threads)))


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
