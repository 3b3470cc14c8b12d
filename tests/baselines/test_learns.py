"""The UNet baseline learns: on operators it never saw, it beats persistence and the mean field by nRMSE.

The dataset (conftest.py) is the default experiment's operator distribution, unchanged, at
grid 16 with 128 operators; the test split's 32 operators are in no other split. The model
starts as persistence exactly (its output layer and bypass are zero), so every point of margin
is learned. Measured while writing this test (width 16, k = 2; nRMSE on the test split,
physical units, model / persistence (ratio); training seed 0 unless named):

============  ==============================  ==============================================
dataset seed  200 steps (this test)           300 steps, other training seeds
============  ==============================  ==============================================
42 (default)  0.377 / 0.467 (0.81)            0.378 (0.81), seed 1 0.372 (0.80), seed 2 0.377
1             0.443 / 0.534 (0.83)            0.442 (0.83), seed 1 0.439 (0.82)
2             0.503 / 0.632 (0.80)            0.504 (0.80), seed 1 0.499 (0.79)
3             0.461 / 0.567 (0.81)            0.457 (0.81), seed 1 0.454 (0.80)
7             0.409 / 0.532 (0.77)            seed 1 0.410 (0.77), seed 2 0.406 (0.76)
11            0.457 / 0.560 (0.82)            seed 1 0.454 (0.81), seed 2 0.447 (0.80)
============  ==============================  ==============================================

so the ratio model / persistence lay in 0.76 .. 0.83 over 6 datasets x 1-3 seeds and both step
counts; the test asks for <= 0.90 (a 10% win, about half the smallest margin seen). The mean field scores 6.6 .. 13.5
there (the train mean of a heavy-tailed channel is far from most fields), so beating it is the
easy half; the test still asks for it, and for the model's nRMSE to be below 1 (better than
forecasting zeros). Most of the win comes from conditioning on the update policy (one-hot):
for ``autoregressive`` operators a frame replaces the last one and persistence scores ~1.2,
worse than zeros; for ``residual`` ones ``x[t] + (x[t] - x[t-1])`` is close; the model learns
both. Without the one-hot the same run scores 0.458 (ratio 0.98), without any conditioning
0.465 (0.996) (300 steps): this test would fail, as it should, if the conditioning stopped
reaching the model. (Mean VRMSE is another matter: a few near-constant target fields, std ~1e-3
of a mean ~0.15, dominate it, and there the model's 1.8 is worse than persistence's 1.1 while
its median VRMSE is better, 0.30 against 0.41; not asserted.)

Runtime: about 10 s to build the dataset and 10-35 s to train on 2 shared CPU cores.
"""

from __future__ import annotations

import pytest
import torch

from spinlock_core.baselines import evaluate, make_unet, train
from spinlock_core.data import TrajectoryDataset
from spinlock_core.device import available_cpus

STEPS = 200
THREADS = min(2, available_cpus())
MAX_RATIO = 0.90  # model nRMSE / persistence nRMSE on held-out operators


def _datasets(root):
    kw = dict(grid_size=16, n_steps_input=2, normalize=True)
    return TrajectoryDataset(root, "train", **kw), TrajectoryDataset(root, "test", **kw)


def test_unet_beats_persistence_and_mean_field_on_held_out_operators(learning_dataset):
    train_ds, test_ds = _datasets(learning_dataset)
    assert not set(train_ds.sample_index.tolist()) & set(test_ds.sample_index.tolist())  # held-out operators
    model = make_unet(train_ds, seed=0, width=16)

    before = evaluate(model, test_ds, threads=THREADS).scores
    assert before["model"].nrmse == pytest.approx(before["persistence"].nrmse, rel=1e-6)  # nothing built in

    hist = train(model, train_ds, steps=STEPS, seed=0, threads=THREADS)
    assert len(hist.loss) == STEPS and all(torch.isfinite(torch.tensor(hist.loss)))
    assert hist.last(30) < hist.loss[0]  # the training loss fell

    ev = evaluate(model, test_ds, threads=THREADS)
    s = ev.scores
    print("\n" + ev.table() + f"\ntrained {STEPS} steps in {hist.seconds:.1f} s")
    assert ev.samples == 32
    model_n, persist_n, mean_n = s["model"].nrmse, s["persistence"].nrmse, s["mean_field"].nrmse
    assert model_n <= MAX_RATIO * persist_n, f"model {model_n:.4f} vs persistence {persist_n:.4f}"
    assert model_n < mean_n, f"model {model_n:.4f} vs mean field {mean_n:.4f}"
    assert model_n < 1.0  # better than forecasting zeros (nRMSE 1)
    # it wins on every channel, not only on average
    for c, (m, p) in enumerate(zip(s["model"].nrmse_channel, s["persistence"].nrmse_channel)):
        assert m < p, f"channel {c}: model {m:.4f} vs persistence {p:.4f}"


def test_training_is_deterministic_given_the_seed_with_or_without_workers(learning_dataset):
    train_ds, _ = _datasets(learning_dataset)

    def run(seed: int, workers: int) -> list[float]:
        model = make_unet(train_ds, seed=seed, width=8, depth=1)
        return train(model, train_ds, steps=4, batch_size=8, seed=seed, threads=1, num_workers=workers).loss

    first = run(3, 0)
    assert run(3, 2) == first  # workers only read: the batch order is the main process's
    assert run(4, 0) != first
