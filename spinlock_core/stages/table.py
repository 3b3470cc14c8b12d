"""The stage table: every stage of the pipeline, once, with what it reads, writes and checks.

The Dagster assets, their dependencies, pools and code versions, the asset checks, the
``generate`` job, the CLI's stage choices and the docs' stage list are all generated from
:data:`STAGES`. Adding a stage is one module and one row.

Each row's ``run(cfg, part)`` calls the stage function and returns a :class:`StageResult`:
the files written, plain metadata (numbers, strings, lists, :class:`PathValue`,
:class:`Markdown`), the data version (the stage hash of the config it was made from) and a
one-line message. Checks are pure functions of the written files returning a
:class:`~spinlock_core.dataset.CheckOutcome`.
"""

from __future__ import annotations

import base64
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import (
    CheckOutcome,
    PartitionId,
    build_index,
    compute_stats,
    dataset_splits,
    read_points,
    read_render_record,
    read_specs,
    read_splits,
    read_stats,
    write_card,
    write_splits,
    write_stats,
)
from spinlock_core.dataset import hdf5 as H
from spinlock_core.dataset import quality as file_checks
from spinlock_core.device import torch_threads
from spinlock_core.features import FeatureRegistry, features_config_hash, summary_names
from spinlock_core.stages.context import features_config, hashes_of, layout_of
from spinlock_core.stages.features import features_stage
from spinlock_core.stages.renders import render_preview_stage
from spinlock_core.stages.rollouts import rollout_stage
from spinlock_core.stages.sobol import sobol_quality, sobol_stage
from spinlock_core.stages.specs import specs_stage

__all__ = [
    "PathValue",
    "Markdown",
    "StageResult",
    "CheckSpec",
    "Stage",
    "STAGES",
    "stage",
    "stage_names",
    "enabled_stages",
    "stages_markdown",
]


@dataclass(frozen=True)
class PathValue:
    """A metadata value that is a file path."""

    path: str


@dataclass(frozen=True)
class Markdown:
    """A metadata value that is Markdown text."""

    text: str


@dataclass
class StageResult:
    """What one run of a stage produced."""

    files: list[Path]
    metadata: dict[str, Any]
    data_version: str
    message: str


@dataclass(frozen=True)
class CheckSpec:
    """A check of a stage's files: ``fn(cfg, part)`` -> outcome; ``blocking`` stops downstream."""

    name: str
    fn: Callable[[ExperimentConfig, PartitionId], CheckOutcome]
    blocking: bool
    severity: Literal["error", "warn"]
    description: str


@dataclass(frozen=True)
class Stage:
    """One row of the stage table.

    Attributes:
        name: the asset name.
        run: ``run(cfg, part)`` (``part`` None for the unpartitioned index) -> :class:`StageResult`.
        inputs: upstream stage names.
        outputs: file kinds written (:data:`spinlock_core.dataset.FILE_KINDS`).
        hash_of: which stage hash versions its output (``StageHashSet`` field).
        checks: checks of the written files.
        pool: concurrency pool (``"gpu"``: one torch step at a time per slot), or None.
        partitioned: runs per (batch, grid size) partition.
        group, kinds, description: shown in the Dagster UI.
        enabled: whether ``spinlock generate`` includes it under a config.
    """

    name: str
    run: Callable[[ExperimentConfig, PartitionId | None], StageResult]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    hash_of: str
    checks: tuple[CheckSpec, ...] = ()
    pool: str | None = None
    partitioned: bool = True
    group: str = "generation"
    kinds: frozenset[str] = field(default_factory=frozenset)
    description: str = ""
    enabled: Callable[[ExperimentConfig], bool] = lambda cfg: True


def _counts_md(title: str, values: Sequence[object]) -> Markdown:
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(Counter(map(str, values)).items()))
    return Markdown(f"| {title} | count |\n|---|---|\n{rows}")


def _part(part: PartitionId | None) -> PartitionId:
    if part is None:
        raise ValueError("this stage runs per partition")
    return part


# ----------------------------------------------------------------------------- runs


def _run_sobol(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    p = _part(part)
    pts = sobol_stage(cfg, p.batch)
    m = pts.metrics
    return StageResult(
        [layout_of(cfg).points(p.batch)],
        {
            "path": PathValue(str(layout_of(cfg).points(p.batch))),
            "samples": pts.num_samples,
            "first_sample": pts.start,
            "dimensions": len(pts.names),
            "parameters": list(pts.names),
            "discrepancy": float(m.get("centered_l2_discrepancy", 0.0)),
            "max_abs_correlation": float(m.get("max_abs_correlation", 0.0)),
            "scramble_method": str(m.get("scramble_method")),
            "points_hash": pts.hash,
        },
        pts.hash,
        f"{pts.num_samples} Sobol points of batch {p.batch}",
    )


def _run_specs(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    p = _part(part)
    out = specs_stage(cfg, p.batch)
    specs = out.specs
    return StageResult(
        [layout_of(cfg).specs(p.batch)],
        {
            "path": PathValue(str(layout_of(cfg).specs(p.batch))),
            "samples": len(specs),
            "ic_types": _counts_md("IC type", [s["ic_type"] for s in specs]),
            "policies": _counts_md("policy", [s["params"]["update_policy"] for s in specs]),
            "specs_hash": out.hash,
        },
        out.hash,
        f"{len(specs)} operator specs of batch {p.batch}",
    )


def _run_rollouts(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    p = _part(part)
    s = rollout_stage(cfg, p)
    return StageResult(
        [Path(s.path)],
        {
            "path": PathValue(s.path),
            "shape": s.shape,
            "bytes": s.bytes,
            "seconds": s.seconds,
            "samples_per_s": s.samples_per_s,
            "trajectories_per_s": s.trajectories_per_s,
            "sensitivity_seconds": s.sensitivity_seconds,
            "diverged_realizations": s.diverged_realizations,
            "diverged_operators": s.diverged_operators,
            "discrepancy": s.discrepancy,
            "device": s.device,
            "precision": s.precision,
            "config_hash": s.config_hash,
        },
        s.config_hash,
        f"{s.num_samples} samples at {p.grid}² in {s.seconds:.2f} s on {s.device}: {s.path}",
    )


def _run_features(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    p = _part(part)
    fcfg = features_config(cfg)
    s = features_stage(cfg, p, features_cfg=fcfg)
    return StageResult(
        [Path(s.path)],
        {
            "path": PathValue(s.path),
            "feature_count": s.num_features,
            "summary_columns": s.num_summary_columns,
            "masked_features": len(s.masked),
            "nan_fraction": s.nan_fraction,
            "seconds": s.seconds,
            "samples_per_s": s.samples_per_s,
            "feature_cfg_hash": s.config_hash,
            "device": s.device,
        },
        hashes_of(cfg, fcfg).features,
        f"{s.num_features} features of {s.num_samples} samples in {s.seconds:.2f} s on {s.device}: {s.path}",
    )


def _run_renders(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    p = _part(part)
    res = render_preview_stage(cfg, p)
    s = res.stats
    h = hashes_of(cfg).renders
    if not s.get("enabled", True):
        return StageResult([], {"enabled": False}, h, "renders.enabled is false: nothing rendered")
    thumb = base64.b64encode(res.thumbnail_png).decode("ascii")
    meta: dict[str, Any] = {
        "video": PathValue(str(res.video_path)),
        "poster": PathValue(str(res.poster_path)),
        "thumbnail": Markdown(f"![poster](data:image/png;base64,{thumb})"),
        "frames": int(s["frames"]),
        "size": f"{s['width']}x{s['height']}",
        "seconds": float(s["seconds"]),
        "frames_per_s": float(s["frames_per_s"]),
        "operators": list(s["operators"]),
        "aggregates": list(s["aggregates"]),
        "source": str(s["source"]),
        "enabled": True,
    }
    if s.get("replay_max_abs_diff") is not None:  # final states only: frames were replayed from the seeds
        meta["replay_max_abs_diff"] = float(s["replay_max_abs_diff"])
        meta["replay_ic_exact"] = bool(s["replay_ic_exact"])
    files = [Path(x) for x in (res.video_path, res.poster_path) if x is not None]
    files.append(layout_of(cfg).render_record(p))
    return StageResult(
        files, meta, h, f"{s['frames']} frames {s['width']}x{s['height']} in {s['seconds']:.2f} s: {res.video_path}"
    )


def _run_index(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    layout = layout_of(cfg)
    splits = dataset_splits(layout, cfg.splits, cfg.sampling.sobol.seed)  # a bad holdout: refused before writing
    s = build_index(layout)
    write_splits(layout, splits)
    return StageResult(
        [s.path, layout.splits],
        {
            "splits": PathValue(str(layout.splits)),
            "splits_hash": splits.hash,
            **{f"{k}_samples": v for k, v in splits.counts().items()},
            "path": PathValue(str(s.path)),
            "partition_files": s.partitions,
            "rows": s.rows,
            "bytes": s.path.stat().st_size,
            "features": s.features,
            "features_note": s.features_note or "features of every partition included",
            "missing_partitions": list(s.missing),
        },
        hashes_of(cfg).rollouts,
        f"index over {s.partitions} partitions ({s.rows} rows): {s.path}",
    )


def _run_stats(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    layout = layout_of(cfg)
    splits = read_splits(layout)
    stats = compute_stats(layout, splits, cfg.sampling.sobol.seed)
    write_stats(layout, stats)
    meta: dict[str, Any] = {"path": PathValue(str(layout.stats)), "splits_hash": splits.hash}
    for g in sorted(stats.grids):
        f = stats.of(g)
        meta[f"grid_{g}_mean"] = [c.mean for c in f]
        meta[f"grid_{g}_std"] = [c.std for c in f]
        meta[f"grid_{g}_robust_scale"] = [c.robust_scale for c in f]
        meta[f"grid_{g}_values"] = f[0].count
    return StageResult(
        [layout.stats],
        meta,
        hashes_of(cfg).rollouts,
        f"statistics of {splits.counts()['train']} train samples at grid sizes {sorted(stats.grids)}: {layout.stats}",
    )


def _run_card(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
    layout = layout_of(cfg)
    splits = read_splits(layout)
    stats = read_stats(layout, splits, cfg.config_hash())
    path = write_card(layout, splits, stats)
    text = path.read_text(encoding="utf-8")
    return StageResult(
        [path],
        {"path": PathValue(str(path)), "card": Markdown(text.split("\n", 1)[1])},
        hashes_of(cfg).rollouts,
        f"dataset card: {path}",
    )


# ----------------------------------------------------------------------------- checks


def _check_sobol(cfg: ExperimentConfig, part: PartitionId) -> CheckOutcome:
    v = cfg.sampling.validation
    pts = read_points(layout_of(cfg), part.batch)
    return sobol_quality(pts.metrics, v.max_discrepancy, v.max_pairwise_correlation)


def _check_specs(cfg: ExperimentConfig, part: PartitionId) -> CheckOutcome:
    layout = layout_of(cfg)
    try:
        specs, points = read_specs(layout, part.batch), read_points(layout, part.batch)
    except Exception as exc:  # DatasetError: the check fails and says why
        return CheckOutcome(False, str(exc), {})
    ok = [s.get("index") for s in specs.specs] == points.indices.tolist() and specs.points_hash == points.hash
    return CheckOutcome(
        ok,
        f"{len(specs.specs)} specs {'match' if ok else 'do not match'} the batch's points",
        {"samples": len(specs.specs)},
    )


def _rollouts_file(cfg: ExperimentConfig, part: PartitionId) -> Path:
    return layout_of(cfg).rollouts(part)


def _features_file(cfg: ExperimentConfig, part: PartitionId) -> Path:
    return layout_of(cfg).features(part)


def _check_features_schema(cfg: ExperimentConfig, part: PartitionId) -> CheckOutcome:
    fcfg = features_config(cfg)
    reg = FeatureRegistry.from_config(fcfg)
    expected = {c: reg.get_feature_names(c) for c in reg.categories}
    try:
        with H.open_read(_rollouts_file(cfg, part), root=layout_of(cfg).root) as f:
            channels = int(f["outputs/fields"].shape[3])
    except Exception as exc:
        return CheckOutcome(False, f"cannot read the partition's rollouts: {exc}", {})
    summary = summary_names(reg, fcfg.aggregation, channels)
    return file_checks.features_schema(_features_file(cfg, part), expected, summary, features_config_hash(fcfg))


_MAX_DIVERGED = file_checks.DEFAULT_MAX_DIVERGED_FRACTION
_MAX_FEATURE_NAN = file_checks.DEFAULT_MAX_FEATURE_NAN_FRACTION


def _check_render(cfg: ExperimentConfig, part: PartitionId) -> CheckOutcome:
    if not cfg.renders.enabled:
        return CheckOutcome(True, "renders.enabled is false: nothing to check", {})
    try:
        rec = read_render_record(layout_of(cfg), part)
    except Exception as exc:  # DatasetError
        return CheckOutcome(False, str(exc), {})
    return CheckOutcome(True, f"video and poster present ({rec['stats'].get('frames')} frames)", {})


def _pinned(
    fn: Callable[[ExperimentConfig, PartitionId | None], StageResult],
) -> Callable[[ExperimentConfig, PartitionId | None], StageResult]:
    """``fn`` run under ``simulation.cpu_threads`` torch CPU threads (the numbers depend on the count)."""

    @functools.wraps(fn)
    def run(cfg: ExperimentConfig, part: PartitionId | None) -> StageResult:
        with torch_threads(cfg.simulation.cpu_threads):
            return fn(cfg, part)

    return run


# ----------------------------------------------------------------------------- the table

STAGES: tuple[Stage, ...] = (
    Stage(
        name="sobol_parameters",
        run=_pinned(_run_sobol),
        inputs=(),
        outputs=("points",),
        hash_of="points",
        kinds=frozenset({"python", "json"}),
        description="The batch's slice of the experiment's global scrambled Sobol point set, with the whole "
        "set's quality metrics (centred L2 discrepancy, max |pairwise correlation|): points/batch_BBBB.json.",
        checks=(
            CheckSpec(
                "sobol_quality",
                _check_sobol,
                False,
                "warn",
                "Global Sobol set: centred L2 discrepancy and max |pairwise correlation| below "
                "sampling.validation thresholds (WARN).",
            ),
        ),
    ),
    Stage(
        name="operator_specs",
        run=_pinned(_run_specs),
        inputs=("sobol_parameters",),
        outputs=("specs",),
        hash_of="specs",
        kinds=frozenset({"python", "json"}),
        description="One JSON operator spec per sample: every knob value, IC type and parameters, and the seeds "
        "that rebuild the sample alone: specs/batch_BBBB.json.",
        checks=(
            CheckSpec(
                "specs_match_points",
                _check_specs,
                True,
                "error",
                "The specs file holds one spec per point of the batch, made from the same points.",
            ),
        ),
    ),
    Stage(
        name="rollouts_hdf5",
        run=_pinned(_run_rollouts),
        inputs=("sobol_parameters", "operator_specs"),
        outputs=("rollouts",),
        hash_of="rollouts",
        pool="gpu",
        kinds=frozenset({"pytorch", "hdf5"}),
        description="Rollouts of the batch's operators at the partition's grid size: M realizations x T steps "
        "each, written atomically to one chunked HDF5 file per partition.",
        checks=(
            CheckSpec(
                "rollouts_schema",
                lambda cfg, p: file_checks.rollout_schema(_rollouts_file(cfg, p)),
                True,
                "error",
                "The partition file passes validate_structure (schema, groups, shapes, metadata).",
            ),
            CheckSpec(
                "rollouts_finite",
                lambda cfg, p: file_checks.rollout_finiteness(_rollouts_file(cfg, p)),
                True,
                "error",
                "Initial conditions finite; trajectory frames finite except at/after a flagged diverged_step.",
            ),
            CheckSpec(
                "rollouts_divergence",
                lambda cfg, p: file_checks.rollout_divergence(_rollouts_file(cfg, p), _MAX_DIVERGED),
                False,
                "warn",
                f"Fraction of diverged realizations in the partition at most {_MAX_DIVERGED:g} (WARN).",
            ),
        ),
    ),
    Stage(
        name="sdf_features",
        run=_pinned(_run_features),
        inputs=("rollouts_hdf5",),
        outputs=("features",),
        hash_of="features",
        pool="gpu",
        group="features",
        kinds=frozenset({"pytorch", "hdf5"}),
        description="SDF summary features of the partition's rollouts (spatial, spectral, cross-channel, temporal, "
        "causality, drift, nonlinear, operator sensitivity; per timestep, per trajectory and per sample), written "
        "to their own HDF5 file per partition. Re-extracted automatically when the features config changes.",
        enabled=lambda cfg: cfg.features.extract,
        checks=(
            CheckSpec(
                "features_schema",
                _check_features_schema,
                True,
                "error",
                "The feature file holds exactly the current registry: names and widths per category, summary "
                "columns, features config hash.",
            ),
            CheckSpec(
                "features_nan",
                lambda cfg, p: file_checks.features_nan(_features_file(cfg, p), _MAX_FEATURE_NAN),
                True,
                "error",
                f"Non-finite (NaN or Inf) fraction of unmasked features of never-diverged realizations at most "
                f"{_MAX_FEATURE_NAN:g}.",
            ),
        ),
    ),
    Stage(
        name="renders",
        run=_pinned(_run_renders),
        inputs=("sdf_features",),
        outputs=("renders",),
        hash_of="renders",
        group="renders",
        kinds=frozenset({"pytorch", "mp4"}),
        description="Preview of the partition: its first renders.n_operators operators (rows) x realizations and "
        "aggregates over all M realizations (columns), as an H.264 MP4 (or GIF) with a poster PNG and a JSON "
        "record, under <output_dir>/renders/grid_GGGG/batch_BBBB.*",
        enabled=lambda cfg: cfg.features.extract and cfg.renders.enabled,
        checks=(
            CheckSpec(
                "renders_files",
                _check_render,
                False,
                "warn",
                "The render record names a well-formed video and poster (WARN).",
            ),
        ),
    ),
    Stage(
        name="dataset_index",
        run=_pinned(_run_index),
        inputs=("rollouts_hdf5", "sdf_features"),
        outputs=("index", "splits"),
        hash_of="rollouts",
        partitioned=False,
        kinds=frozenset({"hdf5"}),
        description="The whole dataset as one HDF5 file in the seed's layout: virtual datasets over every partition "
        "file (no data copied), smaller grids zero-padded in the centre, plus the features of every partition when "
        "all are current, and the table of the files it reads (stale when any changes: rebuilt automatically); "
        "and splits.json, the train / valid / test (/ ood) samples by operator from the splits config.",
    ),
    Stage(
        name="dataset_stats",
        run=_pinned(_run_stats),
        inputs=("dataset_index",),
        outputs=("stats",),
        hash_of="rollouts",
        partitioned=False,
        kinds=frozenset({"json"}),
        description="Normalisation statistics of the train split per grid size and channel (mean, std, rms, min, "
        "max, quantiles; of the fields and of one-step deltas; diverged frames excluded, float64): stats.json, "
        "which TrajectoryDataset(normalize=True) uses.",
    ),
    Stage(
        name="dataset_card",
        run=_pinned(_run_card),
        inputs=("dataset_stats",),
        outputs=("card",),
        hash_of="rollouts",
        partitioned=False,
        kinds=frozenset({"markdown"}),
        description="The dataset card README.md (and card/*.png) generated from the files: what generated the data, "
        "counts, IC / policy / noise histograms, divergence rates, splits, statistics, features and how to load it.",
    ),
)


def stage(name: str) -> Stage:
    """The row called ``name``.

    Raises:
        KeyError: no such stage (the message lists them).
    """
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r}; stages: {', '.join(stage_names())}")


def stage_names(*, partitioned: bool | None = None) -> list[str]:
    """Stage names in table (dependency) order."""
    return [s.name for s in STAGES if partitioned is None or s.partitioned == partitioned]


def enabled_stages(cfg: ExperimentConfig, *, partitioned: bool | None = True) -> list[Stage]:
    """The stages ``spinlock generate`` runs under ``cfg``."""
    return [s for s in STAGES if s.enabled(cfg) and (partitioned is None or s.partitioned == partitioned)]


def stages_markdown() -> str:
    """Markdown table of :data:`STAGES` (what ``spinlock stages --format markdown`` prints; in the README)."""
    lines = [
        "| stage | reads | writes | checks (blocking in bold) | pool | per partition |",
        "|---|---|---|---|---|---|",
    ]
    for s in STAGES:
        checks = ", ".join(f"**{c.name}**" if c.blocking else c.name for c in s.checks) or "-"
        lines.append(
            f"| `{s.name}` | {', '.join(s.inputs) or '-'} | {', '.join(s.outputs)} | {checks} | {s.pool or '-'} | "
            f"{'yes' if s.partitioned else 'no'} |"
        )
    return "\n".join(lines) + "\n"
