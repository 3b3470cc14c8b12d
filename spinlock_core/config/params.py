"""Parameter-space specs: how one Sobol coordinate in [0, 1) becomes a knob value.

The discriminator is ``type``. Mapping conventions (implemented in
:mod:`spinlock_core.sampling.mapping`):

* ``integer``: uniform over the integers ``lo..hi`` (every value has mass 1/(hi-lo+1)).
* ``continuous``: ``lo + u (hi - lo)``; with ``log_scale`` ``lo (hi/lo)^u`` (requires lo > 0).
* ``choice``: inverse-CDF selection over ``choices`` with ``weights`` normalised by their sum
  (equal weights when omitted).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["IntegerParam", "ContinuousParam", "ChoiceParam", "ParamSpec"]


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = ""


class IntegerParam(_Param):
    type: Literal["integer"] = "integer"
    bounds: tuple[int, int]

    @model_validator(mode="after")
    def _check(self) -> IntegerParam:
        lo, hi = self.bounds
        if lo > hi:
            raise ValueError(f"bounds must satisfy low <= high, got [{lo}, {hi}]")
        return self


class ContinuousParam(_Param):
    type: Literal["continuous"] = "continuous"
    bounds: tuple[float, float]
    log_scale: bool = False

    @model_validator(mode="after")
    def _check(self) -> ContinuousParam:
        lo, hi = self.bounds
        if lo > hi:
            raise ValueError(f"bounds must satisfy low <= high, got [{lo}, {hi}]")
        if self.log_scale and lo <= 0:
            raise ValueError(f"log_scale needs a positive lower bound, got {lo}")
        return self


class ChoiceParam(_Param):
    type: Literal["choice"] = "choice"
    choices: list[str | int | float] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _check(self) -> ChoiceParam:
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"choices must be unique, got {self.choices}")
        if self.weights is not None:
            if len(self.weights) != len(self.choices):
                raise ValueError(
                    f"weights must have one entry per choice ({len(self.choices)}), got {len(self.weights)}"
                )
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError(f"weights must be >= 0 with a positive sum, got {self.weights}")
        return self

    def probabilities(self) -> list[float]:
        """Normalised selection probabilities (equal when no weights are given)."""
        if self.weights is None:
            return [1.0 / len(self.choices)] * len(self.choices)
        total = float(sum(self.weights))
        return [w / total for w in self.weights]


ParamSpec = Annotated[IntegerParam | ContinuousParam | ChoiceParam, Field(discriminator="type")]
