"""Tests for spinlock_core.sampling.mapping: unit coordinates -> parameter values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from spinlock_core.config.params import ChoiceParam, ContinuousParam, IntegerParam
from spinlock_core.sampling import map_column, map_unit, sobol_points

N = 4096


def test_integer_uniform_chi_square() -> None:
    spec = IntegerParam(bounds=(2, 5))
    vals = map_column(sobol_points(3, 0, N, seed=11)[:, 2], spec)
    assert all(type(v) is int for v in vals)
    counts = np.array([vals.count(k) for k in (2, 3, 4, 5)])
    assert counts.sum() == N
    assert stats.chisquare(counts).pvalue > 0.01
    # 4096 points of a scrambled Sobol net: each quarter [k/4, (k+1)/4) holds exactly N/4
    assert np.all(counts == N // 4)


def test_integer_edges() -> None:
    spec = IntegerParam(bounds=(-3, 3))
    u = np.array([0.0, 1 / 7 - 1e-12, 1 / 7, 0.5, 1 - 1e-15, 1.0])
    assert map_column(u, spec) == [-3, -3, -2, 0, 3, 3]
    assert map_column(np.array([0.0, 0.4, 1.0]), IntegerParam(bounds=(4, 4))) == [4, 4, 4]


def test_continuous_linear() -> None:
    spec = ContinuousParam(bounds=(-1.0, 3.0))
    vals = map_column(np.array([0.0, 0.25, 0.5, 1.0]), spec)
    assert vals == [-1.0, 0.0, 1.0, 3.0]
    assert all(type(v) is float for v in vals)


def test_log_scale_median_is_geometric_mean() -> None:
    lo, hi = 1e-3, 10.0
    spec = ContinuousParam(bounds=(lo, hi), log_scale=True)
    vals = np.array(map_column(sobol_points(2, 0, N, seed=5)[:, 1], spec))
    assert vals.min() >= lo and vals.max() <= hi
    assert math.isclose(float(np.median(vals)), math.sqrt(lo * hi), rel_tol=0.02)
    # log-uniform: log10 values are uniform on [-3, 1]
    assert stats.kstest((np.log10(vals) + 3) / 4, "uniform").pvalue > 0.01
    assert map_column(np.array([0.0, 0.5, 1.0]), spec) == pytest.approx([lo, 0.1, hi], rel=1e-12)


def test_weighted_choice_75_25() -> None:
    spec = ChoiceParam(choices=["a", "b"], weights=[3.0, 1.0])
    vals = map_column(sobol_points(4, 0, N, seed=9)[:, 3], spec)
    frac_a = vals.count("a") / N
    assert abs(frac_a - 0.75) < 0.01


def test_choice_equal_weights_and_zero_weight() -> None:
    spec = ChoiceParam(choices=["x", "y", "z"])
    u = np.array([0.0, 0.33, 0.34, 0.66, 0.67, 1.0])
    assert map_column(u, spec) == ["x", "x", "y", "y", "z", "z"]
    zero_mid = ChoiceParam(choices=["x", "y", "z"], weights=[1.0, 0.0, 1.0])
    assert map_column(np.array([0.0, 0.4999, 0.5, 1.0]), zero_mid) == ["x", "x", "z", "z"]
    zero_last = ChoiceParam(choices=["x", "y"], weights=[1.0, 0.0])
    assert map_column(np.array([0.0, 0.999, 1.0]), zero_last) == ["x", "x", "x"]


def test_choice_types_preserved() -> None:
    spec = ChoiceParam.model_validate({"type": "choice", "choices": ["relu", 3, 2.5, "4"]})
    vals = map_column(np.array([0.1, 0.3, 0.6, 0.9]), spec)
    assert vals == ["relu", 3, 2.5, "4"]
    assert [type(v) for v in vals] == [str, int, float, str]


def test_map_unit_rows() -> None:
    dims = [
        ("num_layers", IntegerParam(bounds=(1, 4))),
        ("noise_scale", ContinuousParam(bounds=(0.0, 0.2))),
        ("activation", ChoiceParam(choices=["relu", "gelu"])),
    ]
    u = np.array([[0.0, 0.5, 0.2], [0.9, 1.0, 0.7]])
    rows = map_unit(u, dims)
    assert rows == [
        {"num_layers": 1, "noise_scale": 0.1, "activation": "relu"},
        {"num_layers": 4, "noise_scale": 0.2, "activation": "gelu"},
    ]
    assert list(rows[0]) == ["num_layers", "noise_scale", "activation"]
    # consistent with map_column column by column
    u2 = sobol_points(3, 0, 64, seed=1)
    rows2 = map_unit(u2, dims)
    for p, (name, spec) in enumerate(dims):
        assert [r[name] for r in rows2] == map_column(u2[:, p], spec)
    assert map_unit(np.empty((2, 0)), []) == [{}, {}]


@pytest.mark.parametrize(
    "u,dims",
    [
        (np.zeros(3), [("a", IntegerParam(bounds=(0, 1)))]),  # 1-D
        (np.zeros((3, 2)), [("a", IntegerParam(bounds=(0, 1)))]),  # width mismatch
        (np.array([[1.5]]), [("a", IntegerParam(bounds=(0, 1)))]),  # outside [0, 1]
        (np.array([[np.nan]]), [("a", IntegerParam(bounds=(0, 1)))]),  # NaN
        (np.zeros((1, 2)), [("a", IntegerParam(bounds=(0, 1))), ("a", IntegerParam(bounds=(0, 1)))]),
        (np.zeros((1, 1)), [("a", {"type": "integer", "bounds": [0, 1]})]),  # not a spec model
    ],
)
def test_map_unit_bad_input(u: np.ndarray, dims: list) -> None:
    with pytest.raises(ValueError):
        map_unit(u, dims)


def test_map_column_bad_shape() -> None:
    with pytest.raises(ValueError, match="1-D"):
        map_column(np.zeros((2, 2)), IntegerParam(bounds=(0, 1)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        map_column(np.array([-0.1]), IntegerParam(bounds=(0, 1)))
