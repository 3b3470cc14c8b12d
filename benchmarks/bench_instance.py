"""Instance scale benchmark: an experiment of 10k partitions on a PostgreSQL Dagster instance.

Measures what limits a large Spinlock dataset on the orchestration side (issue 13, item 6), on a
database it creates (and drops unless ``--keep``) on the server at ``--postgres``:

1. **Run launch rate.** ``--real`` partitions (grid 8, one operator per partition, M=1, T=1, so
   orchestration dominates) are generated for real with ``spinlock generate`` (in-process
   executor, then the multiprocess executor with 2 workers); seconds per partition run against
   the pure stage compute of one partition, measured here in the same run. Also the rate at which
   run records are created in PostgreSQL (what a sensor or backfill submitting runs pays).
2. **Event log per run.** Events and bytes of one partition run, and the PostgreSQL table sizes.
3. **10k partitions.** The remaining partitions are synthesized from a real one: its run record
   and every event are replayed with a new run id and partition key (the event store's own
   ``store_event``), its files are hard-linked under the new batch names. The instance and the
   dataset directory then look as they would after 10k real runs.
4. At ``--real`` and at ``--partitions`` partitions: the GraphQL queries of the asset page (a
   ``dagster-webserver`` started here, no daemon), the sensor ticks (stale-features sensor with
   every partition current and with every partition stale, index sensor, grid-size sensor), and
   the event-log size.

Prints a table and the hardware, writes JSON (``--out``). Example (the figures in docs/scaling.md)::

    python benchmarks/bench_instance.py --postgres postgresql://postgres@127.0.0.1:5432/postgres \\
        --partitions 10000 --out benchmarks/results/instance_10k_postgres.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

GRID = 8
TEMPLATE_BATCH = 0

#: The queries the asset page of a partitioned asset issues (overview + partitions tab), reduced to
#: the fields whose cost grows with the partition count.
ASSET_PAGE_QUERIES = {
    "partition_statuses": """
query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionKeysByDimension { name partitionKeys }
  assetPartitionStatuses { ... on MultiPartitionStatuses { primaryDimensionName ranges {
    primaryDimStartKey primaryDimEndKey secondaryDim { ... on DefaultPartitionStatuses {
      materializedPartitions failedPartitions materializingPartitions } } } } } } } }""",
    "partition_stats": """
query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionStats { numMaterialized numMaterializing numFailed numPartitions } } } }""",
    "latest_materializations": """
query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
  assetMaterializations(limit: 25) { runId partition timestamp } } } }""",
    "runs_page": """
query { runsOrError(limit: 25) { ... on Runs { results { runId status tags { key value } } } } }""",
}


def _sh(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    return time.perf_counter() - t0


class Database:
    """A throw-away database on the server (psycopg2, autocommit)."""

    def __init__(self, server_url: str, name: str) -> None:
        import psycopg2
        from sqlalchemy.engine import make_url

        from spinlock_assets.home import normalize_postgres_url

        base = make_url(normalize_postgres_url(server_url))
        self.name = name
        self.url = base.set(database=name).render_as_string(hide_password=False)
        self._admin = base.render_as_string(hide_password=False).replace("postgresql+psycopg2", "postgresql")
        self._admin_sql(f'CREATE DATABASE "{name}"')
        self.conn = psycopg2.connect(self.url.replace("postgresql+psycopg2", "postgresql"))
        self.conn.autocommit = True

    def query(self, sql: str) -> list[tuple]:
        cur = self.conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    def query_none(self, sql: str) -> None:
        self.conn.cursor().execute(sql)

    def sizes(self) -> dict[str, Any]:
        tables = self.query(
            "select relname, pg_total_relation_size(relid), n_live_tup from pg_stat_user_tables "
            "order by pg_total_relation_size(relid) desc"
        )
        return {
            "database_bytes": int(self.query(f"select pg_database_size('{self.name}')")[0][0]),
            "tables": {t: {"bytes": int(b), "rows": int(n)} for t, b, n in tables[:8]},
            "event_rows": int(self.query("select count(*) from event_logs")[0][0]),
            "event_json_bytes": int(self.query("select coalesce(sum(length(event)), 0) from event_logs")[0][0]),
            "runs": int(self.query("select count(*) from runs")[0][0]),
        }

    def drop(self) -> None:
        self.conn.close()
        self._admin_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _admin_sql(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self._admin)
        try:
            conn.autocommit = True
            conn.cursor().execute(sql)
        finally:
            conn.close()


def write_config(work: Path, partitions: int) -> Path:
    """The benchmark experiment: the default one at grid 8, one operator per partition, M=1, T=1."""
    from spinlock_core.config import load_config

    cfg = load_config(
        str(ROOT / "configs" / "experiments" / "default.yaml"),
        {
            "metadata.name": "scale_bench",
            "sampling.total_samples": partitions,
            "sampling.batch_size": 1,
            "simulation.grid_sizes": [GRID],
            "simulation.num_realizations": 1,
            "simulation.num_timesteps": 1,
            "dataset.output_dir": str(work / "dataset"),
            "features.config": str(ROOT / "configs" / "features" / "default.yaml"),
        },
    )
    path = work / "scale_bench.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path


def stage_compute_seconds(config: Path, work: Path) -> float:
    """Seconds of the pure stages of one partition (no Dagster), in a scratch dataset."""
    from spinlock_core.config import load_config
    from spinlock_core.dataset import PartitionId
    from spinlock_core.stages import enabled_stages

    cfg = load_config(str(config), {"dataset.output_dir": str(work / "scratch"), "sampling.total_samples": 1})
    part = PartitionId(grid=GRID, batch=0)
    for warm in (True, False):
        shutil.rmtree(work / "scratch", ignore_errors=True)
        t0 = time.perf_counter()
        for stage in enabled_stages(cfg, partitioned=None):
            stage.run(cfg, part if stage.partitioned else None)
        if not warm:
            return time.perf_counter() - t0
    raise AssertionError("unreachable")


def real_runs(config: Path, home: Path, executor: str, workers: int, total: int) -> float:
    """Wall seconds of ``spinlock generate`` over the first ``total`` partitions (and the index)."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    cmd = [
        str(Path(sys.executable).with_name("spinlock")),
        "generate",
        "--config",
        str(config),
        "--total-samples",
        str(total),
    ]
    cmd += ["--executor", executor, "--quiet"] + (["--workers", str(workers)] if executor != "in_process" else [])
    return _sh(cmd, env=env, cwd=ROOT)


def template_run(instance: Any) -> tuple[Any, list[Any]]:
    import dagster as dg

    from spinlock_assets.partitions import partition_key
    from spinlock_core.dataset import PartitionId

    key = str(partition_key(PartitionId(grid=GRID, batch=TEMPLATE_BATCH)))
    recs = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": key}), limit=1)
    run = recs[-1].dagster_run
    return run, list(instance.all_logs(run.run_id))


#: Events stored one by one through ``store_event``, so that the asset tables they update (the
#: asset's latest event, the partition dimension tags) are maintained. Every other event,
#: materialization-planned and check events included, goes to ``event_logs`` with the storage's own
#: multi-row insert (one statement per run): the partition status queries read it there. The
#: check-execution table therefore only holds the real runs' checks.
ASSET_EVENTS = {"ASSET_MATERIALIZATION", "ASSET_OBSERVATION"}


def _event_type(entry: Any) -> str | None:
    return entry.dagster_event.event_type_value if entry.dagster_event is not None else None


def synthesize(instance: Any, db: Database, layout_root: Path, start: int, stop: int) -> dict[str, Any]:
    """Replay the template partition's run and files as partitions ``start..stop-1``.

    Setup, not a measurement: commits do not wait for the WAL flush meanwhile
    (``synchronous_commit = off`` on the benchmark database, reset afterwards).
    """
    from dagster._core.events.log import EventLogEntry
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_shared.serdes import deserialize_value, serialize_value

    from spinlock_core.dataset import batch_key

    run, events = template_run(instance)
    tb = batch_key(TEMPLATE_BATCH)
    run_json = serialize_value(run)
    event_json = [(serialize_value(e), _event_type(e) in ASSET_EVENTS) for e in events]
    files = [p for p in layout_root.rglob(f"*batch_{tb}*") if p.is_file()]
    storage = instance.event_log_storage
    db.query_none(f'ALTER DATABASE "{db.name}" SET synchronous_commit = off')
    t0 = time.perf_counter()
    stored = 0
    try:
        for b in range(start, stop):
            bk = batch_key(b)
            new_id = str(uuid.uuid4())

            def sub(text: str, bk: str = bk, new_id: str = new_id) -> str:
                return (
                    text.replace(run.run_id, new_id)
                    .replace(f'"{tb}|{GRID}"', f'"{bk}|{GRID}"')
                    .replace(f"batch_{tb}", f"batch_{bk}")
                    .replace(f'"dagster/partition/batch": "{tb}"', f'"dagster/partition/batch": "{bk}"')
                )

            instance.add_run(deserialize_value(sub(run_json), DagsterRun))
            entries = [(deserialize_value(sub(text), EventLogEntry), asset) for text, asset in event_json]
            with storage._connect() as conn:
                conn.execute(storage.prepare_insert_event_batch([e for e, asset in entries if not asset]))
            for entry, asset in entries:
                if asset:
                    instance.store_event(entry)
            stored += len(entries)
            for f in files:
                target = f.with_name(f.name.replace(f"batch_{tb}", f"batch_{bk}"))
                if not target.exists():
                    os.link(f, target)
            if (b - start + 1) % 500 == 0:
                rate = (b - start + 1) / (time.perf_counter() - t0)
                print(f"synthesized {b - start + 1}/{stop - start} partitions ({rate:.1f}/s)", file=sys.stderr)
    finally:
        db.query_none(f'ALTER DATABASE "{db.name}" RESET synchronous_commit')
    dt = time.perf_counter() - t0
    return {"partitions": stop - start, "events": stored, "seconds": dt, "events_per_s": stored / dt}


def run_record_rate(instance: Any, config: Path, n: int) -> float:
    """Run records created per second (``create_run_for_job`` with partition tags, like a sensor's runs)."""
    from spinlock_assets.build import GENERATE_JOB, reconstructable_job
    from spinlock_assets.launch import create_run

    recon = reconstructable_job(config, GENERATE_JOB)
    t0 = time.perf_counter()
    ids = []
    for i in range(n):
        ids.append(
            create_run(instance, recon, run_config={}, tags={"dagster/partition": f"{i:04d}|{GRID}", "bench": "1"})
        )
    dt = time.perf_counter() - t0
    for run_id in ids:
        instance.delete_run(run_id)
    return n / dt


def sensor_ticks(instance: Any, config: Path, work: Path) -> dict[str, Any]:
    """Seconds of one evaluation of each sensor (best of 3; the stale case once, it is long).

    The stale-features sensor is timed cold first (no feature file read yet by this process, as
    in a freshly started code server: it stops opening files after its scan budget and says how
    far it got), then warm (every file's hash remembered, one ``stat`` each).
    """
    import dagster as dg

    from spinlock_assets.automation import SCAN_BUDGET_S
    from spinlock_assets.build import build_definitions
    from spinlock_assets.resources import SpinlockConfig
    from spinlock_core.stages import features as feature_stage

    defs = build_definitions(config, claim=False)
    res = SpinlockConfig(config_path=str(config), overrides_json="{}")
    out: dict[str, Any] = {"scan_budget_s": SCAN_BUDGET_S}

    def tick(name: str, resource: SpinlockConfig, repeat: int) -> tuple[float, Any]:
        sensor = defs.resolve_sensor_def(name)
        best, result = float("inf"), None
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = sensor(dg.build_sensor_context(instance=instance, resources={"spinlock": resource}))
            best = min(best, time.perf_counter() - t0)
        return best, result

    def skip(result: Any) -> str | None:
        return result.skip_reason.skip_message if result.skip_reason else None

    out["grid_sizes_sensor_s"], _ = tick("grid_sizes_sensor", res, 3)
    feature_stage._HASH_CACHE.clear()
    cold = []
    while True:  # ticks until the scan is complete
        t, r = tick("stale_features_sensor", res, 1)
        cold.append({"s": t, "requests": len(r.run_requests or []), "skip": skip(r)})
        if "next tick" not in (skip(r) or "") or len(cold) > 20:
            break
    out["stale_features_cold_ticks"] = cold
    out["stale_features_current_s"], r = tick("stale_features_sensor", res, 3)
    out["stale_features_current_requests"] = len(r.run_requests or [])
    out["index_sensor_s"], _ = tick("index_sensor", res, 3)
    # every partition stale: another features config (the realization aggregates without cv)
    fcfg = yaml.safe_load((ROOT / "configs" / "features" / "default.yaml").read_text(encoding="utf-8"))
    fcfg["aggregation"]["realization"] = [a for a in fcfg["aggregation"]["realization"] if a != "cv"]
    variant = work / "features_variant.yaml"
    variant.write_text(yaml.safe_dump(fcfg, sort_keys=False), encoding="utf-8")
    stale = SpinlockConfig(config_path=str(config), overrides_json=json.dumps({"features.config": str(variant)}))
    out["stale_features_all_stale_s"], r = tick("stale_features_sensor", stale, 1)
    out["stale_features_all_stale_requests"] = len(r.run_requests or [])
    return out


class Webserver:
    """``dagster-webserver`` on the benchmark home (no daemon: nothing launches runs)."""

    def __init__(self, home: Path, config: Path, log: Path) -> None:
        from spinlock_assets.server import dev_environment, server_ready, server_url

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = server_url("127.0.0.1", self.port)
        exe = Path(sys.executable).with_name("dagster-webserver")
        self.log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(exe), "-h", "127.0.0.1", "-p", str(self.port), "-w", str(ROOT / "workspace.yaml")],
            env=dev_environment(home, config),
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 180
        while not server_ready(self.url):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"dagster-webserver did not start; see {log}")
            time.sleep(0.5)

    def latency(self, repeat: int) -> dict[str, dict[str, float]]:
        from spinlock_assets.server import graphql

        out = {}
        for name, query in ASSET_PAGE_QUERIES.items():
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                graphql(self.url, query, {"key": {"path": ["rollouts_hdf5"]}}, timeout=600)
                times.append(time.perf_counter() - t0)
            out[name] = {"first_s": times[0], "median_s": statistics.median(times[1:] or times)}
        return out

    def stop(self) -> None:
        from spinlock_assets.server import stop_process_group

        stop_process_group(self.proc)
        self.log.close()


def measure(db: Database, instance: Any, home: Path, config: Path, work: Path, repeat: int) -> dict[str, Any]:
    sizes = db.sizes()
    web = Webserver(home, config, work / f"webserver_{sizes['runs']}.log")
    try:
        gql = web.latency(repeat)
    finally:
        web.stop()
    return {"instance": sizes, "graphql": gql, "sensors": sensor_ticks(instance, config, work)}


def hardware() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--postgres", default=os.environ.get("SPINLOCK_BENCH_POSTGRES_URL"), help="server URL")
    ap.add_argument("--partitions", type=int, default=10_000, help="partitions at the end (<= 10000)")
    ap.add_argument("--real", type=int, default=8, help="partitions generated for real (per executor)")
    ap.add_argument("--repeat", type=int, default=5, help="GraphQL repetitions (first one reported apart)")
    ap.add_argument("--out", type=Path, help="JSON results file")
    ap.add_argument("--keep", action="store_true", help="keep the database and the work directory")
    args = ap.parse_args()
    if not args.postgres:
        ap.error("--postgres URL (or SPINLOCK_BENCH_POSTGRES_URL) is required")
    if not 2 * args.real < args.partitions <= 10_000:
        ap.error("need 2 * --real < --partitions <= 10000 (batch keys are 4 digits)")
    os.environ.setdefault("SPINLOCK_EXECUTOR", "")
    from spinlock_assets.home import init_home, open_instance

    work = Path(tempfile.mkdtemp(prefix="spinlock-scale-"))
    db = Database(args.postgres, f"spinlock_bench_{os.getpid()}")
    result: dict[str, Any] = {"hardware": hardware(), "partitions": args.partitions, "real": args.real}
    result["hardware"]["postgres"] = db.query("show server_version")[0][0]

    def save() -> None:  # after every phase: a later failure keeps what was measured
        if args.out:
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    try:
        config = write_config(work, args.partitions)
        home = init_home(work / "home", db.url)
        instance = open_instance(home)
        t_in = real_runs(config, home, "in_process", 1, args.real)
        t_mp = real_runs(config, home, "multiprocess", 2, 2 * args.real)
        compute = stage_compute_seconds(config, work)
        result["runs"] = {
            "in_process_s_per_partition": t_in / args.real,
            "multiprocess_2_workers_s_per_partition": t_mp / (2 * args.real),
            "stage_compute_s_per_partition": compute,
            "run_records_per_s": run_record_rate(instance, config, 200),
        }
        run, events = template_run(instance)
        ev_bytes = int(db.query(f"select sum(length(event)) from event_logs where run_id = '{run.run_id}'")[0][0])
        result["per_run"] = {"events": len(events), "event_json_bytes": ev_bytes}
        save()
        result["at_real"] = measure(db, instance, home, config, work, args.repeat)
        save()
        result["synthesis"] = synthesize(instance, db, Path(work / "dataset"), 2 * args.real, args.partitions)
        save()
        result["at_partitions"] = measure(db, instance, home, config, work, args.repeat)
        save()
    finally:
        if not args.keep:
            db.drop()
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
