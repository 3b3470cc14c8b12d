"""``laplacian_energy``: mean squared periodic 5-point Laplacian of a field.

Granularity ``timestep_channel``: ``x [N, C, H, W]`` -> ``[N, C]``.

``laplacian_energy = mean_p (N + S + E + W - 4 C)(p)^2`` over the ``H W`` pixels, with the
periodic 5-point stencil of :func:`spinlock_core.features.ops.laplacian` in grid units, so the
value is in **field^2 / pixel^4** (multiply by ``(H W)^2`` for ``(field / domain^2)^2`` on a
square grid). For a plane wave ``cos(2 pi k x)`` sampled on ``W`` pixels it equals
``(2 cos(2 pi k / W) - 2)^2 / 2`` (the stencil's symbol times ``mean cos^2 = 1/2``).

The field is divided by its largest absolute value before the stencil and the scale put back
as ``(s * rms)^2``, so the result overflows only when the true value exceeds float32.
NaN/Inf in a field give NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spinlock_core.features import ops
from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.spec import FeatureSpec

__all__ = ["LaplacianEnergyConfig", "LaplacianEnergyFamily"]


class LaplacianEnergyConfig(FamilyConfig):
    """The ``laplacian_energy`` family has no parameters beyond on/off (include/exclude)."""


@register_family
class LaplacianEnergyFamily(Family[LaplacianEnergyConfig]):
    """Roughness of a field: the mean squared discrete Laplacian."""

    name = "laplacian_energy"
    granularity = "timestep_channel"
    config_model = LaplacianEnergyConfig
    description = "Mean squared periodic 5-point Laplacian of each field (roughness / curvature energy)."

    def catalogue(self, cfg: LaplacianEnergyConfig) -> list[FeatureSpec]:
        return [
            FeatureSpec(
                name="laplacian_energy",
                family=self.name,
                granularity=self.granularity,
                description="mean over pixels of (N + S + E + W - 4C)^2, the squared periodic 5-point Laplacian",
                units="field^2/pixel^4",
                convention=(
                    "periodic boundary; grid units (per pixel, not per domain length); population mean over H*W "
                    "pixels; cos(2 pi k x) on W pixels gives (2 cos(2 pi k / W) - 2)^2 / 2; constant field: 0"
                ),
                flag="laplacian_energy.enabled",
            )
        ]

    def compute(self, x: torch.Tensor, cfg: LaplacianEnergyConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        unknown = [n for n in names if n != "laplacian_energy"]
        if unknown:
            raise KeyError(f"laplacian_energy: unknown features {unknown}")
        u = x.float()
        s = ops.flatten_fields(u).abs().amax(-1)
        ok = s > 0
        inv = torch.where(ok, 1.0 / torch.where(ok, s, torch.ones_like(s)), torch.ones_like(s))
        lap = ops.laplacian(u * inv[..., None, None])
        rms = ops.flatten_fields(lap).square().mean(-1).sqrt()
        return {"laplacian_energy": (s * rms).square()}
