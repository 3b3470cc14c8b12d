"""Baselines on a dataset's held-out operators: the UNet trained for N steps against persistence and the mean field.

The figures of docs/training.md ("Baselines") and the README come from this script (the UNet)
and ``examples/train_fno.py`` (the FNO)::

    python benchmarks/train_baselines.py --dataset datasets/default --grid-size 32 --steps 2000 \\
        --json benchmarks/results/unet_grid32.json

Prints the dataset, the hardware, the training time and the evaluation table (nRMSE and VRMSE
per forecaster on ``--split``, physical units); ``--json`` writes the figures. Training is
deterministic given ``--seed`` on one machine and thread count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from spinlock_core.baselines import evaluate, make_unet, train
from spinlock_core.data import TrajectoryDataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, type=Path)
    ap.add_argument("--grid-size", type=int, required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--n-steps-input", type=int, default=2)
    ap.add_argument("--split", default="test", choices=["valid", "test", "ood"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    kw = dict(grid_size=a.grid_size, n_steps_input=a.n_steps_input, normalize=True)
    tr = TrajectoryDataset(a.dataset, "train", **kw)
    te = TrajectoryDataset(a.dataset, a.split, **kw)
    print(f"{tr}\n{te}")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    model = make_unet(tr, seed=a.seed, width=a.width)
    print(f"UNet: {sum(p.numel() for p in model.parameters())} weights")
    hist = train(model, tr, steps=a.steps, seed=a.seed, threads=a.threads)
    t0 = time.perf_counter()
    ev = evaluate(model, te, threads=a.threads, name="unet")
    print(ev.table())
    print(
        f"trained {a.steps} steps in {hist.seconds:.1f} s (loss {hist.loss[0]:.4f} -> {hist.last(50):.4f}); "
        f"evaluated in {time.perf_counter() - t0:.1f} s"
    )
    if a.json:
        body = {"train_seconds": hist.seconds, "steps": a.steps, "width": a.width, "seed": a.seed, **ev.to_json()}
        a.json.write_text(json.dumps(body, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
