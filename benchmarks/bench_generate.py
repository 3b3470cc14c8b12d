"""Generation benchmark: samples/s and trajectories/s of the per-partition rollout stage.

Runs the same pure stages the Dagster assets call (Sobol slice → specs → ICs, batched rollouts,
atomic HDF5 write with threaded compression) on a config (default: the 10k benchmark), for the
first ``--total-samples`` samples, and prints throughput next to the earlier implementation's
measured figures (``shared/spec/perf-anchor.md``) for the matching setting.

Examples::

    python benchmarks/bench_generate.py --total-samples 64 --grid 64 --realizations 5 --device cpu
    python benchmarks/bench_generate.py --total-samples 2000 --device cuda --precision bfloat16
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from spinlock_core.config import load_config  # noqa: E402
from spinlock_core.dataset import PartitionId  # noqa: E402
from spinlock_core.stages import build_specs, compute_points, rollout_stage, sobol_stage, specs_stage  # noqa: E402

#: The earlier implementation's measured samples/s: (device kind, grid, M, T) -> samples/s.
REFERENCE = {
    ("cuda", 128, 10, 1): 5.87,
    ("cuda", 64, 10, 1): 14.6,
    ("cuda", 128, 10, 10): 0.77,
    ("cpu", 64, 5, 1): 1.34,
    ("cpu", 128, 5, 1): 0.27,
    ("cpu", 64, 5, 10): 0.24,
}


def forward_gflop(spec, grid: int) -> float:
    """Convolution GFLOP of one operator forward at ``grid`` (2·H·W·k²·Cin·Cout summed over convs)."""
    from spinlock_core.operators import unit_plan

    return sum(2.0 * grid * grid * u.kernel**2 * u.cin * u.cout for u in unit_plan(spec)) / 1e9


def reference_equivalent_gflop(cfg, total: int, grid: int) -> float:
    """Mean GFLOP per sample of the work the earlier implementation does for the same operators:
    M forwards per stored step (it recomputes the deterministic trunk for every realization)."""
    specs = []
    for b in range(cfg.sampling.num_batches):
        specs += build_specs(cfg, compute_points(cfg, b))
        if len(specs) >= total:
            break
    sim = cfg.simulation
    return (
        sum(forward_gflop(s, grid) for s in specs[:total])
        / min(total, len(specs))
        * sim.num_realizations
        * sim.num_timesteps
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs/experiments/benchmark_10k.yaml"))
    p.add_argument(
        "--total-samples",
        type=int,
        default=200,
        help="samples generated (sampling.total_samples: the first N points of the config's Sobol sequence)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="samples per partition (default: config's)")
    p.add_argument("--grid", type=int, default=None)
    p.add_argument("--realizations", type=int, default=None)
    p.add_argument("--timesteps", type=int, default=None, help="operator steps T (T+1 frames stored)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=None)
    p.add_argument("--compression", default=None, choices=["none", "gzip", "lzf"])
    p.add_argument("--chunk", type=int, default=None, help="operators per bank (simulation.operators_per_chunk)")
    p.add_argument("--conv-mode", default="auto", choices=["auto", "grouped", "loop"])
    p.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN autotune (off by default)")
    p.add_argument("--no-deterministic", action="store_true", help="simulation.deterministic: false")
    p.add_argument("--warmup", type=int, default=1, help="partitions run first and not timed")
    p.add_argument(
        "--no-sensitivity",
        action="store_true",
        help="do not measure operator sensitivity during rollout (features operator_sensitivity.enabled: false)",
    )
    p.add_argument("--json", default=None, help="also write the result to this JSON file")
    args = p.parse_args()

    overrides = {
        "simulation.device": args.device,
        "simulation.deterministic": not args.no_deterministic,
        "sampling.total_samples": args.total_samples,
    }
    for key, val in [
        ("sampling.batch_size", args.batch_size),
        ("simulation.grid_sizes", [args.grid] if args.grid else None),
        ("simulation.num_realizations", args.realizations),
        ("simulation.num_timesteps", args.timesteps),
        ("simulation.precision", args.precision),
        ("simulation.operators_per_chunk", args.chunk),
        ("dataset.storage.compression", args.compression),
    ]:
        if val is not None:
            overrides[key] = val
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    with tempfile.TemporaryDirectory() as tmp:
        overrides["dataset.output_dir"] = tmp
        if args.no_sensitivity:
            off = Path(tmp) / "features_no_sensitivity.yaml"
            off.write_text("operator_sensitivity:\n  enabled: false\n")
            overrides["features.config"] = str(off)
        cfg = load_config(args.config, overrides)
        sim = cfg.simulation
        grid = sim.grid_sizes[0]
        n_batches = cfg.sampling.num_batches
        warm = min(args.warmup, n_batches)
        timed_samples, timed_s, rollout_s, nbytes, diverged = 0, 0.0, 0.0, 0, 0
        parts = {"ic": 0.0, "build": 0.0, "host": 0.0, "write_wait": 0.0, "sensitivity": 0.0}
        for b in range(n_batches + warm):
            bb = b % n_batches
            t0 = time.perf_counter()
            sobol_stage(cfg, bb)  # points/batch_BBBB.json (the last batch may be smaller)
            specs_stage(cfg, bb)  # specs/batch_BBBB.json
            s = rollout_stage(cfg, PartitionId(grid=grid, batch=bb), conv_mode=args.conv_mode)
            dt = time.perf_counter() - t0
            if b >= warm:
                timed_samples += s.num_samples
                timed_s += dt
                rollout_s += s.rollout_seconds
                nbytes += s.bytes
                diverged += s.diverged_operators
                for k in parts:
                    parts[k] += getattr(s, f"{k}_seconds")
        dev = s.device
        gflop = reference_equivalent_gflop(cfg, args.total_samples, grid)
    kind = "cuda" if dev.startswith("cuda") else "cpu"
    m, t = sim.num_realizations, sim.num_timesteps
    rate = timed_samples / timed_s
    result = {
        "device": dev,
        "device_name": torch.cuda.get_device_name(0) if kind == "cuda" else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "grid": grid,
        "realizations": m,
        "timesteps": t,
        "precision": sim.precision,
        "compression": cfg.dataset.storage.compression,
        "conv_mode": s.conv_mode,
        "cudnn_benchmark": args.cudnn_benchmark,
        "deterministic": not args.no_deterministic,
        "operator_sensitivity": not args.no_sensitivity,
        "samples": timed_samples,
        "seconds": round(timed_s, 3),
        "samples_per_s": round(rate, 3),
        "trajectories_per_s": round(rate * m, 2),
        "rollout_share": round(rollout_s / timed_s, 3),
        "shares": {k: round(v / timed_s, 3) for k, v in parts.items()},
        "MB_written_per_s": round(nbytes / timed_s / 1e6, 1),
        "diverged_operators": diverged,
        "ref_equiv_gflop_per_sample": round(gflop, 1),
        "ref_equiv_gflop_per_s": round(gflop * rate, 1),
    }
    ref = REFERENCE.get((kind, grid, m, t))
    if ref:
        result["reference_samples_per_s"] = ref
        result["speedup_vs_reference"] = round(rate / ref, 2)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
