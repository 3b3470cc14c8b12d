"""Reference forecasts a learned model has to beat: persistence and the mean field.

Both map a window's input ``[B, k, C, g, g]`` to a forecast ``[B, h, C, g, g]`` in the units
they are given (they never look at the target):

* :func:`persistence`: the last input frame, repeated ``h`` times (``x[t + j] = x[t]``);
  the "no change" forecast of numerical weather prediction and of PDE surrogate papers;
* :class:`MeanField`: a constant per channel, the **train split's mean** of the fields
  (``stats.json``: every train sample, realization and frame before a divergence, at the grid
  size; Spinlock's ``zscore`` centre), broadcast over the grid and the output steps. It is the
  constant that minimises the mean squared error over the train distribution: the
  climatology forecast of weather prediction. It needs no input frame.

Other "mean" references, and why not these: the_well calls a VRMSE of 1 the score of
"predicting the mean", meaning the *target's own* spatial mean, an oracle that sees the answer
(under nRMSE, the analogous oracle is predicting zero: exactly 1). A reference has to be a
forecast one can make, so the climatological mean is used. On Spinlock's heavy-tailed data
(a few operators reach |x| ~ 10^3) the train mean of a channel can lie far from a typical
field, and its nRMSE is then well above 1: beating the mean field is easy there, beating
persistence is the meaningful bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from spinlock_core.data import Normalizer, TrajectoryDataset

__all__ = ["persistence", "MeanField"]


def _check_window(inputs: torch.Tensor) -> None:
    if inputs.ndim != 5:
        raise ValueError(f"expected inputs [B, k, C, g, g], got shape {tuple(inputs.shape)}")


def persistence(inputs: torch.Tensor, n_steps_output: int) -> torch.Tensor:
    """The last input frame repeated: ``inputs [B, k, C, g, g]`` -> ``[B, h, C, g, g]`` (``h = n_steps_output``)."""
    _check_window(inputs)
    if n_steps_output < 1:
        raise ValueError(f"n_steps_output must be >= 1, got {n_steps_output}")
    last = inputs[:, -1:]
    return last.expand(-1, n_steps_output, -1, -1, -1).contiguous()


@dataclass(frozen=True)
class MeanField:
    """The train split's per-channel mean ``mean [C]`` as a constant forecast (see module docstring).

    ``mean`` is in the data's (physical) units; :meth:`normalized` gives the same forecast in a
    normaliser's units.
    """

    mean: torch.Tensor  # [C] float32

    @classmethod
    def from_dataset(cls, dataset_dir: str | Path, grid_size: int | None = None) -> MeanField:
        """From ``stats.json`` of ``dataset_dir`` at ``grid_size`` (the train split's mean per channel).

        Raises:
            DatasetError: the dataset, its splits or its statistics are missing or stale.
        """
        train = TrajectoryDataset(dataset_dir, "train", grid_size, normalize=True, normalization_type="zscore")
        assert train.normalizer is not None
        return cls(train.normalizer.center.clone())

    def normalized(self, normalizer: Normalizer) -> MeanField:
        """The same constant in ``normalizer``'s units (``(mean - center) / scale``)."""
        return MeanField(normalizer.normalize(self.mean.view(-1, 1, 1)).view(-1))

    def __call__(self, inputs: torch.Tensor, n_steps_output: int) -> torch.Tensor:
        """``inputs [B, k, C, g, g]`` (only its shape, device and dtype are used) -> ``[B, h, C, g, g]``."""
        _check_window(inputs)
        b, _, c, g1, g2 = inputs.shape
        if c != self.mean.numel():
            raise ValueError(f"inputs have {c} channels, the mean field {self.mean.numel()}")
        m = self.mean.to(device=inputs.device, dtype=inputs.dtype).view(1, 1, c, 1, 1)
        return m.expand(b, n_steps_output, c, g1, g2).contiguous()
