"""Per-channel normalisation of fields and one-step deltas from ``stats.json``.

``normalize(x) = (x - center[c]) / scale[c]`` on tensors ``[..., C, H, W]`` (channel axis -3),
``denormalize`` its inverse; the ``*_delta`` pair uses the statistics of the one-step deltas
(for models that predict ``x[t+1] - x[t]``). Types, as the_well names them:

=============  ========================  ==========================================
type           center                    scale
=============  ========================  ==========================================
``zscore``     mean                      std
``rms``        0                         rms
``robust``     median                    IQR / 1.349 (heavy tails: a few operators
                                         dominate the std)
=============  ========================  ==========================================

A scale of zero (a constant channel) is taken as 1, so a constant channel maps to 0 and back.

``robust`` is the loader's default: in the default dataset the std of a channel is about 140
times its robust scale (a few operators reach |x| ~ 10^3 while the median operator stays near
1), so a z-score squeezes almost every field to |x| < 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from spinlock_core.dataset import ChannelStats, DatasetStats

__all__ = ["NORMALIZATION_TYPES", "NormalizationType", "Normalizer"]

NormalizationType = Literal["zscore", "rms", "robust"]
NORMALIZATION_TYPES: tuple[str, ...] = ("zscore", "rms", "robust")


def _center_scale(stats: list[ChannelStats], kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "zscore":
        c, s = [x.mean for x in stats], [x.std for x in stats]
    elif kind == "rms":
        c, s = [0.0 for _ in stats], [x.rms for x in stats]
    elif kind == "robust":
        c, s = [x.robust_center for x in stats], [x.robust_scale for x in stats]
    else:
        raise ValueError(f"normalization_type must be one of {', '.join(NORMALIZATION_TYPES)}, got {kind!r}")
    center = torch.tensor(c, dtype=torch.float64)
    scale = torch.tensor(s, dtype=torch.float64)
    if not (torch.isfinite(center).all() and torch.isfinite(scale).all()):
        raise ValueError("the statistics hold non-finite values (an empty channel?): cannot normalise")
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return center.float(), scale.float()


@dataclass(frozen=True)
class Normalizer:
    """Centers and scales ``[C]`` (float32) of the fields and of the deltas at one grid size."""

    kind: str
    center: torch.Tensor
    scale: torch.Tensor
    delta_center: torch.Tensor
    delta_scale: torch.Tensor

    @classmethod
    def from_stats(cls, stats: DatasetStats, grid_size: int, kind: str = "robust") -> Normalizer:
        """From the dataset's statistics at ``grid_size`` (raises ValueError: unknown type or grid)."""
        c, s = _center_scale(stats.of(grid_size, "fields"), kind)
        dc, ds = _center_scale(stats.of(grid_size, "deltas"), kind)
        return cls(kind, c, s, dc, ds)

    @staticmethod
    def _shape(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 3 or x.shape[-3] != v.numel():
            raise ValueError(f"expected [..., {v.numel()}, H, W], got shape {tuple(x.shape)}")
        return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._shape(self.center, x)) / self._shape(self.scale, x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._shape(self.scale, x) + self._shape(self.center, x)

    def normalize_delta(self, d: torch.Tensor) -> torch.Tensor:
        return (d - self._shape(self.delta_center, d)) / self._shape(self.delta_scale, d)

    def denormalize_delta(self, d: torch.Tensor) -> torch.Tensor:
        return d * self._shape(self.delta_scale, d) + self._shape(self.delta_center, d)
