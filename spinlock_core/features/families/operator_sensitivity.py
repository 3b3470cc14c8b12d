"""``operator_sensitivity``: how one operator step responds to perturbations of its input.

Granularity ``operator``: one row of values per sample (operator), stored ``[n, F]`` in the
partition file's ``/operator_sensitivity/values``. These features are **measured on the live
operator during the rollout** (:mod:`spinlock_core.sensitivity`), not computed from
stored fields, so :meth:`OperatorSensitivityFamily.compute` is never called by the driver.

What is measured
----------------
``O`` is **one operator evaluation as the rollout applies it at step 1: the network output
before the update policy** (``X_1 = a X_0 + c O(X_0)``; the policy's affine mix is not part of
``O``), evaluated at the operator's own initial condition ``x = X_0``. Its stochastic elements
(noise field, dropout masks) are **those of realization 0 at step 1**, drawn once and **held
fixed** for every evaluation below, so that differences measure the operator and not the
noise (with re-drawn noise a finite difference would be dominated by the noise and grow like
``1/eps``).

* ``u``: a seeded Gaussian white-noise direction ``[C, H, W]`` scaled to unit RMS, drawn with
  numpy's PCG64 from ``SeedSequence(weight_seed, spawn_key=(0x53454E53,))`` (the sample's weight
  seed plus a constant key: reproducible, independent of batch, chunk and device).
* ``delta_eps = eps * s * u`` with ``s = max(RMS(x), 1e-6)``, so ``||delta|| = eps ||x||``
  (relative perturbation size ``eps``); the norm used is that of the perturbation actually
  applied, ``||(x + delta) - x||_2`` in float32.
* ``||.||`` is the Euclidean norm over all ``C H W`` values of one operator.

Features (``eps`` in ``lipschitz_eps``, default ``[1e-3, 1e-2, 1e-1]``; ``alpha`` in
``gain_alphas``, default ``[0.5, 0.75, 1.25, 1.5]``; ``eps_max`` the largest, ``eps_mid`` the
median scale = element ``len // 2`` of the sorted list):

* ``sensitivity_lipschitz_eps<e>`` = ``||O(x + delta_eps) - O(x)|| / ||delta_eps||``;
* ``sensitivity_gain_alpha<a>`` = ``||O(alpha x)|| / ||O(x)||``;
* ``sensitivity_base_gain`` = ``||O(x)|| / ||x||``;
* ``sensitivity_gain_linearity_r2``: ``R^2 = 1 - SS_res / max(SS_tot, P 0.01^2)`` of the
  least-squares line ``gain = p + q alpha`` through the ``P`` points ``(alpha, gain(alpha))`` and
  ``(1, 1)``; the floor (gains varying by less than about 1e-2 count as flat, which a line fits)
  keeps round-off wiggles of a flat gain curve from reading as non-linearity; in ``[0, 1]``;
* ``sensitivity_gain_exponent``: least-squares slope of ``ln gain`` against ``ln alpha`` over the
  same points: the effective degree of homogeneity (``O(alpha x) = alpha^k O(x)`` gives ``k``;
  scale-invariant operators give 0);
* ``sensitivity_compression`` = ``(gain(alpha_min) / alpha_min) / (gain(alpha_max) / alpha_max)``:
  1 for a degree-1 homogeneous operator, > 1 compressive (output grows slower than input),
  < 1 expansive; ``alpha_max / alpha_min`` for a scale-invariant operator;
* ``sensitivity_saturation`` = ``1 - (gain(alpha_max) - 1) / (alpha_max - 1)``: 0 when the output
  grows in proportion to the input beyond ``alpha = 1``, 1 when it does not grow at all, > 1
  when it shrinks, < 0 when it grows faster than the input (needs ``alpha_max > 1``);
* ``sensitivity_asymmetry`` = ``|a - b| / (a + b)`` with ``a = ||O(x + delta) - O(x)||``,
  ``b = ||O(x - delta) - O(x)||`` at ``eps_max``; in ``[0, 1]``, 0 for an affine operator (the
  absolute value because the sign of a random direction is arbitrary); 0 when ``a + b = 0``;
* ``sensitivity_curvature`` = ``||O(x + delta) + O(x - delta) - 2 O(x)|| / ||O(x + delta) - O(x - delta)||``
  at ``eps_max``: the second difference relative to the first (0 for an affine operator,
  about ``eps_max ||D2O[u, u]|| s / (2 ||DO u||)`` for a smooth one); 0 when the denominator is 0;
* ``sensitivity_channel_consistency`` (C >= 2) = ``1 - CV(r) / sqrt(C - 1)`` with ``r_c`` the
  norm of channel c of ``O(x + delta) - O(x)`` at ``eps_mid`` and ``CV`` = population std / mean;
  in ``[0, 1]``: 1 when every channel responds equally, 0 when one channel carries the whole
  response; 1 when there is no response at all;
* opt-in ``sensitivity_lipschitz_spread`` (needs >= 2 scales) =
  ``log10(L(eps_max) / L(eps_min))``: 0 for an affine operator, the departure from linearity
  across perturbation scales otherwise.

Numerics: measured in float32 (a 16-bit rollout measures on a float32 copy of the same weights;
TF32 convolutions are switched off during the measurement), so the ``eps = 1e-3`` difference is
resolved to about ``1e-4`` relative. Values are NaN only when an evaluation is non-finite (an
operator that overflows at step 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field, field_validator, model_validator

from spinlock_core.features.families.base import Family, FamilyConfig, register_family
from spinlock_core.features.spec import FeatureSpec

__all__ = ["OperatorSensitivityConfig", "OperatorSensitivityFamily", "value_tag", "PREFIX"]

PREFIX = "sensitivity_"


def value_tag(v: float) -> str:
    """Name-safe spelling of a parameter value: ``0.001 -> 0p001``, ``1.25 -> 1p25``, ``1e-05 -> 1em05``."""
    return f"{float(v):g}".replace("-", "m").replace("+", "").replace(".", "p")


class OperatorSensitivityConfig(FamilyConfig):
    """Perturbation scales and input-scaling factors of the operator-sensitivity measurement."""

    lipschitz_eps: tuple[float, ...] = Field(
        default=(1e-3, 1e-2, 1e-1),
        min_length=1,
        max_length=8,
        description="relative perturbation sizes eps (||delta|| = eps ||x||), strictly increasing, each in (0, 1]",
    )
    gain_alphas: tuple[float, ...] = Field(
        default=(0.5, 0.75, 1.25, 1.5),
        min_length=2,
        max_length=8,
        description="input scaling factors alpha of the gain curve, strictly increasing, each in (0, 10], != 1, the largest > 1",
    )

    @field_validator("lipschitz_eps")
    @classmethod
    def _check_eps(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        bad = [e for e in v if not 0.0 < e <= 1.0]
        if bad:
            raise ValueError(f"each eps must be in (0, 1], got {bad}")
        _increasing_and_named(v, "lipschitz_eps")
        return v

    @field_validator("gain_alphas")
    @classmethod
    def _check_alphas(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        bad = [a for a in v if not 0.0 < a <= 10.0]
        if bad:
            raise ValueError(f"each alpha must be in (0, 10], got {bad}")
        if any(a == 1.0 for a in v):
            raise ValueError("alpha = 1 is the reference point (gain 1 by definition); leave it out")
        _increasing_and_named(v, "gain_alphas")
        if max(v) <= 1.0:
            raise ValueError(f"the largest alpha must exceed 1 (saturation is measured there), got {max(v)}")
        return v

    @model_validator(mode="after")
    def _check_spread(self) -> OperatorSensitivityConfig:
        if "sensitivity_lipschitz_spread" in self.include and len(self.lipschitz_eps) < 2:
            raise ValueError("sensitivity_lipschitz_spread needs at least 2 lipschitz_eps scales")
        return self


def _increasing_and_named(v: tuple[float, ...], what: str) -> None:
    if any(b <= a for a, b in zip(v, v[1:])):
        raise ValueError(f"{what} must be strictly increasing, got {list(v)}")
    tags = [value_tag(x) for x in v]
    if len(set(tags)) != len(tags):
        raise ValueError(f"{what} values {list(v)} are too close to name distinct features ({tags})")


_CONV = (
    "O = network output of one step before the update policy, at the operator's initial condition x, "
    "with realization 0's step-1 noise and dropout held fixed; float32, TF32 off"
)
_DELTA = (
    "delta = eps * max(RMS(x), 1e-6) * u, u unit-RMS Gaussian white noise seeded from "
    "SeedSequence(weight_seed, spawn_key=(0x53454E53,)); ||.|| = L2 norm over C*H*W; "
    "||delta|| = norm of the perturbation actually applied"
)


@register_family
class OperatorSensitivityFamily(Family[OperatorSensitivityConfig]):
    """Sensitivity of one operator step to input perturbations and input scaling (measured live)."""

    name = "operator_sensitivity"
    granularity = "operator"
    config_model = OperatorSensitivityConfig
    description = (
        "Lipschitz estimates, gain curve and linearity/saturation of one operator step, measured on the live "
        "operator during the rollout with its noise held fixed (one row per operator)."
    )

    def catalogue(self, cfg: OperatorSensitivityConfig) -> list[FeatureSpec]:
        fam, gran, flag = self.name, self.granularity, f"{self.name}.enabled"
        eps, alphas = list(cfg.lipschitz_eps), list(cfg.gain_alphas)
        e_max, e_mid = eps[-1], eps[len(eps) // 2]
        a_min, a_max = alphas[0], alphas[-1]
        pts = f"points (alpha, gain) for alpha in {alphas} plus (1, 1)"

        def spec(name: str, description: str, convention: str, units: str = "dimensionless", **kw) -> FeatureSpec:
            return FeatureSpec(
                name=PREFIX + name,
                family=fam,
                granularity=gran,
                description=description,
                units=units,
                convention=f"{convention}; {_CONV}",
                flag=kw.pop("flag", flag),
                **kw,
            )

        out = [
            spec(
                f"lipschitz_eps{value_tag(e)}",
                f"finite-difference Lipschitz estimate ||O(x + delta) - O(x)|| / ||delta|| at relative size eps = {e:g}",
                _DELTA,
                extra={"eps": e},
            )
            for e in eps
        ]
        out += [
            spec(
                f"gain_alpha{value_tag(a)}",
                f"gain ||O(alpha x)|| / ||O(x)|| at input scale alpha = {a:g}",
                "L2 norms over C*H*W; denominator floored at 1e-30",
                extra={"alpha": a},
            )
            for a in alphas
        ]
        out += [
            spec(
                "base_gain",
                "amplification ||O(x)|| / ||x|| of the initial condition by one operator evaluation",
                "||x|| floored at 1e-6 * sqrt(C*H*W)",
            ),
            spec(
                "gain_linearity_r2",
                "R^2 of the least-squares line gain = p + q alpha through the gain-curve points",
                f"{pts}; R^2 = 1 - SS_res / max(SS_tot, P * 0.01^2) in [0, 1] (P points; the floor makes "
                "a flat gain curve, which a line fits, read as 1 instead of fitting round-off)",
            ),
            spec(
                "gain_exponent",
                "effective homogeneity degree: least-squares slope of ln gain against ln alpha",
                f"{pts}; natural logs; gain floored at 1e-30; alpha^k scaling gives k, scale invariance gives 0",
            ),
            spec(
                "compression",
                f"(gain(alpha_min) / alpha_min) / (gain(alpha_max) / alpha_max) with alpha_min = {a_min:g}, "
                f"alpha_max = {a_max:g}",
                "1 for degree-1 homogeneity, > 1 compressive, < 1 expansive, alpha_max/alpha_min if scale invariant",
            ),
            spec(
                "saturation",
                f"1 - (gain(alpha_max) - 1) / (alpha_max - 1) with alpha_max = {a_max:g}",
                "0 when the output grows in proportion to the input above alpha = 1, 1 when it stays flat, "
                "> 1 when it shrinks, < 0 when super-linear",
            ),
            spec(
                "asymmetry",
                f"|a - b| / (a + b), a = ||O(x + delta) - O(x)||, b = ||O(x - delta) - O(x)|| at eps = {e_max:g}",
                f"{_DELTA}; in [0, 1]; 0 for an affine operator; 0 when a + b = 0; absolute value because the sign "
                "of the random direction is arbitrary",
            ),
            spec(
                "curvature",
                f"||O(x + delta) + O(x - delta) - 2 O(x)|| / ||O(x + delta) - O(x - delta)|| at eps = {e_max:g}",
                f"{_DELTA}; second difference relative to the first, 0 for an affine operator; 0 when the "
                "denominator is 0",
            ),
            spec(
                "channel_consistency",
                f"1 - CV(r) / sqrt(C - 1), r_c = ||channel c of O(x + delta) - O(x)|| at eps = {e_mid:g}",
                f"{_DELTA}; CV = population std / mean over the C channels; in [0, 1], 1 = every channel "
                "responds equally (also when no channel responds), 0 = one channel carries the whole response",
                min_channels=2,
            ),
        ]
        if len(eps) >= 2:
            out.append(
                spec(
                    "lipschitz_spread",
                    f"log10(L(eps_max) / L(eps_min)) of the Lipschitz estimates at eps = {eps[-1]:g} and {eps[0]:g}",
                    "0 for an affine operator; log base 10",
                    flag=f"{self.name}.include: {PREFIX}lipschitz_spread",
                    default=False,
                )
            )
        return out

    def compute(self, x: torch.Tensor, cfg: OperatorSensitivityConfig, names: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(
            "operator_sensitivity is measured on the live operator, not on stored fields: it is stored by the "
            "rollout (run_rollouts(..., sensitivity=cfg) -> /operator_sensitivity/values) or recomputed from the "
            "operator specs with spinlock_core.sensitivity.sensitivity_for_specs(specs, ics, cfg)"
        )
