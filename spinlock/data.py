"""Training data: :class:`TrajectoryDataset` and :class:`Normalizer` (see :mod:`spinlock_core.data`)."""

from spinlock_core.data import Normalizer, TrajectoryDataset

__all__ = ["TrajectoryDataset", "Normalizer"]
