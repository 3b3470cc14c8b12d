"""Validate a whole dataset (or one file of it): every file kind, their hashes, completeness, freshness.

:func:`validate_files` never raises on bad data and never tracebacks: every problem is one line
naming the file, collected in a :class:`~spinlock_core.dataset.report.ValidationReport`.

For a dataset directory it checks:

* the manifest (``dataset.json``): readable; every expected partition has its rollouts (and
  features / renders when the manifest expects them);
* points and specs files: readable, for the right batch, made from the manifest's config;
* every rollouts file (:func:`~.validate_rollouts.validate_structure`), made from the
  manifest's data hash, and all of them agreeing (M, T, C, parameters, no duplicate samples);
* every feature file (:func:`~.validate_features.validate_feature_file`), extracted from its
  partition as it is now and under the current features config (``features_hash``, default
  the manifest's): a partition whose features come from another features config is an error;
* render records and their video and poster files;
* the index: current (no file changed, gone or added since it was built) and well formed;
* temporary files of writers that are gone (a warning; :func:`spinlock_core.files.remove_stale_temps`).

Seed replay and parameter ranges need the compute code: :func:`spinlock_core.stages.verify`
adds them on top of this.
"""

from __future__ import annotations

from pathlib import Path

from spinlock_core.files import TMP_SUFFIX, pid_alive, temp_owner_pid

from . import hdf5 as H
from . import schema as S
from .batch_files import read_points, read_specs
from .codec import decode_attr
from .errors import DatasetError
from .index import _check_agreement, _read_part, index_problems
from .layout import DatasetLayout, PartitionId
from .manifest import Manifest, read_manifest
from .renders import read_render_record
from .report import MAX_LISTED, ValidationReport
from .validate_features import validate_feature_file
from .validate_rollouts import validate_structure

__all__ = ["validate_files"]


def _keys(parts: list[PartitionId]) -> str:
    return ", ".join(p.key for p in parts[:MAX_LISTED]) + (
        f" and {len(parts) - MAX_LISTED} more" if len(parts) > MAX_LISTED else ""
    )


def _attrs(path: Path, root: Path, *names: str) -> list[str]:
    """Root attributes ``names`` of one file, read in one open ("" when absent)."""
    with H.open_read(path, root=root) as f:
        return [str(decode_attr(f.attrs.get(n, ""))) for n in names]


def validate_files(path: str | Path, *, features_hash: str | None = None, check_data: bool = True) -> ValidationReport:
    """Validate a dataset directory, or one rollouts, index or feature file (module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _validate_dir(DatasetLayout(path), features_hash, check_data)
    report = ValidationReport(str(path))
    if not path.is_file():
        report.errors.append(f"{path}: no such dataset file or directory")
        return report
    try:
        with H.open_read(path, root=path.parent if path.name == "index.h5" else None) as f:
            kind = decode_attr(f.attrs.get("kind", ""))
    except DatasetError as exc:
        report.errors.append(str(exc))
        return report
    except Exception as exc:
        report.errors.append(f"{path}: cannot be read ({type(exc).__name__}: {exc})")
        return report
    sub = validate_feature_file(path) if kind == S.FEATURES_KIND else validate_structure(path, check_data=check_data)
    report.merge(sub, path.name)
    return report


def _validate_dir(layout: DatasetLayout, features_hash: str | None, check_data: bool) -> ValidationReport:
    root = layout.root
    report = ValidationReport(str(root))
    try:
        manifest = read_manifest(layout)
    except DatasetError as exc:
        report.errors.append(str(exc))
        manifest = None
    if manifest is None and not report.errors:
        report.warnings.append("no dataset.json manifest (made by an older Spinlock): completeness not checked")
    rollouts = layout.rollout_partitions()
    if not rollouts:
        report.errors.append(f"{root}: holds no rollouts (partitions/grid_*/batch_*.h5)")
        return report
    if manifest is not None:
        _check_completeness(layout, manifest, rollouts, report)
        _check_batch_files(layout, manifest, report)
    want_features = features_hash or (manifest.hashes.get("features") if manifest else None) or None
    made_from = _check_rollouts(layout, manifest, rollouts, report, check_data)
    _check_features(layout, want_features, made_from, report)
    if manifest is not None and "renders" in manifest.stages:
        _check_renders(layout, manifest, report)
    _check_index(layout, report, check_data)
    stale = [p for p in root.rglob(f"*{TMP_SUFFIX}") if (pid := temp_owner_pid(p)) is not None and not pid_alive(pid)]
    if stale:
        names = ", ".join(p.relative_to(root).as_posix() for p in stale[:MAX_LISTED])
        report.warnings.append(
            f"{len(stale)} temporary files of writers that are gone: {names} (spinlock runs --clear removes them)"
        )
    return report


def _check_completeness(
    layout: DatasetLayout, manifest: Manifest, rollouts: list[PartitionId], report: ValidationReport
) -> None:
    expected = manifest.expected_partitions()
    have = set(rollouts)
    missing = [p for p in expected if p not in have]
    extra = [p for p in rollouts if p not in set(expected)]
    if missing:
        report.errors.append(
            f"{len(missing)} of {len(expected)} expected partitions have no rollouts: {_keys(missing)}"
        )
    else:
        report.checks.append(f"all {len(expected)} expected partitions have rollouts")
    if extra:
        report.warnings.append(f"{len(extra)} partitions outside the manifest's batches x grid sizes: {_keys(extra)}")
    if "features" in manifest.stages:
        have_features = set(layout.feature_partitions())
        miss = [p for p in expected if p not in have_features]
        if miss:
            report.errors.append(f"{len(miss)} of {len(expected)} expected partitions have no features: {_keys(miss)}")


def _check_batch_files(layout: DatasetLayout, manifest: Manifest, report: ValidationReport) -> None:
    before = len(report.errors)
    for b in range(manifest.num_batches):
        for kind, read in (("points", read_points), ("specs", read_specs)):
            path = layout.points(b) if kind == "points" else layout.specs(b)
            if not path.exists():
                continue  # made by an older Spinlock; the rollouts carry the specs too
            try:
                rec = read(layout, b)
            except DatasetError as exc:
                report.errors.append(str(exc))
                continue
            want = manifest.hashes.get(kind)
            if want and rec.hash != want:
                report.errors.append(
                    f"{path}: made from config hash {rec.hash}, the dataset's is {want} "
                    f"(stale: re-materialize {'sobol_parameters' if kind == 'points' else 'operator_specs'})"
                )
    if len(report.errors) == before:
        report.checks.append("points and specs files readable and from the dataset's config")


def _check_rollouts(
    layout: DatasetLayout,
    manifest: Manifest | None,
    rollouts: list[PartitionId],
    report: ValidationReport,
    check_data: bool,
) -> dict[PartitionId, str]:
    """Validate every rollouts file; returns the config hash of each readable one."""
    files = [layout.rollouts(p) for p in rollouts]
    readable = []
    made_from: dict[PartitionId, str] = {}
    for p, path in zip(rollouts, files):
        sub = validate_structure(path, check_data=check_data, root=layout.root)
        report.merge(sub, path.relative_to(layout.root).as_posix())
        if sub.ok:
            readable.append(path)
            (got,) = _attrs(path, layout.root, "config_hash")
            made_from[p] = got
            if manifest is not None and manifest.data_hash and got != manifest.data_hash:
                report.errors.append(
                    f"{path.relative_to(layout.root)}: made from config hash {got}, the dataset's "
                    f"is {manifest.data_hash} (stale: re-materialize rollouts_hdf5 {p.key})"
                )
    if len(readable) > 1:
        try:
            _check_agreement([_read_part(p, layout.root) for p in readable])
            report.checks.append(
                f"{len(readable)} partitions agree on M, Ts, C, parameters and config; no duplicate samples"
            )
        except (ValueError, KeyError, OSError, DatasetError) as exc:
            report.errors.append(f"partitions inconsistent: {exc}")
    return made_from


def _check_features(
    layout: DatasetLayout, want_hash: str | None, made_from: dict[PartitionId, str], report: ValidationReport
) -> None:
    parts = layout.feature_partitions()
    if not parts:
        return
    stale: list[PartitionId] = []
    for p in parts:
        path = layout.features(p)
        sub = validate_feature_file(path, root=layout.root)
        report.merge(sub, path.relative_to(layout.root).as_posix())
        if not sub.ok:
            continue
        src = layout.rollouts(p)
        if not src.is_file():
            report.errors.append(f"{path.relative_to(layout.root)}: its partition has no rollouts file")
            continue
        if p not in made_from:
            continue  # its rollouts file is damaged (reported above)
        try:
            source_hash, features_hash = _attrs(path, layout.root, "source_config_hash", "features_config_hash")
        except DatasetError as exc:
            report.errors.append(str(exc))
            continue
        if source_hash != made_from[p]:
            report.errors.append(
                f"{path.relative_to(layout.root)}: extracted from other rollouts than "
                f"{src.relative_to(layout.root)} holds now (re-extract)"
            )
        if want_hash and features_hash != want_hash:
            stale.append(p)
    if stale:
        report.errors.append(
            f"{len(stale)} partitions have features from another features config than {want_hash}: "
            f"{_keys(stale)} (spinlock extract-features --dataset {layout.root} re-extracts them)"
        )
    elif want_hash:
        report.checks.append(f"features of {len(parts)} partitions from the current features config {want_hash}")


def _check_renders(layout: DatasetLayout, manifest: Manifest, report: ValidationReport) -> None:
    before = len(report.errors)
    for p in manifest.expected_partitions():
        if not layout.render_record(p).exists():
            report.errors.append(f"{layout.render_record(p).relative_to(layout.root)}: no render of {p.key}")
            continue
        try:
            rec = read_render_record(layout, p)
        except DatasetError as exc:
            report.errors.append(str(exc))
            continue
        if rec.get("rollouts_hash") != manifest.data_hash:
            report.errors.append(f"render of {p.key} is from other rollouts (re-materialize renders)")
    if len(report.errors) == before:
        report.checks.append("render records, videos and posters present and well formed")


def _check_index(layout: DatasetLayout, report: ValidationReport, check_data: bool) -> None:
    if not layout.index.is_file():
        report.warnings.append("no index.h5 (spinlock index --dataset DIR builds it)")
        return
    problems = index_problems(layout)
    if problems:
        report.errors.append(f"index.h5 is stale: {'; '.join(problems[:3])} (spinlock index --dataset {layout.root})")
        return
    report.checks.append("index.h5 is current (every file it reads unchanged, none added)")
    sub = validate_structure(layout.index, check_data=False, root=layout.root)
    report.merge(sub, "index.h5")
