"""The HDF5 backend: the only module of Spinlock that imports h5py.

Everything else of the dataset package reaches HDF5 through this module:

* :func:`open_read` opens a file read-only and refuses, before any data is read, a file whose
  external links or virtual-dataset sources point outside its dataset directory (or are
  absolute), and an environment (``HDF5_VDS_PREFIX``, ``HDF5_EXT_PREFIX``) that would redirect
  them; a file that is not HDF5 (empty, truncated, another format) becomes a
  :class:`~spinlock_core.dataset.errors.DatasetError`;
* :func:`create_atomic` writes a file under a temporary name and renames it when complete
  (:mod:`spinlock_core.files`);
* coordinate helpers attach HDF5 dimension scales named after the schema's dims, so
  ``xarray.open_dataset(path, engine="h5netcdf")`` shows named dimensions;
* the h5py names other modules use (``File``, ``Dataset``, ``Group``, ``VirtualLayout``,
  ``VirtualSource``, :data:`STR_DTYPE`, :func:`is_string_dtype`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from h5py import Dataset, ExternalLink, File, Group, VirtualLayout, VirtualSource

from spinlock_core.files import commit_tmp, remove_quietly, tmp_path_for

from . import schema as S
from .errors import DatasetError

__all__ = [
    "File",
    "Dataset",
    "Group",
    "VirtualLayout",
    "VirtualSource",
    "ExternalLink",
    "STR_DTYPE",
    "H5PY_VERSION",
    "is_string_dtype",
    "is_dataset",
    "is_group",
    "open_read",
    "foreign_references",
    "create_atomic",
    "pixel_centres",
    "create_coordinates",
    "attach_dims",
    "relabel_dims",
    "is_scale",
    "create_label_scale",
    "finish_variable",
]

STR_DTYPE = h5py.string_dtype("utf-8")
H5PY_VERSION: str = h5py.__version__
_REDIRECTING_ENV = ("HDF5_VDS_PREFIX", "HDF5_EXT_PREFIX")


def is_string_dtype(dtype: np.dtype) -> bool:
    """True for HDF5 variable- or fixed-length string dtypes."""
    return h5py.check_string_dtype(dtype) is not None


def is_dataset(obj: object) -> bool:
    return isinstance(obj, h5py.Dataset)


def is_group(obj: object) -> bool:
    return isinstance(obj, h5py.Group)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def foreign_references(f: h5py.File, root: Path) -> list[str]:
    """External links and virtual sources of ``f`` that are absolute or resolve outside ``root``.

    A virtual source named ``"."`` is the file itself. Relative names resolve against the
    directory of ``f`` (as HDF5 does when no prefix variable is set).
    """
    base = Path(f.filename).parent
    problems: list[str] = []
    links: list[str] = []
    f.visit_links(links.append)
    for name in links:
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"/{name} is an external link to {link.filename}:{link.path}")
            continue
        obj = f.get(name)
        if isinstance(obj, h5py.Dataset) and obj.is_virtual:
            for src in {vs.file_name for vs in obj.virtual_sources()}:
                if src == ".":
                    continue
                if os.path.isabs(src):
                    problems.append(f"/{name} reads the absolute path {src}")
                elif not _inside(base / src, root):
                    problems.append(f"/{name} reads {src}, outside the dataset directory {root}")
    return problems


def open_read(path: str | Path, *, root: str | Path | None = None, cache_bytes: int | None = None) -> h5py.File:
    """Open ``path`` read-only; refuse references outside ``root`` (default: the file's directory).

    ``cache_bytes`` sizes HDF5's per-dataset chunk cache (h5py's default, 1 MiB, when None): a
    reader taking several slices of one compressed chunk then decompresses it once.

    Raises:
        DatasetError: not a readable HDF5 file, or it points outside ``root``, or an
            ``HDF5_*_PREFIX`` variable would redirect its links.
    """
    path = Path(path)
    for var in _REDIRECTING_ENV:
        if os.environ.get(var):
            raise DatasetError(
                path, f"{var} is set ({os.environ[var]!r}) and would redirect where HDF5 reads from", f"unset {var}"
            )
    if not path.is_file():
        raise DatasetError(path, "no such file")
    try:
        f = h5py.File(path, "r") if cache_bytes is None else h5py.File(path, "r", rdcc_nbytes=int(cache_bytes))
    except OSError as exc:
        size = path.stat().st_size if path.exists() else 0
        what = "empty file" if size == 0 else f"not a readable HDF5 file ({exc.__class__.__name__}: {exc})"
        raise DatasetError(path, what) from None
    try:
        problems = foreign_references(f, Path(root) if root is not None else path.parent)
    except Exception as exc:  # a damaged link table
        f.close()
        raise DatasetError(path, f"cannot list its links ({type(exc).__name__}: {exc})") from None
    if problems:
        f.close()
        raise DatasetError(
            path,
            "refers outside the dataset: " + "; ".join(problems[:3]),
            "Spinlock files never do; rebuild it with Spinlock or remove it",
        )
    return f


@contextlib.contextmanager
def create_atomic(path: str | Path) -> Iterator[h5py.File]:
    """An HDF5 file written at a temporary name and renamed onto ``path`` when the block succeeds.

    An exception inside the block deletes the temporary file; ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        commit_tmp(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def pixel_centres(g: int) -> np.ndarray:
    """``(i + 0.5) / g`` for i in 0..g-1: pixel centres of a g-grid on the unit square."""
    return (np.arange(g, dtype=np.float64) + 0.5) / g


_COORD_SPECS = {c.name: c for c in S.COORDINATES}


def create_coordinates(
    group: h5py.Group, values: Mapping[str, Any], *, yx_units: str = "1", yx_description: str = ""
) -> dict[str, h5py.Dataset]:
    """One dimension scale per entry of ``values`` (name = dim name) in ``group``.

    Dims of the rollout schema take their dtype and description from :data:`schema.COORDINATES`;
    other names (feature files' dims) are stored as int64.
    """
    scales: dict[str, h5py.Dataset] = {}
    for name, vals in values.items():
        spec = _COORD_SPECS.get(name)
        if spec is not None and spec.dtype == "str":
            d = group.create_dataset(name, data=np.asarray(list(vals), dtype=object), dtype=STR_DTYPE)
        else:
            d = group.create_dataset(name, data=np.asarray(vals, dtype=spec.dtype if spec else np.int64))
        d.make_scale(name)
        d.attrs["long_name"] = name
        if name in (S.DIM_Y, S.DIM_X):
            d.attrs["units"] = yx_units
            d.attrs["description"] = yx_description
        elif spec is not None:
            d.attrs["description"] = spec.description
            if spec.units:
                d.attrs["units"] = spec.units
        scales[name] = d
    return scales


def attach_dims(dset: h5py.Dataset, dims: Sequence[str], scales: Mapping[str, h5py.Dataset]) -> None:
    """Attach the scale of each named dim to the matching axis of ``dset``."""
    for axis, name in enumerate(dims):
        dset.dims[axis].attach_scale(scales[name])


def relabel_dims(dset: h5py.Dataset, dims: Sequence[str], scales: Mapping[str, h5py.Dataset]) -> None:
    """Attach ``scales`` to ``dset`` after dropping any dimension list it carries.

    For datasets copied from another file: their ``DIMENSION_LIST`` references point into the
    source file and are meaningless (h5netcdf fails on them).
    """
    if "DIMENSION_LIST" in dset.attrs:
        del dset.attrs["DIMENSION_LIST"]
    attach_dims(dset, dims, scales)


def is_scale(dset: object) -> bool:
    """Whether ``dset`` is an HDF5 dimension scale (a coordinate variable)."""
    return isinstance(dset, h5py.Dataset) and h5py.h5ds.is_scale(dset.id)


def create_label_scale(group: h5py.Group, name: str, labels: Sequence[str]) -> h5py.Dataset:
    """A string dimension scale ``group/name`` holding ``labels`` (e.g. the feature names of a table)."""
    d = group.create_dataset(name, data=np.asarray(list(labels), dtype=object), dtype=STR_DTYPE)
    d.make_scale(name)
    d.attrs["long_name"] = name
    return d


def finish_variable(root: h5py.File | h5py.Group, path: str, scales: Mapping[str, h5py.Dataset]) -> None:
    """Attach scales, CF attributes (long_name, units, description) and the root alias of ``path``."""
    spec = S.dataset_spec(path)
    dset = root[path]
    dset.attrs["long_name"] = spec.alias or spec.path.rsplit("/", 1)[-1]
    dset.attrs["description"] = spec.description
    if spec.units:
        dset.attrs["units"] = spec.units
    attach_dims(dset, spec.dims, scales)
    if spec.alias:
        root[spec.alias] = dset
