"""Baselines that learn a Spinlock dataset, the references they must beat, and the metric.

* metric (:mod:`.metrics`): the_well's nRMSE, ``sqrt(mean((p - y)^2) / (mean(y^2) + 1e-7))``
  over the grid, per item, step and channel (:func:`nrmse`), and VRMSE (:func:`vrmse`);
* references (:mod:`.reference`): :func:`persistence` (the last input frame) and
  :class:`MeanField` (the train split's per-channel mean, a constant);
* a model (:mod:`.unet`): :class:`UNet2d`, a small periodic UNet, inside a :class:`Forecaster`
  (per-item scale, residual prediction, conditioning on the operator's parameters);
* training (:mod:`.train`): :func:`make_unet`, :func:`train` (Adam, fixed steps, seeded),
  :func:`evaluate` (model vs persistence vs mean field, **in physical units**).

Ten lines from a dataset to figures::

    from spinlock_core.data import TrajectoryDataset
    from spinlock_core.baselines import evaluate, make_unet, train
    kw = dict(grid_size=32, n_steps_input=2, normalize=True)
    train_ds = TrajectoryDataset("datasets/default", "train", **kw)
    test_ds = TrajectoryDataset("datasets/default", "test", **kw)
    model = make_unet(train_ds, seed=0)
    history = train(model, train_ds, steps=1000, seed=0)
    print(evaluate(model, test_ds).table())
"""

from .metrics import EPS, MetricSums, nmse, nrmse, vmse, vrmse
from .reference import MeanField, persistence
from .train import Evaluation, History, Scores, derive_training_seed, evaluate, make_unet, train
from .unet import Forecaster, UNet2d

__all__ = [
    # metric
    "nrmse",
    "vrmse",
    "nmse",
    "vmse",
    "EPS",
    "MetricSums",
    # references
    "persistence",
    "MeanField",
    # models
    "UNet2d",
    "Forecaster",
    "make_unet",
    # training and evaluation
    "train",
    "evaluate",
    "History",
    "Evaluation",
    "Scores",
    "derive_training_seed",
]
