"""The spinlock CLI end to end: generate through Dagster, info, validate, and clean errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from spinlock_assets.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _generate_args(out: Path) -> list[str]:
    return [
        "generate",
        "--config",
        str(ROOT / "configs/experiments/default.yaml"),
        "--output",
        str(out),
        "--total-samples",
        "4",
        "--batch-size",
        "2",
        "--grid-sizes",
        "16",
        "24",
        "--num-realizations",
        "2",
        "--num-timesteps",
        "2",
        "--device",
        "cpu",
        "--quiet",
    ]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    import os

    os.environ["DAGSTER_HOME"] = str(base / "home")
    out = base / "data"
    assert main(_generate_args(out)) == 0
    return out, base / "home"


def test_generate_writes_partitions_index_and_lineage(generated):
    out, home = generated
    files = sorted((out / "partitions").glob("grid_*/batch_*.h5"))
    assert len(files) == 4  # 2 batches x 2 grids
    assert (out / "index.h5").exists() and (out / "experiment.yaml").exists()
    with h5py.File(out / "index.h5", "r") as f:
        assert f["outputs/fields"].shape[0] == 8 and f["outputs/fields"].is_virtual
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    assert inst.get_materialized_partitions(dg.AssetKey("rollouts_hdf5")) == {
        "0000|16",
        "0001|16",
        "0000|24",
        "0001|24",
    }


def test_info_and_validate_succeed(generated, capsys):
    out, _ = generated
    assert main(["info", "--dataset", str(out)]) == 0
    text = capsys.readouterr().out
    assert "outputs/fields" in text
    assert main(["validate", "--dataset", str(out)]) == 0
    assert "VALID" in capsys.readouterr().out


def test_validate_fails_on_a_corrupted_partition(generated, tmp_path, capsys):
    out, _ = generated
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    part = sorted((bad / "partitions").glob("grid_*/batch_*.h5"))[0]
    with h5py.File(part, "r+") as f:
        f["outputs/fields"][0, 0, 1, 0, 0, 0] = np.nan  # NaN in a realization that never diverged
    assert main(["validate", "--dataset", str(part)]) == 1
    assert "INVALID" in capsys.readouterr().err


def test_bad_config_exits_2_and_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        (ROOT / "configs/experiments/default.yaml").read_text().replace("num_realizations: 3", "num_realizations: 0")
    )
    out = tmp_path / "never"
    code = main(["generate", "--config", str(cfg), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "simulation.num_realizations" in err and "Traceback" not in err
    assert not out.exists()


def test_bad_argument_exits_2(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "spinlock_assets.cli", "generate", "--config", "x.yaml", "--total-samples", "many"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "invalid int value" in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "spinlock_assets.cli", "info", "--dataset", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "no such file" in res.stderr


def test_unavailable_device_exits_2_and_writes_nothing(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    out = tmp_path / "never"
    code = main(
        [
            "generate",
            "--config",
            str(ROOT / "configs/experiments/default.yaml"),
            "--output",
            str(out),
            "--device",
            "cuda",
        ]
    )
    assert code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert not out.exists()
