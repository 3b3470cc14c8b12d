"""One global scrambled Sobol point set per experiment, computable slice by slice.

An experiment draws its ``N`` parameter vectors from a single ``d``-dimensional Sobol point
set scrambled with a key derived from the root seed (``derive_seed(seed, Stream.SOBOL)``).
Point ``i`` of that set depends only on ``(seed, d, i, method)``, never on which batch or
process asks for it, so for any ``0 <= a <= b <= N``::

    sobol_points(d, 0, N, seed=s)[a:b] == sobol_points(d, a, b, seed=s)   # bit for bit

Sobol nets have their best balance (every elementary interval holds its exact share of
points) when the *total* number of samples is a power of two and the whole prefix
``0..N-1`` is used; other totals are allowed and silently accepted, they are just a little
less balanced.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Literal

import numpy as np
from scipy.stats import qmc

from spinlock_core.seeding import Stream, derive_seed, numpy_rng

__all__ = ["sobol_points", "SOBOL_BITS", "MAX_POINTS", "MAX_DIMS"]

SOBOL_BITS = 32
"""Digits of the unscrambled Sobol integers (and of the Owen-scrambled digits)."""

MAX_POINTS = 2**SOBOL_BITS
"""Largest global index + 1 a point set may reach."""

MAX_DIMS = int(qmc.Sobol.MAXDIM)
"""Largest dimension scipy's Joe-Kuo direction numbers cover (21201)."""

_MANTISSA_BITS = 53
_FILL_BITS = _MANTISSA_BITS - SOBOL_BITS  # 21 random low-order bits below the Sobol digits
_LMS_BITS = 32  # scipy precision for "lms_shift" (its fast_forward breaks for bits > 32)
_ROW_BLOCK = 1 << 16  # rows per block in the Owen scrambler (bounds temporary memory)

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_BALANCE_WARNING = r".*balance properties of Sobol' points require.*"


def _mix64_int(z: int) -> int:
    """SplitMix64 finaliser on a Python int (bijective on 64-bit words)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised; works in place on a uint64 array and returns it.

    numpy's uint64 array arithmetic wraps modulo 2**64 (no overflow warning for arrays).
    """
    z ^= z >> np.uint64(30)
    z *= np.uint64(_M1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_M2)
    z ^= z >> np.uint64(31)
    return z


def _dimension_keys(scramble_key: int, num_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit keys per dimension, shape [num_dims] each."""
    k1 = [_mix64_int(scramble_key + (2 * j + 1) * _GOLDEN) for j in range(num_dims)]
    k2 = [_mix64_int(scramble_key + (2 * j + 2) * _GOLDEN) for j in range(num_dims)]
    return np.array(k1, dtype=np.uint64), np.array(k2, dtype=np.uint64)


def _keyed_hash(packed: np.ndarray, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    """``mix64(mix64(packed ^ k1) ^ k2)``, broadcasting keys [d] over packed [n, d]."""
    z = packed ^ k1
    _mix64(z)
    z ^= k2
    return _mix64(z)


def _sobol_integers(num_dims: int, start: int, stop: int) -> np.ndarray:
    """Unscrambled Sobol points ``start..stop-1`` as exact 32-bit integers, uint64 [n, d].

    scipy returns ``int * 2**-32`` as float64; every 32-bit integer and that power-of-two
    scale are exact in float64, so multiplying back by ``2**32`` recovers the digits exactly.
    """
    engine = qmc.Sobol(num_dims, scramble=False, bits=SOBOL_BITS)
    if start > 0:
        engine.fast_forward(start)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_BALANCE_WARNING, category=UserWarning)
        u = engine.random(stop - start)
    return (u * float(MAX_POINTS)).astype(np.uint64)


def _owen_scramble(x: np.ndarray, scramble_key: int) -> np.ndarray:
    """Nested uniform (Owen) scrambling of 32-bit digits x (uint64 [n, d]) -> float64 [n, d]."""
    n, d = x.shape
    k1, k2 = _dimension_keys(scramble_key, d)
    out = np.empty((n, d), dtype=np.float64)
    for r0 in range(0, n, _ROW_BLOCK):
        xb = x[r0 : r0 + _ROW_BLOCK]
        y = xb.copy()
        for k in range(SOBOL_BITS):
            # prefix = the k most significant digits of the unscrambled point (0 when k = 0);
            # packed = (k << 32) | prefix is unique per (digit position, prefix).
            prefix = xb >> np.uint64(SOBOL_BITS - k) if k > 0 else np.zeros_like(xb)
            packed = prefix | np.uint64(k << SOBOL_BITS)
            flip = _keyed_hash(packed, k1, k2) >> np.uint64(63)
            y ^= flip << np.uint64(SOBOL_BITS - 1 - k)
        # Low-order fill: 21 bits from the hash of the full 32-digit prefix (position 32).
        packed = xb | np.uint64(SOBOL_BITS << SOBOL_BITS)
        fill = _keyed_hash(packed, k1, k2) >> np.uint64(64 - _FILL_BITS)
        mantissa = (y << np.uint64(_FILL_BITS)) | fill
        out[r0 : r0 + _ROW_BLOCK] = mantissa.astype(np.float64) * (2.0**-_MANTISSA_BITS)
    return out


def _lms_shift(num_dims: int, start: int, stop: int, scramble_key: int) -> np.ndarray:
    """scipy's LMS + digital shift scrambling, seeded from the scramble key."""
    rng = numpy_rng(scramble_key)  # PCG64(seed), identical to np.random.default_rng(seed)
    params = inspect.signature(qmc.Sobol.__init__).parameters
    seed_kw = {"rng": rng} if "rng" in params else {"seed": rng}  # scipy < 1.15 used seed=
    engine = qmc.Sobol(num_dims, scramble=True, bits=_LMS_BITS, **seed_kw)
    if start > 0:
        engine.fast_forward(start)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_BALANCE_WARNING, category=UserWarning)
        return np.asarray(engine.random(stop - start), dtype=np.float64)


def sobol_points(
    num_dims: int,
    start: int,
    stop: int,
    *,
    seed: int,
    scramble: bool = True,
    method: Literal["owen", "lms_shift"] = "owen",
) -> np.ndarray:
    """Points with global indices ``start..stop-1`` of the experiment's Sobol set.

    Args:
        num_dims: dimension ``d`` of the point set (1..21201).
        start: first global index (>= 0).
        stop: one past the last global index (``start <= stop <= 2**32``).
        seed: the experiment's root seed; the scrambling key is
            ``derive_seed(seed, Stream.SOBOL)``. Ignored when ``scramble`` is False.
        scramble: False gives plain Sobol (point 0 is the origin).
        method: ``"owen"`` (default) or ``"lms_shift"``; see below.

    Returns:
        float64 array ``[stop - start, num_dims]`` with values in ``[0, 1)``.

    Unscrambled digits: scipy's ``qmc.Sobol(d, scramble=False, bits=32)`` (Joe-Kuo direction
    numbers, Gray-code order) fast-forwarded to ``start``; its floats are ``x * 2**-32`` and
    are converted back to the exact 32-bit integers ``x``.

    ``"owen"`` (nested uniform scrambling). Write ``x = x_1 x_2 ... x_32`` (``x_1`` most
    significant). Digit ``k`` (``k = 0..31`` counting from ``x_1``) of dimension ``j`` is
    XOR-ed with the top bit of::

        h = mix(mix(((k << 32) | P_k) ^ K1_j) ^ K2_j)

    where ``P_k`` is the integer formed by the ``k`` higher-order unscrambled digits of the
    same coordinate (0 for ``k = 0``), ``mix`` is the SplitMix64 finaliser (bijective on
    uint64), and ``K1_j = mix(S + (2j+1) G)``, ``K2_j = mix(S + (2j+2) G)`` with
    ``S = derive_seed(seed, Stream.SOBOL)`` and ``G = 0x9E3779B97F4A7C15`` (mod 2**64). So each
    digit's flip is a random bit that is a function of (key, dimension, position, prefix):
    exactly Owen's tree of independent permutations for base 2. Below the 32 Sobol digits,
    21 further bits are the top 21 bits of the same hash at position ``k = 32`` with the full
    32-digit prefix, so each value is ``m * 2**-53`` with a 53-bit ``m``: continuous to float64
    resolution and strictly below 1. The scrambled set keeps the (t, m, s)-net structure of
    Sobol: for ``N = 2**m`` points from index 0 every elementary interval holds its share.

    ``"lms_shift"``: scipy's own scrambling (random lower-triangular matrix scramble plus a
    digital shift), ``qmc.Sobol(d, scramble=True, bits=32, rng=numpy_rng(S))``,
    fast-forwarded to ``start``. Values are multiples of ``2**-32`` (scipy 1.17's
    ``fast_forward`` fails for ``bits > 32``).

    Both methods are deterministic functions of ``(seed, d, index)``, identical in every
    process, so batch partitions are slices of one global set.

    Raises:
        ValueError: on a bad dimension, index range, seed or method.
    """
    num_dims, start, stop = int(num_dims), int(start), int(stop)
    if not 1 <= num_dims <= MAX_DIMS:
        raise ValueError(f"num_dims must be in 1..{MAX_DIMS}, got {num_dims}")
    if not 0 <= start <= stop <= MAX_POINTS:
        raise ValueError(
            f"start/stop must satisfy 0 <= start <= stop <= 2**{SOBOL_BITS}, got start={start}, stop={stop}"
        )
    if method not in ("owen", "lms_shift"):
        raise ValueError(f"method must be one of 'owen', 'lms_shift', got {method!r}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    if stop == start:
        return np.empty((0, num_dims), dtype=np.float64)
    if not scramble:
        return _sobol_integers(num_dims, start, stop).astype(np.float64) * (2.0**-SOBOL_BITS)
    scramble_key = derive_seed(int(seed), Stream.SOBOL)
    if method == "lms_shift":
        return _lms_shift(num_dims, start, stop, scramble_key)
    return _owen_scramble(_sobol_integers(num_dims, start, stop), scramble_key)
