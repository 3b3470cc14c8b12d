"""examples/train_fno.py runs end to end on a generated dataset (neuraloperator's FNO, a few steps).

Needs neuraloperator 2.0.0 (``pip install --no-deps neuraloperator==2.0.0 tensorly==0.10.0
tensorly-torch==0.5.0 opt-einsum==3.4.0``); skipped without it, a failure where
``SPINLOCK_REQUIRE_SERVICES=1`` (CI). A few steps prove the wiring (DataLoader workers, the
forecaster, training, evaluation in physical units, the JSON), not learning: that is
test_learns.py's job for the UNet.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from spinlock_core.baselines import evaluate
from spinlock_core.data import TrajectoryDataset
from spinlock_core.testing import ROOT

SCRIPT = ROOT / "examples" / "train_fno.py"


def _need_neuralop() -> None:
    if importlib.util.find_spec("neuralop") is None:
        if os.environ.get("SPINLOCK_REQUIRE_SERVICES") == "1":
            pytest.fail("neuraloperator is required here (SPINLOCK_REQUIRE_SERVICES=1) but is not installed")
        pytest.skip("neuraloperator is not installed (pip install --no-deps neuraloperator==2.0.0 ...)")


def test_train_fno_example_trains_and_scores_against_the_references(learning_dataset, tmp_path):
    _need_neuralop()
    out = tmp_path / "fno.json"
    cmd = [sys.executable, str(SCRIPT), "--dataset", str(learning_dataset), "--grid-size", "16", "--steps", "6"]
    cmd += ["--batch-size", "16", "--hidden", "8", "--layers", "2", "--modes", "4", "--workers", "2"]
    cmd += ["--threads", "1", "--device", "cpu", "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fno" in res.stdout and "persistence" in res.stdout and "mean_field" in res.stdout
    body = json.loads(out.read_text())
    assert body["model"] == "fno" and body["weights"] > 0
    ev = body["evaluation"]
    assert ev["units"] == "physical" and ev["split"] == "test" and ev["samples"] == 32
    assert set(ev["scores"]) == {"fno", "persistence", "mean_field"}
    assert all(math.isfinite(v["nrmse"]) for v in ev["scores"].values())
    # the references it printed are the ones evaluate() gives on the same split
    test_ds = TrajectoryDataset(learning_dataset, "test", 16, n_steps_input=2, normalize=True)
    ref = evaluate(None, test_ds).scores
    assert ev["scores"]["persistence"]["nrmse"] == pytest.approx(ref["persistence"].nrmse, rel=1e-6)
    assert ev["scores"]["mean_field"]["nrmse"] == pytest.approx(ref["mean_field"].nrmse, rel=1e-6)


def test_train_fno_example_says_what_to_install_without_neuralop(learning_dataset, tmp_path):
    """Without neuralop importable the script exits 2 with one line naming the package (simulated by a shadow module)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "neuralop.py").write_text("raise ImportError('neuralop hidden for this test')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", str(learning_dataset), "--steps", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert "neuraloperator is not installed" in res.stderr and "Traceback" not in res.stderr
