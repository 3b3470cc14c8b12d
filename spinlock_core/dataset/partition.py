"""Atomic writer of one partition file (one ``(batch, grid size)`` slice of an experiment).

Layout: see :mod:`spinlock_core.dataset.schema` and ``docs/schema.md``.

Atomicity: everything is written to ``<path>.<pid>.<token>.tmp`` in the target directory; only a
successful :meth:`PartitionWriter.close` (every row of every dataset written) flushes, fsyncs
and ``os.replace``-s it onto ``path``. An exception inside the ``with`` block (or an
incomplete file at close) deletes the tmp file; a killed process leaves at most a ``*.tmp``
file, which readers and the index never take (they only take ``*.h5``). So ``path`` is either
absent, the previous complete file, or the new complete file.

Compression: ``gzip`` trajectory chunks are compressed by this module in a thread pool (zlib
releases the GIL), byte-shuffled first when ``shuffle`` is on exactly like the HDF5 shuffle
filter, and stored with ``write_direct_chunk``; the dataset carries the matching filter
pipeline (shuffle, deflate) so every HDF5 reader decodes it normally. ``lzf`` and ``none`` use
ordinary h5py writes.

Operator sensitivity (optional): with ``sensitivity_names`` the file also holds
``/operator_sensitivity/values [n, F]`` float32 (NaN-filled until written) with attributes
``names``, ``params`` and ``params_hash``, its ``sensitivity_feature`` coordinate and the root
alias ``/sensitivity``; every row must then be written (:meth:`PartitionWriter.write_sensitivity`)
before the file commits.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from spinlock_core.files import commit_tmp, remove_quietly, tmp_path_for

from . import hdf5 as H
from . import schema as S
from .codec import attr_value, json_dumps

__all__ = ["PartitionWriter", "byte_shuffle", "Compression"]

Compression = Literal["none", "gzip", "lzf"]
_COMPRESSIONS = ("none", "gzip", "lzf")
_F4 = np.dtype("<f4")
_MAX_CHUNK_BYTES = 2**32 - 1  # HDF5 limit on one chunk


def byte_shuffle(data: np.ndarray) -> np.ndarray:
    """HDF5 shuffle filter: bytes regrouped by significance (all byte 0s, then byte 1s, ...).

    ``data`` must be C-contiguous; the element size is ``data.itemsize``. Returns a flat uint8
    array of ``data.nbytes`` bytes.
    """
    size = data.itemsize
    raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if size == 1 or raw.size <= size:
        return raw.copy()
    return np.ascontiguousarray(raw.reshape(-1, size).T).reshape(-1)


class PartitionWriter:
    """Write one partition file atomically (see module docstring).

    Args:
        path: final ``*.h5`` path (its directory is created if missing).
        num_samples: rows n of the partition.
        num_realizations: M.
        time_steps: step number of each stored frame (length Ts, strictly increasing, >= 0),
            e.g. ``range(T + 1)`` or ``[T]``.
        num_channels: C.
        grid_size: g (fields are g x g).
        param_names: the P parameter names, in declaration order.
        compression: "none", "gzip" or "lzf".
        compression_level: gzip level 0..9 (ignored otherwise).
        shuffle: byte-shuffle before compressing (ignored for "none").
        compression_threads: threads compressing gzip chunks (>= 1).
        root_attrs: extra root attributes (partition key, batch, root_seed, config_hash, ...);
            mappings and non-integer sequences are stored as JSON strings.
        sensitivity_names: F operator-sensitivity column names (None: no sensitivity dataset).
        sensitivity_params: JSON text (or a mapping) of the family config the values are measured with.
        sensitivity_params_hash: that config's hash (``spinlock_core.sensitivity.sensitivity_params_hash``).
    """

    def __init__(
        self,
        path: Path,
        *,
        num_samples: int,
        num_realizations: int,
        time_steps: Sequence[int],
        num_channels: int,
        grid_size: int,
        param_names: Sequence[str],
        compression: Compression = "gzip",
        compression_level: int = 4,
        shuffle: bool = True,
        compression_threads: int = 2,
        root_attrs: Mapping[str, Any] | None = None,
        sensitivity_names: Sequence[str] | None = None,
        sensitivity_params: str | Mapping[str, Any] | None = None,
        sensitivity_params_hash: str | None = None,
    ) -> None:
        for name, value in (
            ("num_samples", num_samples),
            ("num_realizations", num_realizations),
            ("num_channels", num_channels),
            ("grid_size", grid_size),
            ("compression_threads", compression_threads),
        ):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if compression not in _COMPRESSIONS:
            raise ValueError(f"compression must be one of {_COMPRESSIONS}, got {compression!r}")
        if compression == "gzip" and not 0 <= int(compression_level) <= 9:
            raise ValueError(f"compression_level must be in 0..9 for gzip, got {compression_level}")
        steps = np.asarray(list(time_steps), dtype=np.int64)
        if steps.ndim != 1 or steps.size == 0 or (steps < 0).any() or (np.diff(steps) <= 0).any():
            raise ValueError(
                f"time_steps must be a non-empty strictly increasing sequence of ints >= 0, got {list(time_steps)}"
            )
        names = [str(p) for p in param_names]
        if len(set(names)) != len(names) or any(not p for p in names):
            raise ValueError(f"param_names must be unique non-empty strings, got {names}")
        self.path = Path(path)
        if self.path.suffix != ".h5":
            raise ValueError(f"path must end in .h5, got {self.path}")
        self.num_samples, self.num_realizations = int(num_samples), int(num_realizations)
        self.num_channels, self.grid_size = int(num_channels), int(grid_size)
        self.time_steps = steps
        self.param_names = names
        self.compression: Compression = compression
        self.compression_level = int(compression_level)
        self.shuffle = bool(shuffle) and compression != "none"
        n, m, ts, c, g = self.num_samples, self.num_realizations, steps.size, self.num_channels, self.grid_size
        if ts * c * g * g * 4 > _MAX_CHUNK_BYTES:
            raise ValueError(f"one trajectory (Ts={ts}, C={c}, g={g}) exceeds HDF5's 4 GiB chunk limit")
        self._traj_shape = (m, ts, c, g, g)
        self._attrs = self._merge_root_attrs(dict(root_attrs or {}))
        self.sensitivity_names = _sensitivity_layout(sensitivity_names, sensitivity_params, sensitivity_params_hash)
        if self.sensitivity_names is not None:
            params = (
                sensitivity_params
                if isinstance(sensitivity_params, str)
                else json_dumps(dict(sensitivity_params or {}))
            )
            self._sens_attrs = {
                "names": json.dumps(self.sensitivity_names),
                "params": params,
                "params_hash": str(sensitivity_params_hash),
            }

        self._lock = threading.Lock()
        self._traj_done = np.zeros((n,), dtype=bool)
        self._inputs_done = np.zeros((n,), dtype=bool)
        self._sens_done = np.zeros((n,), dtype=bool)
        self._params_done = False
        self._meta_done = False
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = tmp_path_for(self.path)
        self._file = H.File(self._tmp, "w")
        try:
            self._create_layout()
        except BaseException:
            self.abort()
            raise
        if compression == "gzip":
            self._pool = ThreadPoolExecutor(int(compression_threads), thread_name_prefix="spinlock-gzip")

    # ------------------------------------------------------------------ setup
    def _merge_root_attrs(self, extra: dict[str, Any]) -> dict[str, Any]:
        own: dict[str, Any] = {
            "schema_version": S.SCHEMA_VERSION,
            "kind": S.KIND_PARTITION,
            "num_samples": self.num_samples,
            "num_realizations": self.num_realizations,
            "num_time_steps": int(self.time_steps.size),
            "num_channels": self.num_channels,
            "grid_size": self.grid_size,
        }
        for key, value in extra.items():
            if key in own and value != own[key]:
                raise ValueError(f"root_attrs[{key!r}] = {value!r} contradicts the writer's value {own[key]!r}")
        merged = {k: attr_value(v) for k, v in extra.items()}
        merged.update(own)
        return merged

    def _filters(self) -> dict[str, Any]:
        if self.compression == "none":
            return {}
        kw: dict[str, Any] = {"compression": self.compression, "shuffle": self.shuffle}
        if self.compression == "gzip":
            kw["compression_opts"] = self.compression_level
        return kw

    def _create_layout(self) -> None:
        f = self._file
        n, (m, ts, c, g, _) = self.num_samples, self._traj_shape
        coords: dict[str, Any] = {
            S.DIM_SAMPLE: np.full(n, -1, dtype=np.int64),
            S.DIM_REALIZATION: np.arange(m),
            S.DIM_TIME: self.time_steps,
            S.DIM_CHANNEL: np.arange(c),
            S.DIM_Y: H.pixel_centres(g),
            S.DIM_X: H.pixel_centres(g),
            S.DIM_PARAM: self.param_names,
        }
        if self.sensitivity_names is not None:
            coords[S.DIM_SENSITIVITY_FEATURE] = self.sensitivity_names
        scales = H.create_coordinates(
            f,
            coords,
            yx_units="1",
            yx_description=f"pixel centre (i + 0.5) / {g} in domain units (unit square)",
        )
        f.create_dataset(
            S.OUTPUTS_FIELDS, shape=(n, m, ts, c, g, g), dtype=_F4, chunks=(1, 1, ts, c, g, g), **self._filters()
        )
        f.create_dataset(S.INPUTS_FIELDS, shape=(n, c, g, g), dtype=_F4, chunks=(1, c, g, g), **self._filters())
        p = f.create_dataset(S.PARAMS, shape=(n, len(self.param_names)), dtype=np.float64)
        p.attrs["names"] = (
            np.asarray(self.param_names, dtype=object) if self.param_names else np.zeros(0, dtype=H.STR_DTYPE)
        )
        f.create_dataset(S.PARAM_VALUES, shape=(n,), dtype=H.STR_DTYPE)
        for spec in S.datasets_for(S.KIND_PARTITION):
            if spec.path.startswith(S.GROUP_METADATA + "/"):
                shape = (n,) if len(spec.dims) == 1 else (n, m)
                dtype = H.STR_DTYPE if spec.dtype == "str" else np.dtype(spec.dtype)
                f.create_dataset(spec.path, shape=shape, dtype=dtype)
        for spec in S.datasets_for(S.KIND_PARTITION):
            H.finish_variable(f, spec.path, scales)
        if self.sensitivity_names is not None:
            d = f.create_dataset(
                S.OPERATOR_SENSITIVITY, shape=(n, len(self.sensitivity_names)), dtype=_F4, fillvalue=np.nan
            )
            for key, value in self._sens_attrs.items():
                d.attrs[key] = value
            H.finish_variable(f, S.OPERATOR_SENSITIVITY, scales)
        for key, value in self._attrs.items():
            f.attrs[key] = value

    # ------------------------------------------------------------------ writes
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"PartitionWriter for {self.path} is closed")

    def _fields(self, data: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
        arr = np.asarray(data)
        if arr.dtype.kind != "f":
            raise ValueError(f"{name}: data must be floating point (stored as float32), got {arr.dtype}")
        if arr.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
        return np.ascontiguousarray(arr, dtype=_F4)

    def write_inputs(self, rows: slice, fields: np.ndarray) -> None:
        """Initial conditions of ``rows``: ``fields`` [r, C, g, g] float32."""
        self._check_open()
        start, stop = _check_rows(rows, self.num_samples, "write_inputs")
        data = self._fields(fields, (stop - start, self.num_channels, self.grid_size, self.grid_size), "write_inputs")
        with self._lock:
            self._file[S.INPUTS_FIELDS][start:stop] = data
            self._inputs_done[start:stop] = True

    def _encode(self, chunk: np.ndarray) -> bytes:
        raw = byte_shuffle(chunk) if self.shuffle else chunk.reshape(-1).view(np.uint8)
        return zlib.compress(raw, self.compression_level)  # type: ignore[arg-type]  # ndarray is a buffer

    def write_trajectories(self, rows: slice, data: np.ndarray) -> None:
        """Trajectories of ``rows``: ``data`` [r, M, Ts, C, g, g] float32 (thread-safe)."""
        self._check_open()
        start, stop = _check_rows(rows, self.num_samples, "write_trajectories")
        arr = self._fields(data, (stop - start, *self._traj_shape), "write_trajectories")
        dset = self._file[S.OUTPUTS_FIELDS]
        if self._pool is None:
            with self._lock:
                dset[start:stop] = arr
                self._traj_done[start:stop] = True
            return
        m = self.num_realizations
        chunks: Iterator[np.ndarray] = (arr[i, j] for i in range(stop - start) for j in range(m))
        for k, blob in enumerate(self._pool.map(self._encode, chunks)):
            with self._lock:
                dset.id.write_direct_chunk((start + k // m, k % m, 0, 0, 0, 0), blob, filter_mask=0)
        with self._lock:
            self._traj_done[start:stop] = True

    def write_sensitivity(self, rows: slice, values: np.ndarray) -> None:
        """Operator-sensitivity values of ``rows``: ``values`` [r, F] floating point (stored float32)."""
        self._check_open()
        if self.sensitivity_names is None:
            raise RuntimeError("write_sensitivity: this writer was created without sensitivity_names")
        start, stop = _check_rows(rows, self.num_samples, "write_sensitivity")
        arr = np.asarray(values)
        want = (stop - start, len(self.sensitivity_names))
        if arr.dtype.kind != "f" or arr.shape != want:
            raise ValueError(
                f"write_sensitivity: expected floating point values of shape {want}, got {arr.dtype} {arr.shape}"
            )
        with self._lock:
            self._file[S.OPERATOR_SENSITIVITY][start:stop] = np.ascontiguousarray(arr, dtype=_F4)
            self._sens_done[start:stop] = True

    def write_parameters(self, unit: np.ndarray, values_json: Sequence[str]) -> None:
        """Unit-cube points ``unit`` [n, P] float64 and per-sample knob values (JSON objects)."""
        self._check_open()
        n, p = self.num_samples, len(self.param_names)
        arr = np.asarray(unit, dtype=np.float64)
        if arr.shape != (n, p):
            raise ValueError(f"write_parameters: unit must have shape {(n, p)}, got {arr.shape}")
        values = _strings(values_json, n, "values_json", json_objects=True)
        with self._lock:
            self._file[S.PARAMS][...] = arr
            self._file[S.PARAM_VALUES][...] = values
            self._params_done = True

    def write_metadata(
        self,
        *,
        sample_index: np.ndarray,
        ic_types: Sequence[str],
        ic_base_types: Sequence[str],
        rollout_policies: Sequence[str],
        noise_regimes: Sequence[str],
        operator_specs: Sequence[str],
        weight_seeds: np.ndarray,
        ic_seeds: np.ndarray,
        noise_seeds: np.ndarray,
        diverged_step: np.ndarray,
        config_json: str,
        sampling_metrics: Mapping[str, Any],
    ) -> None:
        """Per-sample metadata ([n] or [n, M] arrays) and the /metadata attributes."""
        self._check_open()
        n, m = self.num_samples, self.num_realizations
        idx = _ints(sample_index, (n,), np.int64, "sample_index")
        if (idx < 0).any() or np.unique(idx).size != n:
            raise ValueError("sample_index must hold n distinct non-negative global indices")
        div = _ints(diverged_step, (n, m), np.int32, "diverged_step")
        if (div < -1).any():
            raise ValueError("diverged_step must be -1 (never) or a step number >= 0")
        try:
            json.loads(config_json)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config_json must be a JSON document: {exc}") from None
        values: dict[str, Any] = {
            S.META.SAMPLE_INDEX: idx,
            S.META.IC_TYPES: _strings(ic_types, n, "ic_types"),
            S.META.IC_BASE_TYPES: _strings(ic_base_types, n, "ic_base_types"),
            S.META.ROLLOUT_POLICIES: _strings(rollout_policies, n, "rollout_policies"),
            S.META.NOISE_REGIMES: _strings(noise_regimes, n, "noise_regimes"),
            S.META.OPERATOR_SPECS: _strings(operator_specs, n, "operator_specs", json_objects=True),
            S.META.GRID_SIZES: np.full(n, self.grid_size, dtype=np.int32),
            S.META.WEIGHT_SEEDS: _ints(weight_seeds, (n,), np.uint64, "weight_seeds"),
            S.META.IC_SEEDS: _ints(ic_seeds, (n,), np.uint64, "ic_seeds"),
            S.META.NOISE_SEEDS: _ints(noise_seeds, (n, m), np.uint64, "noise_seeds"),
            S.META.DIVERGED_STEP: div,
        }
        metrics = json_dumps(dict(sampling_metrics))
        with self._lock:
            f = self._file
            for path, arr in values.items():
                f[path][...] = arr
            f[S.DIM_SAMPLE][...] = idx
            g = f[S.GROUP_METADATA]
            g.attrs["config"] = config_json
            g.attrs["sampling_metrics"] = metrics
            g.attrs["version"] = S.SCHEMA_VERSION
            self._meta_done = True

    # ------------------------------------------------------------------ finish
    def _missing(self) -> list[str]:
        missing = []
        pending = [("trajectories", self._traj_done), ("inputs", self._inputs_done)]
        if self.sensitivity_names is not None:
            pending.append(("operator sensitivity", self._sens_done))
        for name, done in pending:
            if not done.all():
                rows = np.flatnonzero(~done)
                missing.append(
                    f"{name} rows {rows[:5].tolist()}{'...' if rows.size > 5 else ''} ({rows.size} of {done.size})"
                )
        if not self._params_done:
            missing.append("parameters (write_parameters)")
        if not self._meta_done:
            missing.append("metadata (write_metadata)")
        return missing

    def close(self) -> None:
        """Commit: check completeness, flush, fsync and atomically rename onto ``path``.

        Raises:
            RuntimeError: something was never written (the tmp file is deleted, ``path`` untouched).
        """
        if self._closed:
            return
        missing = self._missing()
        if missing:
            self.abort()
            raise RuntimeError(f"partition {self.path.name} incomplete, not committed: missing {'; '.join(missing)}")
        try:
            with self._lock:
                self._file[S.GROUP_METADATA].attrs["creation_date"] = datetime.now(UTC).isoformat(timespec="seconds")
                self._file.flush()
                self._file.close()
            self._shutdown_pool()
            commit_tmp(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Discard everything: close and delete the tmp file; ``path`` is left untouched."""
        self._closed = True
        self._shutdown_pool()
        try:
            if self._file.id.valid:
                self._file.close()
        except Exception:  # pragma: no cover - best effort on a broken file
            pass
        remove_quietly(self._tmp)

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> PartitionWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
            return None
        self.close()
        return None


def _sensitivity_layout(names: Sequence[str] | None, params: Any, params_hash: str | None) -> list[str] | None:
    """Checked sensitivity column names (None: no sensitivity dataset)."""
    if names is None:
        if params is not None or params_hash is not None:
            raise ValueError("sensitivity_params / sensitivity_params_hash given without sensitivity_names")
        return None
    out = [str(n) for n in names]
    if not out or len(set(out)) != len(out) or any(not n for n in out):
        raise ValueError(f"sensitivity_names must be unique non-empty strings (at least one), got {out}")
    if params is None or not params_hash:
        raise ValueError("sensitivity_names needs sensitivity_params and a non-empty sensitivity_params_hash")
    text = params if isinstance(params, str) else None
    if text is not None:
        try:
            json.loads(text)
        except ValueError as exc:
            raise ValueError(f"sensitivity_params is not valid JSON: {exc}") from None
    elif not isinstance(params, Mapping):
        raise ValueError(f"sensitivity_params must be JSON text or a mapping, got {type(params).__name__}")
    return out


def _strings(values: Sequence[str], n: int, name: str, *, json_objects: bool = False) -> np.ndarray:
    out = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
    if len(out) != n:
        raise ValueError(f"{name}: expected {n} strings, got {len(out)}")
    for i, v in enumerate(out):
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name}[{i}] must be a non-empty string, got {v!r}")
        if json_objects:
            try:
                json.loads(v)
            except ValueError as exc:
                raise ValueError(f"{name}[{i}] is not valid JSON: {exc}") from None
    return np.asarray(out, dtype=object)


def _ints(values: np.ndarray, shape: tuple[int, ...], dtype: type, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers, got dtype {arr.dtype}")
    return arr.astype(dtype)


def _check_rows(rows: slice, n: int, name: str) -> tuple[int, int]:
    """Validate a row slice (step 1) against ``n`` rows; returns (start, stop)."""
    if not isinstance(rows, slice):
        raise ValueError(f"{name}: rows must be a slice, got {type(rows).__name__}")
    start, stop, step = rows.indices(n)
    if (
        step != 1
        or (rows.start is not None and rows.start < 0)
        or (rows.stop is not None and rows.stop > n)
        or start >= stop
    ):
        raise ValueError(f"{name}: rows must be a non-empty slice within [0, {n}) with step 1, got {rows}")
    return start, stop
