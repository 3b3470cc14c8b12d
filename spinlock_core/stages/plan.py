"""Preflight: what generating an experiment will write and need, checked before anything is written.

:func:`make_plan` estimates, from the config alone:

* the partitions (batches x grid sizes) and samples;
* bytes on disk: rollouts (float32 trajectories, uncompressed; gzip/lzf rarely shrink
  float32 fields by more than 2x, so half of it is the smallest plausible size), features,
  points and specs;
* the peak host memory of the largest step: the global Sobol point set, one partition's
  initial conditions, the rollout engine's chunk buffers (at least one operator's whole
  trajectory, held about four times: device-to-host buffer, the copy handed to the writer,
  and up to two queued chunks), one operator bank's activations, and one feature-extraction
  batch; with the largest grid size;
* HDF5's 4 GiB chunk limit (one trajectory is one chunk).

:func:`check_plan` compares that with the free disk space at the output directory and the
available memory, and :func:`preflight` adds what must hold about the paths (the output
directory is a directory or can be created there and written to). Every problem is one line
naming the setting to change; nothing is created.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from spinlock_core.config import ExperimentConfig
from spinlock_core.features import GRANULARITY_AXES, FeatureRegistry
from spinlock_core.files import writable_dir_problem
from spinlock_core.operators import KNOBS

__all__ = ["Plan", "make_plan", "check_plan", "preflight", "format_bytes", "available_memory"]

_HDF5_CHUNK_LIMIT = 2**32 - 1
_F4 = 4


def format_bytes(n: float) -> str:
    """``1.5 GB`` style (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


@dataclass
class Plan:
    """What generating an experiment writes and needs (estimates; see module docstring)."""

    partitions: int
    samples: int
    grid_sizes: list[int]
    rollout_bytes: int
    feature_bytes: int
    other_bytes: int
    trajectory_bytes: int  # one trajectory at the largest grid (one HDF5 chunk)
    peak_memory_bytes: int
    memory_parts: dict[str, int] = field(default_factory=dict)
    compressed: bool = True

    @property
    def min_disk_bytes(self) -> int:
        """Smallest plausible size: compression at most halves float32 fields."""
        return (
            (self.rollout_bytes // 2 if self.compressed else self.rollout_bytes) + self.feature_bytes + self.other_bytes
        )

    def lines(self) -> list[str]:
        mem = ", ".join(f"{k} {format_bytes(v)}" for k, v in self.memory_parts.items())
        return [
            f"partitions: {self.partitions} ({self.samples} samples x grids {self.grid_sizes})",
            f"disk: rollouts {format_bytes(self.rollout_bytes)} uncompressed"
            + (f" (at least {format_bytes(self.rollout_bytes // 2)} compressed)" if self.compressed else "")
            + f", features {format_bytes(self.feature_bytes)}, points/specs/renders {format_bytes(self.other_bytes)}",
            f"peak host memory (largest step): {format_bytes(self.peak_memory_bytes)} ({mem})",
            f"one trajectory (one HDF5 chunk) at grid {max(self.grid_sizes)}: {format_bytes(self.trajectory_bytes)}",
        ]


def _max_width(cfg: ExperimentConfig) -> int:
    """Largest hidden width any operator of the parameter space can have (``base * 4``)."""
    spec = dict(cfg.parameter_space.dimensions()).get("base_channels")
    if spec is None:
        base = int(KNOBS["base_channels"].default)  # type: ignore[call-overload]  # the knob default is an int
    elif spec.type == "choice":
        base = max(int(c) for c in spec.choices)
    else:
        base = int(spec.bounds[1])
    return base * 4


def _feature_bytes_per_sample(fcfg: BaseModel | None, m: int, ts: int, c: int) -> int:
    if fcfg is None:
        return 0
    reg = FeatureRegistry.from_config(fcfg)
    sizes = {"sample": 1, "realization": m, "time": ts, "channel": c}
    total = 0
    for spec in reg:
        n = 1
        for ax in GRANULARITY_AXES[spec.granularity]:
            n *= sizes[ax]
        total += n
    return (total + len(reg) * 8) * _F4  # + summary columns (a few per feature)


def make_plan(cfg: ExperimentConfig, fcfg: BaseModel | None = None) -> Plan:
    """Estimate what generating ``cfg`` writes and needs (``fcfg``: its features config, if extracted)."""
    sim, s = cfg.simulation, cfg.sampling
    m, c = sim.num_realizations, sim.num_channels
    ts = sim.num_timesteps + 1 if cfg.dataset.storage.store_trajectories else 1
    grids = list(sim.grid_sizes)
    g = max(grids)
    traj = m * ts * c * g * g * _F4
    rollouts = sum(s.total_samples * m * ts * c * gg * gg * _F4 for gg in grids)
    per_feature = _feature_bytes_per_sample(fcfg if cfg.features.extract else None, m, ts, c)
    features = per_feature * s.total_samples * len(grids)
    other = s.total_samples * 4096 + (s.num_batches * len(grids) * 2_000_000 if cfg.renders.enabled else 0)
    n = min(s.batch_size, s.total_samples)
    chunk_ops = max(1, min(sim.operators_per_chunk, n, (1 << 30) // max(traj, 1)))
    dims = len(cfg.sobol_dimensions())
    act_dtype = 4 if sim.precision == "float32" else 2
    parts = {
        "Sobol points": s.total_samples * max(dims, 1) * 8,
        "initial conditions": n * c * g * g * _F4,
        "rollout chunk buffers": 4 * chunk_ops * traj,
        "activations": m * _max_width(cfg) * g * g * (act_dtype + 4),
    }
    if cfg.features.extract and fcfg is not None:
        bs = int(getattr(getattr(fcfg, "extraction", None), "batch_size", 8))
        parts["feature batch"] = 4 * min(bs, n) * traj
    return Plan(
        partitions=s.num_batches * len(grids),
        samples=s.total_samples,
        grid_sizes=grids,
        rollout_bytes=rollouts,
        feature_bytes=features,
        other_bytes=other,
        trajectory_bytes=traj,
        peak_memory_bytes=sum(parts.values()),
        memory_parts=parts,
        compressed=cfg.dataset.storage.compression != "none",
    )


def available_memory() -> int | None:
    """``MemAvailable`` of this host in bytes (Linux), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _existing_parent(path: Path) -> Path:
    p = path.resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_plan(plan: Plan, output_dir: Path) -> list[str]:
    """Why ``plan`` cannot run here (empty: it fits): chunk limit, disk space, memory."""
    problems: list[str] = []
    if plan.trajectory_bytes > _HDF5_CHUNK_LIMIT:
        problems.append(
            f"one trajectory would be {format_bytes(plan.trajectory_bytes)}, above HDF5's 4 GiB chunk limit: reduce "
            "simulation.num_realizations, num_timesteps or grid_sizes, or set dataset.storage.store_trajectories: false"
        )
    free = shutil.disk_usage(_existing_parent(output_dir)).free
    if plan.min_disk_bytes > free:
        problems.append(
            f"the dataset needs about {format_bytes(plan.min_disk_bytes)} or more on disk, {output_dir} has "
            f"{format_bytes(free)} free: reduce sampling.total_samples, grid_sizes, num_realizations or num_timesteps"
        )
    mem = available_memory()
    if mem is not None and plan.peak_memory_bytes > mem:
        worst = max(plan.memory_parts, key=lambda k: plan.memory_parts[k])
        problems.append(
            f"the largest step needs about {format_bytes(plan.peak_memory_bytes)} of memory ({worst} "
            f"{format_bytes(plan.memory_parts[worst])}), this machine has {format_bytes(mem)} available"
        )
    return problems


def preflight(cfg: ExperimentConfig, fcfg: BaseModel | None = None) -> tuple[Plan, list[str]]:
    """The plan and every reason not to start (paths, then resources); nothing is created."""
    out = Path(cfg.dataset.output_dir)
    problems: list[str] = []
    if out.exists() and not out.is_dir():
        problems.append(f"dataset.output_dir {out} exists and is a file, not a directory")
    else:
        why = writable_dir_problem(_existing_parent(out))
        if why is not None:
            problems.append(f"dataset.output_dir {out}: {why}")
    plan = make_plan(cfg, fcfg)
    if not problems:
        problems += check_plan(plan, out)
    return plan, problems
