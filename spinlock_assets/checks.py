"""Asset checks, generated from the stage table: each calls a pure check of the stage's files.

A blocking check failing with ERROR fails the run and skips every downstream asset
(``sdf_features``, ``renders``, ``dataset_index``), so a bad partition file never enters the
index. The checks run on every path that materializes an asset: ``spinlock generate``, the UI,
backfills and sensors (they are part of each asset's selection).
"""

import warnings

import dagster as dg

from spinlock_assets.assets import by_name
from spinlock_assets.partitions import part_of
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.dataset import CheckOutcome
from spinlock_core.stages import STAGES, CheckSpec

__all__ = ["CHECK_NAMES", "build_checks", "to_result"]

CHECK_NAMES: tuple[str, ...] = tuple(c.name for row in STAGES for c in row.checks)
_SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def to_result(outcome: CheckOutcome, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    """The Dagster check result of a pure check outcome."""
    return dg.AssetCheckResult(
        passed=bool(outcome.passed),
        severity=severity,
        description=outcome.description,
        metadata={k: _value(v) for k, v in outcome.metadata.items()},
    )


def _value(v: object) -> dg.MetadataValue:
    if isinstance(v, bool):
        return dg.MetadataValue.bool(v)
    if isinstance(v, int):
        return dg.MetadataValue.int(v)
    if isinstance(v, float):
        return dg.MetadataValue.float(v)
    if isinstance(v, str):
        return dg.MetadataValue.text(v)
    return dg.MetadataValue.json(v)  # type: ignore[arg-type]  # lists and dicts of plain values


def _check(
    asset: dg.AssetsDefinition, spec: CheckSpec, partitions_def: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=spec.name,
        partitions_def=partitions_def,
        blocking=spec.blocking,
        description=spec.description,
    )
    def _file_check(context: dg.AssetCheckExecutionContext, spinlock: SpinlockConfig) -> dg.AssetCheckResult:
        try:
            outcome = spec.fn(spinlock.load(), part_of(context.partition_key))
        except Exception as exc:  # a check never crashes on bad data: it fails and says why
            outcome = CheckOutcome(False, f"{type(exc).__name__}: {exc}", {})
        return to_result(outcome, _SEVERITY[spec.severity])

    return _file_check


def build_checks(
    assets: list[dg.AssetsDefinition], partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetChecksDefinition]:
    """Every check of the stage table, on its stage's asset among ``assets``."""
    out = []
    with warnings.catch_warnings():
        # partitions_def on a check is a Dagster preview feature, used deliberately (1.13.27 pinned)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        for row in STAGES:
            if not row.checks:
                continue
            (asset,) = by_name(assets, row.name)
            out += [_check(asset, spec, partitions_def) for spec in row.checks]
    return out
