"""Tests for spinlock_core.sampling.metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spinlock_core.sampling import metrics_pass, sampling_metrics, sobol_points
from spinlock_core.seeding import numpy_rng


def _cd2_reference(x: np.ndarray) -> float:
    """Squared centred L2 discrepancy, Hickernell's closed form, written out independently."""
    n, d = x.shape
    a = np.abs(x - 0.5)
    term1 = (13.0 / 12.0) ** d
    term2 = 2.0 / n * np.sum(np.prod(1 + 0.5 * a - 0.5 * a**2, axis=1))
    diff = np.abs(x[:, None, :] - x[None, :, :])
    term3 = np.sum(np.prod(1 + 0.5 * a[:, None, :] + 0.5 * a[None, :, :] - 0.5 * diff, axis=2)) / n**2
    return float(term1 - term2 + term3)


def test_discrepancy_matches_closed_form() -> None:
    x = numpy_rng(3).random((7, 3))
    m = sampling_metrics(x)
    assert m["n"] == 7 and m["d"] == 3
    assert math.isclose(m["centered_l2_discrepancy"], _cd2_reference(x), rel_tol=1e-10)
    # single centre point in 1-D: 13/12 - 2 + 1 = 1/12
    assert math.isclose(sampling_metrics(np.array([[0.5]]))["centered_l2_discrepancy"], 1 / 12, rel_tol=1e-12)


def test_perfect_correlation() -> None:
    t = np.linspace(0.0, 1.0, 11)
    u = np.stack([t, t, 1.0 - t], axis=1)  # |r| = 1 for every pair
    m = sampling_metrics(u)
    assert m["max_abs_correlation"] == pytest.approx(1.0, abs=1e-12)
    assert m["mean_abs_correlation"] == pytest.approx(1.0, abs=1e-12)


def test_known_partial_correlation() -> None:
    # columns t, t and s uncorrelated with t: pair |r| values are 1, 0, 0
    t = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    s = np.array([0.0, 1.0, 0.5, 1.0, 0.0])  # symmetric about the centre: zero covariance with t
    m = sampling_metrics(np.stack([t, t, s], axis=1))
    assert m["max_abs_correlation"] == pytest.approx(1.0, abs=1e-12)
    assert m["mean_abs_correlation"] == pytest.approx(1.0 / 3.0, abs=1e-12)


def test_degenerate_cases_give_zero_correlation() -> None:
    assert sampling_metrics(np.array([[0.1], [0.5], [0.9]]))["max_abs_correlation"] == 0.0  # d = 1
    m = sampling_metrics(np.array([[0.1, 0.2], [0.5, 0.9]]))  # n = 2
    assert m["max_abs_correlation"] == 0.0 and m["mean_abs_correlation"] == 0.0
    const = sampling_metrics(np.array([[0.3, 0.1], [0.3, 0.5], [0.3, 0.9]]))  # constant column
    assert const["max_abs_correlation"] == 0.0


def test_sobol_sample_quality_and_json() -> None:
    m = sampling_metrics(sobol_points(14, 0, 1024, seed=0))
    assert m["max_abs_correlation"] < 0.05
    json.dumps(m)
    assert all(type(m[k]) is float for k in ("centered_l2_discrepancy", "max_abs_correlation", "mean_abs_correlation"))


def test_metrics_pass() -> None:
    m = {"centered_l2_discrepancy": 0.01, "max_abs_correlation": 0.2}
    assert metrics_pass(m, 0.02, 0.3) == {"discrepancy_pass": True, "correlation_pass": True}
    assert metrics_pass(m, 0.005, 0.1) == {"discrepancy_pass": False, "correlation_pass": False}
    assert metrics_pass(m, 0.01, 0.2) == {"discrepancy_pass": False, "correlation_pass": False}  # strict <
    assert metrics_pass(m, None, None) == {"discrepancy_pass": True, "correlation_pass": True}
    with pytest.raises(ValueError):
        metrics_pass({"n": 3}, 0.1, 0.1)


@pytest.mark.parametrize("u", [np.zeros(4), np.zeros((0, 2)), np.array([[1.2, 0.1]]), np.array([[np.inf]])])
def test_bad_input(u: np.ndarray) -> None:
    with pytest.raises(ValueError):
        sampling_metrics(u)
