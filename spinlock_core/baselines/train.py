"""Train a forecaster on a :class:`~spinlock_core.data.TrajectoryDataset` and score it against references.

* :func:`make_unet` builds a :class:`~spinlock_core.baselines.unet.Forecaster` around a
  :class:`~spinlock_core.baselines.unet.UNet2d` sized for a dataset, its weights drawn from a
  seed;
* :func:`train`: Adam for a fixed number of steps (cosine-decayed learning rate, optional
  gradient clipping), batches drawn without replacement by a seeded generator; returns a
  :class:`History`;
* :func:`evaluate`: nRMSE (and VRMSE) of the model, :func:`~spinlock_core.baselines.reference.persistence`
  and :class:`~spinlock_core.baselines.reference.MeanField` on every window of a split,
  **in the data's physical units** (predictions, inputs and targets are denormalised with the
  dataset's :class:`~spinlock_core.data.Normalizer` first when it normalises).

Determinism: given the seed, the weights (:func:`make_unet`) and the batch order
(:func:`train`) are fixed; seeds are derived by position, stream ``(Stream.TRAIN, purpose)`` of
:func:`spinlock_core.seeding.derive_seed` (:func:`derive_training_seed`), never from ``hash()``. On the CPU, with
the same torch build and thread count, two runs give identical losses; CUDA kernels may differ
in the last bits between runs.

Losses (``loss=``), all averaged over items, steps and channels:

* ``"nrmse"`` (default): the metric reported, the_well's nRMSE of the forecast in physical
  units, so every window counts the same whatever its amplitude (Spinlock's fields span six
  orders of magnitude across operators);
* ``"nmse"``: its square (the_well's NMSE); it weighs the windows that are hard to forecast
  (nRMSE ~ 1, the autoregressive operators) more; in one comparison (256 operators, grid 16,
  300 steps, one seed) it scored 0.403 nRMSE on held-out operators against 0.383 for ``nrmse``;
* ``"mse"``: the mean squared error in the dataset's units (normalised when the dataset
  normalises), the_well's training loss; with heavy tails it is dominated by the few largest
  operators.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from spinlock_core.data import Normalizer, TrajectoryDataset
from spinlock_core.device import resolve_device, torch_threads
from spinlock_core.seeding import Stream, derive_seed

from .metrics import MetricSums, nmse, nrmse, vrmse
from .reference import MeanField, persistence
from .unet import Forecaster, UNet2d

__all__ = [
    "derive_training_seed",
    "make_unet",
    "History",
    "train",
    "Scores",
    "Evaluation",
    "evaluate",
]

#: First element of the spawn key of every training seed (after :class:`spinlock_core.seeding.Stream`'s 0..5).
_INIT, _SHUFFLE = 0, 1

Loss = Literal["nrmse", "nmse", "mse"]


def derive_training_seed(seed: int, purpose: int) -> int:
    """A 63-bit seed for ``purpose`` (0: weights, 1: batch order) under ``seed``: stream ``(TRAIN, purpose)``."""
    return derive_seed(seed, Stream.TRAIN, purpose)


def make_unet(
    dataset: TrajectoryDataset,
    *,
    seed: int = 0,
    width: int = 16,
    depth: int = 2,
    condition: bool = True,
    use_params: bool = True,
    categories: tuple[str, ...] = ("policy",),
) -> Forecaster:
    """A :class:`Forecaster` around a :class:`UNet2d` for ``dataset``'s ``k``, ``h``, ``C`` and ``P``.

    ``condition``: FiLM and the linear bypass on ``[params, one-hot categories, log sigma]``
    (``use_params=False``: without the params). ``categories``: item labels given one-hot, out of
    ``policy``, ``ic_type``, ``noise_regime`` (vocabularies of the whole dataset, so codes agree
    across splits). The update policy is the default: it decides how a frame follows the last
    one (replaced, incremented or mixed), which the unit-cube value of the policy dimension
    tells only through thresholds a small MLP learns slowly from few operators.
    The weights are drawn under ``torch.random.fork_rng`` from :func:`derive_training_seed`
    (``seed``, weights), so the global torch generator is left as it was.
    """
    k, h, c = dataset.n_steps_input, dataset.n_steps_output, dataset.num_channels
    vocab = {"policy": dataset.policies, "ic_type": dataset.ic_types, "noise_regime": dataset.noise_regimes}
    unknown = [key for key in categories if key not in vocab]
    if unknown:
        raise ValueError(f"categories {unknown} unknown (allowed: {', '.join(vocab)})")
    cats = tuple((key, len(vocab[key])) for key in categories) if condition else ()
    p = len(dataset.param_names) if (condition and use_params) else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_training_seed(seed, _INIT))
        cond_dim = (p + sum(n for _, n in cats) + c) if condition else 0
        unet = UNet2d(k * c, h * c, width=width, depth=depth, cond_dim=cond_dim)
        return Forecaster(
            unet, n_steps_input=k, n_steps_output=h, num_channels=c, num_params=p, categories=cats, condition=condition
        )


@dataclass
class History:
    """What :func:`train` did: the loss of every logged step, the learning rate, the wall time."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0
    seed: int = 0
    loss_kind: str = "nrmse"

    def last(self, n: int = 10) -> float:
        """Mean of the last ``n`` logged losses."""
        return float(np.mean(self.loss[-n:])) if self.loss else float("nan")


def _loader(
    dataset: TrajectoryDataset, batch_size: int, num_workers: int, generator: torch.Generator | None
) -> DataLoader[dict[str, torch.Tensor]]:
    sampler = RandomSampler(dataset, generator=generator) if generator is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        drop_last=generator is not None and len(dataset) >= batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


def _batches(loader: DataLoader[dict[str, torch.Tensor]]) -> Iterator[dict[str, torch.Tensor]]:
    while True:
        yield from loader


def _physical(x: torch.Tensor, normalizer: Normalizer | None) -> torch.Tensor:
    return x if normalizer is None else normalizer.denormalize(x)


def _forecast(model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
    """``model``'s forecast of a batch: a :class:`Forecaster` gets its descriptor, any other model the params."""
    x = batch["input_fields"].to(device)
    cond = model.descriptor(batch) if isinstance(model, Forecaster) else batch["params"]
    out: torch.Tensor = model(x, cond.to(device))
    return out


def train(
    model: nn.Module,
    dataset: TrajectoryDataset,
    *,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    cosine: bool = True,
    grad_clip: float | None = 1.0,
    loss: Loss = "nrmse",
    seed: int = 0,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    threads: int | None = None,
    log_every: int = 1,
) -> History:
    """Train ``model`` in place on ``dataset`` for ``steps`` Adam steps; returns the :class:`History`.

    Args:
        model: a :class:`Forecaster` (e.g. :func:`make_unet`), called as
            ``model(x [B, k, C, g, g], model.descriptor(batch)) -> [B, h, C, g, g]``, or any
            module called as ``model(x, params [B, P])``; in the dataset's units.
        dataset: the training windows (normalised or not; the ``nmse`` loss is taken in
            physical units either way).
        steps: optimiser steps (the data are cycled through as often as needed).
        lr, weight_decay: Adam's (``weight_decay`` > 0: AdamW); ``cosine``: the learning rate
            decays from ``lr`` to 0 over the steps by a half cosine.
        grad_clip: clip the gradient's global norm (None: no clipping).
        loss: ``nrmse``, ``nmse`` or ``mse`` (module docstring).
        seed: the batch order comes from :func:`derive_training_seed` (``seed``, batch order).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`spinlock_core.device.resolve_device`).
        num_workers: DataLoader worker processes (each opens the files itself).
        threads: torch CPU threads while training (None: unchanged).
        log_every: record the loss every this many steps.
    """
    if steps < 1 or batch_size < 1 or len(dataset) == 0:
        raise ValueError(f"need steps >= 1, batch_size >= 1 and windows; got {steps}, {batch_size}, {len(dataset)}")
    if loss not in ("nrmse", "nmse", "mse"):
        raise ValueError(f"loss must be nrmse, nmse or mse, got {loss!r}")
    dev = resolve_device(device)
    norm = dataset.normalizer
    gen = torch.Generator()
    gen.manual_seed(derive_training_seed(seed, _SHUFFLE))
    hist = History(seed=seed, loss_kind=loss)
    t0 = time.perf_counter()
    with torch_threads(threads):
        model.to(dev).train()
        opt: torch.optim.Optimizer
        if weight_decay > 0:
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=lr)
        batches = _batches(_loader(dataset, batch_size, num_workers, gen))
        for step in range(steps):
            rate = lr * 0.5 * (1 + math.cos(math.pi * step / steps)) if cosine else lr
            for group in opt.param_groups:
                group["lr"] = rate
            batch = next(batches)
            pred = _forecast(model, batch, dev)
            target = batch["output_fields"].to(dev)
            if loss == "nrmse":
                value = nrmse(_physical(pred, norm), _physical(target, norm), reduction="mean")
            elif loss == "nmse":
                value = nmse(_physical(pred, norm), _physical(target, norm), reduction="mean")
            else:
                value = (pred - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            value.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            if step % log_every == 0 or step == steps - 1:
                hist.step.append(step)
                hist.loss.append(float(value.detach()))
                hist.lr.append(rate)
        del batches
    hist.seconds = time.perf_counter() - t0
    return hist


@dataclass(frozen=True)
class Scores:
    """One forecaster's scores on a split, in physical units: means over windows (and steps, channels)."""

    nrmse: float
    vrmse: float
    nrmse_channel: tuple[float, ...]  # [C]
    nrmse_step: tuple[float, ...]  # [h]

    def to_json(self) -> dict[str, Any]:
        return {
            "nrmse": self.nrmse,
            "vrmse": self.vrmse,
            "nrmse_channel": list(self.nrmse_channel),
            "nrmse_step": list(self.nrmse_step),
        }


@dataclass(frozen=True)
class Evaluation:
    """:func:`evaluate`'s result: ``scores[name]`` for the model (``"model"`` unless named), ``persistence``, ``mean_field``."""

    split: str
    grid_size: int
    windows: int
    samples: int
    scores: dict[str, Scores]

    def table(self) -> str:
        """A plain-text table, one row per forecaster."""
        lines = [f"{self.split} split, grid {self.grid_size}: {self.windows} windows of {self.samples} operators"]
        lines.append(f"{'forecaster':<12} {'nRMSE':>9} {'VRMSE':>9}  nRMSE per channel")
        for name, s in self.scores.items():
            per = " ".join(f"{v:.4f}" for v in s.nrmse_channel)
            lines.append(f"{name:<12} {s.nrmse:>9.4f} {s.vrmse:>9.4f}  {per}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "grid_size": self.grid_size,
            "windows": self.windows,
            "samples": self.samples,
            "units": "physical",
            "scores": {k: v.to_json() for k, v in self.scores.items()},
        }


@torch.no_grad()
def evaluate(
    model: nn.Module | None,
    dataset: TrajectoryDataset,
    *,
    mean_field: MeanField | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    threads: int | None = None,
    name: str = "model",
) -> Evaluation:
    """nRMSE and VRMSE of ``model``, persistence and the mean field on every window of ``dataset``.

    Metrics are computed per window, output step and channel in **physical units** (the
    dataset's normalisation undone), then averaged with every window weighing the same
    (:class:`~spinlock_core.baselines.metrics.MetricSums`).

    Args:
        model: as in :func:`train` (None: the references only).
        dataset: the split to score (e.g. ``"test"``: operators never trained on).
        mean_field: the constant reference (default: the train split's mean from the same
            dataset's ``stats.json``, :meth:`MeanField.from_dataset`).
        batch_size, device, num_workers, threads: as in :func:`train`.
        name: the model's key in :attr:`Evaluation.scores`.
    """
    if len(dataset) == 0:
        raise ValueError(f"{dataset!r} has no windows to evaluate")
    dev = resolve_device(device)
    norm = dataset.normalizer
    mf = mean_field if mean_field is not None else MeanField.from_dataset(dataset.root, dataset.grid_size)
    if name in ("persistence", "mean_field"):
        raise ValueError(f"name {name!r} is a reference's")
    names = ([name] if model is not None else []) + ["persistence", "mean_field"]
    sums = {n: (MetricSums(), MetricSums()) for n in names}
    with torch_threads(threads):
        if model is not None:
            model.to(dev).eval()
        for batch in _loader(dataset, batch_size, num_workers, None):
            x = _physical(batch["input_fields"].to(dev), norm)
            y = _physical(batch["output_fields"].to(dev), norm)
            h = y.shape[1]
            preds = {"persistence": persistence(x, h), "mean_field": mf(x, h)}
            if model is not None:
                preds[name] = _physical(_forecast(model, batch, dev), norm)
            for n in names:
                sums[n][0].add(nrmse(preds[n], y, reduction="none"))
                sums[n][1].add(vrmse(preds[n], y, reduction="none"))
    scores = {
        n: Scores(
            nrmse=s.mean(),
            vrmse=v.mean(),
            nrmse_channel=tuple(float(a) for a in s.channel()),
            nrmse_step=tuple(float(a) for a in s.step()),
        )
        for n, (s, v) in sums.items()
    }
    return Evaluation(
        split=dataset.split,
        grid_size=dataset.grid_size,
        windows=len(dataset),
        samples=int(np.unique(dataset.sample_index[dataset.windows.row]).size),
        scores=scores,
    )
