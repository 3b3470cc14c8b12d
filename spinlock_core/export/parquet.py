"""The feature table as Apache Parquet: one row per (grid size, sample), for pandas, polars, DuckDB, Spark.

Columns, in this order:

=========================  ========  ==================================================
column                     type      what
=========================  ========  ==================================================
``grid_size``              int64     grid of the row
``sample_index``           int64     global sample (operator) index
``split``                  string    train / valid / test / ood (``splits.json``)
``ic_type`` ...            string    ``ic_type``, ``ic_base_type``, ``policy``, ``noise_regime``
``diverged_realizations``  int64     realizations that diverged
``param.<name>``           float64   the operator's unit-cube Sobol coordinate ``<name>``
summary feature names      float32   ``features/sdf/aggregated`` columns (NaN = undefined)
=========================  ========  ==================================================

Rows are ordered by ``(grid_size, sample_index)``, as in the index. The file's key-value
metadata ``spinlock`` (JSON) records the experiment name, the rollouts and features config
hashes, the splits hash and the column groups, so a reader can tell which data it came from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spinlock_core.dataset import DatasetError, DatasetLayout, HDF5FeatureReader, open_dataset, read_splits
from spinlock_core.files import commit_tmp, remove_quietly, tmp_path_for

from .errors import ExportError

__all__ = ["ParquetExport", "feature_frame", "export_parquet", "PARAM_PREFIX", "METADATA_COLUMNS"]

#: Prefix of the parameter columns (``param.<Sobol dimension name>``).
PARAM_PREFIX = "param."
#: Identity and metadata columns, before the parameters and the features.
METADATA_COLUMNS: tuple[str, ...] = (
    "grid_size",
    "sample_index",
    "split",
    "ic_type",
    "ic_base_type",
    "policy",
    "noise_regime",
    "diverged_realizations",
)


@dataclass(frozen=True)
class ParquetExport:
    """What :func:`export_parquet` wrote."""

    path: Path
    rows: int
    feature_columns: int
    param_columns: int
    bytes: int
    seconds: float

    def line(self) -> str:
        return (
            f"{self.path}: {self.rows} rows x ({len(METADATA_COLUMNS)} metadata + {self.param_columns} parameter + "
            f"{self.feature_columns} feature columns), {self.bytes / 1e6:.2f} MB in {self.seconds:.1f} s"
        )


def _check_grids(grid_sizes: Sequence[int] | None, have: Sequence[int]) -> list[int]:
    if grid_sizes is None:
        return list(have)
    bad = [g for g in grid_sizes if g not in have]
    if bad:
        raise ExportError(f"--grid-size {bad[0]}: the dataset has grid sizes {list(have)}")
    return sorted(set(int(g) for g in grid_sizes))


def feature_frame(dataset: str | Path, *, grid_sizes: Sequence[int] | None = None) -> Any:
    """The feature table of a dataset directory as a pandas DataFrame (columns: module docstring).

    Raises:
        ExportError: a grid size the dataset does not have.
        DatasetError: no (current) feature files, no splits file, or unreadable data.
    """
    root = Path(dataset)
    with HDF5FeatureReader(root) as fr:
        grids = _check_grids(grid_sizes, [int(g) for g in fr.grids])
        frame = fr.to_dataframe()
        hashes = {"features_config_hash": fr.config_hash}
    with open_dataset(root) as r:
        key = {(int(g), int(s)): i for i, (g, s) in enumerate(zip(r.grid_sizes.tolist(), r.sample_index.tolist()))}
        rows = np.asarray([key.get((int(g), int(s)), -1) for g, s in zip(frame["grid_size"], frame["sample_index"])])
        if (rows < 0).any():
            i = int(np.flatnonzero(rows < 0)[0])
            raise DatasetError(
                root,
                f"features of grid {int(frame['grid_size'][i])} sample {int(frame['sample_index'][i])} have no rollouts",
                f"re-extract the features: spinlock extract-features --dataset {root}",
            )
        params = r.params(rows) if rows.size else np.zeros((0, len(r.param_names)))
        param_names = list(r.param_names)
        hashes["config_hash"] = str(r.attrs.get("config_hash", ""))
        hashes["experiment"] = str(r.config.get("metadata", {}).get("name", ""))
    splits = read_splits(DatasetLayout(root))
    split = np.full(len(frame), "", dtype=object)
    for name, members in splits.samples.items():
        split[np.isin(frame["sample_index"].to_numpy(), members)] = name
    frame.insert(2, "split", split.astype(str))
    for col in ("ic_type", "ic_base_type", "policy", "noise_regime"):
        if col in frame:
            frame[col] = [v.decode() if isinstance(v, bytes) else str(v) for v in frame[col]]
    at = (
        frame.columns.get_loc("diverged_realizations") + 1
        if "diverged_realizations" in frame
        else len(METADATA_COLUMNS)
    )
    for j, name in enumerate(param_names):
        frame.insert(at + j, f"{PARAM_PREFIX}{name}", params[:, j].astype(np.float64))
    head = [c for c in METADATA_COLUMNS if c in frame] + [f"{PARAM_PREFIX}{n}" for n in param_names]
    frame = frame[head + [c for c in frame.columns if c not in head]]
    frame = frame[frame["grid_size"].isin(grids)].reset_index(drop=True)
    frame["grid_size"] = frame["grid_size"].astype(np.int64)
    frame["sample_index"] = frame["sample_index"].astype(np.int64)
    frame.attrs["spinlock"] = {
        **hashes,
        "splits_hash": splits.hash,
        "metadata_columns": [c for c in METADATA_COLUMNS if c in frame],
        "param_columns": [f"{PARAM_PREFIX}{n}" for n in param_names],
    }
    return frame


def export_parquet(
    dataset: str | Path, output: str | Path, *, grid_sizes: Sequence[int] | None = None, overwrite: bool = False
) -> ParquetExport:
    """Write :func:`feature_frame` to ``output`` (a ``.parquet`` file) atomically.

    Raises:
        ExportError: ``output`` exists (without ``overwrite``), is a directory, or its folder
            cannot be created; a grid size the dataset does not have.
        DatasetError: see :func:`feature_frame`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    out = Path(output)
    if out.is_dir():
        raise ExportError(f"--output {out}: is a directory; name the .parquet file to write")
    if out.exists() and not overwrite:
        raise ExportError(f"--output {out}: exists; pass --overwrite to replace it")
    if out.parent.exists() and not out.parent.is_dir():
        raise ExportError(f"--output {out}: {out.parent} is not a directory")
    frame = feature_frame(dataset, grid_sizes=grid_sizes)
    meta = dict(frame.attrs["spinlock"])
    feature_cols = [c for c in frame.columns if c not in meta["metadata_columns"] and c not in meta["param_columns"]]
    meta["feature_columns"] = len(feature_cols)
    frame.attrs = {}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"spinlock": json.dumps(meta).encode()})
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"--output {out}: cannot create {out.parent} ({exc.strerror})") from None
    tmp = tmp_path_for(out)
    try:
        pq.write_table(table, tmp, compression="zstd")
        commit_tmp(tmp, out)
    except BaseException:
        remove_quietly(tmp)
        raise
    return ParquetExport(
        path=out,
        rows=len(frame),
        feature_columns=len(feature_cols),
        param_columns=len(meta["param_columns"]),
        bytes=out.stat().st_size,
        seconds=time.perf_counter() - t0,
    )
