"""Partitioned asset checks: each one calls a pure :mod:`spinlock_core.checks` function.

| check | asset | severity on failure | blocking |
|---|---|---|---|
| ``sobol_quality`` | sobol_parameters | WARN | no |
| ``rollouts_schema`` | rollouts_hdf5 | ERROR | yes |
| ``rollouts_finite`` | rollouts_hdf5 | ERROR | yes |
| ``rollouts_divergence`` | rollouts_hdf5 | WARN | no |
| ``features_schema`` | sdf_features | ERROR | yes |
| ``features_nan`` | sdf_features | ERROR | yes |

A blocking check failing with ERROR fails the run and skips downstream assets
(``sdf_features``, ``dataset_index``, ``renders``), so a bad partition file never enters the index.
``features_schema`` compares the feature file with the current registry (names and widths per
category, summary columns, config hash); ``features_nan`` caps the NaN fraction of unmasked
features of never-diverged realizations (``max_feature_nan_fraction``, default 0). The divergence cap is
``build_checks(..., max_diverged_fraction=...)``, default
:data:`spinlock_core.checks.DEFAULT_MAX_DIVERGED_FRACTION` (0.5, inclusive).
The rollout checks read the partition file at ``pipeline.partition_path(cfg, batch, grid)``.
"""

import warnings

import dagster as dg
import h5py

from spinlock_assets.partitions import split_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core import checks as C
from spinlock_core import pipeline
from spinlock_core.features import FeatureRegistry, features_config_hash, summary_names

CHECK_NAMES = (
    "sobol_quality",
    "rollouts_schema",
    "rollouts_finite",
    "rollouts_divergence",
    "features_schema",
    "features_nan",
)


def _result(outcome: C.CheckOutcome, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=bool(outcome.passed),
        severity=severity,
        description=outcome.description,
        metadata={
            k: (dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v) for k, v in outcome.metadata.items()
        },
    )


def _file_of(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig, where):
    """The file ``where(cfg, batch, grid)`` of the check's partition (rollouts or features)."""
    batch, grid = split_key(context.partition_key)
    return where(spinlock.load(), batch, grid)


def _find(assets: list[dg.AssetsDefinition], name: str) -> dg.AssetsDefinition:
    for a in assets:
        if dg.AssetKey(name) in a.keys:
            return a
    raise ValueError(f"assets must include {name!r}, got {[k.to_user_string() for a in assets for k in a.keys]}")


def build_checks(
    assets: list[dg.AssetsDefinition],
    partitions_def: dg.PartitionsDefinition,
    *,
    max_diverged_fraction: float = C.DEFAULT_MAX_DIVERGED_FRACTION,
    max_feature_nan_fraction: float = C.DEFAULT_MAX_FEATURE_NAN_FRACTION,
) -> list[dg.AssetChecksDefinition]:
    """The asset checks of ``sobol_parameters``, ``rollouts_hdf5`` and ``sdf_features`` (if in ``assets``).

    Raises:
        ValueError: if an asset is missing or ``max_diverged_fraction`` is not in [0, 1].
    """
    if not 0.0 <= float(max_diverged_fraction) <= 1.0:
        raise ValueError(f"max_diverged_fraction must be in [0, 1], got {max_diverged_fraction}")
    sobol, rollouts = _find(assets, "sobol_parameters"), _find(assets, "rollouts_hdf5")
    with warnings.catch_warnings():
        # partitions_def on a check is a Dagster preview feature, used deliberately (1.13.27 pinned)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        checks = _build(sobol, rollouts, partitions_def, float(max_diverged_fraction))
        if any(dg.AssetKey("sdf_features") in a.keys for a in assets):
            checks += _build_features(_find(assets, "sdf_features"), partitions_def, float(max_feature_nan_fraction))
        return checks


def _build(
    sobol: dg.AssetsDefinition,
    rollouts: dg.AssetsDefinition,
    partitions_def: dg.PartitionsDefinition,
    max_diverged_fraction: float,
) -> list[dg.AssetChecksDefinition]:
    def _path(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig):
        return _file_of(context, spinlock, pipeline.partition_path)

    @dg.asset_check(
        asset=sobol,
        partitions_def=partitions_def,
        blocking=False,
        description="Global Sobol set: centred L2 discrepancy and max |pairwise correlation| below "
        "sampling.validation thresholds (WARN).",
    )
    def sobol_quality(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig) -> dg.AssetCheckResult:
        cfg = spinlock.load()
        batch, _ = split_key(context.partition_key)
        v = cfg.sampling.validation
        out = C.sobol_quality(pipeline.sobol_stage(cfg, batch).metrics, v.max_discrepancy, v.max_pairwise_correlation)
        return _result(out, dg.AssetCheckSeverity.WARN)

    @dg.asset_check(
        asset=rollouts,
        partitions_def=partitions_def,
        blocking=True,
        description="The partition file passes validate_structure (schema, groups, shapes, metadata).",
    )
    def rollouts_schema(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig) -> dg.AssetCheckResult:
        return _result(C.rollout_schema(_path(context, spinlock)), dg.AssetCheckSeverity.ERROR)

    @dg.asset_check(
        asset=rollouts,
        partitions_def=partitions_def,
        blocking=True,
        description="Initial conditions finite; trajectory frames finite except at/after a flagged diverged_step.",
    )
    def rollouts_finite(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig) -> dg.AssetCheckResult:
        return _result(C.rollout_finiteness(_path(context, spinlock)), dg.AssetCheckSeverity.ERROR)

    @dg.asset_check(
        asset=rollouts,
        partitions_def=partitions_def,
        blocking=False,
        description=f"Fraction of diverged realizations in the partition at most {max_diverged_fraction:g} (WARN).",
    )
    def rollouts_divergence(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig) -> dg.AssetCheckResult:
        return _result(
            C.rollout_divergence(_path(context, spinlock), max_diverged_fraction), dg.AssetCheckSeverity.WARN
        )

    return [sobol_quality, rollouts_schema, rollouts_finite, rollouts_divergence]


def _build_features(
    features: dg.AssetsDefinition, partitions_def: dg.PartitionsDefinition, max_nan: float
) -> list[dg.AssetChecksDefinition]:
    def _fpath(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig):
        return _file_of(context, spinlock, pipeline.features_file)

    @dg.asset_check(
        asset=features,
        partitions_def=partitions_def,
        blocking=True,
        description="The feature file holds exactly the current registry: names and widths per category, "
        "summary columns, features config hash.",
    )
    def features_schema(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig) -> dg.AssetCheckResult:
        cfg = spinlock.load()
        fcfg = pipeline.features_config(cfg)
        reg = FeatureRegistry.from_config(fcfg)
        expected = {c: reg.get_feature_names(c) for c in reg.categories}
        path = _fpath(context, spinlock)
        with h5py.File(_file_of(context, spinlock, pipeline.partition_path), "r") as f:
            channels = int(f["outputs/fields"].shape[3])
        summary = summary_names(reg, fcfg.aggregation, channels)
        return _result(
            C.features_schema(path, expected, summary, features_config_hash(fcfg)), dg.AssetCheckSeverity.ERROR
        )

    @dg.asset_check(
        asset=features,
        partitions_def=partitions_def,
        blocking=True,
        description=f"NaN fraction of unmasked features of never-diverged realizations at most {max_nan:g}.",
    )
    def features_nan(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig) -> dg.AssetCheckResult:
        return _result(C.features_nan(_fpath(context, spinlock), max_nan), dg.AssetCheckSeverity.ERROR)

    return [features_schema, features_nan]
