"""The Spinlock HDF5 layout: names, dimensions and a machine-readable description.

Paths of files inside a dataset: :mod:`spinlock_core.dataset.layout`. This module describes
what is *inside* the HDF5 files. Rollout partitions and the index share one layout
(``docs/schema.md`` is the human version):

* a **partition** file holds one ``(batch, grid size g)`` slice of an experiment: ``n`` samples
  (operators), all on a ``g x g`` grid, with real data;
* the **index** file (``index.h5``) describes the whole experiment as one file in the same
  layout: its big arrays are HDF5 *virtual* datasets that map rows of the partition files
  (zero-padded in the centre to the largest grid ``G``), its small metadata is copied. Every
  sample is generated at every grid size, so the index has one row per (grid size, sample).

Everything a validator or a documentation generator needs is in :data:`DATASETS`,
:data:`COORDINATES`, :data:`ROOT_ATTRS` and :data:`METADATA_ATTRS`; :func:`schema_markdown`
renders the tables used in ``docs/schema.md``.

Conventions:

* dims are named with :data:`DIMS` (``sample, realization, time, channel, y, x, param``, and
  ``sensitivity_feature`` for the optional operator-sensitivity table);
  the coordinate variables (HDF5 dimension scales) live at the file root so that
  ``xarray.open_dataset(path, engine="h5netcdf")`` shows named dims;
* every data variable in a group also has a root-level *alias*: a second hard link to the same
  HDF5 object (no copy), e.g. ``/trajectories`` is ``/outputs/fields``;
* ``time`` holds step numbers: ``[0, 1, ..., T]`` (frame 0 = the initial condition) when
  trajectories are stored, ``[T]`` (final state only) otherwise;
* ``diverged_step`` is in the same step units as ``time`` (``-1`` = never diverged);
* strings are variable-length UTF-8; JSON documents are stored as strings;
* ``optional`` datasets and coordinates (:attr:`DatasetSpec.optional`) may be absent; when
  present they follow the schema. :func:`datasets_for` lists the required ones only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SCHEMA_VERSION",
    "DIMS",
    "DIM_SAMPLE",
    "DIM_REALIZATION",
    "DIM_TIME",
    "DIM_CHANNEL",
    "DIM_Y",
    "DIM_X",
    "DIM_PARAM",
    "DIM_SENSITIVITY_FEATURE",
    "KIND_PARTITION",
    "KIND_INDEX",
    "GROUP_OUTPUTS",
    "GROUP_INPUTS",
    "GROUP_PARAMETERS",
    "GROUP_METADATA",
    "GROUP_GRIDS",
    "GROUP_OPERATOR_SENSITIVITY",
    "OUTPUTS_FIELDS",
    "INPUTS_FIELDS",
    "PARAMS",
    "PARAM_VALUES",
    "OPERATOR_SENSITIVITY",
    "SENSITIVITY_ATTRS",
    "META",
    "STRING_METADATA",
    "JSON_METADATA",
    "DatasetSpec",
    "CoordinateSpec",
    "AttrSpec",
    "DATASETS",
    "COORDINATES",
    "ROOT_ATTRS",
    "METADATA_ATTRS",
    "datasets_for",
    "dataset_spec",
    "alias_of",
    "INDEX_SOURCES",
    "FEATURES_KIND",
    "FEATURES_SCHEMA_VERSION",
    "DIM_FEATURE",
    "DIM_CATEGORY",
    "SDF",
    "SDF_AGGREGATED",
    "SDF_METADATA",
    "FEATURE_DIMS",
    "COPIED_METADATA",
    "schema_markdown",
]

SCHEMA_VERSION = "1.0"

DIM_SAMPLE = "sample"
DIM_REALIZATION = "realization"
DIM_TIME = "time"
DIM_CHANNEL = "channel"
DIM_Y = "y"
DIM_X = "x"
DIM_PARAM = "param"
DIM_SENSITIVITY_FEATURE = "sensitivity_feature"
DIMS: tuple[str, ...] = (
    DIM_SAMPLE,
    DIM_REALIZATION,
    DIM_TIME,
    DIM_CHANNEL,
    DIM_Y,
    DIM_X,
    DIM_PARAM,
    DIM_SENSITIVITY_FEATURE,
)

KIND_PARTITION = "partition"
KIND_INDEX = "index"

GROUP_OUTPUTS = "outputs"
GROUP_INPUTS = "inputs"
GROUP_PARAMETERS = "parameters"
GROUP_METADATA = "metadata"
GROUP_GRIDS = "grids"  # index only: /grids/<g>/... unpadded per-grid views
GROUP_OPERATOR_SENSITIVITY = "operator_sensitivity"  # optional, partition only

OUTPUTS_FIELDS = "outputs/fields"
INPUTS_FIELDS = "inputs/fields"
PARAMS = "parameters/params"
PARAM_VALUES = "parameters/values"
OPERATOR_SENSITIVITY = "operator_sensitivity/values"
#: Attributes of :data:`OPERATOR_SENSITIVITY`: column names (JSON list, = the coordinate),
#: the family config it was measured with (JSON) and that config's hash.
SENSITIVITY_ATTRS: tuple[str, ...] = ("names", "params", "params_hash")


class META:
    """Dataset paths under ``/metadata``."""

    SAMPLE_INDEX = "metadata/sample_index"
    IC_TYPES = "metadata/ic_types"
    IC_BASE_TYPES = "metadata/ic_base_types"
    ROLLOUT_POLICIES = "metadata/rollout_policies"
    NOISE_REGIMES = "metadata/noise_regimes"
    OPERATOR_SPECS = "metadata/operator_specs"
    GRID_SIZES = "metadata/grid_sizes"
    WEIGHT_SEEDS = "metadata/weight_seeds"
    IC_SEEDS = "metadata/ic_seeds"
    NOISE_SEEDS = "metadata/noise_seeds"
    DIVERGED_STEP = "metadata/diverged_step"
    SOURCE_FILE = "metadata/source_file"  # index only
    SOURCE_ROW = "metadata/source_row"  # index only


# String-valued per-sample metadata (must be non-empty); JSON ones must also parse.
STRING_METADATA: tuple[str, ...] = (
    META.IC_TYPES,
    META.IC_BASE_TYPES,
    META.ROLLOUT_POLICIES,
    META.NOISE_REGIMES,
    META.OPERATOR_SPECS,
    PARAM_VALUES,
)
JSON_METADATA: tuple[str, ...] = (META.OPERATOR_SPECS, PARAM_VALUES)

_BOTH: tuple[str, ...] = (KIND_PARTITION, KIND_INDEX)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the layout.

    ``dims`` name every axis; the same dim name has the same length in every dataset of a file
    (``y``/``x``: the grid size ``g`` in a partition, the padded ``G`` in the index).
    ``alias`` is the root-level hard link to the same object (for xarray), ``None`` if none.
    ``kinds`` says in which file kinds the dataset is required (with ``optional``: in which
    kinds it may appear; absent is valid, present must follow the spec).
    """

    path: str
    dims: tuple[str, ...]
    dtype: str
    description: str
    alias: str | None = None
    kinds: tuple[str, ...] = _BOTH
    units: str | None = None
    attrs: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class CoordinateSpec:
    """A root-level coordinate variable (HDF5 dimension scale named after its dim).

    ``optional``: present only together with the optional dataset that uses its dim.
    """

    name: str
    dtype: str
    description: str
    units: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class AttrSpec:
    """A required attribute."""

    name: str
    description: str
    kinds: tuple[str, ...] = _BOTH


DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        OUTPUTS_FIELDS,
        (DIM_SAMPLE, DIM_REALIZATION, DIM_TIME, DIM_CHANNEL, DIM_Y, DIM_X),
        "float32",
        "Trajectories: M stochastic realizations of each operator's rollout, frames at the "
        "step numbers of the time coordinate (frame 0 = initial condition when trajectories "
        "are stored). Partition chunk = one trajectory (1, 1, Ts, C, H, W). Index: virtual, "
        "zero-padded in the centre to the largest grid.",
        alias="trajectories",
        units="1",
    ),
    DatasetSpec(
        INPUTS_FIELDS,
        (DIM_SAMPLE, DIM_CHANNEL, DIM_Y, DIM_X),
        "float32",
        "Initial condition of each operator (shared by its M realizations). Index: virtual, "
        "zero-padded like the trajectories.",
        alias="initial_conditions",
        units="1",
    ),
    DatasetSpec(
        PARAMS,
        (DIM_SAMPLE, DIM_PARAM),
        "float64",
        "Unit-cube (Sobol) point of each operator, in [0, 1]^P, columns in declaration order.",
        alias="params",
        units="1",
        attrs=("names",),
    ),
    DatasetSpec(
        PARAM_VALUES,
        (DIM_SAMPLE,),
        "str",
        "JSON object: the knob values the unit-cube point maps to.",
        alias="param_values",
    ),
    DatasetSpec(META.SAMPLE_INDEX, (DIM_SAMPLE,), "int64", "Global sample index (position in the Sobol point set)."),
    DatasetSpec(META.IC_TYPES, (DIM_SAMPLE,), "str", "Initial-condition variant name.", alias="ic_types"),
    DatasetSpec(
        META.IC_BASE_TYPES, (DIM_SAMPLE,), "str", "Initial-condition generator (base type).", alias="ic_base_types"
    ),
    DatasetSpec(META.ROLLOUT_POLICIES, (DIM_SAMPLE,), "str", "Update policy of the rollout.", alias="rollout_policies"),
    DatasetSpec(
        META.NOISE_REGIMES, (DIM_SAMPLE,), "str", "Noise classification (low/medium/high).", alias="noise_regimes"
    ),
    DatasetSpec(META.OPERATOR_SPECS, (DIM_SAMPLE,), "str", "JSON operator specification.", alias="operator_specs"),
    DatasetSpec(
        META.GRID_SIZES,
        (DIM_SAMPLE,),
        "int32",
        "Native grid size g of the sample (before any padding).",
        alias="grid_sizes",
        units="pixel",
    ),
    DatasetSpec(META.WEIGHT_SEEDS, (DIM_SAMPLE,), "uint64", "Seed of the operator weights.", alias="weight_seeds"),
    DatasetSpec(META.IC_SEEDS, (DIM_SAMPLE,), "uint64", "Seed of the initial condition.", alias="ic_seeds"),
    DatasetSpec(
        META.NOISE_SEEDS,
        (DIM_SAMPLE, DIM_REALIZATION),
        "uint64",
        "Base noise seed of each realization.",
        alias="noise_seeds",
    ),
    DatasetSpec(
        META.DIVERGED_STEP,
        (DIM_SAMPLE, DIM_REALIZATION),
        "int32",
        "First step (time-coordinate units) at which the realization diverged; -1 = never. "
        "Frames at or after it may be non-finite.",
        alias="diverged_step",
        units="step",
    ),
    DatasetSpec(
        META.SOURCE_FILE,
        (DIM_SAMPLE,),
        "str",
        "Partition file holding the row, relative to the index file's directory.",
        alias="source_file",
        kinds=(KIND_INDEX,),
    ),
    DatasetSpec(
        META.SOURCE_ROW,
        (DIM_SAMPLE,),
        "int64",
        "Row of the sample inside its partition file.",
        alias="source_row",
        kinds=(KIND_INDEX,),
    ),
    DatasetSpec(
        OPERATOR_SENSITIVITY,
        (DIM_SAMPLE, DIM_SENSITIVITY_FEATURE),
        "float32",
        "Optional. Operator-sensitivity features of each operator (Lipschitz estimates, gain curve, "
        "linearity), measured on the live operator during the rollout with realization 0's step-1 noise "
        "held fixed; columns = the sensitivity_feature coordinate. Attributes: names (JSON list), params "
        "(JSON of the operator_sensitivity family config), params_hash. NaN only where an evaluation "
        "was non-finite.",
        alias="sensitivity",
        kinds=(KIND_PARTITION,),
        units="1",
        attrs=SENSITIVITY_ATTRS,
        optional=True,
    ),
)

COORDINATES: tuple[CoordinateSpec, ...] = (
    CoordinateSpec(
        DIM_SAMPLE,
        "int64",
        "Global sample index (index root: one row per (grid size, sample), so a sample index repeats once per grid size; unique within a partition and within /grids/<g>).",
    ),
    CoordinateSpec(DIM_REALIZATION, "int64", "Realization number 0..M-1."),
    CoordinateSpec(
        DIM_TIME,
        "int64",
        "Step number of each stored frame ([0..T], or [T] when only the final state is stored).",
        units="step",
    ),
    CoordinateSpec(DIM_CHANNEL, "int64", "Channel number 0..C-1."),
    CoordinateSpec(
        DIM_Y,
        "float64",
        "Partition and /grids/<g>: pixel centre (i + 0.5) / g in domain units (unit square). Index root: padded pixel index 0..G-1.",
        units="1 (index root: pixel)",
    ),
    CoordinateSpec(DIM_X, "float64", "Same as y, along the other axis.", units="1 (index root: pixel)"),
    CoordinateSpec(DIM_PARAM, "str", "Parameter names, in declaration order."),
    CoordinateSpec(
        DIM_SENSITIVITY_FEATURE,
        "str",
        "Optional (only with /operator_sensitivity/values): operator-sensitivity feature names, in column order.",
        optional=True,
    ),
)

ROOT_ATTRS: tuple[AttrSpec, ...] = (
    AttrSpec("schema_version", f"Layout version (this document: {SCHEMA_VERSION})."),
    AttrSpec("kind", '"partition" or "index".'),
    AttrSpec("num_samples", "Rows: n (partition) or N_rows, one per (grid size, sample) (index)."),
    AttrSpec("num_realizations", "M."),
    AttrSpec("num_time_steps", "Ts, the number of stored frames."),
    AttrSpec("num_channels", "C."),
    AttrSpec("grid_size", "Partition: its grid g. Index: the padded size G (the largest grid)."),
    AttrSpec("grid_sizes", "Index: the sorted distinct native grid sizes.", kinds=(KIND_INDEX,)),
    AttrSpec("padding", 'Index: "centre" (pad = (G - g) // 2 on each axis, fill 0).', kinds=(KIND_INDEX,)),
)

METADATA_ATTRS: tuple[AttrSpec, ...] = (
    AttrSpec("config", "JSON of the full experiment configuration."),
    AttrSpec("sampling_metrics", "JSON of the sampling metrics (discrepancy, correlations, ...)."),
    AttrSpec("creation_date", "ISO-8601 UTC time the file was written."),
    AttrSpec("version", f"Schema version ({SCHEMA_VERSION})."),
)


#: Index only: one row per file the index reads (rollouts and features), with what it was
#: when the index was built (``path`` relative to the index, ``kind``, ``size``, ``mtime_ns``,
#: ``config_hash``, ``rows``), so readers can tell a stale index from a current one.
INDEX_SOURCES = "metadata/index_sources"

# ----------------------------------------------------------------------------- feature files
#: Root attribute ``kind`` of a feature file.
FEATURES_KIND = "features"
FEATURES_SCHEMA_VERSION = "1.1"  # 1.1: every axis a named dim (feature, category scales)
#: Group of the SDF features (``/features/sdf/<category>/features``).
SDF = "features/sdf"
SDF_AGGREGATED = f"{SDF}/aggregated/features"
SDF_METADATA = f"{SDF}/metadata"
#: The last axis of every feature table; each table's group holds its own ``feature`` coordinate
#: (the column names), so ``xarray.open_dataset(path, engine="h5netcdf", group=...)`` labels it.
DIM_FEATURE = "feature"
#: Axis of ``/features/sdf/metadata/nan_counts`` (coordinate ``/features/sdf/metadata/category``).
DIM_CATEGORY = "category"
#: Dims a feature array may have before its feature axis (coordinates at the file root).
FEATURE_DIMS: tuple[str, ...] = (DIM_SAMPLE, DIM_REALIZATION, DIM_TIME, DIM_CHANNEL)
#: Per-sample metadata a feature file copies from its partition (DataFrames without rollouts).
COPIED_METADATA: tuple[str, ...] = (
    META.SAMPLE_INDEX,
    META.GRID_SIZES,
    META.IC_TYPES,
    META.IC_BASE_TYPES,
    META.ROLLOUT_POLICIES,
    META.NOISE_REGIMES,
    META.DIVERGED_STEP,
)


def datasets_for(kind: str, *, optional: bool = False) -> tuple[DatasetSpec, ...]:
    """The datasets required in a file of ``kind`` ("partition" or "index").

    ``optional=True``: the optional datasets that may appear in such a file instead.
    """
    if kind not in _BOTH:
        raise ValueError(f"kind must be one of {_BOTH}, got {kind!r}")
    return tuple(d for d in DATASETS if kind in d.kinds and d.optional == optional)


def dataset_spec(path: str) -> DatasetSpec:
    """The spec of the dataset at ``path``.

    Raises:
        KeyError: not a dataset of the layout.
    """
    for d in DATASETS:
        if d.path == path:
            return d
    raise KeyError(path)


def alias_of(path: str) -> str | None:
    """Root alias of a dataset path, or None."""
    for d in DATASETS:
        if d.path == path:
            return d.alias
    return None


def schema_markdown() -> str:
    """Markdown tables of the layout (the source of the tables in ``docs/schema.md``)."""
    lines = [
        "| path | root alias | dims | dtype | in | description |",
        "|---|---|---|---|---|---|",
    ]
    for d in DATASETS:
        lines.append(
            f"| `/{d.path}` | {'`/' + d.alias + '`' if d.alias else ''} | ({', '.join(d.dims)}) | "
            f"{d.dtype} | {', '.join(d.kinds)}{' (optional)' if d.optional else ''} | {d.description} |"
        )
    lines += ["", "| coordinate (root) | dtype | units | description |", "|---|---|---|---|"]
    for c in COORDINATES:
        lines.append(f"| `/{c.name}` | {c.dtype} | {c.units or ''} | {c.description} |")
    lines += ["", "| attribute | on | in | description |", "|---|---|---|---|"]
    for a in ROOT_ATTRS:
        lines.append(f"| `{a.name}` | `/` | {', '.join(a.kinds)} | {a.description} |")
    for a in METADATA_ATTRS:
        lines.append(f"| `{a.name}` | `/metadata` | {', '.join(a.kinds)} | {a.description} |")
    return "\n".join(lines) + "\n"
