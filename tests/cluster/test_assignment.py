"""The assignment logic of scale-out, on CPU: GPUs to workers and processes, Dask keys and resources, URLs."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from spinlock_assets.cluster import GPU_RESOURCE, worker_specs
from spinlock_assets.executor import executor_run_config, step_resources, task_key
from spinlock_assets.home import HomeError, home_yaml, mask_url, normalize_postgres_url
from spinlock_core.device import claim_gpu


def test_each_local_worker_owns_one_gpu_and_the_rest_see_none():
    specs = list(worker_specs(3, ["0", "1"]).values())
    assert [s["env"].get("CUDA_VISIBLE_DEVICES") for s in specs] == ["0", "1", ""]
    assert [s["resources"].get(GPU_RESOURCE, 0) for s in specs] == [1, 1, 0]
    assert all(s["nthreads"] == 1 for s in specs)
    cpu_only = list(worker_specs(2, []).values())
    assert all(s["env"] == {} and s["resources"] == {} for s in cpu_only)
    with pytest.raises(ValueError):
        worker_specs(0, [])


_CLAIM = """
import sys, time
from spinlock_core.device import claim_gpu
print(claim_gpu(["GPU-a", "GPU-b"], lock_dir=sys.argv[1]), flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_concurrent_processes_claim_different_gpus_and_a_dead_ones_gpu_is_free_again(tmp_path):
    def start(hold: float) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", _CLAIM, str(tmp_path), str(hold)], stdout=subprocess.PIPE, text=True
        )

    first = start(30)
    a = int(first.stdout.readline())  # type: ignore[union-attr]
    second = start(30)
    b = int(second.stdout.readline())  # type: ignore[union-attr]
    assert {a, b} == {0, 1}
    third = start(0)  # both held: shares the first GPU rather than waiting
    assert int(third.stdout.readline()) == 0  # type: ignore[union-attr]
    third.wait(30)
    first.kill()  # a killed owner releases its GPU (flock)
    first.wait(30)
    time.sleep(0.1)
    fourth = start(0)
    assert int(fourth.stdout.readline()) == a  # type: ignore[union-attr]
    fourth.wait(30)
    second.kill()
    second.wait(30)
    assert claim_gpu(["only-one"], lock_dir=tmp_path) == 0  # one visible GPU: always cuda:0, no lock


def test_dask_task_keys_differ_between_runs_and_gpu_steps_ask_for_a_gpu():
    assert task_key("run-a", "rollouts_hdf5") != task_key("run-b", "rollouts_hdf5")
    gpu = SimpleNamespace(pool="gpu", tags={})
    cpu = SimpleNamespace(pool="cpu", tags={"dagster-dask/resource_requirements": '{"MEM": 2}'})
    assert step_resources(gpu) == {GPU_RESOURCE: 1}  # type: ignore[arg-type]
    assert step_resources(cpu) == {"MEM": 2.0}  # type: ignore[arg-type]


def test_executor_run_config_names_one_choice():
    assert executor_run_config("in_process") == {"execution": {"config": {"in_process": {}}}}
    assert executor_run_config("multiprocess", workers=3)["execution"]["config"] == {
        "multiprocess": {"max_concurrent": 3}
    }
    assert executor_run_config("dask", workers=2, scheduler="tcp://h:1")["execution"]["config"] == {
        "dask": {"workers": 2, "scheduler": "tcp://h:1"}
    }
    with pytest.raises(ValueError, match="allowed"):
        executor_run_config("celery")


def test_postgres_urls_get_the_psycopg2_driver_and_passwords_are_masked():
    assert normalize_postgres_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg2://u:p@h:5432/d"
    assert normalize_postgres_url("postgres://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert normalize_postgres_url("postgresql+psycopg://u@h/d") == "postgresql+psycopg://u@h/d"
    with pytest.raises(HomeError, match="not a PostgreSQL URL"):
        normalize_postgres_url("sqlite:///x.db")
    assert mask_url("postgresql://u:secret@h/d") == "postgresql://u:***@h/d"
    assert "postgres_url: {env: PGURL}" in home_yaml("env:PGURL")
    assert "storage:" not in home_yaml(None)


def test_torch_steps_use_the_gpu_pool_on_cuda_and_the_cpu_pool_on_the_cpu(tmp_path):
    from spinlock_assets.assets import compute_pool
    from spinlock_core.testing import tiny_config

    assert compute_pool(tiny_config(tmp_path)) == "cpu"
    assert compute_pool(tiny_config(tmp_path, **{"simulation.device": "cuda"})) == "gpu"
    assert compute_pool(tiny_config(tmp_path, **{"simulation.device": "cuda:1"})) == "gpu"
