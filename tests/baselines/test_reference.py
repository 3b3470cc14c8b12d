"""The reference forecasts: persistence repeats the last frame; the mean field is stats.json's train mean."""

from __future__ import annotations

import json

import pytest
import torch

from spinlock_core.baselines import MeanField, evaluate, nrmse, persistence
from spinlock_core.data import TrajectoryDataset


def test_persistence_repeats_the_last_input_frame():
    x = torch.randn(3, 2, 4, 8, 8)
    out = persistence(x, 5)
    assert out.shape == (3, 5, 4, 8, 8)
    for j in range(5):
        assert torch.equal(out[:, j], x[:, -1])
    with pytest.raises(ValueError, match="B, k, C, g, g"):
        persistence(x[0], 1)


def test_mean_field_is_the_train_splits_mean_in_physical_units(learning_dataset):
    stats = json.loads((learning_dataset / "stats.json").read_text())
    want = [c["mean"] for c in stats["grids"]["16"]["fields"]]
    mf = MeanField.from_dataset(learning_dataset, 16)
    assert mf.mean.tolist() == pytest.approx(want, rel=1e-6)
    out = mf(torch.zeros(2, 2, 3, 16, 16), 3)
    assert out.shape == (2, 3, 3, 16, 16)
    assert torch.equal(out[1, 2, :, 5, 7], mf.mean)
    # the same constant in a normaliser's units maps back to it
    ds = TrajectoryDataset(learning_dataset, "train", 16, normalize=True)
    assert ds.normalizer is not None
    back = ds.normalizer.denormalize(mf.normalized(ds.normalizer).mean.view(-1, 1, 1)).view(-1)
    torch.testing.assert_close(back, mf.mean)


def test_evaluate_scores_the_references_in_physical_units_whatever_the_normalisation(learning_dataset):
    """Persistence's nRMSE from evaluate() equals a direct computation on raw windows, normalised or not."""
    raw = TrajectoryDataset(learning_dataset, "test", 16, n_steps_input=2)
    x = torch.stack([raw[i]["input_fields"] for i in range(len(raw))])
    y = torch.stack([raw[i]["output_fields"] for i in range(len(raw))])
    direct = float(nrmse(x[:, -1:], y))
    for normalize in (False, True):
        ds = TrajectoryDataset(learning_dataset, "test", 16, n_steps_input=2, normalize=normalize)
        ev = evaluate(None, ds, batch_size=50)  # uneven last batch: every window still weighs the same
        assert set(ev.scores) == {"persistence", "mean_field"}
        assert ev.scores["persistence"].nrmse == pytest.approx(direct, rel=1e-5)
        assert ev.windows == len(raw) and ev.samples == 32
