"""stats.json: train-split statistics against numpy on the same frames, diverged frames excluded."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from spinlock_core.config import SplitsConfig
from spinlock_core.dataset import (
    DatasetError,
    DatasetLayout,
    PartitionId,
    assign_splits,
    compute_stats,
    read_stats,
    write_splits,
    write_stats,
)
from spinlock_core.dataset.stats import QUANTILES, Moments
from spinlock_core.testing import write_partition


@pytest.fixture
def known(tmp_path):
    """6 samples (2 batches x grids 8, 16), M = 2, 5 frames, 2 channels; sample 2 realization 1
    diverges at step 2 and its later frames hold huge values that must not enter the statistics."""
    layout = DatasetLayout(tmp_path / "ds")
    written = {}
    for b in range(2):
        for k, g in enumerate((8, 16)):
            div = np.full((3, 2), -1)
            if b == 0:
                div[2, 1] = 2
            w = write_partition(
                layout.rollouts(PartitionId(grid=g, batch=b)),
                start=3 * b,
                n=3,
                g=g,
                time_steps=list(range(5)),
                seed=7 * b + k,
                batch=b,
                diverged_step=div,
            )
            if b == 0:
                with h5py.File(w.path, "r+") as f:
                    f["outputs/fields"][2, 1, 2:] = 1e30
            written[(b, g)] = w
    splits = assign_splits(np.arange(6), SplitsConfig(train=0.5, valid=0.25, test=0.25), 12)
    assert splits.of("train").tolist() == [2, 3, 4]  # both batches, and the diverged sample
    write_splits(layout, splits)
    return layout, written, splits


def _frames(written, splits, g):
    """Every usable frame of the train split at grid g: [n_frames, C, g, g], and the deltas."""
    frames, deltas = [], []
    for i in splits.of("train").tolist():
        w = written[(i // 3, g)]
        for m in range(2):
            x = w.traj[i % 3, m]
            x = x[:2] if (i, m) == (2, 1) else x
            frames.append(x)
            deltas.append(np.diff(x, axis=0))
    return np.concatenate(frames), np.concatenate(deltas)


def test_statistics_equal_numpy_on_the_train_frames_before_divergence(known):
    layout, written, splits = known
    stats = compute_stats(layout, splits, root_seed=1)
    for g in (8, 16):
        x, d = _frames(written, splits, g)
        for kind, arr in (("fields", x), ("deltas", d)):
            for c, st in enumerate(stats.of(g, kind)):
                v = arr[:, c].astype(np.float64).reshape(-1)
                assert st.count == v.size
                # float64 accumulation of float32 data: agreement to ~1e-12 relative
                assert st.mean == pytest.approx(v.mean(), rel=1e-12, abs=1e-14)
                assert st.std == pytest.approx(v.std(), rel=1e-12)
                assert st.rms == pytest.approx(np.sqrt((v**2).mean()), rel=1e-12)
                assert st.min == v.min() and st.max == v.max()
                # fewer values than the quantile sample: exact
                want = np.quantile(v, QUANTILES)
                assert [st.quantiles[f"{q:g}"] for q in QUANTILES] == pytest.approx(want.tolist(), rel=1e-12)
                q25, q75 = np.quantile(v, [0.25, 0.75])
                assert st.robust_scale == pytest.approx((q75 - q25) / 1.349)
                assert st.max < 1e29  # nothing from after the divergence


def test_moments_merge_is_independent_of_blocking():
    rng = np.random.default_rng(0)
    v = rng.standard_t(3, size=10_001) * 1e3 + 5.0  # heavy tails, offset mean
    one, many = Moments(), Moments()
    one.add(v)
    for chunk in np.array_split(v, 37):
        many.add(chunk)
    assert one.count == many.count == v.size
    assert many.mean == pytest.approx(v.mean(), rel=1e-13) and many.std == pytest.approx(v.std(), rel=1e-12)
    assert many.mean == pytest.approx(one.mean, rel=1e-13) and many.std == pytest.approx(one.std, rel=1e-12)


def test_quantiles_from_the_sample_are_close_on_large_data_and_reproducible(tmp_path, monkeypatch):
    from spinlock_core.dataset import stats as mod

    monkeypatch.setattr(mod, "QUANTILE_SAMPLE", 500)  # far fewer than the 3 x 2 x 4 x 256 values per channel
    layout = DatasetLayout(tmp_path / "big")
    w = write_partition(layout.rollouts(PartitionId(grid=16, batch=0)), n=6, g=16, time_steps=list(range(4)))
    splits = assign_splits(np.arange(6), SplitsConfig(), 0)
    write_splits(layout, splits)
    a = compute_stats(layout, splits, root_seed=5)
    b = compute_stats(layout, splits, root_seed=5)
    assert a.to_json() == b.to_json()  # same seed: same sample
    v = w.traj[np.isin(np.arange(6), splits.of("train"))][:, :, :, 0].reshape(-1)
    q = a.of(16)[0].quantiles
    # standard normal data, ~500 kept values: the median within a few standard errors (~0.06)
    assert abs(q["0.5"] - np.median(v)) < 0.2 and abs(q["0.95"] - np.quantile(v, 0.95)) < 0.3


def test_stats_file_round_trips_and_refuses_edits_and_other_splits(known):
    layout, _, splits = known
    stats = compute_stats(layout, splits, root_seed=1)
    with pytest.raises(DatasetError, match="no statistics file"):
        read_stats(layout)
    write_stats(layout, stats)
    back = read_stats(layout, splits, stats.data_hash)
    assert back.to_json() == stats.to_json()
    other = assign_splits(np.arange(6), SplitsConfig(), 13)
    with pytest.raises(DatasetError, match="other splits"):
        read_stats(layout, other)
    with pytest.raises(DatasetError, match="other rollouts"):
        read_stats(layout, splits, "beef")
    doc = json.loads(layout.stats.read_text())
    doc["grids"]["8"]["fields"][0]["std"] *= 2
    layout.stats.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match="does not match its hash"):
        read_stats(layout)
