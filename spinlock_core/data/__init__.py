"""Training data: torch datasets over a Spinlock dataset (reads through :mod:`spinlock_core.dataset`).

* :class:`TrajectoryDataset`: windows ``input_fields [k, C, g, g] -> output_fields [h, C, g, g]``
  of one split (by operator, ``splits.json``) at one grid size, never across a divergence;
* :class:`Normalizer`: per-channel normalisation from the train split's ``stats.json`` and its
  inverse (``TrajectoryDataset(..., normalize=True).normalizer``).

Five lines to a training loop::

    from torch.utils.data import DataLoader
    from spinlock_core.data import TrajectoryDataset
    train = TrajectoryDataset("datasets/default", "train", grid_size=64, normalize=True)
    for batch in DataLoader(train, batch_size=32, shuffle=True, num_workers=2, persistent_workers=True):
        x, y = batch["input_fields"], batch["output_fields"]
"""

from .normalize import NORMALIZATION_TYPES, Normalizer
from .trajectories import TrajectoryDataset, WindowTable

__all__ = ["TrajectoryDataset", "WindowTable", "Normalizer", "NORMALIZATION_TYPES"]
