"""Train neuraloperator's FNO on a Spinlock dataset and score it against persistence and the mean field.

    .venv/bin/python examples/train_fno.py --dataset datasets/default --grid-size 32 --steps 2000

Reads windows through :class:`spinlock_core.data.TrajectoryDataset` (normalised with the
train split's statistics, DataLoader workers), wraps the FNO in
:class:`spinlock_core.baselines.Forecaster` (per-item scale, residual prediction,
conditioning on the operator's parameters and update policy, here as constant input
channels), trains it with :func:`spinlock_core.baselines.train` and prints the nRMSE of the
FNO, persistence and the mean field on the test split, in physical units
(:func:`spinlock_core.baselines.evaluate`). ``--json PATH`` writes the figures.

Needs neuraloperator 2.0.0 (it never installs torch; its declared extras are not needed to
build an FNO)::

    .venv/bin/pip install --no-deps neuraloperator==2.0.0 tensorly==0.10.0 tensorly-torch==0.5.0 opt-einsum==3.4.0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from spinlock_core.baselines import Forecaster, evaluate, train
from spinlock_core.baselines.train import derive_training_seed
from spinlock_core.data import TrajectoryDataset


class FNOBackbone(nn.Module):
    """``z [B, k*C, g, g]``, ``cond [B, D]`` -> ``[B, h*C, g, g]`` through an FNO.

    The condition enters as ``D`` constant input channels. No positional embedding: Spinlock's
    operators are convolutions with circular padding on a periodic grid, so the dynamics do not
    depend on position (coordinates would only help a model memorise). The output is scaled by
    a gate that starts at 0 (ReZero), so the untrained forecaster is persistence.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, *, modes: int, hidden: int, layers: int):
        super().__init__()
        from neuralop.models import FNO

        self.cond_dim = cond_dim
        self.fno = FNO(
            n_modes=(modes, modes),
            in_channels=in_channels + cond_dim,
            out_channels=out_channels,
            hidden_channels=hidden,
            n_layers=layers,
            positional_embedding=None,
        )
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.cond_dim:
            assert cond is not None
            z = torch.cat([z, cond[:, :, None, None].expand(-1, -1, *z.shape[-2:])], dim=1)
        out: torch.Tensor = self.fno(z)
        return self.gate * out


def make_fno(ds: TrajectoryDataset, *, seed: int, modes: int, hidden: int, layers: int) -> Forecaster:
    """A :class:`Forecaster` around :class:`FNOBackbone` for ``ds``'s shapes, weights drawn from ``seed``."""
    k, h, c, p = ds.n_steps_input, ds.n_steps_output, ds.num_channels, len(ds.param_names)
    cats = (("policy", len(ds.policies)),)
    cond_dim = p + len(ds.policies) + c
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_training_seed(seed, 0))
        backbone = FNOBackbone(
            k * c, h * c, cond_dim, modes=min(modes, ds.grid_size // 2), hidden=hidden, layers=layers
        )
        return Forecaster(backbone, n_steps_input=k, n_steps_output=h, num_channels=c, num_params=p, categories=cats)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--dataset", required=True, type=Path, help="a Spinlock dataset directory (splits.json, stats.json)"
    )
    ap.add_argument("--grid-size", type=int, default=None, help="which grid size (needed when the dataset has several)")
    ap.add_argument("--steps", type=int, default=1000, help="Adam steps (default 1000)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, cosine-decayed to 0")
    ap.add_argument("--n-steps-input", type=int, default=2, help="k input frames (default 2)")
    ap.add_argument("--n-steps-output", type=int, default=1, help="h output frames (default 1)")
    ap.add_argument("--modes", type=int, default=12, help="Fourier modes per axis (at most g/2)")
    ap.add_argument("--hidden", type=int, default=32, help="FNO hidden channels")
    ap.add_argument("--layers", type=int, default=4, help="FNO blocks")
    ap.add_argument("--split", default="test", help="split to score (default test: operators never trained on)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: unchanged)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here as JSON")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import neuralop  # noqa: F401
    except ImportError:
        print("train_fno: neuraloperator is not installed; see this script's docstring", file=sys.stderr)
        return 2
    k, h = args.n_steps_input, args.n_steps_output
    train_ds = TrajectoryDataset(
        args.dataset, "train", args.grid_size, n_steps_input=k, n_steps_output=h, normalize=True
    )
    eval_ds = TrajectoryDataset(
        args.dataset, args.split, train_ds.grid_size, n_steps_input=k, n_steps_output=h, normalize=True
    )
    print(f"train: {train_ds}\n{args.split}: {eval_ds}")
    model = make_fno(train_ds, seed=args.seed, modes=args.modes, hidden=args.hidden, layers=args.layers)
    n_weights = sum(p.numel() for p in model.parameters())
    print(f"FNO: {n_weights} weights, {args.modes} modes, {args.hidden} hidden, {args.layers} layers")
    hist = train(
        model,
        train_ds,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        num_workers=args.workers,
        threads=args.threads,
    )
    print(
        f"trained {args.steps} steps in {hist.seconds:.1f} s; loss (train nRMSE) {hist.loss[0]:.4f} -> {hist.last():.4f}"
    )
    t0 = time.perf_counter()
    result = evaluate(model, eval_ds, device=args.device, num_workers=args.workers, threads=args.threads, name="fno")
    print(result.table())
    print(f"evaluated in {time.perf_counter() - t0:.1f} s (nRMSE and VRMSE in physical units)")
    if args.json is not None:
        body = {
            "model": "fno",
            "weights": n_weights,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "train_seconds": hist.seconds,
            "loss_first": hist.loss[0],
            "loss_last": hist.last(),
            "evaluation": result.to_json(),
        }
        args.json.write_text(json.dumps(body, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
