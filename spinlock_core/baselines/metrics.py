"""Relative error metrics as the_well (1.2.0, ``the_well/benchmark/metrics/spatial.py``) defines them.

For a prediction ``x`` and a target ``y`` of one item, one output step and one field (channel),
over the ``g x g`` spatial points only:

* ``NMSE  = mean((x - y)^2) / (mean(y^2) + eps)`` (the_well ``NMSE``, ``norm_mode="norm"``);
* ``NRMSE = sqrt(NMSE)`` (the_well ``NRMSE``): 1 for predicting zeros, 0 for a perfect forecast;
* ``VMSE  = mean((x - y)^2) / (var(y) + eps)`` with the *unbiased* spatial variance
  (``torch.std(y) ** 2``, Bessel's correction, as the_well computes it; ``norm_mode="std"``);
* ``VRMSE = sqrt(VMSE)`` (the_well ``VRMSE``): about 1 for predicting the target's own spatial
  mean (exactly ``sqrt((n - 1) / n)`` with ``n = g * g`` points, eps aside).

``eps = 1e-7`` (the_well's default) is added to the *mean square* (or variance) inside the
square root, not to the root. Each metric is per item, step and channel: ``[B, h, C]`` for
tensors ``[B, h, C, g, g]``. the_well then averages over the batch, then per field over the
output steps (``{field}_NRMSE_T=all``) and over fields and steps (``full_NRMSE_T=all``);
:func:`nrmse` with ``reduction="channel"`` gives the per-field numbers and ``"mean"`` the full
one (equal to the_well's for equal batch sizes; here every window weighs the same).
:class:`MetricSums` accumulates the same means over many batches exactly.

Units: these functions compute on whatever they are given. nRMSE is invariant to a common
scale of prediction and target but *not* to a shift, so it differs between normalised and
physical units; :mod:`spinlock_core.baselines.train` always passes physical (data) units.

Layout: Spinlock's channel axis is ``-3`` (``[..., C, g, g]``), where the_well's is last
(``[..., g, g, C]``); the reduction axes are the two spatial ones in both.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["EPS", "Reduction", "nmse", "nrmse", "vmse", "vrmse", "MetricSums"]

#: the_well's default ``eps`` of NMSE / NRMSE / VRMSE.
EPS = 1e-7

Reduction = Literal["none", "channel", "mean"]
_SPATIAL = (-2, -1)


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.ndim < 3:
        raise ValueError(f"expected [..., C, g, g], got shape {tuple(pred.shape)}")


def _floats(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both in float64 when either is, else float32 (half precision is never reduced in place)."""
    dtype = torch.float64 if torch.float64 in (pred.dtype, target.dtype) else torch.float32
    return pred.to(dtype), target.to(dtype)


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    """``values [..., C]`` -> as asked: ``none`` as is, ``channel`` [C], ``mean`` []."""
    if reduction == "none":
        return values
    if reduction == "channel":
        return values.reshape(-1, values.shape[-1]).mean(0)
    if reduction == "mean":
        return values.mean()
    raise ValueError(f"reduction must be none, channel or mean, got {reduction!r}")


def nmse(pred: torch.Tensor, target: torch.Tensor, *, eps: float = EPS, reduction: Reduction = "none") -> torch.Tensor:
    """the_well's NMSE of ``pred`` against ``target``, both ``[..., C, g, g]`` (e.g. ``[B, h, C, g, g]``).

    Returns ``[..., C]`` (``reduction="none"``), ``[C]`` (``"channel"``: mean over every leading
    axis) or a scalar (``"mean"``), in float64 when an input is float64, else float32.
    """
    _check(pred, target)
    p, y = _floats(pred, target)
    err = (p - y).pow(2).mean(_SPATIAL)
    norm = y.pow(2).mean(_SPATIAL)
    return _reduce(err / (norm + eps), reduction)


def nrmse(pred: torch.Tensor, target: torch.Tensor, *, eps: float = EPS, reduction: Reduction = "mean") -> torch.Tensor:
    """the_well's NRMSE ``sqrt(mean((p - y)^2) / (mean(y^2) + eps))`` over the spatial axes.

    Args:
        pred, target: ``[..., C, g, g]``, typically ``[B, h, C, g, g]`` (items, output steps,
            channels, grid), same shape, same units.
        eps: added to the target's mean square (the_well: 1e-7).
        reduction: ``none`` -> ``[..., C]`` (one value per item, step and channel),
            ``channel`` -> ``[C]`` (mean over items and steps), ``mean`` -> scalar (mean over all).
            The square root is taken per item, step and channel *before* any mean.
    """
    return _reduce(nmse(pred, target, eps=eps).sqrt(), reduction)


def vmse(pred: torch.Tensor, target: torch.Tensor, *, eps: float = EPS, reduction: Reduction = "none") -> torch.Tensor:
    """the_well's VMSE: ``mean((p - y)^2) / (var(y) + eps)``, ``var`` unbiased over the ``g x g`` points."""
    _check(pred, target)
    p, y = _floats(pred, target)
    err = (p - y).pow(2).mean(_SPATIAL)
    var = y.flatten(-2).std(dim=-1, correction=1).pow(2)
    return _reduce(err / (var + eps), reduction)


def vrmse(pred: torch.Tensor, target: torch.Tensor, *, eps: float = EPS, reduction: Reduction = "mean") -> torch.Tensor:
    """the_well's VRMSE ``sqrt(VMSE)``; arguments and shapes as :func:`nrmse`."""
    return _reduce(vmse(pred, target, eps=eps).sqrt(), reduction)


class MetricSums:
    """Exact means of per-item metrics over many batches: every item (window) weighs the same.

    ``add(values)`` takes ``[B, h, C]`` (e.g. ``nrmse(..., reduction="none")``); ``channel()``
    is the mean per channel ``[C]``, ``step()`` per output step ``[h]``, ``mean()`` over all.
    Sums are kept in float64 on the CPU.
    """

    def __init__(self) -> None:
        self._sum: torch.Tensor | None = None  # [h, C]
        self._count = 0

    def add(self, values: torch.Tensor) -> None:
        if values.ndim != 3:
            raise ValueError(f"expected [B, h, C] values, got shape {tuple(values.shape)}")
        s = values.detach().to("cpu", torch.float64).sum(0)
        if self._sum is None:
            self._sum = s
        elif self._sum.shape != s.shape:
            raise ValueError(
                f"values [B, {', '.join(map(str, s.shape))}] after [B, {', '.join(map(str, self._sum.shape))}]"
            )
        else:
            self._sum += s
        self._count += int(values.shape[0])

    @property
    def count(self) -> int:
        """Items added so far."""
        return self._count

    def _mean_hc(self) -> torch.Tensor:
        if self._sum is None or self._count == 0:
            raise ValueError("no values were added")
        return self._sum / self._count

    def channel(self) -> torch.Tensor:
        """Mean per channel ``[C]`` (float64)."""
        return self._mean_hc().mean(0)

    def step(self) -> torch.Tensor:
        """Mean per output step ``[h]`` (float64)."""
        return self._mean_hc().mean(1)

    def mean(self) -> float:
        """Mean over items, steps and channels."""
        return float(self._mean_hc().mean())
