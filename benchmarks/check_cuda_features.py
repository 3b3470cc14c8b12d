"""CUDA checks for features, sensitivity and the feature stage (run on a CUDA machine).

1. Roll out a small experiment on CUDA (operator sensitivity measured during the rollout).
2. Extract its features on CUDA and, from the same partition file, on the CPU; every family's
   unmasked values must agree (relative tolerance per family, reported) and be finite for
   never-diverged realizations (the ``features_nan`` check).
3. Re-extracting on CUDA gives identical bytes in the feature arrays.

``python benchmarks/check_cuda_features.py`` prints one line per check and exits 1 on a failure.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from spinlock_core.config import load_config  # noqa: E402
from spinlock_core.dataset import PartitionId  # noqa: E402
from spinlock_core.dataset import quality as C  # noqa: E402
from spinlock_core.stages import (  # noqa: E402
    extract_partition,
    features_config,
    layout_of,
    rollout_stage,
    sobol_stage,
    specs_stage,
)

# Families whose values pass through data-dependent binning/argmax: a float rounding difference can
# move one sample to a neighbouring bin or peak, so compare them by the fraction of close values.
BINNED = {"spatial", "cross_channel", "invariant_drift", "nonlinear", "temporal", "spectral"}


def _close_fraction(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> float:
    ok = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    return float(ok.mean()) if ok.size else 1.0


def main() -> int:
    assert torch.cuda.is_available(), "needs CUDA"
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            ROOT / "configs/experiments/default.yaml",
            {
                "simulation.device": "cuda",
                "dataset.output_dir": tmp,
                "sampling.total_samples": 32,
                "sampling.batch_size": 32,
                "simulation.grid_sizes": [64],
                "simulation.num_timesteps": 24,
            },
        )
        sobol_stage(cfg, 0)
        specs_stage(cfg, 0)
        roll = rollout_stage(cfg, PartitionId(grid=64, batch=0))
        print(f"rollout on {roll.device}: {roll.seconds:.2f} s, sensitivity {roll.sensitivity_seconds:.2f} s")
        fcfg = features_config(cfg)
        part = layout_of(cfg).rollouts(PartitionId(grid=64, batch=0))
        g1 = extract_partition(part, fcfg, out_path=Path(tmp) / "gpu1.h5", device="cuda")
        g2 = extract_partition(part, fcfg, out_path=Path(tmp) / "gpu2.h5", device="cuda")
        c1 = extract_partition(part, fcfg, out_path=Path(tmp) / "cpu.h5", device="cpu")
        print(
            f"features: cuda {g1.samples_per_s:.1f} samples/s, cpu {c1.samples_per_s:.1f} samples/s, {g1.num_features} features"
        )
        with h5py.File(g1.path) as a, h5py.File(g2.path) as b, h5py.File(c1.path) as c:
            for cat in a["features/sdf"]:
                if cat in ("metadata",):
                    continue
                x, y, z = (f[f"features/sdf/{cat}/features"][()] for f in (a, b, c))
                same = np.array_equal(x, y, equal_nan=True)
                frac = _close_fraction(x, z, rtol=1e-3, atol=1e-5)
                need = 0.99 if cat in BINNED or cat == "aggregated" else 0.999
                ok = same and frac >= need
                failures += not ok
                print(
                    f"{'ok  ' if ok else 'FAIL'} {cat:<22} rerun identical={same}  cuda~cpu close fraction={frac:.5f} (need {need})"
                )
        for path in (g1.path, c1.path):
            out = C.features_nan(path)
            failures += not out.passed
            print(f"{'ok  ' if out.passed else 'FAIL'} features_nan {Path(path).name}: {out.description}")
    print("all CUDA feature checks passed" if failures == 0 else f"{failures} CUDA feature checks FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
