"""Scale-out for real: a PostgreSQL DAGSTER_HOME, a Dask cluster, identical bytes across executors.

Services come from ``.ci/run`` (or are started privately, see ``cluster_services``). Every
generation runs ``spinlock generate`` in a new process, as a user does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from cluster_services import new_database

from spinlock_core.dataset import dataset_digest
from spinlock_core.testing import DEFAULT_CONFIG

SPINLOCK = [sys.executable, "-m", "spinlock_cli"]
#: 2 batches x 1 grid, T=2: every stage and check, small enough for a process-per-step executor.
TINY = [
    "--total-samples",
    "4",
    "--batch-size",
    "2",
    "--grid-sizes",
    "16",
    "--num-timesteps",
    "2",
    "--num-realizations",
    "2",
    "--quiet",
]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SPINLOCK_CONFIG", None)
    env["DAGSTER_HOME"] = str(home)
    return env


def _spinlock(home: Path, *args: str, timeout: int = 480) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SPINLOCK, *args], env=_env(home), capture_output=True, text=True, timeout=timeout)


def _generate(home: Path, out: Path, *extra: str, config: Path = DEFAULT_CONFIG) -> subprocess.CompletedProcess[str]:
    return _spinlock(home, "generate", "--config", str(config), *TINY, "--output", str(out), *extra)


def _runs(home: Path) -> tuple[str, list[dg.DagsterRun]]:
    from spinlock_assets.home import storage_kind

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as inst:
        return storage_kind(inst), list(inst.get_runs())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process run on a SQLite home: the bytes every other executor must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    res = _generate(tmp / "home", tmp / "data")
    assert res.returncode == 0, res.stderr
    return dataset_digest(tmp / "data")


def test_dask_on_postgres_equals_in_process_on_sqlite(reference, pg_server, dask_address, tmp_path):
    url = new_database(pg_server, f"spinlock_{uuid.uuid4().hex[:8]}")
    home = tmp_path / "home"
    init = _spinlock(home, "home", "init", str(home), "--postgres", url)
    assert init.returncode == 0, init.stderr
    text = (home / "dagster.yaml").read_text()
    assert "postgresql+psycopg2://" in text and "storage:" in text  # the driver chosen for the user
    res = _generate(home, tmp_path / "data", "--executor", "dask", "--scheduler", dask_address)
    assert res.returncode == 0, res.stderr
    got = dataset_digest(tmp_path / "data")
    assert sorted(got) == sorted(reference)
    assert got == reference
    kind, runs = _runs(home)
    assert kind == "postgres"
    assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)  # 2 partitions + index
    assert {r.tags.get("dagster/partition") for r in runs} >= {"0000|16", "0001|16"}

    # a second experiment in the same instance is refused before anything is written
    other = tmp_path / "other.yaml"
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
    cfg["metadata"]["name"] = "another"
    cfg["features"]["config"] = str(DEFAULT_CONFIG.parent.parent / "features" / "default.yaml")
    other.write_text(yaml.safe_dump(cfg))
    home2 = tmp_path / "home2"  # another host's home on the same database
    assert _spinlock(home2, "home", "init", str(home2), "--postgres", url).returncode == 0
    second = _generate(home2, tmp_path / "data2", config=other)
    assert second.returncode == 2, second.stderr
    assert "belongs to experiment 'default'" in second.stderr and "Traceback" not in second.stderr
    assert not (tmp_path / "data2").exists()


def test_a_local_dask_cluster_and_the_multiprocess_executor_give_the_same_bytes(reference, tmp_path):
    for executor in ("dask", "multiprocess"):
        home, out = tmp_path / f"home_{executor}", tmp_path / f"data_{executor}"
        res = _generate(home, out, "--executor", executor, "--workers", "2")
        assert res.returncode == 0, f"{executor}: {res.stderr}"
        assert dataset_digest(out) == reference, executor
        _, runs = _runs(home)
        assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)


def test_home_init_refuses_an_unreachable_server_and_writes_nothing(tmp_path):
    from cluster_services import free_port

    home = tmp_path / "home"
    res = _spinlock(home, "home", "init", str(home), "--postgres", f"postgresql://u:secret@127.0.0.1:{free_port()}/db")
    assert res.returncode == 2
    assert "cannot be used" in res.stderr and "secret" not in res.stderr and "Traceback" not in res.stderr
    assert not home.exists()
    bad = _spinlock(home, "home", "init", str(home), "--postgres", "mysql://x@y/z")
    assert bad.returncode == 2 and "not a PostgreSQL URL" in bad.stderr


def test_sensors_and_schedules_evaluate_against_postgres(pg_server, tmp_path):
    from spinlock_assets.automation import build_feature_automation, build_grid_sizes_sensor
    from spinlock_assets.build import build_definitions
    from spinlock_assets.home import init_home
    from spinlock_assets.partitions import GRID_DIMENSION
    from spinlock_assets.resources import SpinlockConfig
    from spinlock_core.config import save_config
    from spinlock_core.testing import run_stages, tiny_config

    url = new_database(pg_server, f"spinlock_{uuid.uuid4().hex[:8]}")
    home = init_home(tmp_path / "home", url)
    cfg = tiny_config(tmp_path / "data")
    path = tmp_path / "tiny.yaml"
    save_config(cfg, path)
    run_stages(cfg, stages=["sobol_parameters", "operator_specs", "rollouts_hdf5"])  # features missing: requested
    res = SpinlockConfig(config_path=str(path))
    inst = dg.DagsterInstance.get()
    try:
        assert "Postgres" in type(inst.run_storage).__name__ and str(home) == os.environ["DAGSTER_HOME"]
        sensor = build_grid_sizes_sensor()
        first = sensor(dg.build_sensor_context(instance=inst, resources={"spinlock": res}))
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["16", "24"]]
        inst.add_dynamic_partitions(GRID_DIMENSION, ["16", "24"])
        again = sensor(dg.build_sensor_context(instance=inst, resources={"spinlock": res}))
        assert again.skip_reason is not None
        defs = build_definitions(path, claim=False)
        sdf = next(a for a in defs.assets if dg.AssetKey("sdf_features") in a.keys)  # type: ignore[union-attr]
        _, nightly = build_feature_automation(sdf)
        with dg.build_schedule_context(instance=inst, resources={"spinlock": res}) as ctx:  # closes its instance
            out = nightly(ctx)
        assert isinstance(out, list), out
        requests = out
        assert sorted(r.partition_key for r in requests) == ["0000|16", "0000|24", "0001|16", "0001|24"]
    finally:
        inst.dispose()
