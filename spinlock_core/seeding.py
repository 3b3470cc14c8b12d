"""One root seed, many independent random streams, addressed by position.

Every random number Spinlock draws comes from a stream derived from the experiment's root
seed (``sampling.sobol.seed``) with :class:`numpy.random.SeedSequence` and a *spawn key*
that names the stream by position, never by execution order, batch position or Python's
salted ``hash()``:

==================  ==========================================  ===========================
stream              spawn key                                   used for
==================  ==========================================  ===========================
``SOBOL``           ``(SOBOL,)``                                Owen / LMS scrambling
``WEIGHTS``         ``(WEIGHTS, sample)``                       operator weights + buffers
``IC``              ``(IC, sample)``                            the sample's initial condition
``NOISE``           ``(NOISE, sample, realization)``            per-step stochastic elements
``SPLIT``           ``(SPLIT, sample)``                         the sample's train/valid/test rank
``STATS``           ``(STATS, grid size)``                      values kept for the quantiles
==================  ==========================================  ===========================

``sample`` is the sample's *global* index in the experiment's Sobol point set, so any
sample can be rebuilt alone, in any process, from the root seed and its index.

Per-step noise seeds are derived from the realization's base seed with :func:`step_seed`
(a SplitMix64 finaliser), which is cheap enough to call once per stream per step.
"""

from __future__ import annotations

import enum

import numpy as np
import torch

__all__ = [
    "Stream",
    "derive_seed",
    "step_seed",
    "numpy_rng",
    "torch_generator",
]

_MASK64 = (1 << 64) - 1


class Stream(enum.IntEnum):
    """First element of every spawn key: which kind of randomness the stream feeds."""

    SOBOL = 0
    WEIGHTS = 1
    IC = 2
    NOISE = 3
    SPLIT = 4
    STATS = 5
    TRAIN = 6  # baselines: model weights and batch order (spinlock_core.baselines)


def derive_seed(root: int, stream: Stream, *position: int) -> int:
    """64-bit seed of the stream ``(stream, *position)`` under ``root``.

    Args:
        root: the experiment's root seed (non-negative int).
        stream: which kind of randomness.
        position: non-negative ints locating the stream (sample index, realization, ...).

    Returns:
        An int in ``[0, 2**63)`` (fits torch's ``manual_seed`` and numpy's generators).
    """
    if root < 0 or any(p < 0 for p in position):
        raise ValueError(f"seeds and positions must be non-negative, got root={root}, position={position}")
    seq = np.random.SeedSequence(int(root), spawn_key=(int(stream), *(int(p) for p in position)))
    lo, hi = (int(v) for v in seq.generate_state(2, dtype=np.uint32))
    return ((hi << 32) | lo) & ((1 << 63) - 1)


def step_seed(base: int, step: int) -> int:
    """Seed for time step ``step`` of a stream whose base seed is ``base`` (SplitMix64)."""
    z = (int(base) + (int(step) + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return z & ((1 << 63) - 1)


def numpy_rng(seed: int) -> np.random.Generator:
    """A PCG64 generator for ``seed`` (platform-independent draws)."""
    return np.random.Generator(np.random.PCG64(int(seed)))


def torch_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen
