"""Bad outputs, homes and sizes are refused before anything is written (exit 2, one clear message)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from integrity_helpers import SPINLOCK, cli_env

from spinlock_core.testing import DEFAULT_CONFIG, assert_one_line_error

TINY = ["--total-samples", "4", "--batch-size", "4", "--grid-sizes", "16", "--num-timesteps", "2", "--device", "cpu"]


def _run(tmp_path: Path, *args: str, home: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SPINLOCK, *args],
        env=cli_env(home or tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory nobody may create files in (as root: a read-only system directory)."""
    if os.geteuid() == 0:
        return Path("/sys")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    return d


def test_output_that_is_a_file_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "taken"  # an existing file (a name ending in .h5 is refused by the config: test_generate_cli)
    out.write_bytes(b"precious")
    before = _tree(tmp_path)
    res = _run(tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(out), *TINY)
    assert_one_line_error(res, 2, "dataset.output_dir", "is a file")
    assert out.read_bytes() == b"precious"
    assert _tree(tmp_path) == before  # no experiment.yaml, no DAGSTER_HOME, nothing


def test_unwritable_output_is_refused_before_anything_is_written(tmp_path):
    out = _read_only_dir(tmp_path) / "spinlock_dataset"
    before = _tree(tmp_path)
    res = _run(tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(out), *TINY)
    assert_one_line_error(res, 2, "dataset.output_dir", "not writable")
    assert not out.exists() and _tree(tmp_path) == before


def test_unwritable_dagster_home_is_refused(tmp_path):
    home = _read_only_dir(tmp_path) / "home"
    res = _run(
        tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(tmp_path / "ds"), *TINY, home=home
    )
    assert_one_line_error(res, 2, "DAGSTER_HOME")
    assert not (tmp_path / "ds").exists()


def test_dagster_home_that_is_a_file_is_refused(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory")
    res = _run(
        tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(tmp_path / "ds"), *TINY, home=home
    )
    assert_one_line_error(res, 2, "DAGSTER_HOME", "is a file")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        # one trajectory of 5 PB: refused with the estimate, without allocating anything
        (["--grid-sizes", "2048", "--num-realizations", "1000", "--num-timesteps", "100000"], "4 GiB chunk limit"),
        # a billion samples: the Sobol point set alone would need ~100 GB of memory
        (["--total-samples", "1000000000", "--batch-size", "1000"], "memory"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(tmp_path, args, needle):
    res = _run(
        tmp_path,
        "generate",
        "--config",
        str(DEFAULT_CONFIG),
        "--output",
        str(tmp_path / "ds"),
        "--device",
        "cpu",
        *args,
        timeout=60,
    )
    err = assert_one_line_error(res, 2, "cannot generate", needle)
    assert "MB" in err or "GB" in err or "TB" in err or "PB" in err  # the estimate is stated
    assert not (tmp_path / "ds").exists() and not (tmp_path / "home").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    res = _run(
        tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(tmp_path / "ds"), *TINY, "--dry-run"
    )
    assert res.returncode == 0, res.stderr
    for word in ("partitions: 1", "disk:", "peak host memory", "time: rollouts about"):
        assert word in res.stdout, res.stdout
    assert not (tmp_path / "ds").exists() and not (tmp_path / "home").exists()


def test_all_families_disabled_is_a_config_error(tmp_path):
    off = tmp_path / "off.yaml"
    off.write_text(
        "".join(
            f"{f}: {{enabled: false}}\n"
            for f in (
                "spatial",
                "spectral",
                "laplacian_energy",
                "cross_channel",
                "temporal",
                "causality",
                "invariant_drift",
                "nonlinear",
                "operator_sensitivity",
            )
        )
    )
    exp = tmp_path / "exp.yaml"
    exp.write_text(DEFAULT_CONFIG.read_text().replace("config: configs/features/default.yaml", f"config: {off}"))
    assert f"config: {off}" in exp.read_text()
    res = _run(tmp_path, "generate", "--config", str(exp), "--output", str(tmp_path / "ds"), *TINY)
    assert_one_line_error(res, 2, "every feature is disabled")
    assert not (tmp_path / "ds").exists()


def test_the_config_hash_covers_only_what_changes_the_data(tmp_path):
    from spinlock_core.testing import tiny_config

    base = tiny_config(tmp_path / "a").config_hash()
    same = [
        {"dataset.output_dir": str(tmp_path / "moved")},
        {"metadata.name": "renamed"},
        {"simulation.grid_sizes": [16, 24, 32]},
        {"renders.fps": 3},
        {"sampling.validation.max_discrepancy": 0.5},
        {"dataset.storage.compression_threads": 1},
    ]
    for o in same:
        o.setdefault("dataset.output_dir", str(tmp_path / "a"))
        assert tiny_config(o.pop("dataset.output_dir"), **o).config_hash() == base, o
    for o in ({"simulation.num_timesteps": 4}, {"sampling.sobol.seed": 7}, {"simulation.precision": "bfloat16"}):
        assert tiny_config(tmp_path / "a", **o).config_hash() != base, o
