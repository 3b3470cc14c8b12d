"""Partition runs in their own processes: how ``spinlock generate`` runs several partitions at once.

Dagster's orchestration is not safe to run in several threads of one process (its per-run
logging setup calls ``logging.config.dictConfig`` while other runs log: a deadlock seen here),
so each concurrent run is orchestrated by its own ``dagster api execute_run`` process, the
command Dagster's own run launchers use. The run is created in the instance first (tags,
run config with the executor choice, asset selection), so it is visible in the UI and judged
by :mod:`spinlock_assets.runs` like any other; its process writes Dagster's log to
``$DAGSTER_HOME/logs/<run id>.log``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._grpc.types import ExecuteRunArgs
from dagster_shared.serdes import serialize_value

__all__ = ["RunProcess", "create_run", "start_run_process", "run_events", "run_error"]


@dataclass
class RunProcess:
    """A run and the process orchestrating it."""

    run_id: str
    process: subprocess.Popen[bytes]
    log: Path

    def finished(self) -> bool:
        return self.process.poll() is not None


def create_run(
    instance: dg.DagsterInstance,
    recon: ReconstructableJob,
    *,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    asset_selection: Iterable[dg.AssetKey] | None = None,
) -> str:
    """Create (not start) a run of ``recon`` in ``instance``; its run id."""
    job_def = recon.get_definition()
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config=dict(run_config),
        tags={**job_def.run_tags, **tags},
        job_code_origin=recon.get_python_origin(),
        asset_selection=frozenset(asset_selection) if asset_selection else None,
    )
    return run.run_id


def start_run_process(instance: dg.DagsterInstance, recon: ReconstructableJob, run_id: str, home: Path) -> RunProcess:
    """Start the process executing run ``run_id`` (``dagster api execute_run``), its log under ``home/logs``."""
    args = ExecuteRunArgs(
        job_origin=recon.get_python_origin(),
        run_id=run_id,
        instance_ref=instance.get_ref(),
        set_exit_code_on_failure=True,
    )
    log = Path(home) / "logs" / f"{run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "api", "execute_run", serialize_value(args)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return RunProcess(run_id, proc, log)


def run_events(instance: dg.DagsterInstance, run_id: str) -> list[DagsterEvent]:
    """The Dagster events of a run, in order."""
    return [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event is not None]


def run_error(events: Iterable[DagsterEvent]) -> str:
    """What made a run fail: its failed blocking checks, else its innermost step or run error."""
    events = list(events)
    failed: list[Any] = []
    for ev in events:
        if ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            e: Any = ev.event_specific_data
            if not e.passed and e.severity.value == "ERROR":
                failed.append(e)
    if failed:
        return "; ".join(
            f"asset check {e.asset_key.to_user_string()}:{e.check_name} failed: {e.description}" for e in failed[:3]
        )
    for ev in events:
        if ev.is_step_failure or ev.event_type == DagsterEventType.RUN_FAILURE:
            err = getattr(ev.event_specific_data, "error", None)
            if err is None:
                continue
            while getattr(err, "cause", None) is not None:
                err = err.cause
            where = f"step {ev.step_key}" if ev.step_key else "run"
            return f"{where}: {err.message.strip()}"
    return "unknown failure"
