"""Feature-extraction benchmark: samples/s of the enabled SDF features, per family seconds.

Extraction cost depends on shapes, not on the dynamics, so the input is synthetic: smooth
periodic random fields (Gaussian-filtered noise) evolving as a damped random walk,
``[N, M, Ts = T + 1, C, G, G]`` float32, held in memory. Timed: :class:`FeatureExtractor`
on batches of ``--batch`` samples plus the per-sample summary (no HDF5 I/O).
One untimed warm-up batch first; on CUDA every batch is synchronised (the result is copied
to the host, which the extractor does anyway).

Examples::

    python benchmarks/bench_features.py --grid 128 --steps 1 --realizations 5 --samples 16
    python benchmarks/bench_features.py --grid 128 --steps 100 --realizations 5 --samples 4 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from spinlock_core.features import FeatureExtractor, load_features_config, summarize  # noqa: E402


def synthetic(n: int, m: int, ts: int, c: int, g: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(g, 1.0 / g)
    filt = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * (g / 16) ** 2)).astype(np.float32)
    out = np.empty((n, m, ts, c, g, g), np.float32)
    for i in range(n):
        noise = rng.standard_normal((m, ts, c, g, g), dtype=np.float32)
        smooth = np.fft.ifft2(np.fft.fft2(noise) * filt).real.astype(np.float32)
        walk = np.cumsum(smooth * 0.2, axis=1) + smooth[:, :1]
        out[i] = walk / (walk.std() + 1e-12)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", type=int, default=128)
    p.add_argument("--steps", type=int, default=1, help="T (stored frames Ts = T + 1)")
    p.add_argument("--realizations", type=int, default=5)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--config", help="features YAML (default: defaults)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--json", help="write the figures here too")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = load_features_config(a.config)
    ex = FeatureExtractor(cfg, a.device)
    x = synthetic(a.samples, a.realizations, a.steps + 1, a.channels, a.grid)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    blocks = ex.extract(x[: a.batch])  # warm-up
    summarize(blocks, cfg.aggregation)
    ex.seconds_by_family = {}
    t0 = time.perf_counter()
    for lo in range(0, a.samples, a.batch):
        blocks = ex.extract(x[lo : lo + a.batch])
        summarize(blocks, cfg.aggregation)
    dt = time.perf_counter() - t0
    res = {
        "benchmark": "features",
        "device": str(ex.device),
        "device_name": torch.cuda.get_device_name(ex.device)
        if ex.device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "grid": a.grid,
        "steps": a.steps,
        "realizations": a.realizations,
        "channels": a.channels,
        "samples": a.samples,
        "batch": a.batch,
        "features": ex.registry.num_features,
        "seconds": round(dt, 3),
        "samples_per_s": round(a.samples / dt, 3),
        "fields_per_s": round(a.samples * a.realizations * (a.steps + 1) * a.channels / dt, 1),
        "seconds_by_family": {k: round(v, 3) for k, v in ex.seconds_by_family.items()},
        "cpu_count": os.cpu_count(),
        "loadavg_1_5_15_before": [round(v, 2) for v in load_before] if load_before else None,
        "loadavg_1_5_15_after": [round(v, 2) for v in os.getloadavg()] if load_before else None,
    }
    print(json.dumps(res, indent=2))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
