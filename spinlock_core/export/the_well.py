"""Export a Spinlock dataset in the_well's HDF5 layout, so ``the_well`` (``the-well==1.2.0``) loads and trains on it.

Reads through :mod:`spinlock_core.dataset` (``open_dataset``, ``read_splits``, ``read_stats``);
writes, for every exported grid size ``G``::

    OUT/spinlock_export.json                what was exported (also marks OUT as replaceable)
    OUT/grid_GGGG/stats.yaml                mean, std, rms and their *_delta per field (train split)
    OUT/grid_GGGG/data/<split>/batch_BBBB.h5   the split's trajectories from Spinlock partition (B, G)

so ``WellDataset(path="OUT/grid_GGGG", well_split_name="train")`` reads one resolution.

Conventions:

* **Trajectory** = one (sample, realization) of Spinlock: an operator's stochastic rollout.
  Every trajectory of a file has the same length (every stored frame, frame 0 = the initial
  condition): realizations that diverged before the last stored frame are **dropped** (the_well
  has no mask; its formatter would turn NaN frames into zeros), counted in ``WellExport.dropped``.
* **Splits** come from ``splits.json`` (by operator: all realizations of a sample share its
  split). ``train``, ``valid`` and ``test`` always exist; ``ood`` (the held-out samples of
  ``splits.holdout``) is exported as its own folder ``data/ood`` when the dataset has any, never
  mixed into test (it is a different distribution). the_well's trainer ignores it; load it with
  ``WellDataset(path, well_split_name="ood")``. A split with no usable trajectory holds one file
  ``empty.h5`` with ``n_trajectories = 0`` (the_well loads it as an empty dataset).
* **Fields**: Spinlock's ``C`` channels become the ``t0_fields`` ``channel_0 .. channel_{C-1}``
  (Spinlock records no channel names; the numbers are its ``channel`` coordinate), each
  ``[n_trajectories, T, G, G]`` float32; ``t1_fields`` and ``t2_fields`` are empty.
* **Scalars**: the operator's unit-cube Sobol point, one constant (not time-varying) scalar per
  parameter, named as in ``/parameters/params`` (float64 ``[n_trajectories]``): the_well hands them
  to models as ``constant_scalars``. They are not repeated as constant fields, so the benchmark
  models (which ignore scalars) see only the channels.
* **Axes** in array order ``spatial_dims = ["y", "x"]`` (Spinlock stores ``[..., y, x]``); the
  coordinates are the partition's pixel centres ``(i + 0.5) / G`` on the unit square. ``time`` is
  the stored step numbers (float32): Spinlock has no shared physical time step.
* **Boundaries**: the domain is periodic (circular convolutions, periodic ICs), so each axis has
  a ``periodic`` boundary whose mask is True at both ends (an all-False mask would read as OPEN).
* **Statistics**: ``stats.yaml`` holds, per field, ``stats.json``'s train-split values at that
  grid size: ``mean``, ``std``, ``rms`` of the fields and ``mean_delta``, ``std_delta``,
  ``rms_delta`` of the one-step deltas ``x[t+1] - x[t]`` between consecutive stored frames (what
  the_well's normalisations use). Spinlock computed them over every frame before a divergence,
  so they include the early frames of realizations dropped here.
* Each file also holds a ``spinlock`` group (ignored by the_well): ``sample_index`` and
  ``realization`` of every trajectory. Files are uncompressed (the_well reads a few frames per item).

The export is written under ``OUT.<pid>.<token>.tmp`` beside ``OUT`` and renamed onto it when
complete; with ``overwrite``, an existing export is replaced only then. Data are streamed one
realization at a time. Bad arguments raise :class:`~spinlock_core.export.ExportError`, bad or
missing data :class:`~spinlock_core.dataset.DatasetError`, before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from spinlock_core.config import SPLIT_NAMES
from spinlock_core.dataset import (
    DatasetError,
    DatasetLayout,
    DatasetReader,
    DatasetStats,
    open_dataset,
    read_splits,
    read_stats,
)
from spinlock_core.dataset import hdf5 as H
from spinlock_core.dataset import schema as S
from spinlock_core.files import fsync_dir, pid_alive, temp_owner_pid, tmp_path_for, writable_dir_problem

from .errors import ExportError

__all__ = ["MARKER_FILE", "WellExport", "export_the_well", "exported_realizations", "field_names"]

#: The file in OUT saying what was exported (an existing OUT is replaced only when it has one).
MARKER_FILE = "spinlock_export.json"
MARKER_FORMAT = "spinlock-the-well-export/1"
#: stats.yaml keys -> (stats.json kind, ChannelStats attribute).
STATS_KEYS: dict[str, tuple[str, str]] = {
    f"{a}{suffix}": (kind, a) for kind, suffix in (("fields", ""), ("deltas", "_delta")) for a in ("mean", "std", "rms")
}
SPATIAL_DIMS = ("y", "x")


@dataclass(frozen=True)
class WellExport:
    """What :func:`export_the_well` wrote.

    Attributes:
        output: the export directory ``OUT``.
        dataset_name: the root attribute ``dataset_name`` of every file.
        grid_sizes: the exported grid sizes (one ``OUT/grid_GGGG`` each).
        files: ``files[G][split]``: the HDF5 files of that split (final paths under ``OUT``).
        trajectories: ``trajectories[G][split]``: (sample, realization) pairs written.
        dropped: ``dropped[G][split]``: diverged realizations left out.
        fields: the ``t0_fields`` names (one per Spinlock channel).
        scalars: the constant scalar names (the Sobol parameters).
        seconds: wall time of the export.
    """

    output: Path
    dataset_name: str
    grid_sizes: tuple[int, ...]
    files: dict[int, dict[str, tuple[Path, ...]]]
    trajectories: dict[int, dict[str, int]]
    dropped: dict[int, dict[str, int]]
    fields: tuple[str, ...]
    scalars: tuple[str, ...]
    seconds: float


def field_names(num_channels: int) -> list[str]:
    """``["channel_0", ..., "channel_{C-1}"]``: the_well field names of Spinlock's channels."""
    return [f"channel_{c}" for c in range(num_channels)]


def exported_realizations(diverged_step: np.ndarray, time_steps: np.ndarray) -> np.ndarray:
    """Which realizations are exported: bool ``[n, M]`` from ``diverged_step [n, M]`` (-1 = never).

    A realization is kept when every stored frame (``time_steps [Ts]``, step numbers) comes
    before its divergence: it never diverged, or diverged after the last stored frame.
    """
    div = np.asarray(diverged_step, dtype=np.int64)
    usable = np.where(div < 0, time_steps.size, np.searchsorted(time_steps, div, side="left"))
    return np.asarray(usable == time_steps.size)


@dataclass(frozen=True)
class _FilePlan:
    """One output file: ``n`` trajectories read from one source partition file (None: an empty file)."""

    name: str
    source: Path | None
    local: np.ndarray  # [n] int64: row of the sample inside the source file
    realization: np.ndarray  # [n] int64
    sample_index: np.ndarray  # [n] int64: global sample index
    params: np.ndarray  # [n, P] float64: unit-cube Sobol point of the sample

    @classmethod
    def empty(cls, num_params: int) -> _FilePlan:
        none = np.zeros(0, dtype=np.int64)
        return cls("empty.h5", None, none, none, none, np.zeros((0, num_params)))


# ----------------------------------------------------------------------------- arguments


def _check_output(root: Path, out: Path, overwrite: bool) -> None:
    root_r, out_r = root.resolve(), out.resolve()
    if out_r == root_r or root_r in out_r.parents:
        raise ExportError(f"output: {out} is inside the dataset {root}; choose a directory outside it")
    if out_r in root_r.parents:
        raise ExportError(f"output: {out} contains the dataset {root}; choose a directory outside it")
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ExportError(f"output: {out} is a file; give a directory path (it is created)")
        if not overwrite:
            raise ExportError(f"output: {out} exists; pass overwrite=True (--overwrite) to replace it")
        if any(out.iterdir()) and not _is_export(out):
            raise ExportError(
                f"output: {out} exists and is not a the_well export of Spinlock (no {MARKER_FILE}); "
                "refusing to replace it: give a new or empty directory"
            )
    parent = out_r.parent
    while not parent.exists():
        parent = parent.parent
    problem = writable_dir_problem(parent)
    if problem is not None:
        raise ExportError(f"output: cannot create {out}: {problem}")


def _is_export(out: Path) -> bool:
    try:
        return bool(json.loads((out / MARKER_FILE).read_text(encoding="utf-8")).get("format") == MARKER_FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


def _check_grids(grid_sizes: Sequence[int] | None, have: list[int]) -> tuple[int, ...]:
    allowed = ", ".join(str(g) for g in have)
    if grid_sizes is None:
        return tuple(have)
    if isinstance(grid_sizes, (str, bytes, int)) or not isinstance(grid_sizes, Sequence):
        raise ExportError(f"grid_sizes must be a list of grid sizes ({allowed}) or None for all, got {grid_sizes!r}")
    out: list[int] = []
    for g in grid_sizes:
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or int(g) not in have:
            raise ExportError(f"grid_sizes: {g!r} is not a grid size of the dataset (have {allowed})")
        if int(g) not in out:
            out.append(int(g))
    if not out:
        raise ExportError(f"grid_sizes is empty; give one or more of {allowed} (or None for all)")
    return tuple(sorted(out))


def _check_name(name: str | None, reader: DatasetReader, root: Path) -> str:
    if name is None:
        name = str(reader.attrs.get("experiment") or "") or root.resolve().name
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise ExportError(f"dataset_name must be a non-empty printable string, got {name!r}")
    return name


# ----------------------------------------------------------------------------- planning


def _plan_split(
    reader: DatasetReader, layout: DatasetLayout, g: int, wanted: np.ndarray
) -> tuple[list[_FilePlan], int]:
    """The output files of one split at grid ``g`` (one per source partition) and the dropped count."""
    rows = reader.rows_for_grid(g)
    rows = rows[np.isin(reader.sample_index[rows], wanted)]
    if rows.size == 0:
        return [], 0
    files, file_of, local = reader.row_sources(rows)
    m = reader.num_realizations
    diverged = np.asarray(reader.metadata(rows)["diverged_step"], dtype=np.int64).reshape(rows.size, m)
    keep = exported_realizations(diverged, reader.time_steps)
    params = np.asarray(reader.params(rows), dtype=np.float64).reshape(rows.size, -1)
    sample = reader.sample_index[rows]
    plans: list[_FilePlan] = []
    for k, src in enumerate(files):
        j, real = np.nonzero(keep & (file_of == k)[:, None])  # row-major: by sample, then realization
        if j.size == 0:
            continue
        try:
            name = f"batch_{layout.partition_of(src).batch:04d}.h5"
        except ValueError:
            name = f"part_{k:04d}.h5"
        plans.append(_FilePlan(name, src, local[j], real.astype(np.int64), sample[j], params[j]))
    return plans, int((~keep).sum())


def _stats_doc(stats: DatasetStats, layout: DatasetLayout, grids: Sequence[int], names: list[str]) -> dict[int, Any]:
    """``stats.yaml`` of each grid: ``{key: {field: value}}`` for the keys of :data:`STATS_KEYS`."""
    out: dict[int, Any] = {}
    fix = f"recompute them: spinlock index --dataset {layout.root}"
    for g in grids:
        try:
            per_kind = {kind: stats.of(g, kind) for kind in ("fields", "deltas")}
        except ValueError as exc:
            raise DatasetError(layout.stats, str(exc), fix) from None
        doc: dict[str, dict[str, float]] = {}
        for key, (kind, attr) in STATS_KEYS.items():
            vals = [float(getattr(c, attr)) for c in per_kind[kind]]
            if len(vals) != len(names) or not all(math.isfinite(v) for v in vals):
                raise DatasetError(
                    layout.stats, f"grid {g}: {kind} {attr} not finite for all {len(names)} channels", fix
                )
            doc[key] = dict(zip(names, vals, strict=True))
        out[g] = doc
    return out


# ----------------------------------------------------------------------------- writing


def _strs(values: Sequence[str]) -> np.ndarray:
    return np.asarray(list(values), dtype=H.STR_DTYPE)


def _flags(f: Any, *, sample: bool, time_: bool, dims: Sequence[bool] | None = None) -> None:
    f.attrs["sample_varying"] = bool(sample)
    f.attrs["time_varying"] = bool(time_)
    if dims is not None:
        f.attrs["dim_varying"] = np.asarray(list(dims), dtype=bool)


def _write_file(
    path: Path,
    plan: _FilePlan,
    root: Path,
    attrs: dict[str, Any],
    time_steps: np.ndarray,
    grid: int,
    fields: list[str],
    scalars: list[str],
) -> None:
    """One the_well file: ``n`` trajectories of ``plan``, read one realization at a time."""
    n, g = int(plan.local.size), int(grid)
    with H.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        f.attrs["n_trajectories"] = n
        f.attrs["simulation_parameters"] = _strs(scalars)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = _strs(SPATIAL_DIMS)
        _flags(dims.create_dataset("time", data=time_steps.astype(np.float32)), sample=False, time_=True)
        for d in SPATIAL_DIMS:
            centres = H.pixel_centres(g).astype(np.float32)  # what the partitions store: (i + 0.5) / g
            _flags(dims.create_dataset(d, data=centres), sample=False, time_=False)
        bcs = f.create_group("boundary_conditions")
        for d in SPATIAL_DIMS:
            bc = bcs.create_group(f"{d}_periodic")
            bc.attrs["bc_type"] = "periodic"
            bc.attrs["associated_dims"] = _strs([d])
            bc.attrs["associated_fields"] = _strs([])
            _flags(bc, sample=False, time_=False)
            mask = np.zeros(g, dtype=bool)
            mask[[0, -1]] = True
            bc.create_dataset("mask", data=mask)
        sc = f.create_group("scalars")
        sc.attrs["field_names"] = _strs(scalars)
        for p, name in enumerate(scalars):
            _flags(sc.create_dataset(name, data=plan.params[:, p].astype(np.float64)), sample=True, time_=False)
        groups = {order: f.create_group(f"t{order}_fields") for order in range(3)}
        groups[0].attrs["field_names"] = _strs(fields)
        for order in (1, 2):
            groups[order].attrs["field_names"] = _strs([])
        shape = (n, time_steps.size, g, g)
        out = [groups[0].create_dataset(name, shape=shape, dtype=np.float32) for name in fields]
        for d in out:
            _flags(d, sample=True, time_=True, dims=(True, True))
        ident = f.create_group("spinlock")
        ident.create_dataset("sample_index", data=plan.sample_index.astype(np.int64))
        ident.create_dataset("realization", data=plan.realization.astype(np.int64))
        if n == 0 or plan.source is None:
            return
        src = H.open_read(plan.source, root=root)
        try:
            dset = src[S.OUTPUTS_FIELDS]
            for i in range(n):
                try:
                    x = np.asarray(dset[int(plan.local[i]), int(plan.realization[i])], dtype=np.float32)
                except Exception as exc:  # a damaged chunk: one error naming the file
                    raise DatasetError(plan.source, f"cannot read trajectories ({type(exc).__name__}: {exc})") from None
                if not np.isfinite(x).all():
                    raise DatasetError(
                        plan.source,
                        f"sample {int(plan.sample_index[i])} realization {int(plan.realization[i])} has non-finite "
                        "values but no recorded divergence",
                        f"check it: spinlock validate --dataset {root}",
                    )
                for c, d in enumerate(out):
                    d[i] = x[:, c]
        finally:
            src.close()


def _remove_stale(out: Path) -> None:
    """Delete temporary exports of ``out`` (``OUT.<pid>.<token>.tmp``) whose writer is gone."""
    parent = out.parent
    if not parent.is_dir():
        return
    for p in parent.iterdir():
        rest = p.name[len(out.name) :] if p.name.startswith(out.name) else ""
        pid = temp_owner_pid(p) if re.fullmatch(r"\.[0-9]+\.[0-9a-f]{8}\.tmp", rest) else None
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _commit(tmp: Path, out: Path) -> None:
    """Rename the complete ``tmp`` onto ``out``; an existing ``out`` is moved aside first, then deleted."""
    if out.exists():
        old = tmp_path_for(out)
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    fsync_dir(out.parent)


# ----------------------------------------------------------------------------- entry point


def export_the_well(
    dataset_dir: str | Path,
    output: str | Path,
    *,
    grid_sizes: Sequence[int] | None = None,
    overwrite: bool = False,
    dataset_name: str | None = None,
) -> WellExport:
    """Write the_well's layout of the dataset at ``dataset_dir`` to ``output`` (see module docstring).

    Args:
        dataset_dir: a Spinlock dataset directory with current ``splits.json`` and ``stats.json``.
        output: the export directory ``OUT`` (created; must lie outside the dataset).
        grid_sizes: which grid sizes (default: all); one ``OUT/grid_GGGG`` each.
        overwrite: replace an existing export at ``output`` (only one made by this function, or
            an empty directory), once the new one is complete.
        dataset_name: the files' ``dataset_name`` (default: the experiment's name).

    Raises:
        ExportError: a bad argument (grid size, output path, name); nothing is written.
        DatasetError: the dataset, its splits or statistics are missing, stale or unreadable
            (``spinlock index --dataset DIR`` rebuilds splits and statistics).
    """
    start = time.perf_counter()
    root, out = Path(dataset_dir), Path(output)
    if root.exists() and not root.is_dir():
        raise ExportError(f"dataset_dir: {root} is a file; give the dataset directory")
    if not isinstance(overwrite, bool):
        raise ExportError(f"overwrite must be True or False, got {overwrite!r}")
    _check_output(root, out, overwrite)
    layout = DatasetLayout(root)
    with open_dataset(root) as reader:
        name = _check_name(dataset_name, reader, root)
        grids = _check_grids(grid_sizes, list(reader.grids))
        splits = read_splits(layout)
        fields = field_names(reader.num_channels)
        scalars = [str(p) for p in reader.param_names]
        bad = [p for p in scalars if not p or "/" in p or p == "."]
        if bad:
            raise DatasetError(root, f"parameter names {bad} cannot name HDF5 datasets")
        data_hash = str(reader.attrs.get("config_hash", ""))
        stats = _stats_doc(read_stats(layout, splits, data_hash), layout, grids, fields)
        time_steps = np.asarray(reader.time_steps, dtype=np.int64)
        if time_steps.size < 2:
            raise DatasetError(
                root,
                f"stores only the final state (time = {time_steps.tolist()}); the_well needs trajectories",
                "generate with dataset.storage.store_trajectories: true",
            )
        names = [s for s in SPLIT_NAMES if s != "ood" or splits.of("ood").size]
        plans: dict[int, dict[str, list[_FilePlan]]] = {}
        dropped: dict[int, dict[str, int]] = {}
        for g in grids:
            plans[g], dropped[g] = {}, {}
            for s in names:
                plans[g][s], dropped[g][s] = _plan_split(reader, layout, g, splits.of(s))
            if not plans[g]["train"]:
                raise DatasetError(
                    root, f"no train trajectory at grid size {g} that never diverged: nothing to train on"
                )
        base_attrs = {
            "dataset_name": name,
            "grid_type": "cartesian",
            "n_spatial_dims": len(SPATIAL_DIMS),
            "spinlock_config_hash": data_hash,
            "spinlock_splits_hash": splits.hash,
        }
    _remove_stale(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(out)
    files: dict[int, dict[str, tuple[Path, ...]]] = {}
    counts: dict[int, dict[str, int]] = {}
    try:
        tmp.mkdir()
        for g in grids:
            gdir = tmp / f"grid_{g:04d}"
            files[g], counts[g] = {}, {}
            for s, split_plans in plans[g].items():
                ddir = gdir / "data" / s
                ddir.mkdir(parents=True)
                todo = split_plans or [_FilePlan.empty(len(scalars))]
                for plan in todo:
                    attrs = {**base_attrs, "spinlock_split": s, "spinlock_grid_size": g}
                    _write_file(ddir / plan.name, plan, root, attrs, time_steps, g, fields, scalars)
                files[g][s] = tuple(out / gdir.name / "data" / s / p.name for p in todo)
                counts[g][s] = int(sum(p.local.size for p in split_plans))
            (gdir / "stats.yaml").write_text(yaml.safe_dump(stats[g], sort_keys=False), encoding="utf-8")
        marker = {
            "format": MARKER_FORMAT,
            "dataset": str(root.resolve()),
            "dataset_name": name,
            "grid_sizes": list(grids),
            "fields": fields,
            "scalars": scalars,
            "trajectories": {str(g): counts[g] for g in grids},
            "dropped_diverged": {str(g): dropped[g] for g in grids},
            "splits_hash": base_attrs["spinlock_splits_hash"],
            "config_hash": base_attrs["spinlock_config_hash"],
        }
        (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    return WellExport(out, name, grids, files, counts, dropped, tuple(fields), tuple(scalars), seconds)
