"""splits.json: disjoint splits by operator, exact counts, holdouts, a file that refuses tampering."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinlock_core.config import SPLIT_NAMES, ConfigError, SplitsConfig, load_config
from spinlock_core.dataset import (
    DatasetError,
    DatasetLayout,
    assign_splits,
    dataset_splits,
    open_dataset,
    read_splits,
    split_counts,
    write_splits,
)
from spinlock_core.testing import DEFAULT_CONFIG


@pytest.mark.parametrize(
    ("n", "fractions", "want"),
    [
        (10, [0.8, 0.1, 0.1], [8, 1, 1]),
        (7, [0.8, 0.1, 0.1], [5, 1, 1]),  # 5.6 / 0.7 / 0.7: largest remainders, then one each
        (3, [0.8, 0.1, 0.1], [1, 1, 1]),
        (2, [0.8, 0.1, 0.1], [2, 0, 0]),  # fewer samples than non-zero fractions: plain rounding
        (1000, [0.7, 0.2, 0.1], [700, 200, 100]),
        (5, [1.0, 0.0, 0.0], [5, 0, 0]),
        (11, [0.5, 0.25, 0.25], [5, 3, 3]),  # 5.5 / 2.75 / 2.75: the two larger remainders win
    ],
)
def test_split_counts_are_exact_and_sum_to_n(n, fractions, want):
    got = split_counts(n, fractions)
    assert got == want and sum(got) == n


def test_splits_are_a_disjoint_cover_with_exact_counts_and_depend_only_on_the_seed():
    idx = np.arange(100, 300)
    cfg = SplitsConfig(train=0.7, valid=0.2, test=0.1)
    s = assign_splits(idx, cfg, root_seed=42)
    assert s.counts() == {"train": 140, "valid": 40, "test": 20, "ood": 0}
    every = np.concatenate([s.of(k) for k in SPLIT_NAMES])
    assert np.array_equal(np.sort(every), idx)
    assert all(np.array_equal(s.of(k), np.sort(s.of(k))) for k in SPLIT_NAMES)
    # the input order does not matter; the seed does; an explicit seed overrides the root seed
    again = assign_splits(idx[::-1].copy(), cfg, root_seed=42)
    assert again.hash == s.hash
    other = assign_splits(idx, cfg, root_seed=43)
    assert not np.array_equal(other.of("test"), s.of("test"))
    pinned = assign_splits(idx, cfg.model_copy(update={"seed": 43}), root_seed=7)
    assert np.array_equal(pinned.of("test"), other.of("test")) and pinned.seed == 43
    # the shuffle is not the identity: train is spread over the whole index range
    assert s.of("test").min() < 150 and s.of("test").max() > 250
    with pytest.raises(ValueError, match="distinct"):
        assign_splits(np.array([1, 1, 2]), cfg, 0)


def test_holdout_by_ic_type_or_parameter_range_forms_the_ood_split():
    idx = np.arange(12)
    types = ["grf", "vortex", "noise"] * 4
    params = np.linspace(0, 1, 24).reshape(12, 2)
    by_type = SplitsConfig(holdout={"ic_types": ["vortex"]})
    s = assign_splits(idx, by_type, 0, ic_types=types, params=params, param_names=["a", "b"])
    assert s.of("ood").tolist() == [1, 4, 7, 10]
    rest = np.concatenate([s.of("train"), s.of("valid"), s.of("test")])
    assert sorted(rest.tolist()) == [i for i in range(12) if i % 3 != 1]
    assert s.counts()["train"] == 6 and s.counts()["valid"] == s.counts()["test"] == 1
    by_range = SplitsConfig(holdout={"param": "b", "low": 0.5, "high": 1.0})
    s = assign_splits(idx, by_range, 0, ic_types=types, params=params, param_names=["a", "b"])
    assert s.of("ood").tolist() == [i for i in range(12) if params[i, 1] >= 0.5]
    with pytest.raises(ValueError, match="not in the dataset"):
        assign_splits(idx, SplitsConfig(holdout={"ic_types": ["bogus"]}), 0, ic_types=types)
    with pytest.raises(ValueError, match="not a Sobol dimension"):
        assign_splits(idx, SplitsConfig(holdout={"param": "zeta"}), 0, params=params, param_names=["a", "b"])
    with pytest.raises(ValueError, match="every sample"):
        assign_splits(idx, SplitsConfig(holdout={"param": "a"}), 0, params=params, param_names=["a", "b"])


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"splits.train": 0.5}, "must be 1"),
        ({"splits.valid": -0.1}, "splits.valid"),
        ({"splits.holdout": {"ic_types": ["grf"], "param": "x"}}, "exactly one"),
        ({"splits.holdout": {"param": "x", "low": 0.8, "high": 0.2}}, "low must be <= holdout.high"),
        ({"splits.bogus": 1}, "splits.bogus"),
    ],
)
def test_bad_splits_config_is_one_clear_error(override, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(DEFAULT_CONFIG, override)


def test_splits_file_round_trips_and_refuses_a_hand_edit(tmp_path):
    layout = DatasetLayout(tmp_path)
    with pytest.raises(DatasetError, match="no splits file"):
        read_splits(layout)
    s = assign_splits(np.arange(20), SplitsConfig(), 5)
    write_splits(layout, s)
    back = read_splits(layout)
    assert back.hash == s.hash and back.counts() == s.counts() == {"train": 16, "valid": 2, "test": 2, "ood": 0}
    doc = json.loads(layout.splits.read_text())
    doc["samples"]["train"].append(doc["samples"]["test"].pop())  # move an operator by hand
    layout.splits.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match="does not match its hash"):
        read_splits(layout)
    layout.splits.write_text("{not json")
    with pytest.raises(DatasetError, match="not a splits file"):
        read_splits(layout)


def test_dataset_splits_cover_each_sample_once_whatever_its_grid_sizes(four_partitions):
    root, _ = four_partitions
    layout = DatasetLayout(root)
    s = dataset_splits(layout, SplitsConfig(train=0.5, valid=0.25, test=0.25), 1)
    assert sorted(np.concatenate([s.of(k) for k in SPLIT_NAMES]).tolist()) == list(range(6))
    # holdout by the IC types stored in the files
    with open_dataset(root, allow_missing=True) as r:
        types = r.metadata(r.rows_for_grid(8))["ic_types"]
    held = SplitsConfig(holdout={"ic_types": [str(types[0])]})
    h = dataset_splits(layout, held, 1)
    assert h.of("ood").tolist() == [i for i in range(6) if str(types[i]) == str(types[0])]
    with pytest.raises(DatasetError, match="splits: holdout.ic_types"):
        dataset_splits(layout, SplitsConfig(holdout={"ic_types": ["bogus"]}), 1)
