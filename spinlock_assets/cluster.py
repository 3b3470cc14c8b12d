"""Dask clusters for Spinlock runs: a local one Spinlock starts, or an existing one it joins.

A local cluster has ``workers`` worker processes (one thread each, bound to 127.0.0.1). On a
host with GPUs, worker ``i < G`` owns GPU ``i``: it is started with ``CUDA_VISIBLE_DEVICES``
naming that GPU alone (so ``simulation.device: cuda`` is that GPU, see
:mod:`spinlock_core.device`) and offers the Dask resource ``GPU=1``; steps of the ``gpu`` pool
ask for it, so each GPU runs one step at a time and workers without a GPU run the others.

An existing cluster (a scheduler address: ``dask scheduler`` plus ``dask worker`` processes,
a SLURM job array, a Kubernetes Dask cluster) must offer what the steps ask for: GPU steps
need workers started with ``--resources GPU=1`` (and their own ``CUDA_VISIBLE_DEVICES``);
:func:`check_resources` refuses to submit work no worker could ever run (it would wait forever).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["GPU_RESOURCE", "visible_gpus", "worker_specs", "start_local_cluster", "check_resources"]

#: The Dask worker resource a GPU step needs (one unit = one GPU).
GPU_RESOURCE = "GPU"


def visible_gpus() -> list[str]:
    """The GPUs this process may hand to workers, as ``CUDA_VISIBLE_DEVICES`` entries (none on a CPU host)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except Exception:  # no usable CUDA runtime
        return []


def worker_specs(workers: int, gpus: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Options of each local worker: worker ``i`` owns ``gpus[i]`` when there is one (else no GPU).

    Every worker has one thread; a GPU worker sees only its GPU and offers ``GPU=1``; a worker
    without one is hidden from all GPUs (``CUDA_VISIBLE_DEVICES=""``) when the host has GPUs, so
    a CPU step there never lands on a GPU another worker owns.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    specs: dict[str, dict[str, Any]] = {}
    for i in range(workers):
        env: dict[str, str] = {}
        resources: dict[str, float] = {}
        if i < len(gpus):
            env["CUDA_VISIBLE_DEVICES"] = gpus[i]
            resources[GPU_RESOURCE] = 1
        elif gpus:
            env["CUDA_VISIBLE_DEVICES"] = ""
        specs[f"spinlock-worker-{i}"] = {"nthreads": 1, "env": env, "resources": resources}
    return specs


def start_local_cluster(workers: int, gpus: Sequence[str] | None = None) -> Any:
    """A local Dask cluster of ``workers`` processes (see :func:`worker_specs`); close it when done.

    Its worker processes log Dask's errors only (``DASK_LOGGING__DISTRIBUTED=error`` unless set
    already: they inherit this process's environment), so ``spinlock generate`` stays quiet.
    """
    from distributed import Nanny, Scheduler, SpecCluster

    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    gpus = visible_gpus() if gpus is None else list(gpus)
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    specs = {
        name: {"cls": Nanny, "options": {"host": "127.0.0.1", **opts}}
        for name, opts in worker_specs(workers, gpus).items()
    }
    return SpecCluster(scheduler=scheduler, workers=specs, silence_logs=logging.ERROR, name="spinlock")


def check_resources(client: Any, needed: Mapping[str, float], *, wait_s: float = 30.0) -> None:
    """Raise when no worker of ``client``'s cluster offers each resource in ``needed``.

    Waits up to ``wait_s`` for a first worker (workers of a batch job may still be starting).

    Raises:
        RuntimeError: no worker at all, or none offering a needed resource (the message says how
            to start one).
    """
    client.wait_for_workers(1, timeout=wait_s)
    workers = client.scheduler_info(n_workers=-1)["workers"]
    for name, amount in needed.items():
        if not any(float(w.get("resources", {}).get(name, 0)) >= amount for w in workers.values()):
            raise RuntimeError(
                f"no worker of the Dask cluster offers the resource {name}={amount:g} that these steps need "
                f"({len(workers)} worker(s)); start GPU workers with `dask worker ADDRESS --nthreads 1 "
                f"--resources {name}=1` and CUDA_VISIBLE_DEVICES set to one GPU each"
            )
