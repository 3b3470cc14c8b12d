"""`spinlock runs` (spinlock_cli.runs): runs in progress and pool claims; --clear fails runs whose processes
are gone, frees their pool slots and removes temporary files of dead writers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from types import SimpleNamespace

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from spinlock_assets.home import TEMPLATE
from spinlock_assets.runs import HOST_TAG, PID_START_TAG, PID_TAG, hostname, process_start_time
from spinlock_cli.main import main
from spinlock_core.testing import assert_one_line_error


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _subprocess(home, *args):
    env = dict(os.environ, DAGSTER_HOME=str(home))
    return subprocess.run(
        [sys.executable, "-m", "spinlock_cli", "runs", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture
def cli(monkeypatch, capsys):
    """``spinlock runs ARGS`` in this process with DAGSTER_HOME=home: (returncode, stdout, stderr)."""

    def run(home, *args):
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        code = main(["runs", *map(str, args)])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


@pytest.fixture
def home(tmp_path):
    """A Spinlock DAGSTER_HOME (its dagster.yaml) and an instance on it."""
    h = tmp_path / "home"
    h.mkdir()
    shutil.copy(TEMPLATE, h / "dagster.yaml")
    inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(h)))
    yield h, inst
    inst.dispose()


def _add_run(inst, pid: int, start: float | None, partition: str = "0000|16") -> str:
    run_id = str(uuid.uuid4())
    inst.add_run(
        DagsterRun(
            job_name="generate",
            run_id=run_id,
            status=DagsterRunStatus.STARTED,
            tags={
                HOST_TAG: hostname(),
                PID_TAG: str(pid),
                PID_START_TAG: f"{start:.2f}" if start else "",
                "dagster/partition": partition,
            },
        )
    )
    return run_id


def test_an_empty_home_has_nothing_in_progress(home):
    h, _ = home
    res = _subprocess(h)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == f"DAGSTER_HOME {h}"
    assert "no runs in progress, no pool claims held" in res.stdout


def test_clear_fails_orphaned_runs_frees_their_slots_and_keeps_live_ones(home, cli):
    h, inst = home
    storage = inst.event_log_storage
    storage.set_concurrency_slots("gpu", 1)
    dead = _add_run(inst, _dead_pid(), None)
    storage.claim_concurrency_slot("gpu", dead, "rollouts_hdf5")
    alive = _add_run(inst, os.getpid(), process_start_time(os.getpid()), "0001|16")

    shown = cli(h)
    assert shown.returncode == 0, shown.stderr
    assert f"pool gpu: 1/1 slots claimed by {dead[:8]}:rollouts_hdf5" in shown.stdout
    assert f"would be marked failed: run {dead[:8]} STARTED job generate partition 0000|16" in shown.stdout
    assert f"in progress: run {alive[:8]} STARTED job generate partition 0001|16" in shown.stdout
    assert "alive" in shown.stdout and "spinlock runs --clear does the above" in shown.stdout
    assert inst.get_run_by_id(dead).status == DagsterRunStatus.STARTED  # showing changes nothing
    assert len(storage.get_concurrency_info("gpu").claimed_slots) == 1

    cleared = cli(h, "--clear")
    assert cleared.returncode == 0, cleared.stderr
    assert f"  marked failed: run {dead[:8]}" in cleared.stdout
    assert inst.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    assert inst.get_run_by_id(alive).status == DagsterRunStatus.STARTED
    assert storage.get_concurrency_info("gpu").claimed_slots == []

    again = cli(h, "--clear")
    assert "marked failed" not in again.stdout and f"in progress: run {alive[:8]}" in again.stdout


def test_clear_removes_temporary_files_of_dead_writers_only(home, tmp_path, cli):
    h, _ = home
    ds = tmp_path / "data" / "partitions" / "grid_0016"
    ds.mkdir(parents=True)
    stale = ds / f"batch_0000.h5.{_dead_pid()}.0123abcd.tmp"
    mine = ds / f"batch_0001.h5.{os.getpid()}.89abcdef.tmp"  # a live writer (this process)
    for p in (stale, mine):
        p.write_bytes(b"partial")
    shown = cli(h, "--dataset", tmp_path / "data")
    assert shown.returncode == 0 and stale.exists()
    cleared = cli(h, "--clear", "--dataset", tmp_path / "data")
    assert cleared.returncode == 0, cleared.stderr
    assert f"removed {stale}" in cleared.stdout
    assert not stale.exists() and mine.exists()


def test_bad_dataset_and_home_exit_2(home, tmp_path, cli):
    h, _ = home
    assert_one_line_error(cli(h, "--clear", "--dataset", tmp_path / "nope"), 2, "not a directory")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_error(_subprocess(afile), 2, "is a file, not a directory")


def test_a_deleted_default_home_is_made_again_from_the_packaged_template(tmp_path, monkeypatch):
    """Deleting ./dagster_home (to start afresh) must not break the next command: the template ships in the package."""
    from spinlock_assets.home import prepare_home

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert TEMPLATE.is_file() and "dagster_home" not in TEMPLATE.parts
    home = prepare_home()
    assert home == (tmp_path / "dagster_home").resolve()
    assert (home / "dagster.yaml").read_text() == TEMPLATE.read_text()
    shutil.rmtree(home)
    assert (prepare_home() / "dagster.yaml").read_text() == TEMPLATE.read_text()
