"""``spinlock stages`` prints the stage table; ``generate --only`` runs a subset of it; the README holds it."""

from __future__ import annotations

import json

from spinlock_cli.main import run_cli
from spinlock_core.stages import STAGES, stage_names, stages_markdown
from spinlock_core.testing import DEFAULT_CONFIG, ROOT


def test_stages_command_lists_the_table():
    res = run_cli("stages", "--format", "json")
    assert res.returncode == 0
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == [s.name for s in STAGES]
    assert run_cli("stages", "--format", "markdown").stdout == stages_markdown()


def test_readme_holds_the_generated_stage_table():
    assert stages_markdown() in (ROOT / "README.md").read_text(), "README stage table is out of date"


def test_generate_only_runs_the_chosen_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    common = [
        "generate",
        "--config",
        str(DEFAULT_CONFIG),
        "--output",
        str(tmp_path / "ds"),
        "--total-samples",
        "2",
        "--batch-size",
        "2",
        "--grid-sizes",
        "16",
        "--num-timesteps",
        "2",
        "--device",
        "cpu",
        "--quiet",
    ]
    res = run_cli(*common, "--only", "sobol_parameters", "operator_specs", "rollouts_hdf5")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "ds" / "partitions" / "grid_0016" / "batch_0000.h5").is_file()
    assert not (tmp_path / "ds" / "features").exists() and not (tmp_path / "ds" / "renders").exists()
    res = run_cli(*common, "--only", "sdf_features")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "ds" / "features" / "grid_0016" / "batch_0000.h5").is_file()


def test_generate_only_refuses_unknown_stages_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    res = run_cli("generate", "--config", str(DEFAULT_CONFIG), "--output", str(tmp_path / "ds"), "--only", "nope")
    assert res.returncode == 2 and "--only: unknown stage(s) ['nope']" in res.stderr
    assert all(n in res.stderr for n in stage_names(partitioned=True))
    assert not (tmp_path / "ds").exists() and not (tmp_path / "home").exists()
