"""Missing partitions are reported, experiments never share a home, concurrent writers and a full disk.

Before the fix missing partitions shrank the dataset without a word (extract-features and the
index used whatever files existed), the index filled a missing source with zeros and
``visualize-dataset`` rendered them; two experiments in one ``DAGSTER_HOME`` shared partitions
and asset history.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
from integrity_helpers import SPINLOCK, cli_env

from spinlock_core.dataset import DatasetError, HDF5FeatureReader, PartitionId, dataset_info, format_info, open_dataset
from spinlock_core.testing import DEFAULT_CONFIG, assert_no_temp_files, assert_one_line_error, build_dataset

TINY = [
    "--total-samples",
    "4",
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


def _cli(tmp_path, *args, home=None, timeout=300, **kw):
    return subprocess.run(
        [*SPINLOCK, *args],
        env=cli_env(home or tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        **kw,
    )


@pytest.fixture
def gapped(tmp_path):
    """A complete tiny dataset, then one partition's rollouts and features removed."""
    cfg, layout = build_dataset(tmp_path / "ds")
    gone = PartitionId(grid=24, batch=1)
    layout.rollouts(gone).unlink()
    layout.features(gone).unlink()
    return cfg, layout, gone


def test_readers_refuse_a_dataset_missing_expected_partitions(gapped):
    _, layout, gone = gapped
    with pytest.raises(DatasetError, match=r"1 of 4 expected partitions .*0001\|24"):
        open_dataset(layout.root).close()
    with pytest.raises(DatasetError, match=r"1 of 4 expected partitions have no features: 0001\|24"):
        HDF5FeatureReader(layout.root).close()
    with open_dataset(layout.root, allow_missing=True) as r:  # explicitly asked for: what is there, no zeros
        assert r.num_samples == 9 and np.isfinite(r.trajectories()).all()
        assert r.kind == "partitions"  # the index reads the removed file: it is not used


def test_the_index_over_a_gap_reads_no_zeros(gapped):
    _, layout, gone = gapped
    with pytest.raises(DatasetError, match="stale index"):
        open_dataset(layout.index).close()  # named directly: refused, never fill values


def test_info_and_validate_name_the_missing_partitions(gapped, tmp_path):
    _, layout, gone = gapped
    info = dataset_info(layout.root)
    assert info["missing"] == [gone.key] and "MISSING 1 of 4 expected partitions: 0001|24" in format_info(info)
    res = _cli(tmp_path, "validate", "--dataset", str(layout.root), "--replay-samples", "0")
    assert_one_line_error(res, 1, "expected partitions have no rollouts: 0001|24")


def test_visualize_dataset_does_not_render_a_missing_partition(gapped, tmp_path):
    _, layout, _ = gapped
    res = _cli(tmp_path, "visualize-dataset", "--dataset", str(layout.index), "--output", str(tmp_path / "v.mp4"))
    assert_one_line_error(res, 1, "stale index")
    assert not (tmp_path / "v.mp4").exists()


def test_extract_features_and_index_name_what_is_missing(gapped, tmp_path):
    _, layout, gone = gapped
    res = _cli(tmp_path, "index", "--dataset", str(layout.root))
    assert res.returncode == 0, res.stderr
    assert f"MISSING 1 expected partitions: {gone.key}" in res.stdout


def test_a_second_experiment_in_the_same_home_is_refused(tmp_path):
    home = tmp_path / "home"
    first = _cli(
        tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(tmp_path / "a"), *TINY, home=home
    )
    assert first.returncode == 0, first.stderr
    again = _cli(
        tmp_path,
        "generate",
        "--config",
        str(DEFAULT_CONFIG),
        "--output",
        str(tmp_path / "a"),
        *TINY,
        "--num-timesteps",
        "3",
        home=home,
    )  # the same experiment, changed: allowed
    assert again.returncode == 0, again.stderr
    other = _cli(
        tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(tmp_path / "b"), *TINY, home=home
    )
    assert_one_line_error(other, 2, "belongs to experiment", str(tmp_path / "a"))
    assert not (tmp_path / "b").exists()
    # the same refusal when Dagster itself loads the definitions of the other experiment
    env = cli_env(home, SPINLOCK_CONFIG=str(tmp_path / "b_exp.yaml"))
    (tmp_path / "b_exp.yaml").write_text(
        DEFAULT_CONFIG.read_text().replace("output_dir: datasets/default", f"output_dir: {tmp_path / 'b'}")
    )
    load = subprocess.run(
        [sys.executable, "-c", "import spinlock_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert load.returncode != 0 and "belongs to experiment" in load.stderr


def test_two_concurrent_generates_of_one_dataset_both_finish_and_agree(tmp_path):
    env = cli_env(tmp_path / "home")
    args = [
        *SPINLOCK,
        "generate",
        "--config",
        str(DEFAULT_CONFIG),
        "--output",
        str(tmp_path / "ds"),
        *TINY,
    ]
    procs = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert_no_temp_files(tmp_path / "ds")
    res = _cli(tmp_path, "validate", "--dataset", str(tmp_path / "ds"), "--replay-samples", "1")
    assert res.returncode == 0, res.stdout + res.stderr


def _limit_file_size(limit: int):
    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_a_full_disk_fails_cleanly_and_keeps_the_old_files(tmp_path):
    ok = _cli(tmp_path, "generate", "--config", str(DEFAULT_CONFIG), "--output", str(tmp_path / "ds"), *TINY)
    assert ok.returncode == 0, ok.stderr
    before = {p: p.read_bytes() for p in (tmp_path / "ds" / "partitions").rglob("*.h5")}
    # the same experiment with more steps: every partition file grows past what the "disk" holds
    full = _cli(
        tmp_path,
        "generate",
        "--config",
        str(DEFAULT_CONFIG),
        "--output",
        str(tmp_path / "ds"),
        *TINY,
        "--num-timesteps",
        "30",
        preexec_fn=_limit_file_size(64 * 1024),
    )
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr and "spinlock: error:" in full.stderr
    assert any(w in full.stderr for w in ("File too large", "No space", "disk", "file-size limit")), full.stderr
    assert_no_temp_files(tmp_path / "ds")
    after = {p: p.read_bytes() for p in (tmp_path / "ds" / "partitions").rglob("*.h5")}
    assert after == before  # the old files are intact: a failed write never replaces one
