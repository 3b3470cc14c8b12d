"""Runs whose process is gone: find them, mark them failed, free their pool claims.

A run killed with SIGKILL (or whose worker died) stays STARTED in the instance and keeps its
``gpu`` pool slot; every later run would wait for that slot forever. This module decides
liveness from facts in the instance:

* every run Spinlock starts carries the tags ``spinlock/host``, ``spinlock/pid`` and
  ``spinlock/pid_start`` (the process start time, which guards against pid reuse); runs the
  UI launches get ``spinlock/host`` from :class:`spinlock_assets.launcher.SpinlockRunLauncher`;
* every Dagster event records the pid of the process that emitted it (the run worker, step
  processes).

A run in progress (STARTING, STARTED, CANCELING) on this host none of whose processes is
alive any more is **orphaned**: :func:`sweep` reports it failed (saying why) and frees its
concurrency slots and pending claims. Runs of other hosts are never judged (their pids mean
nothing here); without a host tag a run counts as local only on a SQLite instance (one host by
construction). Claims held by runs that already finished are freed too.

Used by ``spinlock runs`` (show / ``--clear``), at the start of every ``spinlock generate`` and
while it waits for a pool slot, and by the launcher's run-worker health check (Dagster run
monitoring in the UI's daemon).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.events import DagsterEventType

from spinlock_core.files import pid_alive

__all__ = [
    "HOST_TAG",
    "hostname",
    "PID_TAG",
    "PID_START_TAG",
    "process_tags",
    "process_start_time",
    "RunLiveness",
    "liveness",
    "find_orphaned_runs",
    "SweepReport",
    "sweep",
    "PoolWait",
    "pool_waits",
]

HOST_TAG = "spinlock/host"
PID_TAG = "spinlock/pid"
PID_START_TAG = "spinlock/pid_start"
_IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def hostname() -> str:
    return socket.gethostname()


def process_start_time(pid: int) -> float | None:
    """Wall-clock start time of process ``pid`` (Linux ``/proc``), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime, field 22 of stat (counted after the command name)
        with open("/proc/stat", encoding="ascii") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration, IndexError):
        return None


def process_tags() -> dict[str, str]:
    """Tags naming this process as a run's owner (host, pid, start time)."""
    start = process_start_time(os.getpid())
    return {HOST_TAG: hostname(), PID_TAG: str(os.getpid()), PID_START_TAG: f"{start:.2f}" if start else ""}


def _alive(pid: int, not_after: float | None) -> bool:
    """``pid`` runs and is the process that existed at ``not_after`` (started no later, 2 s slack)."""
    if not pid_alive(pid):
        return False
    if not_after is None:
        return True
    start = process_start_time(pid)
    return start is None or start <= not_after + 2.0


@dataclass
class RunLiveness:
    """What the instance says about a run's processes."""

    run_id: str
    status: str
    job: str
    partition: str
    local: bool
    pids: list[int] = field(default_factory=list)
    alive: list[int] = field(default_factory=list)
    age_s: float = 0.0

    @property
    def orphaned(self) -> bool:
        """In progress, on this host, with known processes none of which is alive."""
        return self.local and bool(self.pids) and not self.alive

    def describe(self) -> str:
        state = "alive" if self.alive else ("gone" if self.pids else "no process recorded yet")
        where = "" if self.local else " (another host: not judged)"
        return (
            f"run {self.run_id[:8]} {self.status} job {self.job} partition {self.partition or '-'}: "
            f"pids {self.pids or '-'} {state}{where}"
        )


def _is_sqlite(instance: dg.DagsterInstance) -> bool:
    return "sqlite" in type(instance.run_storage).__module__.lower() or "Sqlite" in type(instance.run_storage).__name__


def liveness(instance: dg.DagsterInstance, record: dg.RunRecord) -> RunLiveness:
    """The liveness of one run (see module docstring)."""
    run = record.dagster_run
    tags = run.tags
    host = tags.get(HOST_TAG)
    local = host == hostname() if host else _is_sqlite(instance)
    created = record.create_timestamp.timestamp()
    info = RunLiveness(
        run.run_id,
        run.status.value,
        run.job_name,
        tags.get("dagster/partition", ""),
        local,
        age_s=time.time() - created,
    )
    firsts: dict[int, float] = {}
    if tags.get(PID_TAG, "").isdigit():
        start = tags.get(PID_START_TAG) or ""
        firsts[int(tags[PID_TAG])] = float(start) if start else created
    types = {DagsterEventType.RUN_START, DagsterEventType.ENGINE_EVENT, DagsterEventType.STEP_START}
    for entry in instance.all_logs(run.run_id, of_type=types):
        ev = entry.dagster_event
        if ev is not None and ev.pid is not None:
            firsts.setdefault(int(ev.pid), entry.timestamp)
    info.pids = sorted(firsts)
    if local:
        info.alive = [p for p, t in sorted(firsts.items()) if _alive(p, t)]
    return info


def _in_progress(instance: dg.DagsterInstance) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(statuses=_IN_PROGRESS)))


def find_orphaned_runs(instance: dg.DagsterInstance, *, grace_s: float = 0.0) -> list[RunLiveness]:
    """In-progress local runs whose every process is gone (older than ``grace_s`` seconds)."""
    out = []
    for rec in _in_progress(instance):
        info = liveness(instance, rec)
        if info.orphaned and info.age_s >= grace_s:
            out.append(info)
    return out


@dataclass
class SweepReport:
    """What :func:`sweep` found and did."""

    failed: list[RunLiveness] = field(default_factory=list)
    freed_runs: list[str] = field(default_factory=list)
    in_progress: list[RunLiveness] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"marked failed (process gone): {r.describe()}" for r in self.failed]
        out += [f"freed pool claims of finished run {r[:8]}" for r in self.freed_runs]
        return out


def sweep(instance: dg.DagsterInstance, *, grace_s: float = 0.0, dry_run: bool = False) -> SweepReport:
    """Mark orphaned runs failed and free their pool claims, and those of finished runs.

    ``dry_run``: only report. Returns what was (or would be) done.
    """
    report = SweepReport()
    for rec in _in_progress(instance):
        info = liveness(instance, rec)
        if info.orphaned and info.age_s >= grace_s:
            report.failed.append(info)
            if not dry_run:
                instance.report_run_failed(
                    rec.dagster_run,
                    f"Spinlock: every process of this run is gone (pids {info.pids}, host {hostname()}); "
                    "marked failed and its pool claims freed",
                )
                instance.event_log_storage.free_concurrency_slots_for_run(rec.dagster_run.run_id)
        else:
            report.in_progress.append(info)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = set(storage.get_concurrency_run_ids())
        for pool in storage.get_concurrency_keys():
            holders |= {s.run_id for s in storage.get_concurrency_info(pool).claimed_slots}
        failed_ids = {r.run_id for r in report.failed}
        for run_id in sorted(holders - failed_ids):
            run = instance.get_run_by_id(run_id)
            if run is None or run.status in _FINISHED:
                report.freed_runs.append(run_id)
                if not dry_run:
                    storage.free_concurrency_slots_for_run(run_id)
    return report


@dataclass(frozen=True)
class PoolWait:
    """A run's step waiting for a pool slot, and who holds the slots."""

    pool: str
    run_id: str
    step_key: str
    holders: tuple[str, ...]  # "run <id> step <key> (<liveness>)"
    slots: int


def pool_waits(instance: dg.DagsterInstance, run_ids: Iterable[str] | None = None) -> list[PoolWait]:
    """Pending steps (of ``run_ids``, default all) waiting for a pool slot, with the holders."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    wanted = set(run_ids) if run_ids is not None else None
    out = []
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        waiting = [p for p in info.pending_steps if p.assigned_timestamp is None]
        waiting = [p for p in waiting if wanted is None or p.run_id in wanted]
        if not waiting:
            continue
        holders = []
        for slot in info.claimed_slots:
            rec = instance.get_run_record_by_id(slot.run_id)
            state = liveness(instance, rec).describe() if rec is not None else f"run {slot.run_id[:8]} (unknown)"
            holders.append(f"step {slot.step_key} of {state}")
        for p in waiting:
            out.append(PoolWait(pool, p.run_id, p.step_key, tuple(holders), info.slot_count))
    return out
