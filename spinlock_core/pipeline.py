"""Pure per-partition stage functions: what the Dagster assets and the CLI call.

A partition is ``(batch b, grid size g)``. Batch b holds the samples with global indices
``sampling.batch_bounds(b)`` of the experiment's single Sobol point set; every grid size
rolls out the *same* operators (same Sobol points, weights and seeds) at its resolution.

Stages (data flows one way: config → stages → files):

1. :func:`sobol_stage` → :class:`SobolBatch`: the batch's slice of the global point set and
   the global set's quality metrics;
2. :func:`specs_stage` → ``list[OperatorSpec]``: mapped knob values, IC choice, seeds;
3. :func:`rollout_stage` → a partition HDF5 file (atomic) + :class:`RolloutSummary`;
4. :func:`features_stage` → the partition's SDF feature file (atomic) + :class:`FeatureSummary`;
   :func:`stale_feature_partitions` lists partitions whose features are missing or were
   extracted under another features config (what re-extraction re-runs);
5. :func:`index_stage` → the whole-dataset index file over every partition file present,
   with the features as virtual datasets when all partitions have current ones.
"""

from __future__ import annotations

import json
import platform
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np
import torch

from spinlock_core import __version__
from spinlock_core.config import ExperimentConfig
from spinlock_core.features import (
    FeatureSummary,
    extract_partition,
    features_config_hash,
    features_path_for,
    load_features_config,
    write_feature_views,
)
from spinlock_core.ics import generate_ics
from spinlock_core.operators import KNOBS, OperatorSpec
from spinlock_core.rollout import resolve_device, run_rollouts, time_axis
from spinlock_core.sampling import map_unit, sampling_metrics, sobol_points
from spinlock_core.storage import PartitionWriter, build_index

__all__ = [
    "SobolBatch",
    "RolloutSummary",
    "partition_path",
    "index_path",
    "list_partition_files",
    "batch_key",
    "global_points",
    "sobol_stage",
    "specs_stage",
    "rollout_stage",
    "index_stage",
    "index_dataset",
    "FeatureSummary",
    "features_config",
    "features_file",
    "features_stage",
    "stored_features_hash",
    "stale_feature_partitions",
    "library_versions",
]


def batch_key(batch: int) -> str:
    """Partition key of batch ``batch`` (zero padded so lexical order = numeric order)."""
    return f"{batch:04d}"


def partition_path(cfg: ExperimentConfig, batch: int, grid_size: int) -> Path:
    """Where the partition (batch, grid size) is stored."""
    return Path(cfg.dataset.output_dir) / "partitions" / f"grid_{grid_size:04d}" / f"batch_{batch_key(batch)}.h5"


def index_path(cfg: ExperimentConfig) -> Path:
    """The whole-dataset index file."""
    return Path(cfg.dataset.output_dir) / "index.h5"


def list_partition_files(output_dir: str | Path) -> list[Path]:
    """Every complete partition file under ``output_dir`` (temporary files are never listed)."""
    return sorted((Path(output_dir) / "partitions").glob("grid_*/batch_*.h5"))


def library_versions() -> dict[str, str]:
    """Versions recorded in every file, for replay."""
    return {
        "spinlock": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
    }


@dataclass
class SobolBatch:
    """The slice of the global Sobol point set belonging to one batch."""

    batch: int
    start: int
    stop: int
    names: list[str]  # one per dimension (knob names, then "ic_type" when sampled)
    unit: np.ndarray  # [stop - start, P] float64 in [0, 1)
    metrics: dict  # quality of the WHOLE global point set

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start, self.stop, dtype=np.int64)


@lru_cache(maxsize=8)
def _global_points_cached(cfg_hash: str, n: int, d: int, seed: int, scramble: bool, method: str) -> np.ndarray:
    pts = sobol_points(d, 0, n, seed=seed, scramble=scramble, method=method)
    pts.setflags(write=False)
    return pts


_METRICS: dict[str, dict] = {}  # sampling metrics of the global set, per config hash (O(n² d) to compute)


def global_points(cfg: ExperimentConfig) -> np.ndarray:
    """The experiment's whole Sobol point set ``[total_samples, P]`` (cached per process)."""
    dims = cfg.sobol_dimensions()
    s = cfg.sampling
    return _global_points_cached(
        cfg.config_hash(), s.total_samples, max(len(dims), 1), s.sobol.seed, s.sobol.scramble, s.sobol.scramble_method
    )


def sobol_stage(cfg: ExperimentConfig, batch: int) -> SobolBatch:
    """Stage 1: the batch's points (a slice of the global set) and the global set's metrics."""
    if not 0 <= batch < cfg.sampling.num_batches:
        raise ValueError(f"batch {batch} out of range (the experiment has {cfg.sampling.num_batches} batches)")
    dims = cfg.sobol_dimensions()
    allpts = global_points(cfg)
    start, stop = cfg.sampling.batch_bounds(batch)
    key = cfg.config_hash()
    if key not in _METRICS:
        _METRICS[key] = sampling_metrics(allpts) if dims else {"n": len(allpts), "d": 0}
    metrics = dict(_METRICS[key])
    v = cfg.sampling.validation
    metrics["discrepancy_pass"] = bool(metrics.get("centered_l2_discrepancy", 0.0) < v.max_discrepancy)
    metrics["correlation_pass"] = bool(metrics.get("max_abs_correlation", 0.0) < v.max_pairwise_correlation)
    metrics["scramble_method"] = cfg.sampling.sobol.scramble_method if cfg.sampling.sobol.scramble else "none"
    return SobolBatch(
        batch=batch,
        start=start,
        stop=stop,
        names=[n for n, _ in dims],
        unit=np.array(allpts[start:stop, : len(dims)]),
        metrics=metrics,
    )


def specs_stage(cfg: ExperimentConfig, sobol: SobolBatch) -> list[OperatorSpec]:
    """Stage 2: one :class:`OperatorSpec` per sample of the batch."""
    dims = cfg.sobol_dimensions()
    values = map_unit(sobol.unit, dims) if dims else [{} for _ in range(sobol.stop - sobol.start)]
    names, _ = cfg.simulation.input_generation.ic_choices()
    root = cfg.sampling.sobol.seed
    specs = []
    for idx, vals in zip(sobol.indices.tolist(), values):
        params = {k: knob.default for k, knob in KNOBS.items()}
        params.update({k: v for k, v in vals.items() if k != "ic_type"})
        ic_type = str(vals.get("ic_type", names[0]))
        base, ic_params = cfg.simulation.input_generation.resolve_ic(ic_type)
        specs.append(
            OperatorSpec(
                index=int(idx),
                root_seed=root,
                params=params,
                ic_type=ic_type,
                ic_base=base,
                ic_params=ic_params,
                num_channels=cfg.simulation.num_channels,
            )
        )
    return specs


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
    sensitivity_seconds: float = 0.0  # measuring operator sensitivity (part of rollout_seconds)

    def to_dict(self) -> dict:
        return asdict(self)


def rollout_stage(
    cfg: ExperimentConfig,
    sobol: SobolBatch,
    specs: Sequence[OperatorSpec],
    grid_size: int,
    *,
    partition_key: str = "",
    device: str | None = None,
    conv_mode: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> RolloutSummary:
    """Stage 3: roll out the batch's operators at ``grid_size`` and write the partition file.

    The file is written to a temporary name and renamed when complete. Compression runs in
    writer threads while the next chunk of operators computes. When the features config
    (``cfg.features.config``) enables ``operator_sensitivity``, every operator is measured
    before it steps and the values are stored in ``/operator_sensitivity/values``.
    """
    from spinlock_core.rollout.sensitivity import (
        sensitivity_feature_names,
        sensitivity_params_hash,
        sensitivity_params_json,
    )

    t0 = time.perf_counter()
    sim = cfg.simulation
    sens_cfg = features_config(cfg).operator_sensitivity
    sens_names = sensitivity_feature_names(sens_cfg, sim.num_channels)
    sens_cfg = sens_cfg if sens_names else None
    dev = resolve_device(device or sim.device)
    m, steps = sim.num_realizations, sim.num_timesteps
    store = cfg.dataset.storage.store_trajectories
    out = partition_path(cfg, sobol.batch, grid_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    requests = [(s.ic_base, s.ic_params, s.ic_seed) for s in specs]
    t_ic = time.perf_counter()
    ics = generate_ics(requests, grid_size, sim.num_channels, dev)
    ic_seconds = time.perf_counter() - t_ic
    st = cfg.dataset.storage
    root_attrs = {
        "partition_key": partition_key,
        "batch": sobol.batch,
        "grid_size": grid_size,
        "root_seed": cfg.sampling.sobol.seed,
        "config_hash": cfg.config_hash(),
        "experiment": cfg.metadata.name,
        "library_versions": json.dumps(library_versions()),
        "device": str(dev),
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
        grid_size=grid_size,
        param_names=sobol.names,
        compression=st.compression,
        compression_level=st.compression_level,
        shuffle=st.shuffle,
        compression_threads=st.compression_threads,
        root_attrs=root_attrs,
        sensitivity_names=sens_names or None,
        sensitivity_params=sensitivity_params_json(sens_cfg) if sens_cfg is not None else None,
        sensitivity_params_hash=sensitivity_params_hash(sens_cfg) if sens_cfg is not None else None,
    ) as writer:
        writer.write_inputs(slice(0, len(specs)), ics.cpu().numpy())
        results: queue.Queue = queue.Queue(maxsize=2)
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
                sensitivity=sens_cfg,
                on_chunk=results.put,
            )
        finally:
            t_wait = time.perf_counter()
            results.put(None)
            thread.join()
            write_wait = time.perf_counter() - t_wait
        if errors:
            raise errors[0]
        writer.write_parameters(sobol.unit, [json.dumps(s.params, sort_keys=True) for s in specs])
        writer.write_metadata(
            sample_index=sobol.indices,
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
            sampling_metrics=sobol.metrics,
        )
    seconds = time.perf_counter() - t0
    n = len(specs)
    frames = len(time_axis(steps, store))
    return RolloutSummary(
        path=str(out),
        batch=sobol.batch,
        grid_size=grid_size,
        num_samples=n,
        num_realizations=m,
        num_frames=frames,
        shape=[n, m, frames, sim.num_channels, grid_size, grid_size],
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
        sensitivity_seconds=float(stats.sensitivity_seconds),
    )


def index_stage(cfg: ExperimentConfig) -> Path:
    """Stage 5: (re)build the whole-dataset index over every partition file present.

    Feature files (stage 4) are added as virtual datasets when every partition has one and all
    were extracted with the current features config; otherwise the index says why in its
    ``features_note`` attribute.
    """
    return index_dataset(cfg.dataset.output_dir)


def index_dataset(output_dir: str | Path) -> Path:
    """(Re)build ``<output_dir>/index.h5`` over the partition files (and current features) there."""
    files = list_partition_files(output_dir)
    if not files:
        raise ValueError(f"no partition files under {output_dir}/partitions: materialize rollouts first")
    feature_files = [features_path_for(p) for p in files]

    def add_features(f: h5py.File, grid: np.ndarray, sample: np.ndarray) -> None:
        present = [p for p in feature_files if p.is_file()]
        if len(present) != len(files):
            f.attrs["features_note"] = f"{len(files) - len(present)} of {len(files)} partitions have no features yet"
            return
        problems = write_feature_views(f, present, grid, sample)
        if problems:
            f.attrs["features_note"] = "; ".join(problems)

    return build_index(files, Path(output_dir) / "index.h5", extra=add_features)


def features_config(cfg: ExperimentConfig):
    """The experiment's validated features config (``features.config`` YAML, or defaults).

    A relative path is taken relative to the working directory; when no such file exists there,
    relative to the Spinlock checkout (where the shipped ``configs/`` live), so the shipped
    experiments work from any directory.
    """
    path = cfg.features.config
    if path is not None and not Path(path).is_absolute() and not Path(path).exists():
        shipped = Path(__file__).resolve().parent.parent / path
        if shipped.exists():
            path = str(shipped)
    return load_features_config(path)


def features_file(cfg: ExperimentConfig, batch: int, grid_size: int) -> Path:
    """Where the features of partition (batch, grid size) are stored."""
    return features_path_for(partition_path(cfg, batch, grid_size))


def features_stage(
    cfg: ExperimentConfig,
    batch: int,
    grid_size: int,
    *,
    features_cfg=None,
    partition_key: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> FeatureSummary:
    """Stage 4: extract the SDF features of partition (batch, grid size) into its feature file."""
    src = partition_path(cfg, batch, grid_size)
    if not src.is_file():
        raise FileNotFoundError(
            f"{src}: no rollouts for partition {batch_key(batch)}|{grid_size}; materialize rollouts_hdf5 first"
        )
    fcfg = features_cfg if features_cfg is not None else features_config(cfg)
    attrs = {"batch": batch, "partition_key": partition_key or f"{batch_key(batch)}|{grid_size}"}
    return extract_partition(src, fcfg, progress=progress, attrs=attrs)


def stored_features_hash(path: Path) -> str | None:
    """The features config hash a feature file was extracted with (None: no readable file)."""
    try:
        with h5py.File(path, "r") as f:
            return str(f["features/sdf"].attrs["config_hash"])
    except (OSError, KeyError):
        return None


def stale_feature_partitions(cfg: ExperimentConfig, features_cfg=None) -> list[tuple[int, int, str | None]]:
    """Partitions with rollouts whose features are missing or from another features config.

    Returns ``(batch, grid size, stored hash or None)`` for each, in partition order.
    """
    current = features_config_hash(features_cfg if features_cfg is not None else features_config(cfg))
    out = []
    for p in list_partition_files(cfg.dataset.output_dir):
        grid = int(p.parent.name.split("_")[1])
        batch = int(p.stem.split("_")[1])
        stored = stored_features_hash(features_path_for(p))
        if stored != current:
            out.append((batch, grid, stored))
    return out
