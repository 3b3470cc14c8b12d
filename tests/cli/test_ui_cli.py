"""`spinlock ui` and `spinlock backfill` (spinlock_cli.ui, spinlock_assets.server): server helpers, and a
real `dagster dev` with an asset backfill of every partitioned stage, then the index sensor's rebuild."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import h5py
import pytest
from dagster._core.instance.ref import InstanceRef

from spinlock_assets import server
from spinlock_assets.build import generate_selection
from spinlock_assets.partitions import partition_key
from spinlock_cli.main import main
from spinlock_core.config import load_config
from spinlock_core.dataset import PartitionId, index_problems, read_manifest
from spinlock_core.stages import layout_of
from spinlock_core.testing import ROOT, assert_one_line_error

PARTITIONED = ["sobol_parameters", "operator_specs", "rollouts_hdf5", "sdf_features", "renders"]


# ----------------------------------------------------------------------------- unit


def test_grid_partition_keys_match_dagster_multi_partition_keys():
    keys = server.grid_partition_keys(3, [40, 128])
    assert keys == ["0000|40", "0001|40", "0002|40", "0000|128", "0001|128", "0002|128"]
    assert keys == [str(partition_key(PartitionId(grid=g, batch=b))) for g in (40, 128) for b in range(3)]
    with pytest.raises(ValueError, match="num_batches"):
        server.grid_partition_keys(0, [40])


def test_backfill_variables_cover_every_partitioned_stage(tiny_cfg):
    assets = generate_selection(tiny_cfg)
    assert assets == PARTITIONED
    v = server.backfill_variables(["0000|40", "0001|40"], assets, title="t", tags={"a": 1})
    p = v["backfillParams"]
    assert p["assetSelection"] == [{"path": [a]} for a in PARTITIONED]
    assert p["partitionNames"] == ["0000|40", "0001|40"]
    assert p["title"] == "t" and p["tags"] == [{"key": "a", "value": "1"}]
    assert "allPartitions" not in p and "selector" not in p  # an asset backfill, not a job backfill
    json.dumps(v)  # serialisable as GraphQL variables
    with pytest.raises(ValueError, match="partition_names"):
        server.backfill_variables([], assets)
    no_features = load_config(ROOT / "configs/experiments/default.yaml", {"features.extract": False})
    sel = server.backfill_variables(["0000|40"], generate_selection(no_features))["backfillParams"]["assetSelection"]
    assert sel == [{"path": [a]} for a in PARTITIONED[:3]]


def test_graphql_documents_are_valid_against_the_dagster_schema():
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    schema = create_schema().graphql_schema
    for doc in (server._LAUNCH, server._STATUS):
        assert validate(schema, parse(doc)) == []


def test_loopback_and_urls():
    for h in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"):
        assert server.is_loopback(h), h
    for h in ("0.0.0.0", "192.168.1.5", "::", "example.com", ""):
        assert not server.is_loopback(h), h
    assert server.server_url("0.0.0.0", 3000) == "http://127.0.0.1:3000"
    assert server.server_url("::1", 80) == "http://[::1]:80"
    assert server.backfill_page("http://h:1/", "abc") == "http://h:1/runs/b/abc"


def test_dev_command_and_environment(tmp_path):
    cmd = server.dev_command("127.0.0.1", 3123, python="/py")
    assert cmd[0] == "/py" and cmd[1] == "-c" and "SIG_DFL" in cmd[2] and "execv" in cmd[2]
    assert cmd[3:] == [
        "/py",
        "-m",
        "dagster",
        "dev",
        "-w",
        str(ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        "3123",
    ]
    env = server.dev_environment(tmp_path / "h", "rel.yaml", base={"X": "1"})
    assert env["X"] == "1" and Path(env["DAGSTER_HOME"]).is_absolute()
    assert env["SPINLOCK_CONFIG"] == str(Path("rel.yaml").resolve())


def test_exec_wrapper_restores_ignored_sigint(tmp_path):
    """A child started with SIGINT ignored keeps it ignored, unless started through the wrapper."""
    code = "import signal,time; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True); time.sleep(30)"

    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    plain = subprocess.run(
        [sys.executable, "-c", code.replace("time.sleep(30)", "")],
        capture_output=True,
        text=True,
        preexec_fn=ignore_sigint,
        timeout=30,
    )
    assert plain.stdout.strip() == "True"  # the pitfall: inherited as ignored
    argv = [sys.executable, "-c", server._EXEC_WRAPPER, sys.executable, "-c", code]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=ignore_sigint)
    assert p.stdout.readline().strip() == "False"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == -signal.SIGINT


def test_cli_refuses_remote_host_bad_port_and_missing_server(capsys, tiny_config_file, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["ui", "--config", str(tiny_config_file), "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert main(["ui", "--config", str(tiny_config_file), "--port", "70000"]) == 2
    assert "--port must be in 1..65535" in capsys.readouterr().err
    port = _free_port()
    assert (
        main(["backfill", "--config", str(tiny_config_file), "--grid-sizes", "40", "--url", f"http://127.0.0.1:{port}"])
        == 2
    )
    assert "no Dagster webserver answers" in capsys.readouterr().err
    assert main(["backfill", "--config", str(tiny_config_file), "--grid-sizes", "4"]) == 2
    assert "each grid size must be in 8..2048" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()  # nothing was started or claimed


def test_ui_refuses_another_experiments_home(tmp_path, tiny_config_file):
    home = tmp_path / "home"
    home.mkdir()
    (home / "spinlock_experiment.json").write_text(json.dumps({"experiment": "other", "dataset": "/elsewhere"}))
    env = dict(os.environ, DAGSTER_HOME=str(home))
    res = subprocess.run(
        [sys.executable, "-m", "spinlock_cli", "ui", "--config", str(tiny_config_file), "--port", str(_free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert_one_line_error(res, 2, "belongs to experiment 'other'")


# ----------------------------------------------------------------------------- integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _specs(path: Path) -> list[dict]:
    with h5py.File(path, "r") as f:
        return [json.loads(s) for s in f["metadata/operator_specs"].asstr()[()]]


@pytest.mark.timeout(500)
def test_ui_then_backfill_new_grid(tmp_path, tiny_config_file, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("SPINLOCK_CONFIG", raising=False)
    cfg = load_config(tiny_config_file)
    layout = layout_of(cfg)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "ui.log", "w")  # noqa: SIM115 (the server writes to it)
    monkeypatch.setenv("SPINLOCK_EXECUTOR", "in_process")  # runs need no step subprocesses: faster here
    ui = subprocess.Popen(
        [sys.executable, "-m", "spinlock_cli", "ui", "--config", str(tiny_config_file), "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    t0 = time.monotonic()
    t_ready = t_backfill = t_index = 0.0
    try:
        # grid 16 beforehand, in process, while the server starts
        assert main(["generate", "--config", str(tiny_config_file), "--grid-sizes", "16", "--quiet"]) == 0
        while not server.server_ready(url):
            assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            assert time.monotonic() - t0 < 150, "webserver did not answer /server_info"
            time.sleep(1)
        t_ready = time.monotonic() - t0
        capsys.readouterr()
        # a CLI generate of the same experiment (its other configured grid) races the UI's backfill in the same
        # home: they share the compute pool
        env = dict(os.environ, DAGSTER_HOME=str(home))
        racer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spinlock_cli",
                "generate",
                "--config",
                str(tiny_config_file),
                "--grid-sizes",
                "24",
                "--quiet",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert (
            main(
                [
                    "backfill",
                    "--config",
                    str(tiny_config_file),
                    "--grid-sizes",
                    "40",
                    "--url",
                    url,
                    "--wait",
                    "--poll",
                    "3",
                    "--timeout",
                    "240",
                ]
            )
            == 0
        )
        out = capsys.readouterr()
        _, racer_err = racer.communicate(timeout=300)
        assert racer.returncode == 0, racer_err
        assert "backfill " in out.out and "/runs/b/" in out.out and "COMPLETED" in out.out
        assert f"2 partitions x {len(PARTITIONED)} assets" in out.out
        assert "not in simulation.grid_sizes" in out.err  # the config lacks 40
        t_backfill = time.monotonic() - t0 - t_ready
        for b in range(cfg.sampling.num_batches):
            p40, p16 = PartitionId(grid=40, batch=b), PartitionId(grid=16, batch=b)
            assert layout.rollouts(p40).exists() and layout.rollouts(p16).exists()
            with h5py.File(layout.rollouts(p40), "r") as f:
                assert f.attrs["grid_size"] == 40 and (f["metadata/grid_sizes"][()] == 40).all()
            assert (
                _specs(layout.rollouts(p40)) == _specs(layout.rollouts(p16)) and len(_specs(layout.rollouts(p40))) == 3
            )
            # the backfill covered every partitioned stage, not only the rollouts
            assert layout.features(p40).is_file() and layout.render_video(p40).is_file()
        assert 40 in read_manifest(layout).grid_sizes  # the dataset now expects grid 40
        inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
        try:
            for name in PARTITIONED:
                assert {"0000|40", "0001|40"} <= inst.get_materialized_partitions(dg.AssetKey(name)), name
        finally:
            inst.dispose()
        # the index sensor rebuilds the index over the new files once the backfill's runs are done
        deadline = time.monotonic() + 180
        while index_problems(layout):
            assert time.monotonic() < deadline, f"index still stale: {index_problems(layout)}"
            time.sleep(3)
        t_index = time.monotonic() - t0 - t_ready - t_backfill
        with h5py.File(layout.index, "r") as f:
            assert sorted(f.attrs["grid_sizes"].tolist()) == [16, 24, 40] and f["outputs/fields"].shape[0] == 18
        capsys.readouterr()
        assert main(["validate", "--dataset", str(layout.root), "--replay-samples", "1"]) == 0, capsys.readouterr().out
        text = (tmp_path / "ui.log").read_text()
        assert url in text
        dev_pid = int(text.split("dagster dev pid ")[1].split()[0])
    finally:
        if ui.poll() is None:
            ui.send_signal(signal.SIGINT)
        rc = ui.wait(timeout=90)
        log.close()
    print(f"server ready {t_ready:.1f} s, backfill {t_backfill:.1f} s, index rebuilt after {t_index:.1f} s")
    assert rc == 0, (tmp_path / "ui.log").read_text()[-3000:]
    assert "dagster dev stopped" in (tmp_path / "ui.log").read_text()
    with pytest.raises(ProcessLookupError):  # nothing left of dagster dev's process group
        os.killpg(dev_pid, 0)
