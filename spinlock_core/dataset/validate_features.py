"""Structural validation of one feature file (``features/grid_G/batch_B.h5``).

Checks the root attributes (kind, schema version, counts, hashes), the coordinates and copied
metadata, the registry JSON, every category's array (names, axes, width, masked columns,
leading size), the summary table, and that values are finite except in masked columns and
in realizations that diverged (NaN or Inf elsewhere is an error). Every problem is a line of
the report; nothing raises on bad data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import hdf5 as H
from . import schema as S
from .codec import decode_attr
from .errors import DatasetError
from .features import StoredRegistry
from .layout import dataset_root_of
from .quality import features_nan
from .report import ValidationReport

__all__ = ["validate_feature_file"]

_ROOT_ATTRS = (
    "kind",
    "schema_version",
    "num_samples",
    "num_realizations",
    "num_time_steps",
    "num_channels",
    "grid_size",
    "source_config_hash",
    "features_config_hash",
)


def validate_feature_file(path: str | Path, *, root: Path | None = None) -> ValidationReport:
    """Validate the feature file at ``path`` (see module docstring)."""
    path = Path(path)
    report = ValidationReport(str(path))
    try:
        f = H.open_read(path, root=root if root is not None else dataset_root_of(path))
    except DatasetError as exc:
        report.errors.append(exc.problem)
        return report
    try:
        with f:
            _check(f, report)
    except Exception as exc:  # damaged beyond what the checks expect
        report.errors.append(f"cannot be read ({type(exc).__name__}: {exc})")
    if not report.errors:
        out = features_nan(path)
        (report.checks if out.passed else report.errors).append(f"values: {out.description}")
    return report


def _check(f: H.File, report: ValidationReport) -> None:
    attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
    if attrs.get("kind") != S.FEATURES_KIND:
        report.errors.append(f"root attribute kind is {attrs.get('kind')!r}, not {S.FEATURES_KIND!r}")
        return
    if str(attrs.get("schema_version", "")).split(".")[0] != S.FEATURES_SCHEMA_VERSION.split(".")[0]:
        report.errors.append(f"schema_version {attrs.get('schema_version')!r} is not {S.FEATURES_SCHEMA_VERSION}")
        return
    missing = [a for a in _ROOT_ATTRS if a not in attrs]
    if missing:
        report.errors.append(f"missing root attributes {missing}")
        return
    n, m, ts, c = (int(attrs[k]) for k in ("num_samples", "num_realizations", "num_time_steps", "num_channels"))
    sizes = {S.DIM_SAMPLE: n, S.DIM_REALIZATION: m, S.DIM_TIME: ts, S.DIM_CHANNEL: c}
    for dim, size in sizes.items():
        d = f.get(dim)
        if not H.is_dataset(d) or d.shape != (size,):
            report.errors.append(f"coordinate /{dim} missing or not of length {size}")
    for p in S.COPIED_METADATA:
        d = f.get(p)
        if not H.is_dataset(d) or d.shape[0] != n:
            report.errors.append(f"/{p} missing or not of length {n}")
    if report.errors:
        return
    if not np.array_equal(f[S.DIM_SAMPLE][()], f[S.META.SAMPLE_INDEX][()]):
        report.errors.append("coordinate /sample differs from /metadata/sample_index")
    sdf = f.get(S.SDF)
    if not H.is_group(sdf):
        report.errors.append(f"missing group /{S.SDF}")
        return
    sdf_attrs = {k: decode_attr(v) for k, v in sdf.attrs.items()}
    if sdf_attrs.get("config_hash") != attrs["features_config_hash"]:
        report.errors.append("/features/sdf config_hash differs from the root features_config_hash")
    try:
        registry = StoredRegistry(sdf_attrs["feature_registry"])
        json.loads(sdf_attrs["config"])
    except (KeyError, TypeError, ValueError) as exc:
        report.errors.append(f"/features/sdf registry or config unreadable ({type(exc).__name__}: {exc})")
        return
    widths = 0
    for cat in registry.categories:
        d = sdf.get(f"{cat}/features")
        if not H.is_dataset(d):
            report.errors.append(f"missing /{S.SDF}/{cat}/features")
            continue
        try:
            names = json.loads(d.attrs["names"])
            axes = json.loads(d.attrs["axes"])
            masked = json.loads(d.attrs["masked"])
        except (KeyError, TypeError, ValueError):
            report.errors.append(f"/{S.SDF}/{cat}/features: attributes names, axes, masked must be JSON")
            continue
        if names != registry.get_feature_names(cat):
            report.errors.append(f"{cat}: stored names differ from the file's registry")
        if not set(masked) <= set(names):
            report.errors.append(f"{cat}: masked features {sorted(set(masked) - set(names))[:3]} are not columns")
        want = (*(sizes.get(a, -1) for a in axes[:-1]), len(names))
        if axes[-1:] != [S.DIM_FEATURE] or axes[:1] != [S.DIM_SAMPLE] or tuple(d.shape) != want:
            report.errors.append(f"{cat}: shape {d.shape} does not match axes {axes} {want}")
        widths += len(names)
    if widths != registry.num_features:
        report.errors.append(f"categories hold {widths} features, the registry lists {registry.num_features}")
    agg = f.get(S.SDF_AGGREGATED)
    if not H.is_dataset(agg) or agg.ndim != 2 or agg.shape[0] != n:
        report.errors.append(f"/{S.SDF_AGGREGATED} missing or not [{n}, F]")
    elif len(json.loads(agg.attrs["names"])) != agg.shape[1]:
        report.errors.append("summary table names do not match its width")
    if not report.errors:
        report.checks.append(
            f"{registry.num_features} features in {len(registry.categories)} categories, "
            f"{n} samples, layout and registry consistent"
        )
