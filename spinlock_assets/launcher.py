"""The run launcher of a Spinlock ``DAGSTER_HOME``: Dagster's default launcher plus a health check.

Dagster's :class:`~dagster._core.launcher.DefaultRunLauncher` cannot tell whether a run's worker
is alive, so run monitoring never notices a run whose process was killed. This launcher tags
every run it launches with the host (``spinlock/host``) and answers
``check_run_worker_health`` from the run's recorded processes (:func:`spinlock_assets.runs.liveness`):
the daemon's run monitoring then marks a run failed once all its processes are gone, and its
pool slots are freed (``run_monitoring.free_slots_after_run_end_seconds`` in ``dagster.yaml``).
It judges runs started by ``spinlock generate`` in the same home too.
"""

from __future__ import annotations

from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.dagster_run import DagsterRun

from spinlock_assets.runs import HOST_TAG, hostname, liveness

__all__ = ["SpinlockRunLauncher"]


class SpinlockRunLauncher(DefaultRunLauncher):
    """Launches runs like Dagster's default launcher; reports dead run workers to run monitoring."""

    def launch_run(self, context: LaunchRunContext) -> None:
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: hostname()})
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        record = self._instance.get_run_record_by_id(run.run_id)
        if record is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run record: not judged")
        info = liveness(self._instance, record)
        if info.orphaned:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"every process of the run is gone (pids {info.pids})")
        return CheckRunHealthResult(WorkerStatus.RUNNING, info.describe())
