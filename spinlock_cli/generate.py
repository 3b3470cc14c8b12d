"""``spinlock generate``: materialize every partition of an experiment through Dagster, then the index.

Order of work, so that a bad input writes nothing and a crash blocks nothing:

1. the config, its features config and the device are validated (exit 2 on a problem);
2. preflight: the output directory and ``DAGSTER_HOME`` are usable, the home belongs to this
   experiment, and the estimated disk and memory needs fit (``--dry-run`` prints the plan and
   a measured time estimate, and stops);
3. runs of this home whose processes are gone are marked failed and their pool claims freed;
   temporary files of dead writers in the dataset are removed;
4. ``experiment.yaml`` and the manifest are written, then every partition runs the same
   ``generate`` job as the UI (assets and their asset checks, in-process), grid-major, then the
   ``index`` job. While a run waits for a pool slot the command says which run holds it.

Ctrl-C or SIGTERM stops within a second: temporary files of this process are deleted and its
runs are marked canceled with their claims freed (exit 130 / 143).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from spinlock_cli._common import fail, kill_descendants, run_interruptible

__all__ = ["add_parser", "run", "generate_experiment", "overrides_of"]

_OVERRIDES = {
    "total_samples": "sampling.total_samples",
    "batch_size": "sampling.batch_size",
    "seed": "sampling.sobol.seed",
    "output": "dataset.output_dir",
    "device": "simulation.device",
    "num_realizations": "simulation.num_realizations",
    "num_timesteps": "simulation.num_timesteps",
    "grid_sizes": "simulation.grid_sizes",
    "precision": "simulation.precision",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser(
        "generate",
        help="materialize every partition of an experiment through Dagster",
        description="Validates everything first (config, paths, DAGSTER_HOME, disk and memory), then runs the "
        "generate job (every stage and its asset checks) per partition and builds the index. Exit 0 done, "
        "1 a run or check failed, 2 bad config/argument/path (nothing written), 130/143 interrupted.",
    )
    g.add_argument("--config", required=True, help="experiment YAML (e.g. configs/experiments/default.yaml)")
    g.add_argument("--total-samples", type=int, help="override sampling.total_samples")
    g.add_argument("--batch-size", type=int, help="override sampling.batch_size (samples per partition)")
    g.add_argument("--output", help="override dataset.output_dir (a directory)")
    g.add_argument("--device", help="override simulation.device (auto, cpu, cuda, cuda:N)")
    g.add_argument("--num-realizations", type=int, help="override simulation.num_realizations")
    g.add_argument("--num-timesteps", type=int, help="override simulation.num_timesteps")
    g.add_argument("--grid-sizes", type=int, nargs="+", help="override simulation.grid_sizes")
    g.add_argument("--precision", help="override simulation.precision (float32, bfloat16, float16)")
    g.add_argument("--seed", type=int, help="override sampling.sobol.seed (the root seed)")
    g.add_argument(
        "--only",
        nargs="+",
        metavar="STAGE",
        help="run only these partitioned stages (and their checks), e.g. sdf_features renders; their "
        "inputs must exist and be current (see `spinlock stages`)",
    )
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (partitions, bytes, memory, measured time estimate) and stop",
    )
    g.add_argument(
        "--executor",
        choices=("in_process", "multiprocess", "dask"),
        default="in_process",
        help="how steps run: in_process (default: one partition after another in this process), multiprocess "
        "(every step in its own process, --workers partitions at once) or dask (every step on a Dask worker: a "
        "local cluster of --workers processes, or the cluster at --scheduler). All give identical bytes.",
    )
    g.add_argument(
        "--workers",
        type=int,
        help="partitions at once (multiprocess, dask) and worker processes of the local Dask cluster "
        "(default: GPUs of this host for CUDA experiments, else CPU cores / simulation.cpu_threads)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --executor dask: use the existing Dask cluster at ADDRESS (tcp://host:8786) instead of "
        "starting a local one; its workers must reach the dataset and DAGSTER_HOME at the same paths",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=run)


def overrides_of(args: argparse.Namespace) -> dict[str, object]:
    return {key: getattr(args, attr) for attr, key in _OVERRIDES.items() if getattr(args, attr, None) is not None}


def _time_estimate(cfg: Any) -> str:
    """Measure a small rollout here and extrapolate (the dry run's time estimate)."""
    import tempfile

    from spinlock_core.config import load_config
    from spinlock_core.dataset import PartitionId
    from spinlock_core.stages import rollout_stage, sobol_stage, specs_stage

    sim = cfg.simulation
    probe_n = min(4, cfg.sampling.batch_size)
    probe_t = min(2, sim.num_timesteps)
    with tempfile.TemporaryDirectory() as tmp:
        pcfg = load_config(
            cfg.model_dump(mode="json"),
            {
                "sampling.batch_size": probe_n,
                "simulation.num_timesteps": probe_t,
                "dataset.output_dir": tmp,
                "simulation.grid_sizes": [max(sim.grid_sizes)],
                "sampling.total_samples": max(probe_n, 1),
            },
        )
        sobol_stage(pcfg, 0)
        specs_stage(pcfg, 0)
        t0 = time.perf_counter()
        rollout_stage(pcfg, PartitionId(grid=max(sim.grid_sizes), batch=0))
        dt = time.perf_counter() - t0
    per_step = dt / (probe_n * probe_t)
    area = sum(g * g for g in sim.grid_sizes) / max(sim.grid_sizes) ** 2
    est = per_step * cfg.sampling.total_samples * sim.num_timesteps * area
    return (
        f"rollouts about {est:.0f} s here ({probe_n} operators x {probe_t} steps at grid "
        f"{max(sim.grid_sizes)} took {dt:.2f} s; scaled by samples, steps and grid area; features and "
        "renders add to it)"
    )


def run(args: argparse.Namespace) -> int:
    from spinlock_core.config import ConfigError, load_config

    try:
        cfg = load_config(args.config, overrides_of(args) or None)
    except ConfigError as exc:
        return fail(str(exc))
    return generate_experiment(
        cfg,
        only=args.only,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        dry_run=args.dry_run,
        quiet=args.quiet,
    )


def generate_experiment(
    cfg: Any,
    *,
    only: list[str] | None = None,
    executor: str = "in_process",
    workers: int | None = None,
    scheduler: str | None = None,
    dry_run: bool = False,
    quiet: bool = False,
) -> int:
    """Validate, preflight and generate the experiment ``cfg`` (an ``ExperimentConfig``); the exit code.

    The command's whole work after parsing (also behind ``spinlock.generate``): errors are
    printed as one ``spinlock: error:`` line and returned as 2 (input) or 1 (data, a failed run).
    """
    from spinlock_core.config import ConfigError
    from spinlock_core.device import DeviceError, resolve_device
    from spinlock_core.stages import features_config
    from spinlock_core.stages.plan import preflight

    try:
        fcfg = features_config(cfg) if cfg.features.extract else None
    except ConfigError as exc:
        return fail(str(exc))
    try:
        device = resolve_device(cfg.simulation.device, setting="simulation.device")
    except DeviceError as exc:
        return fail(str(exc))
    if executor not in ("in_process", "multiprocess", "dask"):
        return fail(f"executor must be one of in_process, multiprocess, dask; got {executor!r}")
    if only:
        from spinlock_core.stages import stage_names

        allowed = stage_names(partitioned=True)
        bad = [s for s in only if s not in allowed]
        if bad:
            return fail(f"--only: unknown stage(s) {bad}; allowed: {', '.join(allowed)}")
    if scheduler and executor != "dask":
        return fail(f"--scheduler is for --executor dask (got --executor {executor})")
    if workers is not None and workers < 1:
        return fail(f"--workers must be >= 1, got {workers}")
    n_workers = workers or default_workers(cfg, device.type)
    plan, problems = preflight(cfg, fcfg)
    if problems:
        return fail("cannot generate:\n" + "\n".join(f"  - {p}" for p in problems))
    if dry_run:
        print(f"plan for {cfg.metadata.name} -> {cfg.dataset.output_dir} on {device}:")
        for line in plan.lines():
            print(f"  {line}")
        print(f"  time: {_time_estimate(cfg)}")
        return 0
    from spinlock_assets.home import HomeError, claim_home, prepare_home

    try:
        home = prepare_home()
        claim_home(home, cfg)
    except HomeError as exc:
        return fail(str(exc))
    return _generate(cfg, home, quiet=quiet, only=only, executor=executor, workers=n_workers, scheduler=scheduler)


def default_workers(cfg: Any, device_type: str) -> int:
    """Partitions at once by default: the host's GPUs for CUDA experiments, else CPU cores / cpu_threads."""
    if device_type == "cuda":
        from spinlock_assets.cluster import visible_gpus

        return max(1, len(visible_gpus()))
    from spinlock_core.device import available_cpus

    return max(1, available_cpus() // cfg.simulation.cpu_threads)


def _generate(
    cfg: Any,
    home: Path,
    *,
    quiet: bool,
    only: list[str] | None = None,
    executor: str = "in_process",
    workers: int = 1,
    scheduler: str | None = None,
) -> int:
    import dagster as dg
    from tqdm import tqdm

    from spinlock_assets.build import GENERATE_JOB, INDEX_JOB, build_definitions, reconstructable_job
    from spinlock_assets.executor import executor_run_config
    from spinlock_assets.home import HomeError, claim_instance, open_instance
    from spinlock_assets.launch import create_run, run_error, run_events, start_run_process
    from spinlock_assets.partitions import ensure_grid_partitions, partition_key
    from spinlock_assets.runs import PID_TAG, pool_waits, process_tags, sweep
    from spinlock_core.dataset import merge_manifest, remove_stale_temps, write_text_atomic
    from spinlock_core.files import own_temps, remove_own_temps, remove_quietly
    from spinlock_core.stages import layout_of, manifest_of, partition

    layout = layout_of(cfg)
    try:
        instance = open_instance(home)
    except HomeError as exc:
        return fail(str(exc), 1)
    try:
        claim_instance(instance, cfg)
    except HomeError as exc:
        return fail(str(exc))
    for line in sweep(instance).lines():
        print(f"spinlock: {line}", file=sys.stderr)
    layout.root.mkdir(parents=True, exist_ok=True)
    for tmp in remove_stale_temps(layout.root):
        print(f"spinlock: removed {tmp} (left by a writer that is gone)", file=sys.stderr)
    write_text_atomic(layout.experiment, cfg.to_yaml())
    merge_manifest(layout, manifest_of(cfg))
    ensure_grid_partitions(instance, cfg.simulation.grid_sizes)
    defs = build_definitions(layout.experiment.resolve(), claim=False)
    job, index_job = defs.resolve_job_def(GENERATE_JOB), defs.resolve_job_def(INDEX_JOB)
    selection = {dg.AssetKey(name) for name in only} if only else None
    if selection:  # a subset of the partitioned stages, with their asset checks
        job = job.get_subset(asset_selection=selection)
    recon = reconstructable_job(layout.experiment, GENERATE_JOB)
    tags = {**process_tags(), "spinlock/cli": "generate"}
    quiet_logs = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}  # failures reported below
    parts = [partition(b, g) for g in cfg.simulation.grid_sizes for b in range(cfg.sampling.num_batches)]
    n_total = cfg.sampling.total_samples * len(cfg.simulation.grid_sizes)
    print(
        f"spinlock: {cfg.metadata.name}: {cfg.sampling.total_samples} samples x grids {cfg.simulation.grid_sizes} "
        f"in {len(parts)} partitions -> {layout.root}  (DAGSTER_HOME={home}; executor {executor}"
        + (f", {workers} at once" if executor != "in_process" else "")
        + (f", Dask scheduler {scheduler}" if scheduler else "")
        + ")",
        file=sys.stderr,
    )
    cluster: list[Any] = []  # the local Dask cluster this command starts (closed at the end)
    said: set[str] = set()

    def mine() -> list[str]:
        recs = instance.get_run_records(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={PID_TAG: tags[PID_TAG]})
        )
        return [r.dagster_run.run_id for r in recs]

    def tick() -> None:
        waits = pool_waits(instance, mine())
        for w in waits:
            note = f"waiting for a slot of pool {w.pool!r} ({w.slots} slot(s)), held by: " + (
                "; ".join(w.holders) or "nobody (it is being assigned)"
            )
            if note not in said:
                said.add(note)
                tqdm.write(f"spinlock: {note}", file=sys.stderr)
        if waits:  # a holder that died meanwhile: mark its run failed and free its slot, so this run proceeds
            for line in sweep(instance).lines():
                tqdm.write(f"spinlock: {line}", file=sys.stderr)

    def cleanup(signum: int) -> None:
        kill_descendants()  # step processes, Dask workers: their temporary files are left to the sweep
        for tmp in own_temps(layout.root):
            remove_quietly(tmp)
        for rec in instance.get_run_records(
            dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED],
                tags={PID_TAG: tags[PID_TAG]},
            )
        ):
            instance.report_run_canceled(rec.dagster_run, "Spinlock: stopped by a signal")
            instance.event_log_storage.free_concurrency_slots_for_run(rec.dagster_run.run_id)

    def in_process(part: Any) -> str | None:
        """Run one partition in this process; None on success, else why it failed."""
        try:
            res = job.execute_in_process(
                partition_key=partition_key(part),
                instance=instance,
                run_config=quiet_logs,
                raise_on_error=False,
                tags=tags,
            )
        except Exception as exc:  # Dagster could not run or record the run (its storage failed)
            raise RuntimeError(
                f"partition {part.key}: the run could not be executed or recorded: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        return None if res.success else f"{run_error(res.all_events)} (run {res.run_id} in {home})"

    def launch(part: Any, address: str | None) -> Any:
        key = partition_key(part)
        run_id = create_run(
            instance,
            recon,
            run_config=executor_run_config(executor, workers=1, scheduler=address),
            tags={**tags, **job.get_tags_for_partition_key(key, selection)},
            asset_selection=sorted(selection, key=str) if selection else None,
        )
        return start_run_process(instance, recon, run_id, home)

    def outcome(proc: Any) -> str | None:
        run = instance.get_run_by_id(proc.run_id)
        if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
            return None
        why = run_error(run_events(instance, proc.run_id))
        if why == "unknown failure":
            tail = proc.log.read_text(errors="replace").strip().splitlines()[-1:] if proc.log.exists() else []
            why = f"its process exited with {proc.process.returncode}" + (f": {tail[0]}" if tail else "")
        return f"{why} (run {proc.run_id} in {home}; log {proc.log})"

    def advance(bar: Any, t0: float, part: Any) -> None:
        start, stop = cfg.sampling.batch_bounds(part.batch)
        bar.update(stop - start)
        bar.set_postfix(samples_per_s=f"{bar.n / (time.perf_counter() - t0):.1f}")

    def run_all(bar: Any, t0: float) -> int:
        """Every partition: one after another (in_process) or ``workers`` run processes at once."""
        if executor == "in_process":
            for part in parts:
                bar.set_description(f"grid {part.grid} batch {part.batch:04d}")
                why = in_process(part)
                if why:
                    bar.close()
                    return fail(f"partition {part.key} failed: {why}", 1)
                advance(bar, t0, part)
            return 0
        address = scheduler
        if executor == "dask" and address is None:
            from spinlock_assets.cluster import start_local_cluster

            cluster.append(start_local_cluster(workers))
            address = cluster[0].scheduler_address
        todo = list(parts)
        running: dict[Any, Any] = {}
        failed: list[str] = []
        while todo or running:
            while todo and not failed and len(running) < workers:
                part = todo.pop(0)
                running[part] = launch(part, address)
            time.sleep(0.1)
            for part, proc in list(running.items()):
                if proc.finished():
                    del running[part]
                    why = outcome(proc)
                    if why:
                        failed.append(f"partition {part.key} failed: {why}")
                    else:
                        advance(bar, t0, part)
        if failed:
            bar.close()
            return fail("; ".join(failed), 1)
        return 0

    def work() -> int:
        t0 = time.perf_counter()
        with tqdm(total=n_total, unit="sample", disable=quiet, file=sys.stderr) as bar:
            bar.set_description(f"grid {parts[0].grid} batch {parts[0].batch:04d}")
            try:
                code = run_all(bar, t0)
            except RuntimeError:
                bar.close()
                remove_own_temps(layout.root)
                raise
            finally:
                for c in cluster:
                    c.close()
            if code:
                return code
        res = index_job.execute_in_process(instance=instance, run_config=quiet_logs, raise_on_error=False, tags=tags)
        if not res.success:
            return fail(
                f"building the dataset index failed: {run_error(res.all_events)} (run {res.run_id} in {home})", 1
            )
        dt = time.perf_counter() - t0
        print(
            f"spinlock: done: {n_total} samples ({cfg.sampling.total_samples} x {len(cfg.simulation.grid_sizes)} grids) "
            f"in {dt:.1f} s ({n_total / dt:.2f} samples/s); dataset {layout.root} (index {layout.index})",
            file=sys.stderr,
        )
        return 0

    import os

    from spinlock_core.device import CPU_WORKERS_ENV, available_cpus

    if executor != "in_process" or CPU_WORKERS_ENV in os.environ:  # the user's setting, or partitions share cores
        return run_interruptible(work, cleanup=cleanup, tick=tick)
    # one partition at a time in this process: its CPU steps may use every core; only for this run (a notebook's
    # next run with another executor, whose step processes inherit the environment, must not)
    os.environ[CPU_WORKERS_ENV] = str(max(1, available_cpus() // cfg.simulation.cpu_threads))
    try:
        return run_interruptible(work, cleanup=cleanup, tick=tick)
    finally:
        os.environ.pop(CPU_WORKERS_ENV, None)
