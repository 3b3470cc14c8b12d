"""The asset graph: sobol_parameters → operator_specs → rollouts_hdf5 → sdf_features → dataset_index.

Each asset is thin: one ``spinlock_core.pipeline`` call, metadata out. Partitioned assets
share the (batch × grid size) partitions, so the default identity mapping connects them.
"""

from collections import Counter

import dagster as dg

from spinlock_assets.partitions import split_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core import pipeline
from spinlock_core.operators import OperatorSpec

GROUP = "generation"
CODE_VERSION = "1"


def _counts_md(title: str, values) -> dg.MetadataValue:
    rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(Counter(values).items()))
    return dg.MetadataValue.md(f"| {title} | count |\n|---|---|\n{rows}")


def by_name(assets: list[dg.AssetsDefinition], *names: str) -> list[dg.AssetsDefinition]:
    """The assets called ``names`` (in that order) among ``assets``."""
    found = {k.to_user_string(): a for a in assets for k in a.keys}
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"no assets {missing}; have {sorted(found)}")
    return [found[n] for n in names]


def build_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The generation and feature assets over ``partitions_def`` (renders: :func:`build_graph`)."""

    @dg.asset(
        partitions_def=partitions_def,
        group_name=GROUP,
        kinds={"python", "numpy"},
        code_version=CODE_VERSION,
        description="The batch's slice of the experiment's global scrambled Sobol point set, "
        "with the whole set's quality metrics (centred L2 discrepancy, max |pairwise correlation|).",
    )
    def sobol_parameters(context: dg.AssetExecutionContext, spinlock: SpinlockConfig) -> dg.Output:
        batch, _ = split_key(context.partition_key)
        sob = pipeline.sobol_stage(spinlock.load(), batch)
        m = sob.metrics
        return dg.Output(
            sob,
            metadata={
                "samples": dg.MetadataValue.int(sob.stop - sob.start),
                "first_sample": dg.MetadataValue.int(sob.start),
                "dimensions": dg.MetadataValue.int(len(sob.names)),
                "parameters": dg.MetadataValue.json(sob.names),
                "discrepancy": dg.MetadataValue.float(float(m.get("centered_l2_discrepancy", 0.0))),
                "max_abs_correlation": dg.MetadataValue.float(float(m.get("max_abs_correlation", 0.0))),
                "scramble_method": dg.MetadataValue.text(str(m.get("scramble_method"))),
            },
        )

    @dg.asset(
        partitions_def=partitions_def,
        group_name=GROUP,
        kinds={"python", "json"},
        code_version=CODE_VERSION,
        description="One JSON operator spec per sample: every knob value, IC type and parameters, "
        "and the seeds that rebuild the sample alone.",
    )
    def operator_specs(
        context: dg.AssetExecutionContext, sobol_parameters: pipeline.SobolBatch, spinlock: SpinlockConfig
    ) -> dg.Output:
        specs = pipeline.specs_stage(spinlock.load(), sobol_parameters)
        return dg.Output(
            [s.to_dict() for s in specs],
            metadata={
                "samples": dg.MetadataValue.int(len(specs)),
                "ic_types": _counts_md("IC type", [s.ic_type for s in specs]),
                "policies": _counts_md("policy", [s.params["update_policy"] for s in specs]),
                "noise_regimes": _counts_md("noise regime", [s.noise_regime for s in specs]),
            },
        )

    @dg.asset(
        partitions_def=partitions_def,
        group_name=GROUP,
        kinds={"pytorch", "hdf5"},
        pool="gpu",
        code_version=CODE_VERSION,
        description="Rollouts of the batch's operators at the partition's grid size: M realizations × "
        "T steps each, written atomically to one chunked HDF5 file per partition.",
    )
    def rollouts_hdf5(
        context: dg.AssetExecutionContext,
        sobol_parameters: pipeline.SobolBatch,
        operator_specs: list,
        spinlock: SpinlockConfig,
    ) -> dg.MaterializeResult:
        _, grid = split_key(context.partition_key)
        cfg = spinlock.load()
        specs = [OperatorSpec.from_dict(d) for d in operator_specs]
        s = pipeline.rollout_stage(cfg, sobol_parameters, specs, grid, partition_key=str(context.partition_key))
        context.log.info(f"{s.num_samples} samples at {grid}² in {s.seconds:.2f} s on {s.device}: {s.path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(s.path),
                "shape": dg.MetadataValue.json(s.shape),
                "bytes": dg.MetadataValue.int(s.bytes),
                "seconds": dg.MetadataValue.float(s.seconds),
                "samples_per_s": dg.MetadataValue.float(s.samples_per_s),
                "trajectories_per_s": dg.MetadataValue.float(s.trajectories_per_s),
                "sensitivity_seconds": dg.MetadataValue.float(s.sensitivity_seconds),
                "diverged_realizations": dg.MetadataValue.int(s.diverged_realizations),
                "diverged_operators": dg.MetadataValue.int(s.diverged_operators),
                "discrepancy": dg.MetadataValue.float(
                    float(sobol_parameters.metrics.get("centered_l2_discrepancy", 0.0))
                ),
                "device": dg.MetadataValue.text(s.device),
                "precision": dg.MetadataValue.text(s.precision),
                "config_hash": dg.MetadataValue.text(cfg.config_hash()),
            }
        )

    @dg.asset(
        partitions_def=partitions_def,
        deps=[rollouts_hdf5],
        group_name="features",
        kinds={"pytorch", "hdf5"},
        pool="gpu",
        code_version=CODE_VERSION,
        description="SDF summary features of the partition's rollouts (spatial, spectral, cross-channel, "
        "temporal, causality, drift, nonlinear, operator sensitivity; per timestep, per trajectory and "
        "per sample), written to their own HDF5 file per partition. Re-extracted automatically when "
        "the features config changes (stale_features_sensor, nightly schedule).",
    )
    def sdf_features(context: dg.AssetExecutionContext, spinlock: SpinlockConfig) -> dg.MaterializeResult:
        batch, grid = split_key(context.partition_key)
        s = pipeline.features_stage(spinlock.load(), batch, grid, partition_key=str(context.partition_key))
        context.log.info(
            f"{s.num_features} features of {s.num_samples} samples in {s.seconds:.2f} s on {s.device}: {s.path}"
        )
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(s.path),
                "feature_count": dg.MetadataValue.int(s.num_features),
                "summary_columns": dg.MetadataValue.int(s.num_summary_columns),
                "masked_features": dg.MetadataValue.int(len(s.masked)),
                "nan_fraction": dg.MetadataValue.float(s.nan_fraction),
                "seconds": dg.MetadataValue.float(s.seconds),
                "samples_per_s": dg.MetadataValue.float(s.samples_per_s),
                "feature_cfg_hash": dg.MetadataValue.text(s.config_hash),
                "device": dg.MetadataValue.text(s.device),
            }
        )

    @dg.asset(
        deps=[rollouts_hdf5, sdf_features],
        group_name=GROUP,
        kinds={"hdf5"},
        code_version=CODE_VERSION,
        description="The whole dataset as one HDF5 file in the seed's layout: virtual datasets over "
        "every partition file (no data copied), smaller grids zero-padded in the centre, plus the "
        "features of every partition when all are current.",
    )
    def dataset_index(context: dg.AssetExecutionContext, spinlock: SpinlockConfig) -> dg.MaterializeResult:
        cfg = spinlock.load()
        path = pipeline.index_stage(cfg)
        files = pipeline.list_partition_files(cfg.dataset.output_dir)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "partition_files": dg.MetadataValue.int(len(files)),
                "bytes": dg.MetadataValue.int(path.stat().st_size),
            }
        )

    return [sobol_parameters, operator_specs, rollouts_hdf5, sdf_features, dataset_index]
