"""The executor of Spinlock's jobs: one typed choice of ``in_process``, ``multiprocess`` or ``dask``.

Run config (the UI's launchpad shows the same choice, with defaults)::

    execution:
      config:
        multiprocess: {max_concurrent: 2}            # default: steps in subprocesses
        # in_process: {}                             # every step in the run's process
        # dask: {scheduler: tcp://host:8786}         # an existing Dask cluster
        # dask: {workers: 2}                         # a local cluster started for the run

``dask`` runs each step on a worker of a Dask cluster (:mod:`spinlock_assets.cluster`) through
:class:`SpinlockDaskExecutor`, an adapter carried here because ``dagster_dask.DaskExecutor``
0.29.27 cannot run Spinlock's jobs:

* it hands Dagster records (the run, its ``RunOpConcurrency``) to ``Client.submit``, whose task
  parser iterates tuples, and ``@record`` classes forbid iteration: every pool-tagged asset
  fails ("Iteration is not allowed on `@record` RunOpConcurrency"). Here a task gets plain
  strings only: the instance ref in Dagster's JSON serialization, the run id, the step key;
  the worker loads the run from the instance;
* its Dask task keys are ``<job>.<step>``, the same for every run of a job, so two runs on
  one cluster at once share (and mix up) results (dagster issue #21418). Here keys carry the
  run id;
* Dask does not enforce Dagster pools: steps of the ``gpu`` pool ask for the worker resource
  ``GPU=1`` (and whatever the op tag ``dagster-dask/resource_requirements`` asks for), so a
  GPU runs one step at a time; the adapter refuses a cluster without such a worker instead
  of waiting forever;
* a step whose upstream step failed or was skipped is skipped (``STEP_SKIPPED``), not run.

Interrupting the run (Ctrl-C, run termination) cancels its tasks on the cluster.
"""

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import Field, Int, Noneable, Selector, String
from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.base import Executor
from dagster._utils import iterate_with_context
from dagster_shared.serdes import deserialize_value, serialize_value

from spinlock_assets.cluster import GPU_RESOURCE, check_resources, start_local_cluster

__all__ = [
    "EXECUTORS",
    "DASK_RESOURCES_TAG",
    "spinlock_executor",
    "executor_run_config",
    "SpinlockDaskExecutor",
    "task_key",
    "step_resources",
    "run_step_on_worker",
]

EXECUTORS = ("in_process", "multiprocess", "dask")
DASK_RESOURCES_TAG = "dagster-dask/resource_requirements"
_SKIPPED = "__spinlock_skipped__"


def executor_run_config(executor: str, *, workers: int = 2, scheduler: str | None = None) -> dict[str, Any]:
    """The ``execution`` run config choosing ``executor`` (one of :data:`EXECUTORS`)."""
    if executor == "in_process":
        choice: dict[str, Any] = {"in_process": {}}
    elif executor == "multiprocess":
        choice = {"multiprocess": {"max_concurrent": workers}}
    elif executor == "dask":
        choice = {"dask": {"workers": workers, "scheduler": scheduler}}
    else:
        raise ValueError(f"executor {executor!r}: allowed {', '.join(EXECUTORS)}")
    return {"execution": {"config": choice}}


def _requirements(config: Mapping[str, Any]) -> Any:
    return [] if "in_process" in config else multiple_process_executor_requirements()


@dg.executor(
    name="spinlock",
    config_schema=Field(
        Selector(
            {
                "in_process": Field({}, description="Every step in the run's own process, one after another."),
                "multiprocess": Field(
                    {
                        "max_concurrent": Field(
                            Int, default_value=2, description="Steps running at once (each in its own process)."
                        )
                    },
                    description="Every step in its own process on this host (Dagster's multiprocess executor).",
                ),
                "dask": Field(
                    {
                        "scheduler": Field(
                            Noneable(String),
                            default_value=None,
                            description="Address of an existing Dask scheduler (tcp://host:8786); empty: start a "
                            "local cluster of `workers` processes for this run.",
                        ),
                        "workers": Field(
                            Int, default_value=2, description="Worker processes of the local cluster (no scheduler)."
                        ),
                    },
                    description="Every step on a worker of a Dask cluster (one GPU per worker on GPU hosts).",
                ),
            }
        ),
        default_value={"multiprocess": {}},
    ),
    requirements=_requirements,
)
def spinlock_executor(init_context: dg.InitExecutorContext) -> Executor:
    """The executor chosen in run config (see the module docstring)."""
    from dagster._core.definitions.executor_definition import (
        _core_in_process_executor_creation,
        _core_multiprocess_executor_creation,
    )

    chosen: dict[str, Any] = dict(init_context.executor_config)
    ((kind, cfg),) = chosen.items()
    if kind == "in_process":
        return _core_in_process_executor_creation({"retries": {"disabled": {}}})
    if kind == "multiprocess":
        if int(cfg["max_concurrent"]) < 1:
            raise dg.DagsterInvalidConfigError("multiprocess.max_concurrent must be >= 1", [], cfg)
        return _core_multiprocess_executor_creation(
            {"max_concurrent": int(cfg["max_concurrent"]), "retries": {"disabled": {}}}
        )
    return SpinlockDaskExecutor(scheduler=cfg.get("scheduler") or None, workers=int(cfg["workers"]))


def task_key(run_id: str, step_key: str) -> str:
    """The Dask key of a step of a run: unique across runs (dagster issue #21418)."""
    return f"spinlock-{run_id}-{step_key}"


def step_resources(step: ExecutionStep) -> dict[str, float]:
    """Dask worker resources a step needs: ``GPU=1`` for the ``gpu`` pool, plus the dagster-dask tag's."""
    out: dict[str, float] = {}
    if step.pool == "gpu":
        out[GPU_RESOURCE] = 1
    tag = (step.tags or {}).get(DASK_RESOURCES_TAG)
    if tag:
        out.update({str(k): float(v) for k, v in json.loads(tag).items()})
    return out


def run_step_on_worker(instance_ref_json: str, run_id: str, step_key: str, *upstream: str) -> str:
    """Execute one step of a run on a Dask worker; returns its events (Dagster JSON) or the skip marker.

    ``upstream``: the results of the steps it depends on (Dask passes them once they are done);
    when one failed or was skipped this step is skipped.
    """
    from dagster._core.execution.api import create_execution_plan, execute_plan
    from dagster._core.instance.ref import InstanceRef

    for res in upstream:
        if res == _SKIPPED or any(e.event_type == DagsterEventType.STEP_FAILURE for e in _events(res)):
            return _SKIPPED
    with dg.DagsterInstance.from_ref(deserialize_value(instance_ref_json, InstanceRef)) as instance:
        run = instance.get_run_by_id(run_id)
        if run is None:
            raise RuntimeError(f"run {run_id} is not in the instance the worker opened")
        from dagster._utils.hosted_user_process import recon_job_from_origin

        recon = recon_job_from_origin(run.job_code_origin).get_subset(  # type: ignore[arg-type]
            op_selection=run.resolved_op_selection,
            asset_selection=run.asset_selection,
            asset_check_selection=run.asset_check_selection,
        )
        plan = create_execution_plan(recon, run_config=run.run_config, step_keys_to_execute=[step_key])
        with _step_output(instance, run_id):
            events = execute_plan(plan, recon, instance, run, run_config=run.run_config)
    return serialize_value(list(events))


@contextlib.contextmanager
def _step_output(instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """Send what a step prints (Dagster's console log lines) to ``<home>/logs/<run id>.log``.

    The events themselves are in the instance; the worker's terminal (that of ``spinlock
    generate`` for a local cluster) stays quiet. A worker that cannot reach the home's
    directory (another host without the shared filesystem) keeps printing to its own output.
    """
    root = Path(instance.root_directory)
    if not root.is_dir():
        yield
        return
    log = root / "logs" / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        yield


def _events(payload: str) -> list[DagsterEvent]:
    events = deserialize_value(payload)
    if not isinstance(events, list) or not all(isinstance(e, DagsterEvent) for e in events):
        raise TypeError("a Dask task returned something other than a list of Dagster events")
    return events


class SpinlockDaskExecutor(Executor):
    """Run each step of a plan as a Dask task (see the module docstring).

    Args:
        scheduler: address of an existing scheduler, or None to start a local cluster per run.
        workers: worker processes of that local cluster.
    """

    def __init__(self, scheduler: str | None, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"dask.workers must be >= 1, got {workers}")
        self.scheduler = scheduler
        self.workers = workers

    @property
    def retries(self) -> RetryMode:
        return RetryMode.DISABLED

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        import distributed

        instance = plan_context.instance
        if not instance.is_persistent:
            raise dg.DagsterUnmetExecutorRequirementsError("the dask executor needs a persistent DAGSTER_HOME")
        run_id = plan_context.dagster_run.run_id
        steps = [s for level in execution_plan.get_steps_to_execute_by_level() for s in level]
        needed: dict[str, float] = {}
        for s in steps:
            for k, v in step_resources(s).items():
                needed[k] = max(needed.get(k, 0.0), v)
        cluster = None if self.scheduler else start_local_cluster(self.workers)
        ref = serialize_value(instance.get_ref())
        try:
            with distributed.Client(self.scheduler or cluster) as client:
                check_resources(client, needed)
                futures: dict[str, Any] = {}
                for s in steps:
                    deps = [futures[k] for inp in s.step_inputs for k in inp.dependency_keys if k in futures]
                    futures[s.key] = client.submit(
                        run_step_on_worker,
                        ref,
                        run_id,
                        s.key,
                        *deps,
                        key=task_key(run_id, s.key),
                        resources=step_resources(s) or None,
                        pure=False,
                        retries=0,
                    )
                by_future = {f.key: k for k, f in futures.items()}
                try:
                    done = distributed.as_completed(list(futures.values()), with_results=True)
                    for fut, result in iterate_with_context(raise_execution_interrupts, done):
                        if result == _SKIPPED:
                            step = execution_plan.get_step_by_key(by_future[fut.key])
                            yield DagsterEvent.step_skipped_event(plan_context.for_step(step))  # type: ignore[arg-type]
                            continue
                        yield from _events(result)
                finally:
                    client.cancel(list(futures.values()), force=True)
        finally:
            if cluster is not None:
                cluster.close()
