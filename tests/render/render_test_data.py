"""Helpers of the compute-only render tests: synthetic trajectories (no dataset, no files)."""

from __future__ import annotations

import numpy as np


def synthetic(n_ops: int = 2, m: int = 3, frames: int = 4, c: int = 3, g: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Random smooth-ish fields ``[M, F, C, g, g]`` per operator, amplitude growing with the operator."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_ops):
        base = rng.standard_normal((1, frames, c, g, g)).astype(np.float32)
        noise = 0.3 * rng.standard_normal((m, frames, c, g, g)).astype(np.float32)
        out.append(((base + noise) * (1.0 + 9.0 * i)).astype(np.float32))
    return out
