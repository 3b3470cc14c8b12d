"""SDF (summary descriptor) features: registry, extraction, aggregation, storage, reading.

* :mod:`.spec` — :class:`FeatureSpec` (name, family, granularity, definition, units, convention,
  enabling flag, channel/frame requirements);
* :mod:`.families` — one module per family (spatial, spectral, laplacian_energy, cross_channel,
  temporal, causality, invariant_drift, nonlinear, operator_sensitivity); the single source of
  truth for what exists;
* :mod:`.config` — the features YAML (:func:`load_features_config`, :func:`features_config_hash`);
* :mod:`.registry` — :class:`FeatureRegistry`: the enabled features in storage order;
* :mod:`.extract` — :class:`FeatureExtractor`: batched torch extraction on CPU or CUDA;
* :mod:`.aggregate` — per-sample summary rows (temporal, channel, realization reductions);
* :mod:`.storage` / :mod:`.partition` — feature files per partition, written atomically;
* :mod:`.reader` — :class:`HDF5FeatureReader` (arrays by category or name, pandas DataFrame).
"""

from spinlock_core.features.aggregate import summarize, summary_names
from spinlock_core.features.config import (
    FEATURES_VERSION,
    features_config_hash,
    features_config_model,
    load_features_config,
)
from spinlock_core.features.extract import FeatureBlock, FeatureExtractor
from spinlock_core.features.families import FAMILY_ORDER, FAMILY_REGISTRY, families
from spinlock_core.features.partition import FeatureSummary, extract_partition
from spinlock_core.features.reader import HDF5FeatureReader, find_feature_files
from spinlock_core.features.registry import FeatureRegistry, catalogue_all
from spinlock_core.features.spec import GRANULARITIES, FeatureSpec
from spinlock_core.features.storage import features_path_for, write_feature_views

__all__ = [
    "FEATURES_VERSION",
    "FAMILY_ORDER",
    "FAMILY_REGISTRY",
    "GRANULARITIES",
    "FeatureSpec",
    "FeatureRegistry",
    "FeatureBlock",
    "FeatureExtractor",
    "FeatureSummary",
    "HDF5FeatureReader",
    "families",
    "catalogue_all",
    "load_features_config",
    "features_config_model",
    "features_config_hash",
    "extract_partition",
    "features_path_for",
    "find_feature_files",
    "summarize",
    "summary_names",
    "write_feature_views",
]
