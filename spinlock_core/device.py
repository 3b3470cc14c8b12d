"""Device resolution: the one place that turns a device name into a ``torch.device``.

Names: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` (= ``cuda:0``) or ``cuda:N``.
A CUDA name is accepted only where CUDA is available and device N exists; every refusal is a
:class:`DeviceError` whose message names the setting and what is allowed here.
"""

from __future__ import annotations

import re

import torch

__all__ = ["DEVICE_NAMES", "DeviceError", "resolve_device", "is_device_name"]

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
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
