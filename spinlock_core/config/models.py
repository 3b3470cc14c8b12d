"""The typed experiment config (pydantic v2; every model forbids unknown keys).

Section map (YAML top level -> model):

==================  ==========================  =============================================
key                 model                       what it sets
==================  ==========================  =============================================
``version``         str ("1.0")                 schema version (only "1.0" exists)
``metadata``        :class:`MetadataConfig`     name / description / author (default)
``parameter_space`` :class:`ParameterSpace`     sampled operator knobs (required, may be {})
``sampling``        :class:`SamplingConfig`     sample count, batching, Sobol (required)
``simulation``      :class:`SimulationConfig`   grids, channels, realizations, steps, ICs
``dataset``         :class:`DatasetConfig`      output directory and HDF5 storage options
``renders``         :class:`RendersConfig`      preview videos of each partition (``renders`` asset)
``splits``          :class:`SplitsConfig`       train / valid / test (/ ood) by operator (``splits.json``)
==================  ==========================  =============================================

Load configs with :func:`spinlock_core.config.load_config`, which turns every validation
failure into a :class:`~spinlock_core.config.ConfigError` listing one problem per line.
Validated configs are frozen (assigning a field raises); derive a changed config with
``load_config(cfg.model_dump(mode="json"), overrides)``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from spinlock_core.config._errors import problems_error
from spinlock_core.config._yaml import dump_yaml
from spinlock_core.config.hashing import StageHashes, stage_hashes
from spinlock_core.config.input_generation import InputGenerationConfig
from spinlock_core.config.parameter_space import ParameterSpace
from spinlock_core.config.params import ChoiceParam, ContinuousParam, IntegerParam
from spinlock_core.config.render import RendersConfig
from spinlock_core.config.splits import SplitsConfig

__all__ = [
    "SUPPORTED_VERSIONS",
    "MetadataConfig",
    "SobolConfig",
    "SamplingValidation",
    "SamplingConfig",
    "SimulationConfig",
    "StorageConfig",
    "DatasetConfig",
    "ExperimentConfig",
]

#: Config schema versions this code reads.
SUPPORTED_VERSIONS: tuple[str, ...] = ("1.0",)

_FORBID = ConfigDict(extra="forbid", frozen=True)  # immutable once validated


class MetadataConfig(BaseModel):
    """Free-text description of the experiment (recorded, never interpreted)."""

    model_config = _FORBID
    name: str = "experiment"
    description: str = ""
    author: str = ""


class SobolConfig(BaseModel):
    """Scrambled Sobol engine settings.

    ``seed`` is the experiment's root seed: the Sobol scrambling and every other random
    stream (weights, ICs, noise) derive from it (:mod:`spinlock_core.seeding`).
    """

    model_config = _FORBID
    scramble: bool = True
    scramble_method: Literal["owen", "lms_shift"] = "owen"
    seed: int = Field(default=42, ge=0)


class SamplingValidation(BaseModel):
    """Quality targets of the Sobol point set (centered L2 discrepancy, max |Pearson r|)."""

    model_config = _FORBID
    max_discrepancy: float = Field(default=0.25, gt=0, allow_inf_nan=False)
    max_pairwise_correlation: float = Field(default=0.3, gt=0, le=1)


class SamplingConfig(BaseModel):
    """How many samples (operators) and how they are batched.

    Samples are numbered ``0 .. total_samples-1`` (global Sobol indices). Batch ``b`` covers
    ``[b * batch_size, min((b+1) * batch_size, total_samples))``; the last batch may be
    smaller (no divisibility requirement).
    """

    model_config = _FORBID
    total_samples: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    sobol: SobolConfig = Field(default_factory=SobolConfig)
    validation: SamplingValidation = Field(default_factory=SamplingValidation)

    @property
    def num_batches(self) -> int:
        """``ceil(total_samples / batch_size)``."""
        return -(-self.total_samples // self.batch_size)

    def batch_bounds(self, batch: int) -> tuple[int, int]:
        """``(start, stop)`` global sample indices of batch ``batch`` (stop exclusive)."""
        if not 0 <= batch < self.num_batches:
            raise ValueError(f"batch must be in [0, {self.num_batches}), got {batch}")
        start = batch * self.batch_size
        return start, min(start + self.batch_size, self.total_samples)


_DEVICE_RE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


class SimulationConfig(BaseModel):
    """What each sample simulates.

    Attributes:
        device: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
        grid_sizes: square grid sides; the dataset is partitioned by grid size (every sample
            is generated at every size). Stored sorted ascending, unique, each 8..2048.
        num_channels: channels of the state (operator in = out).
        num_realizations: stochastic realizations per sample (same operator, same IC).
        num_timesteps: number of operator steps T; the stored time axis has T+1 frames,
            frame 0 being the IC.
        precision: compute dtype of the operator.
        divergence_threshold: a state with max |x| above it, or non-finite, is diverged.
        operators_per_chunk: operators processed together (execution / memory granularity).
        deterministic: on CUDA, use deterministic cuDNN algorithms so reruns are bit-identical
            (the CPU path is always deterministic); false lets cuDNN pick faster ones.
        cpu_threads: torch intra-op CPU threads of every compute step. CPU results depend on it in
            their last bits (oneDNN and FFT split reductions by thread count), so it is part of the
            data identity and pinned in every step, whatever the executor or worker environment
            (Dask workers default to one thread): in-process, multiprocess and Dask runs of one
            config give identical bytes. Throughput scales by running partitions on several
            workers (``spinlock generate --workers``), not by more threads per step.
        input_generation: IC selection and parameters.
    """

    model_config = _FORBID
    device: str = "auto"
    grid_sizes: list[Annotated[int, Field(ge=8, le=2048)]] = Field(default_factory=lambda: [64], min_length=1)
    num_channels: int = Field(default=3, ge=1, le=16)
    num_realizations: int = Field(default=4, ge=1, le=1000)
    num_timesteps: int = Field(default=8, ge=1, le=100_000)
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    divergence_threshold: float = Field(default=1e4, gt=0, allow_inf_nan=False)
    operators_per_chunk: int = Field(default=64, ge=1)
    deterministic: bool = True
    cpu_threads: int = Field(default=1, ge=1, le=256)
    input_generation: InputGenerationConfig = Field(default_factory=InputGenerationConfig)

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not _DEVICE_RE.fullmatch(value):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
        return value

    @field_validator("grid_sizes")
    @classmethod
    def _check_grid_sizes(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"grid sizes must be unique, got {value}")
        return sorted(value)


class StorageConfig(BaseModel):
    """HDF5 storage options.

    Attributes:
        compression: "gzip", "lzf" or "none".
        compression_level: gzip level 0..9; setting it with another compression is an error
            (and it is omitted when such a config is written out).
        shuffle: HDF5 byte-shuffle filter before compression.
        store_trajectories: store every frame (True) or only the final state (False).
        compression_threads: threads compressing chunks in parallel.
    """

    model_config = _FORBID
    compression: Literal["none", "gzip", "lzf"] = "gzip"
    compression_level: int = Field(default=1, ge=0, le=9)
    shuffle: bool = True
    store_trajectories: bool = True
    compression_threads: int = Field(default=2, ge=1, le=64)

    @model_validator(mode="after")
    def _level_needs_gzip(self) -> StorageConfig:
        if "compression_level" in self.model_fields_set and self.compression != "gzip":
            raise problems_error(
                type(self).__name__,
                [
                    (
                        ("compression_level",),
                        f"compression_level applies to gzip only (compression is {self.compression!r}); "
                        "remove it or set compression: gzip",
                    )
                ],
            )
        return self

    @model_serializer(mode="wrap")
    def _drop_unused_level(self, handler: Any) -> dict:
        data = handler(self)
        if self.compression != "gzip":
            data.pop("compression_level", None)
        return data


class DatasetConfig(BaseModel):
    """Where and how the dataset is written.

    ``output_dir`` is kept as given; a relative path is relative to the current working
    directory of the process that generates the dataset.
    """

    model_config = _FORBID
    output_dir: str = Field(default="datasets/experiment", min_length=1)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @field_validator("output_dir")
    @classmethod
    def _a_directory(cls, v: str) -> str:
        """The seed wrote one ``.h5`` file; a Spinlock dataset is a directory of files."""
        if v.lower().endswith((".h5", ".hdf5", ".hdf")):
            stem = v.rsplit(".", 1)[0]
            raise ValueError(
                f"must be a directory, got {v!r} (a file name): a dataset is a folder of partition files whose "
                f"index.h5 is the one-file view; pass a directory such as {stem!r}, then read {stem}/index.h5"
            )
        return v


class FeaturesSection(BaseModel):
    """Where the features config is (see :mod:`spinlock_core.features.config`).

    ``config`` is a YAML path, relative to the current working directory like
    ``dataset.output_dir`` (falling back to the Spinlock checkout, where the shipped configs
    live); ``None`` extracts every default feature. Only the path is part of
    the experiment's hash: the features config has its own hash, so editing it re-extracts
    features without touching rollouts.
    """

    model_config = _FORBID
    config: str | None = Field(default=None, min_length=1, description="features YAML path (None = defaults)")
    extract: bool = Field(default=True, description="materialize sdf_features in `spinlock generate`")


class ExperimentConfig(BaseModel):
    """A whole experiment: what to sample, simulate and store."""

    model_config = _FORBID
    version: str = "1.0"
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    parameter_space: ParameterSpace
    sampling: SamplingConfig
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    renders: RendersConfig = Field(default_factory=RendersConfig)
    splits: SplitsConfig = Field(default_factory=SplitsConfig)

    @field_validator("version", mode="before")
    @classmethod
    def _check_version(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(float(value))  # YAML `version: 1.0` is a float
        if isinstance(value, str) and value not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported config version {value!r} (supported: {', '.join(SUPPORTED_VERSIONS)})")
        return value

    def sobol_dimensions(self) -> list[tuple[str, IntegerParam | ContinuousParam | ChoiceParam]]:
        """Every Sobol dimension, in order: the declared knobs, then ``ic_type`` if sampled.

        The last dimension ``("ic_type", ChoiceParam(choices=names, weights=probabilities))``
        exists when ``input_generation.method`` is "sampled" and there is more than one IC
        choice (see :meth:`InputGenerationConfig.ic_choices`).
        """
        dims = self.parameter_space.dimensions()
        ig = self.simulation.input_generation
        if ig.method == "sampled":
            names, probs = ig.ic_choices()
            if len(names) > 1:
                choices: list[str | int | float] = list(names)  # ChoiceParam.choices is invariant in its items
                dims.append(
                    (
                        "ic_type",
                        ChoiceParam(choices=choices, weights=probs, description="initial-condition type or variant"),
                    )
                )
        return dims

    def stage_hashes(self) -> StageHashes:
        """The hash of each stage's output (:mod:`spinlock_core.config.hashing`)."""
        return stage_hashes(self)

    def config_hash(self) -> str:
        """The dataset's data identity: the rollouts stage hash (16 hex digits).

        It covers everything that changes the generated data and nothing else: not
        ``dataset.output_dir`` (a moved dataset keeps its identity), not ``metadata``, not the
        grid sizes (a partition dimension), not renders or checks' thresholds
        (:mod:`spinlock_core.config.hashing`).
        """
        return stage_hashes(self).rollouts

    def to_yaml(self) -> str:
        """YAML text that :func:`~spinlock_core.config.load_config` reads back to an equal config."""
        return dump_yaml(self.model_dump(mode="json"))
