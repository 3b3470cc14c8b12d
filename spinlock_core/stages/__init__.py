"""Stages: each composes compute packages and the dataset contract into the files of one step.

``stage(config, partition) -> files``, pure apart from the files written atomically. Assets, the
CLI and tests call stages; nothing calls past them. :data:`STAGES` (:mod:`.table`) lists them
once, with what each reads, writes and checks:

``sobol_parameters`` (:mod:`.sobol`) → ``operator_specs`` (:mod:`.specs`) → ``rollouts_hdf5``
(:mod:`.rollouts`) → ``sdf_features`` (:mod:`.features`) → ``renders`` (:mod:`.renders`), and
``dataset_index`` over all of them. :func:`validate_dataset` (:mod:`.validate`) checks a
dataset, replaying samples from their seeds (:mod:`.replay`).
"""

from spinlock_core.stages.context import (
    PROJECT_ROOT,
    StageHashSet,
    StaleInput,
    features_config,
    hashes_of,
    layout_of,
    library_versions,
    manifest_of,
    partition,
)
from spinlock_core.stages.features import (
    FeatureScan,
    FeatureSummary,
    extract_partition,
    features_stage,
    scan_feature_partitions,
    stale_feature_partitions,
    stored_features_hash,
)
from spinlock_core.stages.renders import (
    FORMATS,
    PreviewResult,
    RenderOptions,
    RenderSummary,
    render_dataset,
    render_preview_stage,
    resolve_outputs,
)
from spinlock_core.stages.replay import replay_operators, replay_sample
from spinlock_core.stages.rollouts import RolloutSummary, rollout_stage
from spinlock_core.stages.sobol import compute_points, global_points, sobol_quality, sobol_stage
from spinlock_core.stages.specs import build_specs, load_batch, load_points, specs_stage
from spinlock_core.stages.table import (
    STAGES,
    CheckSpec,
    Markdown,
    PathValue,
    Stage,
    StageResult,
    enabled_stages,
    stage,
    stage_names,
    stages_markdown,
)
from spinlock_core.stages.verify import validate_dataset

__all__ = [
    "PROJECT_ROOT",
    "STAGES",
    "Stage",
    "StageResult",
    "CheckSpec",
    "PathValue",
    "Markdown",
    "stage",
    "stage_names",
    "stages_markdown",
    "enabled_stages",
    "StageHashSet",
    "StaleInput",
    "layout_of",
    "partition",
    "features_config",
    "hashes_of",
    "manifest_of",
    "library_versions",
    "global_points",
    "compute_points",
    "sobol_stage",
    "sobol_quality",
    "build_specs",
    "specs_stage",
    "load_points",
    "load_batch",
    "RolloutSummary",
    "rollout_stage",
    "FeatureSummary",
    "features_stage",
    "extract_partition",
    "stored_features_hash",
    "stale_feature_partitions",
    "scan_feature_partitions",
    "FeatureScan",
    "FORMATS",
    "RenderOptions",
    "RenderSummary",
    "PreviewResult",
    "resolve_outputs",
    "render_dataset",
    "render_preview_stage",
    "replay_operators",
    "replay_sample",
    "validate_dataset",
]
