"""Faults of processes: kill -9 while holding the compute pool slot, Ctrl-C and SIGTERM, dead writers' files.

Before the fix a ``spinlock generate`` killed with SIGKILL kept the single ``gpu`` slot and every
later run in the same ``DAGSTER_HOME`` waited forever, silently, ignoring Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from integrity_helpers import SPINLOCK, cli_env

from spinlock_core.testing import DEFAULT_CONFIG, assert_no_temp_files

PY = sys.executable

# A run that takes the only slot of the cpu pool (the pool of a CPU experiment's torch steps) and sleeps, like a
# generate killed in its rollouts step.
HOLDER = """
import time, dagster as dg

@dg.op(pool="cpu")
def hold():
    print("HOLDING", flush=True)
    time.sleep(600)

@dg.job
def holder():
    hold()

instance = dg.DagsterInstance.get()
instance.event_log_storage.set_concurrency_slots("cpu", 1)
holder.execute_in_process(instance=instance)
"""

TINY = [
    "--total-samples",
    "4",
    "--batch-size",
    "4",
    "--grid-sizes",
    "16",
    "--num-timesteps",
    "2",
    "--device",
    "cpu",
    "--quiet",
]


def _home(tmp_path: Path) -> Path:
    from spinlock_assets.home import TEMPLATE

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(TEMPLATE.read_text())
    return home


def _start_holder(tmp_path: Path, home: Path) -> subprocess.Popen:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen(
        [PY, str(script)], env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the slot is held
    assert "HOLDING" in line
    return proc


def _generate(home: Path, out: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SPINLOCK, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(out), *TINY, *extra],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_killed_slot_holder_does_not_block_the_next_generate(tmp_path):
    home = _home(tmp_path)
    holder = _start_holder(tmp_path, home)
    holder.kill()  # SIGKILL: the run stays STARTED and keeps the cpu slot
    holder.wait()
    runs = subprocess.run([*SPINLOCK, "runs"], env=cli_env(home), capture_output=True, text=True, timeout=120)
    assert runs.returncode == 0, runs.stderr
    assert "1/1 slots claimed" in runs.stdout and "would be marked failed" in runs.stdout
    res = _generate(home, tmp_path / "ds")  # finishes instead of waiting forever
    assert res.returncode == 0, res.stderr
    assert "marked failed (process gone)" in res.stderr
    after = subprocess.run([*SPINLOCK, "runs"], env=cli_env(home), capture_output=True, text=True, timeout=120)
    assert "0/1 slots claimed" in after.stdout


def _start_waiting_generate(tmp_path: Path, home: Path) -> tuple[subprocess.Popen, str]:
    """A generate started while the cpu slot is held; returns it once it says what it waits for, and its stderr."""
    gen = subprocess.Popen(
        [
            *SPINLOCK,
            "generate",
            "--config",
            str(DEFAULT_CONFIG),
            "--output",
            str(tmp_path / "ds"),
            *TINY,
        ],
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert gen.stderr is not None
    seen, deadline = "", time.monotonic() + 120
    while "waiting for a slot of pool 'cpu'" not in seen:
        assert time.monotonic() < deadline and gen.poll() is None, seen
        seen += gen.stderr.readline()
    return gen, seen


def test_a_waiting_generate_names_the_holder_and_proceeds_when_it_dies(tmp_path):
    home = _home(tmp_path)
    holder = _start_holder(tmp_path, home)
    gen, seen = _start_waiting_generate(tmp_path, home)
    try:
        assert "held by: step hold of run" in seen and "alive" in seen
        holder.kill()
        holder.wait()
        out, err = gen.communicate(timeout=180)
        assert gen.returncode == 0, seen + err
        assert "marked failed (process gone)" in seen + err
    finally:
        for p in (holder, gen):
            if p.poll() is None:
                p.kill()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_waiting_generate_within_seconds(tmp_path, sig, code):
    home = _home(tmp_path)
    holder = _start_holder(tmp_path, home)
    try:
        gen, _ = _start_waiting_generate(tmp_path, home)
        t0 = time.monotonic()
        gen.send_signal(sig)
        gen.wait(timeout=10)
        assert time.monotonic() - t0 < 10
        assert gen.returncode == code
        assert_no_temp_files(tmp_path / "ds")
    finally:
        holder.kill()
        holder.wait()
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as inst:
            mine = [r for r in inst.get_run_records() if r.dagster_run.tags.get("spinlock/cli") == "generate"]
            assert mine and all(r.dagster_run.status == dg.DagsterRunStatus.CANCELED for r in mine)
    finally:
        os.environ.pop("DAGSTER_HOME", None)


def test_sigterm_during_a_rollout_leaves_no_half_file(tmp_path):
    home = _home(tmp_path)
    out = tmp_path / "ds"
    gen = subprocess.Popen(
        [
            *SPINLOCK,
            "generate",
            "--config",
            str(DEFAULT_CONFIG),
            "--output",
            str(out),
            "--total-samples",
            "64",
            "--batch-size",
            "64",
            "--grid-sizes",
            "64",
            "--num-timesteps",
            "40",
            "--device",
            "cpu",
            "--quiet",
        ],
        env=cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list((out / "partitions").rglob("*.tmp")):  # the partition file is being written
        assert gen.poll() is None, gen.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    t0 = time.monotonic()
    gen.send_signal(signal.SIGTERM)
    gen.wait(timeout=10)
    assert time.monotonic() - t0 < 10 and gen.returncode == 143
    assert_no_temp_files(out)
    assert not list((out / "partitions").rglob("*.h5"))  # nothing half-written took a final name


def test_temp_files_of_dead_writers_are_removed_by_the_next_generate(tmp_path):
    home = _home(tmp_path)
    out = tmp_path / "ds"
    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    stale = out / "partitions" / "grid_0016" / f"batch_0000.h5.{dead.pid}.0123abcd.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    live = out / "partitions" / "grid_0016" / f"batch_0001.h5.{os.getpid()}.0123abcd.tmp"
    live.write_bytes(b"someone is writing this")
    res = _generate(home, out)
    assert res.returncode == 0, res.stderr
    assert not stale.exists() and f"removed {stale}" in res.stderr
    assert live.exists()  # a live writer's file is left alone


def test_run_monitoring_sees_a_dead_run_worker_through_the_launcher(tmp_path):
    import dagster as dg
    from dagster._core.launcher import WorkerStatus

    from spinlock_assets.launcher import SpinlockRunLauncher

    home = _home(tmp_path)
    holder = _start_holder(tmp_path, home)
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as inst:
            launcher = SpinlockRunLauncher()
            launcher.register_instance(inst)
            (run,) = [r.dagster_run for r in inst.get_run_records()]
            assert launcher.supports_check_run_worker_health
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
            holder.kill()
            holder.wait()
            res = launcher.check_run_worker_health(run)
            assert res.status == WorkerStatus.FAILED and "gone" in (res.msg or "")
            assert isinstance(inst.run_launcher, SpinlockRunLauncher)  # the home's dagster.yaml uses it
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        if holder.poll() is None:
            holder.kill()


def _kill_when(proc: subprocess.Popen, root: Path, pattern: str, timeout: float = 240) -> bool:
    """SIGKILL ``proc`` once a file matching ``pattern`` appears under ``root``; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if list(root.glob(pattern)):
            proc.kill()
            proc.wait()
            return True
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"{pattern} never appeared under {root}")


GENERATE_MOMENTS = {
    "points": "points/*.tmp",
    "rollouts": "partitions/*/*.tmp",
    "features": "features/*/*.tmp",
    "renders": "renders/*/*.tmp*",
    "index": "index.h5.*.tmp",
}


@pytest.mark.parametrize("moment", sorted(GENERATE_MOMENTS))
def test_kill_9_at_any_moment_of_generate_then_a_rerun_gives_a_valid_dataset(tmp_path, moment):
    home = _home(tmp_path)
    out = tmp_path / "ds"
    args = [
        *SPINLOCK,
        "generate",
        "--config",
        str(DEFAULT_CONFIG),
        "--output",
        str(out),
        "--total-samples",
        "4",
        "--batch-size",
        "2",
        "--grid-sizes",
        "16",
        "--num-timesteps",
        "3",
        "--device",
        "cpu",
        "--quiet",
    ]
    first = subprocess.Popen(args, env=cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = _kill_when(first, out, GENERATE_MOMENTS[moment])
    # the points file is written in a millisecond: the poll may miss it, then the run simply completed
    assert killed or (moment == "points" and first.returncode == 0)
    # whatever was complete before the kill is intact and readable
    for f in out.rglob("*.h5"):
        from spinlock_core.dataset import hdf5 as H

        with H.File(f, "r"):
            pass
    again = subprocess.run(args, env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert_no_temp_files(out)
    valid = subprocess.run(
        [*SPINLOCK, "validate", "--dataset", str(out)],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_kill_9_during_extract_features_then_a_rerun_extracts_the_rest(tmp_path):
    from spinlock_core.testing import build_dataset

    _, layout = build_dataset(
        tmp_path / "ds", **{"renders.enabled": False, "sampling.total_samples": 12, "sampling.batch_size": 3}
    )
    shutil.rmtree(layout.root / "features")
    args = [*SPINLOCK, "extract-features", "--dataset", str(layout.root), "--quiet"]
    home = _home(tmp_path)
    proc = subprocess.Popen(args, env=cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _kill_when(proc, layout.root, "features/*/*.tmp")
    done_before = layout.feature_partitions()
    again = subprocess.run(args, env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (
        f"{len(layout.rollout_partitions()) - len(done_before)} of {len(layout.rollout_partitions())}" in again.stderr
    )
    assert f"removed {layout.root}" in again.stderr  # the dead writer's half file
    assert_no_temp_files(layout.root)
    assert len(layout.feature_partitions()) == len(layout.rollout_partitions())


def test_kill_9_during_visualize_dataset_leaves_no_output(tmp_path):
    from spinlock_core.testing import build_dataset

    _, layout = build_dataset(tmp_path / "ds", **{"renders.enabled": False, "simulation.num_timesteps": 30})
    video = tmp_path / "out" / "v.mp4"
    proc = subprocess.Popen(
        [
            *SPINLOCK,
            "visualize-dataset",
            "--dataset",
            str(layout.root),
            "--output",
            str(video),
            "--size",
            "256",
            "--n-operators",
            "3",
        ],
        env=cli_env(_home(tmp_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert _kill_when(proc, video.parent, "*.tmp*")
    assert not video.exists()  # never a half video under the final name
    subprocess.run(
        [*SPINLOCK, "runs", "--clear", "--dataset", str(video.parent)],
        env=cli_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert_no_temp_files(video.parent)
