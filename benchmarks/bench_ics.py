"""IC generation benchmark: ICs/s of every registered IC type (default params).

For each type (sorted by name) it calls ``generate_ics`` once untimed (warm-up: lazy imports,
CUDA kernels, cached grids), then ``--repeats`` timed calls of a batch of ``--batch`` samples
with per-sample seeds ``derive_seed(--seed, Stream.IC, j)``; on CUDA each call is followed by
``torch.cuda.synchronize``. Reported: median and best ms per batch, and ICs/s = batch / median.

Examples::

    python benchmarks/bench_ics.py --device cpu
    python benchmarks/bench_ics.py --device cuda --json benchmarks/results/ics_h100.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from spinlock_core.ics import IC_REGISTRY, generate_ics  # noqa: E402
from spinlock_core.seeding import Stream, derive_seed  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_type(name: str, seeds: list[int], grid: int, channels: int, device: torch.device, repeats: int) -> dict:
    """Warm up once, then time ``repeats`` batched calls; returns the figures for one type."""
    reqs = [(name, None, s) for s in seeds]
    generate_ics(reqs, grid, channels, device)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate_ics(reqs, grid, channels, device)
        _sync(device)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    ic = IC_REGISTRY[name]
    return {
        "type": name,
        "tier": ic.tier,
        "domain": ic.domain,
        "ms_per_batch_median": 1e3 * med,
        "ms_per_batch_best": 1e3 * min(times),
        "ics_per_s": len(seeds) / med,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--grid", type=int, default=128, help="grid side N (default 128)")
    p.add_argument("--batch", type=int, default=64, help="ICs per call B (default 64)")
    p.add_argument("--channels", type=int, default=3, help="channels C (default 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per type (default 3)")
    p.add_argument("--seed", type=int, default=0, help="root seed of the per-sample IC seeds")
    p.add_argument("--types", nargs="+", default=None, help="only these types (default: all registered)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: CUDA is not available here")
    if args.threads:
        torch.set_num_threads(args.threads)
    names = sorted(args.types or IC_REGISTRY)
    unknown = [n for n in names if n not in IC_REGISTRY]
    if unknown:
        p.error(f"unknown IC type(s) {unknown}; registered: {sorted(IC_REGISTRY)}")
    seeds = [derive_seed(args.seed, Stream.IC, j) for j in range(args.batch)]
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU"
    print(
        f"IC generation: B={args.batch}, C={args.channels}, {args.grid}x{args.grid}, device {device} ({dev_name}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}",
        file=sys.stderr,
    )

    rows, failed = [], {}
    for name in names:
        try:
            rows.append(bench_type(name, seeds, args.grid, args.channels, device, args.repeats))
        except Exception as exc:  # one broken type must not hide the others' figures
            failed[name] = f"{type(exc).__name__}: {exc}"
            print(f"  {name:<28s} FAILED: {failed[name]}", file=sys.stderr)
            continue
        r = rows[-1]
        print(f"  {name:<28s} {r['ms_per_batch_median']:9.1f} ms  {r['ics_per_s']:10.1f} ICs/s", file=sys.stderr)

    w = max([len("type"), *(len(r["type"]) for r in rows)])
    print(f"\n{'type':<{w}}  {'tier':<8}  {'ms/batch (median)':>17}  {'ms/batch (best)':>15}  {'ICs/s':>10}")
    print(f"{'-' * w}  {'-' * 8}  {'-' * 17}  {'-' * 15}  {'-' * 10}")
    for r in rows:
        print(
            f"{r['type']:<{w}}  {r['tier']:<8}  {r['ms_per_batch_median']:17.2f}  {r['ms_per_batch_best']:15.2f}  "
            f"{r['ics_per_s']:10.1f}"
        )

    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "bench_ics",
            "device": str(device),
            "device_name": dev_name,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "grid": args.grid,
            "batch": args.batch,
            "channels": args.channels,
            "repeats": args.repeats,
            "seed": args.seed,
            "results": rows,
            "failed": failed,
        }
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(out)
        print(f"\nwrote {out}", file=sys.stderr)
    if failed:
        print(f"\n{len(failed)} type(s) failed: {sorted(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
