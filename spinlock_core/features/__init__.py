"""SDF (summary descriptor) features: registry, extraction, aggregation (compute only, no files).

* :mod:`.spec` — :class:`FeatureSpec` (name, family, granularity, definition, units, convention,
  enabling flag, channel/frame requirements);
* :mod:`.families` — one module per family (spatial, spectral, laplacian_energy, cross_channel,
  temporal, causality, invariant_drift, nonlinear, operator_sensitivity); the single source of
  truth for what exists;
* :mod:`.config` — the features YAML (:func:`load_features_config`, :func:`features_config_hash`);
* :mod:`.registry` — :class:`FeatureRegistry`: the enabled features in storage order;
* :mod:`.extract` — :class:`FeatureExtractor`: batched torch extraction on CPU or CUDA;
* :mod:`.aggregate` — per-sample summary rows (temporal, channel, realization reductions).

Feature files (writer, reader, index views) are part of the dataset contract
(:mod:`spinlock_core.dataset`); extracting a partition file is a stage
(:func:`spinlock_core.stages.features_stage`).
"""

from spinlock_core.features.aggregate import summarize, summary_names
from spinlock_core.features.config import (
    FEATURES_VERSION,
    FeaturesConfig,
    features_config_hash,
    features_config_model,
    load_features_config,
)
from spinlock_core.features.extract import FeatureBlock, FeatureExtractor
from spinlock_core.features.families import FAMILY_ORDER, FAMILY_REGISTRY, families
from spinlock_core.features.registry import FeatureRegistry, catalogue_all
from spinlock_core.features.spec import GRANULARITIES, GRANULARITY_AXES, FeatureSpec

__all__ = [
    "FEATURES_VERSION",
    "FeaturesConfig",
    "FAMILY_ORDER",
    "FAMILY_REGISTRY",
    "GRANULARITIES",
    "GRANULARITY_AXES",
    "FeatureSpec",
    "FeatureRegistry",
    "FeatureBlock",
    "FeatureExtractor",
    "families",
    "catalogue_all",
    "load_features_config",
    "features_config_model",
    "features_config_hash",
    "summarize",
    "summary_names",
]
