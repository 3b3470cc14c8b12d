"""Generate a small experiment through the stage functions and digest every generated array.

The digest (``digests.json`` beside this file) was recorded before the dataset-contract
restructuring; ``test_golden.py`` regenerates the experiment and compares, so a move of code
can never silently change trajectories, initial conditions, parameters, seeds or features.

Run ``python tests/golden/golden_run.py --write`` to re-record (only for a deliberate change
of the generated data, stated in the commit message).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DIGESTS = HERE / "digests.json"

OVERRIDES = {
    "sampling.total_samples": 8,
    "sampling.batch_size": 4,
    "simulation.grid_sizes": [16, 24],
    "simulation.num_realizations": 2,
    "simulation.num_timesteps": 6,
    "simulation.device": "cpu",
    "features.config": str(ROOT / "configs" / "features" / "default.yaml"),
}

ROLLOUT_ARRAYS = (
    "inputs/fields",
    "outputs/fields",
    "parameters/params",
    "parameters/values",
    "metadata/sample_index",
    "metadata/ic_types",
    "metadata/operator_specs",
    "metadata/weight_seeds",
    "metadata/ic_seeds",
    "metadata/noise_seeds",
    "metadata/diverged_step",
    "operator_sensitivity/values",
)


def array_digest(a: np.ndarray) -> dict:
    """sha256 of the array's bytes (strings: UTF-8 joined) plus float64 statistics.

    The statistics let a machine whose CPU kernels differ (another ISA) still check values
    within float32 tolerance when the bytes cannot match.
    """
    a = np.asarray(a)
    if a.dtype.kind in "OSU":
        items = [v.decode() if isinstance(v, bytes) else str(v) for v in a.ravel().tolist()]
        return {"sha256": hashlib.sha256("\x00".join(items).encode()).hexdigest(), "shape": list(a.shape)}
    h = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
    out: dict = {"sha256": h, "shape": list(a.shape), "dtype": str(a.dtype)}
    if a.dtype.kind == "f":
        fin = np.isfinite(a)
        v = np.where(fin, a, 0).astype(np.float64)
        out.update(
            nonfinite=int((~fin).sum()),
            sum=float(v.sum()),
            sumsq=float((v * v).sum()),
            absmax=float(np.abs(v).max()) if v.size else 0.0,
        )
    return out


def generate(out_dir: Path) -> dict:
    """Generate the experiment under ``out_dir`` and return ``{file: {array: digest}}``."""
    from spinlock_golden_api import generate_experiment, read_arrays

    files = generate_experiment(
        ROOT / "configs" / "experiments" / "default.yaml", dict(OVERRIDES, **{"dataset.output_dir": str(out_dir)})
    )
    result = {}
    for rel, path in files.items():
        result[rel] = {name: array_digest(arr) for name, arr in read_arrays(path).items()}
    return result


if __name__ == "__main__":
    import tempfile

    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory() as tmp:
        digests = generate(Path(tmp) / "ds")
    payload = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__, "files": digests}
    text = json.dumps(payload, indent=1, sort_keys=True)
    if "--write" in sys.argv:
        DIGESTS.write_text(text + "\n")
        print(f"wrote {DIGESTS}")
    else:
        print(text)
