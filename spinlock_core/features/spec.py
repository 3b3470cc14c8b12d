"""What a feature is: :class:`FeatureSpec` and the granularities features come in.

Granularity names the axes one feature has in storage (before the trailing feature axis):

=========================  ==========================  =========================================
granularity                stored shape                computed from
=========================  ==========================  =========================================
``timestep_channel``       ``[n, M, Ts, C]``           one channel of one frame: ``[H, W]``
``timestep``               ``[n, M, Ts]``              all channels of one frame: ``[C, H, W]``
``trajectory_channel``     ``[n, M, C]``               one channel of one trajectory
``trajectory``             ``[n, M]``                  all channels of one trajectory
``operator``               ``[n]``                     the operator itself (during rollout)
=========================  ==========================  =========================================

``n`` samples (operators), ``M`` realizations, ``Ts`` stored frames (``T + 1``; frame 0 is the
initial condition), ``C`` channels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Granularity", "GRANULARITIES", "GRANULARITY_AXES", "FeatureSpec"]

Granularity = Literal["timestep_channel", "timestep", "trajectory_channel", "trajectory", "operator"]

#: Every granularity, in storage order.
GRANULARITIES: tuple[str, ...] = ("timestep_channel", "timestep", "trajectory_channel", "trajectory", "operator")

#: Named axes of a feature of each granularity (the feature axis ``feature`` comes last in storage).
GRANULARITY_AXES: dict[str, tuple[str, ...]] = {
    "timestep_channel": ("sample", "realization", "time", "channel"),
    "timestep": ("sample", "realization", "time"),
    "trajectory_channel": ("sample", "realization", "channel"),
    "trajectory": ("sample", "realization"),
    "operator": ("sample",),
}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its name, family and meaning.

    Attributes:
        name: unique name (snake case), the column's name in storage and in DataFrames.
        family: the family (= storage category) computing it, e.g. ``"spatial"``.
        granularity: see the module docstring.
        description: one sentence: the definition, with the formula where it is short.
        units: ``"field"`` (units of the field values), ``"field^2"``, ``"cycles/domain"``,
            ``"steps"``, ``"nats"``, ``"bits"``, ``"dimensionless"``, ``"count"``, ...
        convention: estimator, normalisation, log base, boundary handling, epsilons.
        flag: the config key that enables it, e.g. ``"spatial.enabled"`` (a default feature
            of the family) or ``"spatial.include: histogram_entropy"`` (an opt-in).
        default: enabled by default (``False`` = opt-in through the family's ``include``).
        min_channels: needs at least this many channels; with fewer the column is stored
            NaN and listed as masked with the reason (never silently NaN).
        min_frames: needs at least this many stored frames ``Ts`` (same masking).
    """

    name: str
    family: str
    granularity: Granularity
    description: str
    units: str = "dimensionless"
    convention: str = ""
    flag: str = ""
    default: bool = True
    min_channels: int = 1
    min_frames: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def mask_reason(self, num_channels: int, num_frames: int) -> str | None:
        """Why the feature cannot be computed for ``C`` channels and ``Ts`` frames (None: it can)."""
        if num_channels < self.min_channels:
            return f"needs C >= {self.min_channels} channels (data has C = {num_channels})"
        if num_frames < self.min_frames:
            return f"needs Ts >= {self.min_frames} stored frames (data has Ts = {num_frames})"
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:
            d.pop("extra")
        return d
