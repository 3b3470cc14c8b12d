"""Training-loader throughput: ``TrajectoryDataset`` windows per second on one core, from page cache.

Writes a synthetic dataset (``--samples`` samples at ``--grid``, M realizations x ``--frames``
frames x C channels, float32 normal noise: the worst case for compression) once per storage
setting (``none``, ``gzip`` level 1 with byte shuffle = the default, ``lzf``), reads every file
once to warm the page cache, then with one torch and one HDF5 thread measures:

* the loader: every window (``k`` inputs, ``h`` outputs, stride 1) in stored order and in a
  shuffled order, as GB/s of tensors delivered and of distinct trajectory bytes read;
* the limit measured in the same run (shuffled windows of compressed storage reach at most
  about ``(k + h) / frames`` of it: each one decodes its realization's whole chunk): for ``none``, a memory copy of the same bytes (what
  reading from page cache cannot beat); for compressed storage, HDF5 reading each file's whole
  trajectory dataset in one call (every chunk decoded once by the same filters, one core),
  what any reader of those files must do.

Prints the figures, the hardware and loader / limit; ``--json`` writes them::

    python benchmarks/bench_loader.py --json benchmarks/results/cpu_loader.json
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

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from spinlock_core.config import SplitsConfig  # noqa: E402
from spinlock_core.data import TrajectoryDataset  # noqa: E402
from spinlock_core.dataset import DatasetLayout, PartitionId, assign_splits, write_splits  # noqa: E402
from spinlock_core.testing import write_partition  # noqa: E402


def make_dataset(root: Path, args: argparse.Namespace, compression: str) -> DatasetLayout:
    layout = DatasetLayout(root)
    per = args.samples // 2
    for b in range(2):
        write_partition(
            layout.rollouts(PartitionId(grid=args.grid, batch=b)),
            start=b * per,
            n=per,
            m=args.realizations,
            c=args.channels,
            g=args.grid,
            time_steps=list(range(args.frames)),
            compression=compression,
            compression_level=1,
            shuffle=compression != "none",
            seed=b,
            batch=b,
            chunk_rows=per,
        )
    write_splits(layout, assign_splits(np.arange(2 * per), SplitsConfig(train=1.0, valid=0.0, test=0.0), 0))
    return layout


def full_read_seconds(layout: DatasetLayout) -> float:
    """Seconds to read every trajectory in one call per file (HDF5 decodes each chunk once, one core)."""
    t = 0.0
    for path in layout.rollout_files():
        with h5py.File(path, "r") as f:
            d = f["outputs/fields"]
            out = np.empty(d.shape, dtype=np.float32)
            t0 = time.perf_counter()
            d.read_direct(out)
            t += time.perf_counter() - t0
    return t


def copy_seconds(nbytes: int, repeat: int = 5) -> float:
    src = np.random.default_rng(0).standard_normal(nbytes // 4).astype(np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return best


def loader_pass(ds: TrajectoryDataset, order: np.ndarray) -> tuple[float, int]:
    delivered = 0
    t0 = time.perf_counter()
    for j in order.tolist():
        it = ds[j]
        delivered += it["input_fields"].nbytes + it["output_fields"].nbytes
    return time.perf_counter() - t0, delivered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, default=128)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--realizations", type=int, default=3)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--k", type=int, default=1, help="n_steps_input")
    ap.add_argument("--h", type=int, default=1, help="n_steps_output")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for compression in ("none", "gzip", "lzf"):
        with tempfile.TemporaryDirectory(prefix="spinlock-loader-") as tmp:
            layout = make_dataset(Path(tmp) / "ds", args, compression)
            on_disk = sum(p.stat().st_size for p in layout.rollout_files())
            for p in layout.rollout_files():  # into the page cache
                p.read_bytes()
            ds = TrajectoryDataset(
                layout.root, "train", grid_size=args.grid, n_steps_input=args.k, n_steps_output=args.h
            )
            traj_bytes = args.samples * args.realizations * args.frames * args.channels * args.grid**2 * 4
            loader_pass(ds, np.arange(min(len(ds), 8)))  # open the files
            t_seq, delivered = loader_pass(ds, np.arange(len(ds)))
            t_rand, _ = loader_pass(ds, np.random.default_rng(0).permutation(len(ds)))
            ds.close()  # before the limit: HDF5 would share the loader's open datasets (and caches) with it
            if compression == "none":
                limit_s, limit_what = copy_seconds(traj_bytes), "memory copy of the trajectory bytes"
            else:
                limit_s = full_read_seconds(layout)
                limit_what = f"HDF5 reading every chunk once ({compression}, shuffle), whole datasets, one core"
            row = {
                "storage": compression,
                "windows": len(ds),
                "trajectory_bytes": traj_bytes,
                "bytes_on_disk": on_disk,
                "sequential": {
                    "s": t_seq,
                    "windows_per_s": len(ds) / t_seq,
                    "delivered_GB_per_s": delivered / t_seq / 1e9,
                    "trajectory_GB_per_s": traj_bytes / t_seq / 1e9,
                },
                "shuffled": {
                    "s": t_rand,
                    "windows_per_s": len(ds) / t_rand,
                    "delivered_GB_per_s": delivered / t_rand / 1e9,
                    "trajectory_GB_per_s": traj_bytes / t_rand / 1e9,
                },
                "limit": {"what": limit_what, "s": limit_s, "GB_per_s": traj_bytes / limit_s / 1e9},
            }
            rows.append(row)
            lim = row["limit"]["GB_per_s"]
            print(
                f"{compression:>5}: {len(ds)} windows; sequential {row['sequential']['windows_per_s']:.0f}/s = "
                f"{row['sequential']['delivered_GB_per_s']:.2f} GB/s delivered, "
                f"{row['sequential']['trajectory_GB_per_s']:.2f} GB/s of trajectories "
                f"({row['sequential']['trajectory_GB_per_s'] / lim:.0%} of the limit); shuffled "
                f"{row['shuffled']['windows_per_s']:.0f}/s = {row['shuffled']['delivered_GB_per_s']:.2f} GB/s delivered "
                f"({row['shuffled']['trajectory_GB_per_s'] / lim:.0%} of the limit); limit: {lim:.2f} GB/s ({row['limit']['what']})",
                flush=True,
            )
    out = {
        "hardware": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version,
        },
        "setting": {k: getattr(args, k) for k in ("grid", "samples", "realizations", "frames", "channels", "k", "h")},
        "rows": rows,
    }
    print(json.dumps(out["hardware"]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
