"""Operator specs: the JSON-serialisable recipe from which one sample is rebuilt exactly."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from spinlock_core.config.knobs import KNOBS, noise_regime
from spinlock_core.seeding import Stream, derive_seed

__all__ = ["OperatorSpec"]


@dataclass(frozen=True)
class OperatorSpec:
    """Everything needed to rebuild sample ``index`` alone, in any process.

    Attributes:
        index: global index of the sample in the experiment's Sobol point set.
        root_seed: the experiment's root seed (all seeds below derive from it).
        params: value of every knob in :data:`~spinlock_core.config.knobs.KNOBS`
            (declared knobs mapped from the Sobol point, the rest at their documented default).
        ic_type: the initial-condition name as configured (a registered type or a named variant).
        ic_base: the registered IC type that generates it.
        ic_params: the fully resolved IC parameters (defaults < base block < variant block).
        num_channels: channels of the state (in = out).
        weight_seed, ic_seed: seeds of the sample's weight and IC streams.
    """

    index: int
    root_seed: int
    params: dict
    ic_type: str
    ic_base: str
    ic_params: dict = field(default_factory=dict)
    num_channels: int = 3
    weight_seed: int = -1
    ic_seed: int = -1

    def __post_init__(self) -> None:
        missing = set(KNOBS) - set(self.params)
        if missing:
            raise ValueError(f"operator spec {self.index} lacks knobs: {sorted(missing)}")
        if self.weight_seed < 0:
            object.__setattr__(self, "weight_seed", derive_seed(self.root_seed, Stream.WEIGHTS, self.index))
        if self.ic_seed < 0:
            object.__setattr__(self, "ic_seed", derive_seed(self.root_seed, Stream.IC, self.index))

    def noise_seed(self, realization: int) -> int:
        """Base seed of realization ``realization``'s noise stream (per-step seeds via ``step_seed``)."""
        return derive_seed(self.root_seed, Stream.NOISE, self.index, realization)

    @property
    def noise_regime(self) -> str:
        return noise_regime(float(self.params["noise_scale"]))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> OperatorSpec:
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> OperatorSpec:
        return cls.from_dict(json.loads(s))
