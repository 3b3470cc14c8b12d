"""The ``splits`` section: how samples (operators) are divided into train / valid / test.

A split is assigned per *sample*, i.e. per operator: every realization, time step and grid size
of one sample lands in the same split, so no operator is ever seen in two splits. The
assignment is a pure function of the sample indices, this section and the root seed
(:func:`spinlock_core.dataset.assign_splits`); the ``dataset_index`` stage writes it as
``splits.json`` beside the index. It never changes the generated data, so it is in no stage
hash: editing it and rebuilding the index (``spinlock generate`` does) re-splits the dataset.

``holdout`` takes an out-of-distribution set out first: the samples of the listed IC types, or
whose unit-cube value of one Sobol dimension lies in ``[low, high]``, form the split ``ood``; the
fractions then divide the remaining samples.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SPLIT_NAMES", "HoldoutConfig", "SplitsConfig"]

#: Split names, in code order (code ``i`` in ``splits.json`` is ``SPLIT_NAMES[i]``).
SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test", "ood")

_FORBID = ConfigDict(extra="forbid", frozen=True)


class HoldoutConfig(BaseModel):
    """An out-of-distribution split ``ood``: by IC type, or by a range of one Sobol dimension.

    Exactly one of ``ic_types`` (IC type names as stored in ``/metadata/ic_types``) or
    ``param`` (a Sobol dimension name, with ``low <= u <= high`` on its unit-cube value) is set.
    """

    model_config = _FORBID
    ic_types: list[str] = Field(default_factory=list)
    param: str | None = Field(default=None, min_length=1)
    low: float = Field(default=0.0, ge=0.0, le=1.0)
    high: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_rule(self) -> HoldoutConfig:
        if bool(self.ic_types) == (self.param is not None):
            raise ValueError("set exactly one of holdout.ic_types or holdout.param")
        if self.param is not None and not self.low <= self.high:
            raise ValueError(f"holdout.low must be <= holdout.high, got {self.low} > {self.high}")
        return self


class SplitsConfig(BaseModel):
    """Fractions of the (non-held-out) samples per split, and the seed that shuffles them.

    ``seed`` None derives the shuffle from the root seed (``sampling.sobol.seed``, stream
    ``SPLIT``). Counts are exact: ``round`` by largest remainder, at least one sample for every
    non-zero fraction while there are enough samples.
    """

    model_config = _FORBID
    train: float = Field(default=0.8, gt=0.0, le=1.0)
    valid: float = Field(default=0.1, ge=0.0, lt=1.0)
    test: float = Field(default=0.1, ge=0.0, lt=1.0)
    seed: int | None = Field(default=None, ge=0)
    holdout: HoldoutConfig | None = None

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitsConfig:
        total = self.train + self.valid + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"splits.train + valid + test must be 1, got {total:g}")
        return self

    def fractions(self) -> dict[str, float]:
        """``{"train": f, "valid": f, "test": f}``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}
