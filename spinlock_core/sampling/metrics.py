"""Quality metrics of a unit-cube sample (uniformity and pairwise independence).

* ``centered_l2_discrepancy``: scipy's centred L2 discrepancy (``qmc.discrepancy``,
  ``method="CD"``) of the whole ``[n, d]`` sample, as scipy returns it, i.e. the *squared*
  discrepancy ``CD^2`` (Hickernell 1998); lower is more uniform.
* ``max_abs_correlation`` / ``mean_abs_correlation``: max and mean of ``|r_ij|`` over the
  off-diagonal pairs ``i != j`` of the Pearson correlation matrix of the columns. A constant
  column has no defined correlation and counts as 0. Both are 0.0 when ``d < 2`` or ``n < 3``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

__all__ = ["sampling_metrics", "metrics_pass"]


def sampling_metrics(u: np.ndarray) -> dict[str, int | float]:
    """Metrics of a sample ``u`` [n, d] in ``[0, 1]``.

    Returns:
        ``{"n", "d", "centered_l2_discrepancy", "max_abs_correlation",
        "mean_abs_correlation"}`` with native Python ints/floats (JSON-ready).

    Raises:
        ValueError: if ``u`` is not 2-D with ``n >= 1`` and ``d >= 1``, or leaves ``[0, 1]``.
    """
    arr = np.asarray(u, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"u must be a 2-D array [n, d] with n >= 1 and d >= 1, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError("u must hold finite values in [0, 1]")
    n, d = arr.shape
    disc = float(qmc.discrepancy(arr, method="CD"))
    max_corr = mean_corr = 0.0
    if d >= 2 and n >= 3:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(arr, rowvar=False)
        assert isinstance(corr, np.ndarray)  # [d, d] for d >= 2 columns (a scalar only for one variable)
        off = np.abs(corr[~np.eye(d, dtype=bool)])
        off = np.nan_to_num(off, nan=0.0)
        max_corr, mean_corr = float(off.max()), float(off.mean())
    return {
        "n": int(n),
        "d": int(d),
        "centered_l2_discrepancy": disc,
        "max_abs_correlation": max_corr,
        "mean_abs_correlation": mean_corr,
    }


def metrics_pass(
    metrics: dict[str, int | float],
    max_discrepancy: float | None,
    max_pairwise_correlation: float | None,
) -> dict[str, bool]:
    """Threshold checks on :func:`sampling_metrics` output.

    A check passes when the metric is strictly below its threshold; a ``None`` threshold
    disables the check (always passes).

    Returns:
        ``{"discrepancy_pass": bool, "correlation_pass": bool}``.
    """
    for key in ("centered_l2_discrepancy", "max_abs_correlation"):
        if key not in metrics:
            raise ValueError(f"metrics must contain {key!r} (output of sampling_metrics), got keys {sorted(metrics)}")
    disc_ok = max_discrepancy is None or float(metrics["centered_l2_discrepancy"]) < float(max_discrepancy)
    corr_ok = max_pairwise_correlation is None or float(metrics["max_abs_correlation"]) < float(
        max_pairwise_correlation
    )
    return {"discrepancy_pass": bool(disc_ok), "correlation_pass": bool(corr_ok)}
