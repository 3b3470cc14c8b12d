"""Operator sensitivity measured on the live operator bank (the ``operator_sensitivity`` features).

Definitions, conventions and parameters are documented in
:mod:`spinlock_core.features.families.operator_sensitivity`; in short, ``O`` is one network
evaluation at step 1 (before the update policy) at the operator's initial condition, with
realization 0's step-1 stochastic draws held fixed for every perturbed evaluation, and the
perturbation direction is seeded from the sample's weight seed.

* :func:`measure_sensitivity` measures every operator of a bank at once: the perturbed inputs
  (``x``, ``x ± delta``, ``alpha x``) travel along the bank's realization axis, at most
  ``eval_batch`` of them per forward pass, so all operators share each pass;
* :func:`sensitivity_for_specs` rebuilds operators from their specs (same weights) and measures
  them: the features stage uses it when a partition lacks stored values or stored them under
  other parameters (the stored parameters' hash differs from :func:`sensitivity_params_hash`);
* :class:`SensitivityMeter` is the probe the rollout engine calls for each chunk while its
  bank exists (``run_rollouts(..., sensitivity=SensitivityMeter(params))``); the partition
  writer stores the result.

Everything here is deterministic given the specs, initial conditions, device kind and
``eval_batch``: no global random state is touched.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

import numpy as np
import torch

from spinlock_core.features.families.base import FAMILY_REGISTRY
from spinlock_core.features.families.operator_sensitivity import (
    PREFIX,
    OperatorSensitivityConfig,
    OperatorSensitivityFamily,
    value_tag,
)
from spinlock_core.operators.bank import OperatorBank, StochasticDraws, bucket_key
from spinlock_core.operators.spec import OperatorSpec
from spinlock_core.rollout.engine import PRECISIONS

__all__ = [
    "SENSITIVITY_VERSION",
    "SENSITIVITY_SPAWN_KEY",
    "sensitivity_feature_names",
    "sensitivity_params_json",
    "sensitivity_params_hash",
    "perturbation_direction",
    "measure_sensitivity",
    "sensitivity_for_specs",
    "SensitivityMeter",
]

#: Version of the measurement's definitions (part of the parameters' hash: a change re-measures).
SENSITIVITY_VERSION = "1"
#: Constant spawn key of the perturbation-direction stream under a sample's weight seed ("SENS").
SENSITIVITY_SPAWN_KEY = 0x53454E53
_RMS_FLOOR = 1e-6
_TINY = 1e-30
_GAIN_STD_FLOOR = 1e-2  # SS_tot of the gain-curve fit is floored at P * floor^2 (near-flat curves: R^2 -> 1)


def _family() -> OperatorSensitivityFamily:
    fam = FAMILY_REGISTRY["operator_sensitivity"]
    assert isinstance(fam, OperatorSensitivityFamily)  # registered by its module's import above
    return fam


def sensitivity_feature_names(params: OperatorSensitivityConfig, num_channels: int) -> list[str]:
    """Columns measured under ``params`` for ``num_channels`` channels (selected, not masked), in order.

    Features whose ``min_channels`` exceeds ``num_channels`` are left out (the driver masks
    them with their recorded reason). Empty when the family is disabled.
    """
    return [s.name for s in _family().selected(params) if s.mask_reason(num_channels, 1 << 30) is None]


def sensitivity_params_json(params: OperatorSensitivityConfig) -> str:
    """Canonical JSON of the family config (stored as the dataset's ``params`` attribute)."""
    return json.dumps(params.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def sensitivity_params_hash(params: OperatorSensitivityConfig) -> str:
    """16 hex digits of SHA-256 over the family config and :data:`SENSITIVITY_VERSION`."""
    text = json.dumps(
        {"version": SENSITIVITY_VERSION, "params": json.loads(sensitivity_params_json(params))},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def perturbation_direction(spec: OperatorSpec, c: int, h: int, w: int) -> np.ndarray:
    """The sample's perturbation direction ``u [C, H, W]`` float32, unit RMS.

    Standard normal draws of numpy's PCG64 seeded with
    ``SeedSequence(spec.weight_seed, spawn_key=(SENSITIVITY_SPAWN_KEY,))``: a function of the
    sample (and grid) only, identical on every device and in every batch.
    """
    seq = np.random.SeedSequence(int(spec.weight_seed), spawn_key=(SENSITIVITY_SPAWN_KEY,))
    z = np.random.Generator(np.random.PCG64(seq)).standard_normal((c, h, w))
    return (z / math.sqrt(float(np.mean(z * z)))).astype(np.float32)


def _plan(params: OperatorSensitivityConfig, names: Sequence[str]) -> list[tuple[str, int]]:
    """Evaluations needed for ``names``: ("base", 0), ("plus", k), ("minus", K-1), ("alpha", j)."""
    want = {n[len(PREFIX) :] for n in names}
    eps = list(params.lipschitz_eps)
    k_max, k_mid = len(eps) - 1, len(eps) // 2
    plus = {k for k, e in enumerate(eps) if f"lipschitz_eps{value_tag(e)}" in want}
    if "channel_consistency" in want:
        plus.add(k_mid)
    if want & {"asymmetry", "curvature"}:
        plus.add(k_max)
    if "lipschitz_spread" in want:
        plus |= {0, k_max}
    plan = [("base", 0)] + [("plus", k) for k in sorted(plus)]
    if want & {"asymmetry", "curvature"}:
        plan.append(("minus", k_max))
    gain_derived = {"gain_linearity_r2", "gain_exponent", "compression", "saturation"}
    if want & gain_derived or any(n.startswith("gain_alpha") for n in want):
        plan += [("alpha", j) for j in range(len(params.gain_alphas))]
    return plan


def _norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm over everything but the leading (operator) axis."""
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)


def _fit_slope_r2(xv: torch.Tensor, yv: torch.Tensor, ss_floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares slope and ``R^2 = 1 - SS_res / max(SS_tot, ss_floor)`` of ``y`` on ``x`` (``[G, P]`` float64)."""
    xm = xv - xv.mean(1, keepdim=True)
    ym = yv - yv.mean(1, keepdim=True)
    sxx = xm.square().sum(1)
    sxy = (xm * ym).sum(1)
    syy = ym.square().sum(1)
    slope = sxy / sxx
    ss_res = (syy - sxy.square() / sxx).clamp_min(0.0)
    den = syy.clamp_min(ss_floor) if ss_floor > 0 else syy
    r2 = torch.where(den > 0, (1.0 - ss_res / den.clamp_min(_TINY)).clamp(0.0, 1.0), torch.ones_like(syy))
    return slope, r2


def measure_sensitivity(
    bank: OperatorBank,
    x: torch.Tensor,
    draws: StochasticDraws,
    params: OperatorSensitivityConfig,
    *,
    eval_batch: int | None = None,
) -> torch.Tensor:
    """Sensitivity features of every operator of ``bank`` at its input ``x``.

    Args:
        bank: G operators (any precision; the evaluations run in the bank's precision; use a
            float32 bank for trustworthy small-eps differences).
        x: ``[G, C, H, W]`` (or ``[1, G·C, H, W]``) inputs, one per operator: their initial conditions.
        draws: step 1's :class:`StochasticDraws` of the bank (realization 0 is used and held fixed).
        params: the family config (scales, factors, selected features).
        eval_batch: perturbed inputs per forward pass (default ``bank.num_realizations``, so
            activations never exceed the rollout's own).

    Returns:
        ``[G, F]`` float32 on the bank's device, columns :func:`sensitivity_feature_names`;
        NaN only where an evaluation is non-finite.
    """
    names = sensitivity_feature_names(params, bank.c)
    g, c, dev = bank.g, bank.c, bank.device
    h, w = x.shape[-2:]
    if not names:
        return torch.zeros(g, 0, device=dev)
    x = x.to(device=dev, dtype=torch.float32).reshape(g, c, h, w)
    batch = max(1, int(eval_batch or bank.m))
    fixed = StochasticDraws(noise=draws.noise[:1], keep=[k[:1] for k in draws.keep])
    eps, alphas = list(params.lipschitz_eps), list(params.gain_alphas)
    k_max, k_mid = len(eps) - 1, len(eps) // 2
    u = torch.from_numpy(np.stack([perturbation_direction(s, c, h, w) for s in bank.specs])).to(dev)
    scale = x.square().mean(dim=(1, 2, 3)).sqrt().clamp_min(_RMS_FLOOR).view(g, 1, 1, 1)
    plan = _plan(params, names)

    def make_input(kind: str, i: int) -> torch.Tensor:
        if kind == "base":
            return x
        if kind == "plus":
            return x + (eps[i] * scale) * u
        if kind == "minus":
            return x - (eps[i] * scale) * u
        return alphas[i] * x

    o0: torch.Tensor | None = None
    op_max = om_max = None
    lip_num: dict[int, torch.Tensor] = {}
    lip_den: dict[int, torch.Tensor] = {}
    chan: torch.Tensor | None = None
    gain_num: dict[int, torch.Tensor] = {}
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        for start in range(0, len(plan), batch):
            part = plan[start : start + batch]
            inputs = [make_input(kind, i) for kind, i in part]
            out = bank.forward(torch.stack(inputs).view(len(part), g * c, h, w), fixed, 1)
            out = out[: len(part)].view(len(part), g, c, h, w).float()
            for r, ((kind, i), inp) in enumerate(zip(part, inputs)):
                o = out[r]
                if kind == "base":
                    o0 = o
                    continue
                assert o0 is not None  # "base" is the plan's first entry
                if kind == "alpha":
                    gain_num[i] = _norm(o)
                    continue
                diff = o - o0
                if kind == "minus":
                    om_max = o
                    continue
                lip_num[i] = _norm(diff)
                lip_den[i] = _norm(inp - x)
                if i == k_mid:
                    chan = torch.linalg.vector_norm(diff.reshape(g, c, h * w), dim=2)  # [G, C]
                if i == k_max:
                    op_max = o
    assert o0 is not None
    base_norm = _norm(o0)
    x_norm = _norm(x).clamp_min(_RMS_FLOOR * math.sqrt(c * h * w))
    vals: dict[str, torch.Tensor] = {"base_gain": base_norm / x_norm}
    lips = {k: lip_num[k] / lip_den[k].clamp_min(_TINY) for k in lip_num}
    for k, v in lips.items():
        vals[f"lipschitz_eps{value_tag(eps[k])}"] = v
    if 0 in lips and k_max in lips:
        vals["lipschitz_spread"] = torch.log10(lips[k_max].clamp_min(_TINY) / lips[0].clamp_min(_TINY))
    if gain_num:
        gains = torch.stack([gain_num[j] / base_norm.clamp_min(_TINY) for j in range(len(alphas))], dim=1)  # [G, A]
        for j, a in enumerate(alphas):
            vals[f"gain_alpha{value_tag(a)}"] = gains[:, j]
        gd = torch.cat([gains.double(), torch.ones(g, 1, dtype=torch.float64, device=dev)], dim=1)
        ad = torch.tensor([*alphas, 1.0], dtype=torch.float64, device=dev).expand(g, -1)
        _, r2 = _fit_slope_r2(ad, gd, ss_floor=gd.shape[1] * _GAIN_STD_FLOOR**2)
        vals["gain_linearity_r2"] = r2.float()
        k_exp, _ = _fit_slope_r2(ad.log(), gd.clamp_min(_TINY).log())
        vals["gain_exponent"] = k_exp.float()
        a_min, a_max = alphas[0], alphas[-1]
        vals["compression"] = (gains[:, 0] / a_min) / (gains[:, -1] / a_max).clamp_min(_TINY)
        vals["saturation"] = 1.0 - (gains[:, -1] - 1.0) / (a_max - 1.0)
    if op_max is not None and om_max is not None:
        d_plus = lip_num[k_max]
        d_minus = _norm(om_max - o0)
        vals["asymmetry"] = torch.where(
            d_plus + d_minus > 0,
            (d_plus - d_minus).abs() / (d_plus + d_minus).clamp_min(_TINY),
            torch.zeros_like(d_plus),
        )
        num = _norm(op_max + om_max - 2.0 * o0)
        den = _norm(op_max - om_max)
        vals["curvature"] = torch.where(den > 0, num / den.clamp_min(_TINY), torch.zeros_like(den))
    if chan is not None and c >= 2:
        mean = chan.mean(dim=1)
        cv = chan.std(dim=1, unbiased=False) / mean.clamp_min(_TINY)
        vals["channel_consistency"] = torch.where(mean > 0, 1.0 - cv / math.sqrt(c - 1), torch.ones_like(mean))
    res = torch.stack([vals[n[len(PREFIX) :]].float() for n in names], dim=1)
    return torch.where(torch.isfinite(res), res, torch.full_like(res, float("nan")))


def sensitivity_for_specs(
    specs: Sequence[OperatorSpec],
    ics: torch.Tensor | np.ndarray,
    params: OperatorSensitivityConfig,
    device: torch.device | str = "cpu",
    precision: str = "float32",
    *,
    operators_per_chunk: int = 64,
    eval_batch: int = 3,
    conv_mode: str = "auto",
    width_quantum: int | None = None,
) -> np.ndarray:
    """Rebuild the operators of ``specs`` (same weights and seeds) and measure them.

    Args:
        specs: n operator specs.
        ics: ``[n, C, H, W]`` initial conditions (``ics[i]`` for ``specs[i]``).
        params: the family config.
        device: where to compute (noise draws are device-specific, as in the rollout).
        precision: the banks' precision; keep ``"float32"`` (the rollout always measures in float32).
        operators_per_chunk: most operators per bank; eval_batch: perturbed inputs per forward
            (the rollout uses M); conv_mode, width_quantum: as in :func:`run_rollouts`.

    Returns:
        ``[n, F]`` float32 (columns :func:`sensitivity_feature_names`), rows in ``specs`` order.
    """
    ics_t = torch.as_tensor(np.asarray(ics, dtype=np.float32)) if isinstance(ics, np.ndarray) else ics
    n, c, h, w = ics_t.shape
    if n != len(specs):
        raise ValueError(f"got {len(specs)} specs but {n} initial conditions")
    names = sensitivity_feature_names(params, c)
    out = np.full((n, len(names)), np.nan, dtype=np.float32)
    if n == 0 or not names:
        return out
    dev = torch.device(device)
    quantum = width_quantum or (16 if dev.type == "cuda" else 4)
    buckets: dict = {}
    for pos, s in enumerate(specs):
        buckets.setdefault(bucket_key(s, quantum), []).append(pos)
    with torch.inference_mode():
        for key in sorted(buckets):
            members = sorted(
                buckets[key], key=lambda p: (str(specs[p].params["activation"]), str(specs[p].params["noise_type"]), p)
            )
            for i in range(0, len(members), operators_per_chunk):
                rows = members[i : i + operators_per_chunk]
                sub = [specs[p] for p in rows]
                bank = OperatorBank(
                    sub,
                    key.width,
                    num_realizations=1,
                    num_steps=1,
                    device=dev,
                    dtype=PRECISIONS[precision],
                    conv_mode=conv_mode,
                )
                draws = bank.draw(1, [[s.noise_seed(0)] for s in sub], h, w)
                vals = measure_sensitivity(bank, ics_t[rows].to(dev), draws, params, eval_batch=eval_batch)
                out[rows] = vals.cpu().numpy()
    return out


class SensitivityMeter:
    """The rollout engine's :class:`~spinlock_core.rollout.SensitivityProbe` for family config ``params``."""

    def __init__(self, params: OperatorSensitivityConfig) -> None:
        self.params = params

    def measure(self, bank: OperatorBank, ics: torch.Tensor, draws: StochasticDraws, eval_batch: int) -> torch.Tensor:
        return measure_sensitivity(bank, ics, draws, self.params, eval_batch=eval_batch)
