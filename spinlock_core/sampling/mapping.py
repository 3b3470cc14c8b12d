"""Map unit-cube coordinates ``u`` in ``[0, 1]`` onto parameter specs.

Conventions (one Sobol coordinate per parameter, in the order of ``dims``):

* :class:`IntegerParam` ``[lo, hi]``: ``lo + floor(u (hi - lo + 1))`` clipped to ``hi``, so
  each of the ``hi - lo + 1`` integers has mass ``1 / (hi - lo + 1)`` under uniform ``u``.
* :class:`ContinuousParam` ``[lo, hi]``: ``lo + u (hi - lo)``; with ``log_scale``
  ``lo (hi / lo)^u`` (uniform in ``log``, so the median is the geometric mean
  ``sqrt(lo hi)``). Results are clipped to ``[lo, hi]`` against floating-point round-off.
* :class:`ChoiceParam`: inverse CDF over ``probabilities()``: index ``=
  searchsorted(cumsum(p), u, side="right")``, clipped to the last choice with positive
  probability (so a zero-weight choice is never picked, even for ``u = 1``). The selected
  value is the YAML value itself (``str``, ``int`` or ``float`` kept as given).

All returned values are native Python ``int`` / ``float`` / ``str``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spinlock_core.config.params import ChoiceParam, ContinuousParam, IntegerParam, ParamSpec

__all__ = ["map_unit", "map_column"]


def _check_unit(u: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(u)):
        raise ValueError(f"{name} must hold finite values in [0, 1], got NaN or inf")
    if u.size and (u.min() < 0.0 or u.max() > 1.0):
        raise ValueError(f"{name} must hold values in [0, 1], got range [{u.min()}, {u.max()}]")


def _map_column_checked(u: np.ndarray, spec: ParamSpec) -> list[int | float | str]:
    if isinstance(spec, IntegerParam):
        lo, hi = spec.bounds
        idx = np.floor(u * float(hi - lo + 1)).astype(np.int64)
        return [lo + int(i) for i in np.minimum(idx, hi - lo)]
    if isinstance(spec, ContinuousParam):
        flo, fhi = (float(b) for b in spec.bounds)
        if spec.log_scale:
            vals = flo * (fhi / flo) ** u
        else:
            vals = flo + u * (fhi - flo)
        return [float(v) for v in np.clip(vals, flo, fhi)]
    if isinstance(spec, ChoiceParam):
        p = np.asarray(spec.probabilities(), dtype=np.float64)
        last = int(np.flatnonzero(p > 0)[-1])
        idx = np.searchsorted(np.cumsum(p), u, side="right")
        return [spec.choices[int(i)] for i in np.minimum(idx, last)]
    raise ValueError(f"spec must be an IntegerParam, ContinuousParam or ChoiceParam, got {type(spec).__name__}")


def map_column(u_col: np.ndarray, spec: ParamSpec) -> list[int | float | str]:
    """Map one column ``u_col`` [n] of unit coordinates to ``n`` values of ``spec``.

    Raises:
        ValueError: if ``u_col`` is not 1-D, holds values outside ``[0, 1]``, or ``spec`` is
            not a parameter spec.
    """
    u = np.asarray(u_col, dtype=np.float64)
    if u.ndim != 1:
        raise ValueError(f"u_col must be a 1-D array [n], got shape {u.shape}")
    _check_unit(u, "u_col")
    return _map_column_checked(u, spec)


def map_unit(u: np.ndarray, dims: Sequence[tuple[str, ParamSpec]]) -> list[dict[str, int | float | str]]:
    """Map unit points ``u`` [n, P] to ``n`` parameter dicts, column ``p`` -> ``dims[p]``.

    Args:
        u: points in ``[0, 1]``, shape ``[n, P]`` with ``P == len(dims)``.
        dims: ``(name, spec)`` pairs in column order; names must be unique.

    Returns:
        One ``{name: value}`` dict per row of ``u``, keys in ``dims`` order.

    Raises:
        ValueError: on a shape mismatch, values outside ``[0, 1]``, duplicate names or a bad spec.
    """
    arr = np.asarray(u, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"u must be a 2-D array [n, P], got shape {arr.shape}")
    if arr.shape[1] != len(dims):
        raise ValueError(f"u must have one column per dim: u has {arr.shape[1]} columns, dims has {len(dims)} entries")
    names = [name for name, _ in dims]
    if len(set(names)) != len(names):
        raise ValueError(f"dims names must be unique, got {names}")
    _check_unit(arr, "u")
    columns = [_map_column_checked(arr[:, p], spec) for p, (_, spec) in enumerate(dims)]
    return [dict(zip(names, row)) for row in zip(*columns)] if columns else [{} for _ in range(arr.shape[0])]
