"""CUDA path checks: grouped vs loop convolutions agree, reruns are identical, partitions replay.

Run on a CUDA machine: ``python benchmarks/check_cuda.py``. Prints one line per check and exits 1
on a failure.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from spinlock_core.config import load_config  # noqa: E402
from spinlock_core.dataset import PartitionId  # noqa: E402
from spinlock_core.stages import layout_of, rollout_stage, sobol_stage, specs_stage, validate_dataset  # noqa: E402


def main() -> int:
    assert torch.cuda.is_available(), "needs CUDA"
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            ROOT / "configs/experiments/default.yaml",
            {"simulation.device": "cuda", "dataset.output_dir": tmp, "sampling.batch_size": 32},
        )
        sobol_stage(cfg, 0)
        specs_stage(cfg, 0)
        part = PartitionId(grid=64, batch=0)
        path = layout_of(cfg).rollouts(part)
        runs = {}
        for mode in ("grouped", "loop", "grouped"):
            rollout_stage(cfg, part, conv_mode=mode)
            import h5py

            with h5py.File(path, "r") as f:
                runs.setdefault(mode, []).append((f["outputs/fields"][()], f["metadata/diverged_step"][()]))
        (g1, d1), (g2, _) = runs["grouped"]
        (lp, dl) = runs["loop"][0]
        same = np.array_equal(g1, g2, equal_nan=True)
        print(f"{'ok' if same else 'NOTE'}: grouped rerun byte-identical on CUDA: {same}")
        ok = (d1 < 0) & (dl < 0)
        a, b = g1[ok][:, :2], lp[ok][:, :2]
        rel = float(np.sqrt(np.nanmean((a - b) ** 2) / np.nanmean(b**2)))
        good = rel < 1e-3
        failures += not good
        print(f"{'ok' if good else 'FAIL'}: grouped vs loop convolutions, first step, relative RMS {rel:.2e}")
        rep = validate_dataset(path, replay_samples=3)
        failures += not rep.ok
        print(
            f"{'ok' if rep.ok else 'FAIL'}: validate + CUDA seed replay: {len(rep.checks)} checks, errors {rep.errors[:2]}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
