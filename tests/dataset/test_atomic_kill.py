"""A writer SIGKILLed mid-way leaves no partial file at its path (only a *.tmp nobody reads)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from storage_helpers import make_partition

from spinlock_core.storage import build_index, find_partitions, open_dataset, validate_structure

REPO = Path(__file__).resolve().parents[2]

_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from spinlock_core.storage import PartitionWriter

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


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_killed_writer_leaves_no_file(tmp_path: Path, compression: str) -> None:
    path = tmp_path / "partitions" / "b0000_g8.h5"
    pid = _kill_mid_write(path, compression)
    assert not path.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [f"b0000_g8.h5.{pid}.tmp"]
    # nothing mistakes the leftover for data
    assert find_partitions(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path)
    assert not validate_structure(tmp_path).ok


def test_killed_rewrite_keeps_previous_complete_file(tmp_path: Path) -> None:
    old = make_partition(tmp_path / "partitions" / "b0000_g8.h5", n=4, seed=3)
    other = make_partition(tmp_path / "partitions" / "b0001_g8.h5", start=4, n=4, seed=4, batch=1)
    pid = _kill_mid_write(old.path, "gzip")
    assert (old.path.parent / f"{old.path.name}.{pid}.tmp").exists()
    with open_dataset(old.path) as r:
        np.testing.assert_array_equal(r.trajectories(), old.traj)
    assert validate_structure(old.path).ok
    # the index and the directory reader only see the two complete partitions
    assert find_partitions(tmp_path) == [old.path, other.path]
    build_index(find_partitions(tmp_path), tmp_path / "index.h5")
    with open_dataset(tmp_path) as r:
        assert r.num_samples == 8
        np.testing.assert_array_equal(r.trajectories(slice(0, 4)), old.traj)
