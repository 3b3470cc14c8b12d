"""A writer SIGKILLed mid-way leaves no partial file at its path (only a <name>.<pid>.<8 hex>.tmp nobody reads)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spinlock_core.dataset import (
    DatasetError,
    DatasetLayout,
    PartitionId,
    build_index,
    index_problems,
    open_dataset,
    validate_files,
    validate_structure,
)
from spinlock_core.files import remove_stale_temps, temp_owner_pid
from spinlock_core.testing import write_partition

REPO = Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from spinlock_core.dataset import PartitionWriter

    n = 8
    with PartitionWriter(
        sys.argv[1], num_samples=n, num_realizations=2, time_steps=range(4), num_channels=2, grid_size=8,
        param_names=["alpha", "beta", "gamma"], compression=sys.argv[2], compression_level=4, shuffle=True,
        compression_threads=2, root_attrs={"config_hash": "cafe"},
    ) as w:
        data = np.full((n // 2, 2, 4, 2, 8, 8), 7.0, np.float32)
        w.write_trajectories(slice(0, n // 2), data)
        w.write_inputs(slice(0, n), np.zeros((n, 2, 8, 8), np.float32))
        w._file.flush()  # make the half-written tmp file as complete-looking as possible
        print("HALF", flush=True)
        time.sleep(60)
    """
)


def _kill_mid_write(path: Path, compression: str) -> int:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), compression],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "HALF", f"child failed: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def _only_temp_of(path: Path, pid: int, *finals: Path) -> Path:
    """Beside ``finals``, ``path``'s directory holds exactly one file: ``<name>.<pid>.<8 hex>.tmp``."""
    left = sorted(p for p in path.parent.iterdir() if p not in finals)
    assert len(left) == 1, left
    assert re.fullmatch(rf"{re.escape(path.name)}\.{pid}\.[0-9a-f]{{8}}\.tmp", left[0].name), left
    assert temp_owner_pid(left[0]) == pid
    return left[0]


P0 = PartitionId(grid=8, batch=0)
P1 = PartitionId(grid=8, batch=1)


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_killed_writer_leaves_no_file(tmp_path: Path, compression: str) -> None:
    layout = DatasetLayout(tmp_path)
    path = layout.rollouts(P0)
    pid = _kill_mid_write(path, compression)
    assert not path.exists()
    tmp = _only_temp_of(path, pid)
    # nothing mistakes the leftover for data
    assert layout.rollout_partitions() == [] and layout.rollout_files() == []
    with pytest.raises(DatasetError, match="holds no rollouts"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match="no rollouts files"):
        build_index(tmp_path)
    assert not layout.index.exists()
    report = validate_files(tmp_path)
    assert not report.ok and any("holds no rollouts" in e for e in report.errors), report.format()
    # the dead writer's temp file is recognised as such and swept
    assert remove_stale_temps(tmp_path) == [tmp]
    assert list(path.parent.iterdir()) == []


def test_killed_rewrite_keeps_previous_complete_file(tmp_path: Path) -> None:
    layout = DatasetLayout(tmp_path)
    old = write_partition(layout.rollouts(P0), n=4, seed=3)
    other = write_partition(layout.rollouts(P1), start=4, n=4, seed=4, batch=1)
    pid = _kill_mid_write(old.path, "gzip")
    tmp = _only_temp_of(old.path, pid, old.path, other.path)
    with open_dataset(old.path) as r:
        np.testing.assert_array_equal(r.trajectories(), old.traj)
    assert validate_structure(old.path).ok
    # the index and the directory reader only see the two complete partitions
    assert layout.rollout_files() == [old.path, other.path]
    summary = build_index(tmp_path)
    assert (summary.path, summary.partitions, summary.rows) == (layout.index, 2, 8)
    assert index_problems(layout) == []
    with open_dataset(tmp_path) as r:
        assert r.kind == "index" and r.num_samples == 8
        np.testing.assert_array_equal(r.trajectories(slice(0, 4)), old.traj)
        np.testing.assert_array_equal(r.trajectories(slice(4, 8)), other.traj)
    # reading and indexing leave the leftover alone; validation names it; the sweep removes it
    assert tmp.exists()
    report = validate_files(tmp_path)
    assert report.ok, report.format()
    rel = tmp.relative_to(tmp_path).as_posix()
    assert any("1 temporary files of writers that are gone" in w and rel in w for w in report.warnings), report.warnings
    assert remove_stale_temps(tmp_path) == [tmp] and layout.rollout_files() == [old.path, other.path]
