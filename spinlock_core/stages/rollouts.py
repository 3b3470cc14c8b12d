"""Stage ``rollouts_hdf5``: roll out a batch's operators at one grid size into the partition file.

Reads the batch's points and specs (refusing files made from another config), draws the ICs,
rolls every operator out for M realizations and T steps, and writes
``partitions/grid_GGGG/batch_BBBB.h5`` atomically; compression runs in writer threads while the
next chunk computes. When the features config enables ``operator_sensitivity``, every operator
is measured before it steps and the values are stored in ``/operator_sensitivity/values``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import PartitionId, PartitionWriter, merge_manifest
from spinlock_core.device import cpu_workers, resolve_device
from spinlock_core.ics import generate_ics
from spinlock_core.rollout import ChunkResult, run_rollouts, time_axis
from spinlock_core.sensitivity import (
    SensitivityMeter,
    sensitivity_feature_names,
    sensitivity_params_hash,
    sensitivity_params_json,
)
from spinlock_core.stages.context import features_config, layout_of, library_versions, manifest_of
from spinlock_core.stages.specs import load_batch

__all__ = ["RolloutSummary", "rollout_stage"]


@dataclass
class RolloutSummary:
    """What one rollout partition produced (reported as asset metadata)."""

    path: str
    batch: int
    grid_size: int
    num_samples: int
    num_realizations: int
    num_frames: int
    shape: list[int]
    bytes: int
    seconds: float
    rollout_seconds: float
    ic_seconds: float
    build_seconds: float
    host_seconds: float
    write_wait_seconds: float
    samples_per_s: float
    trajectories_per_s: float
    diverged_realizations: int
    diverged_operators: int
    device: str
    conv_mode: str
    precision: str
    config_hash: str
    discrepancy: float
    sensitivity_seconds: float = 0.0  # measuring operator sensitivity (part of rollout_seconds)

    def to_dict(self) -> dict:
        return asdict(self)


def rollout_stage(
    cfg: ExperimentConfig,
    part: PartitionId,
    *,
    device: str | None = None,
    conv_mode: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> RolloutSummary:
    """Roll out partition ``part`` and write its file (see module docstring).

    Raises:
        DatasetError: the batch's points or specs are missing, corrupt or from another config.
    """
    t0 = time.perf_counter()
    sim = cfg.simulation
    layout = layout_of(cfg)
    points, specs = load_batch(cfg, part.batch)
    fcfg = features_config(cfg)
    manifest = manifest_of(cfg, fcfg)
    if part.grid not in manifest.grid_sizes:  # a backfilled grid size: the dataset now expects it
        merge_manifest(layout, replace(manifest, grid_sizes=[*manifest.grid_sizes, part.grid]))
    sens_cfg = fcfg.section("operator_sensitivity")
    sens_names = sensitivity_feature_names(sens_cfg, sim.num_channels)
    dev = resolve_device(device or sim.device, setting="simulation.device")
    m, steps = sim.num_realizations, sim.num_timesteps
    store = cfg.dataset.storage.store_trajectories
    out = layout.rollouts(part)
    t_ic = time.perf_counter()
    ics = generate_ics([(s.ic_base, s.ic_params, s.ic_seed) for s in specs], part.grid, sim.num_channels, dev)
    ic_seconds = time.perf_counter() - t_ic
    st = cfg.dataset.storage
    h = cfg.stage_hashes()
    root_attrs = {
        "partition_key": part.key,
        "batch": part.batch,
        "grid_size": part.grid,
        "root_seed": cfg.sampling.sobol.seed,
        "config_hash": h.rollouts,
        "points_hash": h.points,
        "specs_hash": h.specs,
        "experiment": cfg.metadata.name,
        "library_versions": json.dumps(library_versions()),
        "device": dev.type,  # the kind only: which GPU of a host ran it does not change the data
        "precision": sim.precision,
        "num_timesteps": steps,
        "store_trajectories": store,
        "torch_num_threads": torch.get_num_threads(),  # CPU conv reductions depend on it: replay with the same
    }
    diverged = np.full((len(specs), m), -1, dtype=np.int32)
    with PartitionWriter(
        out,
        num_samples=len(specs),
        num_realizations=m,
        time_steps=time_axis(steps, store),
        num_channels=sim.num_channels,
        grid_size=part.grid,
        param_names=points.names,
        compression=st.compression,
        compression_level=st.compression_level,
        shuffle=st.shuffle,
        compression_threads=st.compression_threads,
        root_attrs=root_attrs,
        sensitivity_names=sens_names or None,
        sensitivity_params=sensitivity_params_json(sens_cfg) if sens_names else None,
        sensitivity_params_hash=sensitivity_params_hash(sens_cfg) if sens_names else None,
    ) as writer:
        writer.write_inputs(slice(0, len(specs)), ics.cpu().numpy())
        results: queue.Queue[ChunkResult | None] = queue.Queue(maxsize=2)
        errors: list[BaseException] = []

        def drain() -> None:
            while (res := results.get()) is not None:
                try:
                    for j, row in enumerate(res.rows.tolist()):
                        writer.write_trajectories(slice(row, row + 1), res.trajectories[j : j + 1])
                        diverged[row] = res.diverged_step[j]
                        if res.sensitivity is not None:
                            writer.write_sensitivity(slice(row, row + 1), res.sensitivity[j : j + 1])
                    if progress is not None:
                        progress(len(res.rows))
                except BaseException as exc:  # surfaced in the main thread below
                    errors.append(exc)

        thread = threading.Thread(target=drain, name="spinlock-writer", daemon=True)
        thread.start()
        try:
            stats = run_rollouts(
                specs,
                ics,
                num_realizations=m,
                num_steps=steps,
                device=dev,
                precision=sim.precision,
                divergence_threshold=sim.divergence_threshold,
                store_trajectories=store,
                operators_per_chunk=sim.operators_per_chunk,
                conv_mode=conv_mode,
                deterministic=sim.deterministic,
                sensitivity=SensitivityMeter(sens_cfg) if sens_names else None,
                workers=cpu_workers(sim.cpu_threads),
                on_chunk=results.put,
            )
        finally:
            t_wait = time.perf_counter()
            results.put(None)
            thread.join()
            write_wait = time.perf_counter() - t_wait
        if errors:
            raise errors[0]
        writer.write_parameters(points.unit, [json.dumps(s.params, sort_keys=True) for s in specs])
        writer.write_metadata(
            sample_index=points.indices,
            ic_types=[s.ic_type for s in specs],
            ic_base_types=[s.ic_base for s in specs],
            rollout_policies=[str(s.params["update_policy"]) for s in specs],
            noise_regimes=[s.noise_regime for s in specs],
            operator_specs=[s.to_json() for s in specs],
            weight_seeds=np.array([s.weight_seed for s in specs], dtype=np.uint64),
            ic_seeds=np.array([s.ic_seed for s in specs], dtype=np.uint64),
            noise_seeds=np.array([[s.noise_seed(r) for r in range(m)] for s in specs], dtype=np.uint64),
            diverged_step=diverged,
            config_json=json.dumps(cfg.model_dump(mode="json")),  # declaration order = Sobol dimension order
            sampling_metrics=points.metrics,
        )
    seconds = time.perf_counter() - t0
    n = len(specs)
    frames = len(time_axis(steps, store))
    return RolloutSummary(
        path=str(out),
        batch=part.batch,
        grid_size=part.grid,
        num_samples=n,
        num_realizations=m,
        num_frames=frames,
        shape=[n, m, frames, sim.num_channels, part.grid, part.grid],
        bytes=out.stat().st_size,
        seconds=seconds,
        rollout_seconds=stats.seconds,
        ic_seconds=ic_seconds,
        build_seconds=stats.build_seconds,
        host_seconds=stats.host_seconds,
        write_wait_seconds=write_wait,
        samples_per_s=n / seconds if seconds > 0 else 0.0,
        trajectories_per_s=n * m / seconds if seconds > 0 else 0.0,
        diverged_realizations=stats.diverged_realizations,
        diverged_operators=stats.diverged_operators,
        device=str(dev),
        conv_mode=stats.conv_mode,
        precision=sim.precision,
        config_hash=h.rollouts,
        discrepancy=float(points.metrics.get("centered_l2_discrepancy", 0.0)),
        sensitivity_seconds=float(stats.sensitivity_seconds),
    )
