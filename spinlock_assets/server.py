"""The Dagster webserver: running it (``dagster dev``) and talking to it (GraphQL asset backfills).

Helpers behind ``spinlock ui`` and ``spinlock backfill`` (no argument parsing here; the CLI is
:mod:`spinlock_cli.ui`).

* ``serve_ui`` starts ``dagster dev -w <repo>/workspace.yaml`` in its own process group through
  an exec wrapper that restores SIGINT/SIGTERM to their defaults (a process started in the
  background of a non-interactive shell inherits them as *ignored*, and ``dagster dev`` would
  then never stop), forwards SIGINT/SIGTERM to it and waits for it and its children to exit.
* ``launch_backfill`` / ``wait_for_backfill`` talk to the webserver's GraphQL endpoint
  (``POST <url>/graphql``): ``launchPartitionBackfill`` creates a real *asset* backfill that the
  daemon of ``dagster dev`` runs (it ticks about every 30 s), ``partitionBackfillOrError`` polls it.

Partition keys are ``"<batch>|<grid>"`` strings (Dagster orders a multi-partition key's
dimensions alphabetically: ``batch`` before ``grid_size``), e.g. ``"0003|128"``.
"""

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from spinlock_assets.partitions import BATCH_DIMENSION, GRID_DIMENSION
from spinlock_core.dataset import PartitionId

__all__ = [
    "PROJECT_ROOT",
    "SUCCESS_STATUSES",
    "FAILURE_STATUSES",
    "GraphQLError",
    "is_loopback",
    "dev_command",
    "dev_environment",
    "server_url",
    "server_ready",
    "serve_ui",
    "stop_process_group",
    "grid_partition_keys",
    "backfill_variables",
    "graphql",
    "launch_backfill",
    "backfill_status",
    "wait_for_backfill",
    "backfill_page",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUCCESS_STATUSES = frozenset({"COMPLETED", "COMPLETED_SUCCESS"})
FAILURE_STATUSES = frozenset({"FAILED", "COMPLETED_FAILED", "CANCELED"})

# Restores default SIGINT/SIGTERM handling, then becomes argv[1:] (signal dispositions set to
# SIG_DFL survive exec; "ignored" ones would be inherited as ignored).
_EXEC_WRAPPER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)

_LAUNCH = """
mutation SpinlockBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

_STATUS = """
query SpinlockBackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted
            numPartitionsInProgress
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
    }
    ... on Error { message }
  }
}
"""


class GraphQLError(RuntimeError):
    """The webserver answered, but with an error (transport, GraphQL or Dagster error type)."""


# ----------------------------------------------------------------------------- the web UI


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for any other host."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dev_command(host: str, port: int, *, python: str | None = None, workspace: str | Path | None = None) -> list[str]:
    """argv of ``dagster dev -w <workspace> -h HOST -p PORT`` behind the signal-restoring exec wrapper."""
    py = python or sys.executable
    ws = Path(workspace) if workspace is not None else PROJECT_ROOT / "workspace.yaml"
    return [py, "-c", _EXEC_WRAPPER, py, "-m", "dagster", "dev", "-w", str(ws), "-h", host, "-p", str(int(port))]


def dev_environment(home: Path, config_path: str | Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with absolute ``DAGSTER_HOME`` and ``SPINLOCK_CONFIG``."""
    env = dict(os.environ if base is None else base)
    env["DAGSTER_HOME"] = str(Path(home).resolve())
    env["SPINLOCK_CONFIG"] = str(Path(config_path).resolve())
    return env


def server_url(host: str, port: int) -> str:
    """Base URL a local client uses for a server bound to ``host:port`` (wildcards map to loopback)."""
    h = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in h and not h.startswith("["):
        h = f"[{h}]"
    return f"http://{h}:{int(port)}"


def server_ready(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET <url>/server_info`` answers 200."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/server_info", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(proc: subprocess.Popen, sig: int = signal.SIGINT, grace: float = 30.0) -> bool:
    """Send ``sig`` to ``proc`` (a process-group leader), wait; escalate to the group if needed.

    Returns True when ``proc`` exited within ``grace`` seconds of ``sig`` and no member of its
    process group outlived it by more than 5 s (a clean stop); stragglers get SIGTERM, then SIGKILL.
    """
    pgid = proc.pid
    clean = True
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            clean = False
            for s, t in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(pgid, s)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=t)
                    break
                except subprocess.TimeoutExpired:
                    continue
    deadline = time.monotonic() + 5.0
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pgid):
        clean = False
        for s in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, s)
            except ProcessLookupError:
                break
            time.sleep(2.0)
    return clean


def serve_ui(
    config_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 3000,
    home: Path,
    log: TextIO = sys.stderr,
    ready_timeout: float = 180.0,
) -> int:
    """Run ``dagster dev`` until SIGINT/SIGTERM (forwarded to it) or until it exits by itself.

    Prints ``dagster dev`` pid and, once ``/server_info`` answers, the URL. Returns 0 after a
    clean stop requested by a signal, 1 when it had to be killed or died on its own.
    """
    stop: dict[str, int] = {}

    def on_signal(signum, frame):
        stop.setdefault("sig", signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    proc = subprocess.Popen(
        dev_command(host, port),
        cwd=str(PROJECT_ROOT),
        env=dev_environment(home, config_path),
        start_new_session=True,
    )
    url = server_url(host, port)
    print(
        f"spinlock: dagster dev pid {proc.pid} (DAGSTER_HOME={home}, SPINLOCK_CONFIG={Path(config_path).resolve()})",
        file=log,
        flush=True,
    )
    try:
        ready, t0, warned = False, time.monotonic(), False
        while "sig" not in stop:
            rc = proc.poll()
            if rc is not None:
                print(f"spinlock: error: dagster dev exited with code {rc}", file=log, flush=True)
                return 1
            if not ready and server_ready(url, timeout=1.0):
                ready = True
                print(f"spinlock: Dagster UI at {url}  (Ctrl-C stops it)", file=log, flush=True)
                print(url, flush=True)
            if not ready and not warned and time.monotonic() - t0 > ready_timeout:
                warned = True
                print(
                    f"spinlock: warning: {url}/server_info not answering after {ready_timeout:.0f} s; still waiting",
                    file=log,
                    flush=True,
                )
            time.sleep(0.5)
        print("spinlock: stopping dagster dev ...", file=log, flush=True)
        clean = stop_process_group(proc, stop["sig"])
        print(f"spinlock: dagster dev stopped{'' if clean else ' (had to be killed)'}", file=log, flush=True)
        return 0 if clean else 1
    finally:
        if proc.poll() is None or _group_alive(proc.pid):
            stop_process_group(proc, signal.SIGTERM, grace=10.0)
        for s, h in previous.items():
            signal.signal(s, h)


# ----------------------------------------------------------------------------- backfills


def grid_partition_keys(num_batches: int, grid_sizes: Sequence[int]) -> list[str]:
    """Every ``"<batch>|<grid>"`` key of ``num_batches`` batches × ``grid_sizes`` (grid-major)."""
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    assert BATCH_DIMENSION < GRID_DIMENSION  # key order is alphabetical by dimension name
    return [PartitionId(grid=int(g), batch=b).key for g in grid_sizes for b in range(num_batches)]


def backfill_variables(
    partition_names: Sequence[str],
    assets: Sequence[str],
    *,
    title: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict:
    """GraphQL variables of ``launchPartitionBackfill`` for an asset backfill of ``assets``."""
    if not partition_names:
        raise ValueError("partition_names must not be empty")
    params: dict = {
        "assetSelection": [{"path": [a]} for a in assets],
        "partitionNames": list(partition_names),
    }
    if title:
        params["title"] = title
    if tags:
        params["tags"] = [{"key": k, "value": str(v)} for k, v in tags.items()]
    return {"backfillParams": params}


def graphql(url: str, query: str, variables: Mapping | None = None, timeout: float = 30.0) -> dict:
    """POST a GraphQL request to ``<url>/graphql``; returns ``data`` or raises GraphQLError/OSError."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    req = urllib.request.Request(
        url.rstrip("/") + "/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        raise GraphQLError(f"HTTP {exc.code} from {url}/graphql: {exc.read()[:500]!r}") from exc
    if payload.get("errors"):
        raise GraphQLError("; ".join(str(e.get("message", e)) for e in payload["errors"]))
    return payload["data"]


def launch_backfill(url: str, variables: Mapping) -> str:
    """Launch the asset backfill described by ``variables``; returns its id."""
    res = graphql(url, _LAUNCH, variables)["launchPartitionBackfill"]
    if res.get("__typename") != "LaunchBackfillSuccess":
        raise GraphQLError(f"{res.get('__typename')}: {res.get('message', 'backfill not launched')}")
    return res["backfillId"]


def backfill_status(url: str, backfill_id: str) -> tuple[str, list[dict]]:
    """(status, per-asset partition counts) of a backfill."""
    res = graphql(url, _STATUS, {"backfillId": backfill_id})["partitionBackfillOrError"]
    if res.get("__typename") != "PartitionBackfill":
        raise GraphQLError(f"{res.get('__typename')}: {res.get('message', 'no such backfill')}")
    data = res.get("assetBackfillData") or {}
    counts = [c for c in data.get("assetBackfillStatuses") or [] if c]
    return res["status"], counts


def wait_for_backfill(
    url: str,
    backfill_id: str,
    *,
    poll: float = 5.0,
    timeout: float | None = None,
    on_update: Callable[[str, list[dict]], None] | None = None,
) -> str:
    """Poll until the backfill reaches a terminal status (returned); TimeoutError after ``timeout`` s."""
    t0, last = time.monotonic(), None
    while True:
        status, counts = backfill_status(url, backfill_id)
        if on_update is not None and (status, counts) != last:
            on_update(status, counts)
        last = (status, counts)
        if status in SUCCESS_STATUSES or status in FAILURE_STATUSES:
            return status
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise TimeoutError(f"backfill {backfill_id} still {status} after {timeout:.0f} s")
        time.sleep(poll)


def backfill_page(url: str, backfill_id: str) -> str:
    """The UI page of a backfill."""
    return f"{url.rstrip('/')}/runs/b/{backfill_id}"
