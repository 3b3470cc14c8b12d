"""Render benchmark: frames/s of a dataset render (8 operators x 120 steps at 128² by default).

Input: synthetic trajectories ``[n, M, T + 1, C, g, g]`` (default; smooth travelling Fourier
modes per operator, realizations drifting apart over time, so aggregates and the encoder see
structured content), or an existing dataset (``--dataset``). Timed, in one process:

1. ``setup``: :class:`FrameRenderer` construction (field limits, every aggregate of every
   operator at every frame, aggregate limits);
2. ``paint``: compositing every frame (resize, colour limits, colormaps, headers) without
   encoding;
3. ``encode``: H.264 MP4 encoding of the painted frames (ffmpeg libx264, separate process);
4. ``end_to_end``: :func:`render_source` to an MP4 from the loaded trajectories (what
   ``visualize-dataset`` does after reading; frames are streamed to ffmpeg as they are painted).

Examples::

    python benchmarks/bench_render.py --json benchmarks/results/render_cpu.json
    python benchmarks/bench_render.py --operators 4 --steps 30 --grid 64 --mode global
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from spinlock_core.config.render import AGGREGATE_NAMES, COLOR_NORM_MODES, DEFAULT_AGGREGATES  # noqa: E402
from spinlock_core.render import FrameOptions, FrameRenderer, Mp4Writer  # noqa: E402
from spinlock_core.render.export import MP4_CRF, MP4_PRESET  # noqa: E402
from spinlock_core.stages.render_source import RenderSource, RowLabel, load_source  # noqa: E402
from spinlock_core.stages.renders import render_source  # noqa: E402


def synthetic_source(n: int, m: int, steps: int, c: int, g: int, seed: int = 0) -> RenderSource:
    """``n`` operators of smooth fields: 6 travelling Fourier modes each, realizations diverging."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps + 1, dtype=np.float32)
    xs = np.arange(g, dtype=np.float32) * (2 * np.pi / g)
    fields = []
    for _ in range(n):
        out = np.zeros((m, steps + 1, c, g, g), np.float32)
        for _k in range(6):
            ky, kx = rng.integers(1, 7, size=2)
            speed, amp = rng.normal(0, 0.05, size=2), rng.normal(0, 1, size=c).astype(np.float32)
            for r in range(m):
                drift = 0.002 * r * t  # realizations drift apart over time
                py = np.cos(ky * xs[None, :] + (speed[0] + drift)[:, None])  # [T+1, g]
                px = np.cos(kx * xs[None, :] + (speed[1] * t)[:, None])
                out[r] += amp[None, :, None, None] * (py[:, None, :, None] * px[:, None, None, :])
        out += 0.05 * rng.standard_normal(out.shape, dtype=np.float32) * (t / steps)[None, :, None, None, None]
        fields.append(out)
    labels = [RowLabel(i, g, "synthetic_modes", "residual", "medium") for i in range(n)]
    return RenderSource(fields=fields, steps=np.arange(steps + 1), labels=labels, grid_size=g, path="synthetic")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--operators", type=int, default=8)
    p.add_argument("--steps", type=int, default=120, help="steps T (T + 1 frames)")
    p.add_argument("--grid", type=int, default=128)
    p.add_argument("--realizations", type=int, default=3)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--cell", type=int, default=128, help="cell side in pixels")
    p.add_argument("--aggregates", nargs="+", default=list(DEFAULT_AGGREGATES), choices=AGGREGATE_NAMES)
    p.add_argument("--mode", default="per-cell", choices=COLOR_NORM_MODES)
    p.add_argument("--dataset", help="render this dataset instead of synthetic trajectories")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    t0 = time.perf_counter()
    if args.dataset:
        src = load_source(args.dataset, n_operators=args.operators, steps=args.steps)
    else:
        src = synthetic_source(args.operators, args.realizations, args.steps, args.channels, args.grid)
    t_load = time.perf_counter() - t0
    n, (m, f, c, g, _) = len(src.fields), src.fields[0].shape
    opts = FrameOptions(
        aggregates=tuple(args.aggregates), color_norm_mode=args.mode, cell_size=(args.cell, args.cell), add_spacing=True
    )

    t0 = time.perf_counter()
    renderer = FrameRenderer(src.fields, src.steps, src.labels, opts)
    t_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames = [fr for fr in renderer.frames()]
    t_paint = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with Mp4Writer(Path(tmp) / "enc.mp4", fps=10) as w:
            for fr in frames:
                w.write(fr)
        t_encode = time.perf_counter() - t0
        mp4_bytes = (Path(tmp) / "enc.mp4").stat().st_size
        del frames, renderer
        t0 = time.perf_counter()
        summary, _ = render_source(src, {"video": Path(tmp) / "e2e.mp4"}, opts, fps=10)
        t_e2e = time.perf_counter() - t0

    res = {
        "benchmark": "bench_render",
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torch_threads_render": opts.threads,
        "cpu_count": os.cpu_count(),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),  # the machine is shared: load inflates times
        "source": args.dataset or "synthetic",
        "operators": n,
        "realizations": m,
        "frames": f,
        "channels": c,
        "grid": g,
        "cell": args.cell,
        "aggregates": list(args.aggregates),
        "color_norm_mode": args.mode,
        "frame_size": [summary.width, summary.height],
        "input_mb": round(sum(x.nbytes for x in src.fields) / 2**20, 1),
        "load_s": round(t_load, 3),
        "setup_s": round(t_setup, 3),
        "paint_s": round(t_paint, 3),
        "encode_s": round(t_encode, 3),
        "end_to_end_s": round(t_e2e, 3),
        "paint_frames_per_s": round(f / t_paint, 2),
        "setup_plus_paint_frames_per_s": round(f / (t_setup + t_paint), 2),
        "encode_frames_per_s": round(f / t_encode, 2),
        "end_to_end_frames_per_s": round(f / t_e2e, 2),
        "mp4_bytes": mp4_bytes,
        "mp4_preset_crf": [MP4_PRESET, MP4_CRF],
    }
    for k, v in res.items():
        print(f"{k:32s} {v}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
