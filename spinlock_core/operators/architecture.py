"""Operator architecture and weight initialisation, one operator at a time (true, unpadded shapes).

Architecture (all convolutions use circular padding: the domain is periodic):

1. input unit: ``conv k×k (C → b)`` + normalisation + activation;
2. ``num_layers`` hidden blocks, block i of width ``c_i = b · 2^min(i, 2)``:
   a single unit ``conv k×k + norm + act`` when ``num_layers ≤ 3``, otherwise a residual block
   of two such units plus a skip path (``conv 1×1`` without bias when the width changes);
   each block ends with channel dropout (``dropout_rate``, redrawn per realization and step);
3. the stochastic head (``noise_type`` at ``noise_scale`` under ``noise_schedule``, spatially
   correlated with length ``spatial_correlation``) on the last hidden map;
4. output unit: ``conv 1×1 (c_last → C)`` with bias, no normalisation or activation.

Initialisation (drawn on the compute device from the sample's weight seed, so any sample
rebuilds exactly on the same kind of device; building weights where they are used keeps
operator construction off the host's critical path): conv weights ``U(-a, a)`` with ``a = gain · sqrt(3 / fan_in)`` (variance
preserving, ``gain`` from the activation; 1 for the skip and output units); biases
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; ``batch`` normalisation = eval-mode batch norm with
random running statistics (mean ``N(0, 0.5²)``, variance ``U(0.5, 2)``), folded into a
per-channel affine. Draw order: units in network order, and within a unit weight, bias,
running mean, running variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from spinlock_core.operators.layers import ACTIVATION_GAIN, EPS
from spinlock_core.operators.spec import OperatorSpec

__all__ = ["Unit", "UnitParams", "unit_plan", "init_unit_params", "hidden_widths"]


@dataclass(frozen=True)
class Unit:
    """One convolution unit of the plan.

    ``role`` is "in", "hidden", "proj" (skip projection) or "out"; ``block`` the hidden block
    it belongs to (-1 for in/out).
    """

    role: str
    block: int
    cin: int
    cout: int
    kernel: int
    bias: bool
    norm: str
    activation: str
    gain: float


@dataclass
class UnitParams:
    """Initialised tensors of one unit (float32, true shapes, on the device they were drawn on)."""

    weight: torch.Tensor  # [cout, cin, k, k]
    bias: torch.Tensor | None  # [cout]
    gamma: torch.Tensor  # [cout] affine after normalisation (folded running stats for batch)
    beta: torch.Tensor  # [cout]


def hidden_widths(base: int, num_layers: int) -> list[int]:
    """Widths of the hidden blocks: ``base · 2^min(i, 2)``."""
    return [base * 2 ** min(i, 2) for i in range(num_layers)]


def unit_plan(spec: OperatorSpec) -> list[Unit]:
    """The operator's units in network (and weight-draw) order."""
    p = spec.params
    c = spec.num_channels
    b, n_layers, k = int(p["base_channels"]), int(p["num_layers"]), int(p["kernel_size"])
    act, norm = str(p["activation"]), str(p["normalization"])
    gain = ACTIVATION_GAIN[act]
    units = [Unit("in", -1, c, b, k, True, norm, act, gain)]
    cin = b
    residual = n_layers > 3
    for i, ci in enumerate(hidden_widths(b, n_layers)):
        if residual:
            units.append(Unit("hidden", i, cin, ci, k, True, norm, act, gain))
            units.append(Unit("hidden", i, ci, ci, k, True, norm, act, gain))
            if cin != ci:
                units.append(Unit("proj", i, cin, ci, 1, False, "none", "none", 1.0))
        else:
            units.append(Unit("hidden", i, cin, ci, k, True, norm, act, gain))
        cin = ci
    units.append(Unit("out", -1, cin, c, 1, True, "none", "none", 1.0))
    return units


def init_unit_params(spec: OperatorSpec, device: torch.device | str = "cpu") -> list[UnitParams]:
    """Draw every unit's tensors from the spec's weight seed with a generator on ``device``."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(spec.weight_seed))
    out = []
    for u in unit_plan(spec):
        fan_in = u.cin * u.kernel * u.kernel
        a = u.gain * math.sqrt(3.0 / fan_in)
        w = torch.empty(u.cout, u.cin, u.kernel, u.kernel, device=dev).uniform_(-a, a, generator=gen)
        bias = None
        if u.bias:
            bb = 1.0 / math.sqrt(fan_in)
            bias = torch.empty(u.cout, device=dev).uniform_(-bb, bb, generator=gen)
        gamma, beta = torch.ones(u.cout, device=dev), torch.zeros(u.cout, device=dev)
        if u.norm == "batch":
            mean = torch.empty(u.cout, device=dev).normal_(0.0, 0.5, generator=gen)
            var = torch.empty(u.cout, device=dev).uniform_(0.5, 2.0, generator=gen)
            gamma = torch.rsqrt(var + EPS)
            beta = -mean * gamma
        out.append(UnitParams(w, bias, gamma, beta))
    return out
