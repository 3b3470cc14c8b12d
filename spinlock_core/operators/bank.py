"""A bank of G operators executed together: padded, stacked weights; one pass per layer.

Operators with the same :class:`BucketKey` (depth, kernel size, padded base width, whether
dropout makes the trunk stochastic) share a layer structure. Their weights are zero-padded to
the bucket width and stacked, and activations travel as ``[R, G·Cp, H, W]`` (see
:mod:`spinlock_core.operators.layers`). Convolutions run either as one grouped convolution
per layer (``conv_mode="grouped"``, the CUDA default: one launch for all operators) or as a
loop of dense convolutions over the operators' channel slices (``"loop"``, the CPU default,
where dense kernels are faster than grouped ones). Normalisation, activations, dropout, noise
and the update are elementwise over the whole bank.

Deterministic work is never repeated per realization: while all realizations share their
input (the first step from the shared initial condition) the trunk runs once (R = 1) and is
expanded to the M realizations only at the first stochastic element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from spinlock_core.operators.architecture import hidden_widths, init_unit_params, unit_plan
from spinlock_core.operators.layers import (
    apply_activation,
    correlate_noise,
    gaussian_filter_spectrum,
    laplace_from_normal,
    norm_groups,
    normalize_stacked,
)
from spinlock_core.operators.spec import OperatorSpec
from spinlock_core.seeding import step_seed

__all__ = ["BucketKey", "bucket_key", "OperatorBank", "StochasticDraws", "schedule_factor"]


@dataclass(frozen=True, order=True)
class BucketKey:
    num_layers: int
    kernel_size: int
    width: int  # padded base width
    stochastic_trunk: bool  # any dropout_rate > 0


def bucket_key(spec: OperatorSpec, quantum: int) -> BucketKey:
    """Bucket of ``spec`` when base widths are padded up to a multiple of ``quantum``."""
    p = spec.params
    b = int(p["base_channels"])
    return BucketKey(
        int(p["num_layers"]), int(p["kernel_size"]), -(-b // quantum) * quantum, float(p["dropout_rate"]) > 0
    )


def schedule_factor(schedule: str, step: int, num_steps: int, period: float) -> float:
    """Multiplier of the noise scale at rollout step ``step`` (1-based) of ``num_steps``.

    constant: 1; annealing: ``1 - (step-1)/num_steps`` (linear from 1 towards 0);
    periodic: ``1 + ½ sin(2π step / period)``.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "annealing":
        return 1.0 - (step - 1) / num_steps
    if schedule == "periodic":
        return 1.0 + 0.5 * math.sin(2.0 * math.pi * step / period)
    raise ValueError(f"unknown noise_schedule {schedule!r} (allowed: constant, annealing, periodic)")


@dataclass
class StochasticDraws:
    """One step's random draws for every (realization, operator) of a bank."""

    noise: torch.Tensor  # [M, G, Cl, H, W] standard normal (zero on padded channels)
    keep: list[torch.Tensor]  # per hidden block: [M, G·Cp_i, 1, 1] dropout keep / (1-p) (empty if none)


class _StackedUnit:
    def __init__(self, params, units, g: int, cin_p: int, cout_p: int, device, dtype):
        u0 = units[0]
        k = u0.kernel
        w = torch.zeros(g, cout_p, cin_p, k, k, device=device)
        b = torch.zeros(g, cout_p, device=device)
        gamma, beta = torch.zeros(g, cout_p, device=device), torch.zeros(g, cout_p, device=device)
        gid = torch.zeros(g, cout_p, dtype=torch.long)
        mask = torch.zeros(g, cout_p, dtype=torch.bool)
        for i, (p, u) in enumerate(zip(params, units)):
            w[i, : u.cout, : u.cin] = p.weight
            if p.bias is not None:
                b[i, : u.cout] = p.bias
            gamma[i, : u.cout], beta[i, : u.cout] = p.gamma, p.beta
            groups = norm_groups(u.norm, u.cout)
            if groups is not None:
                gid[i, : u.cout] = torch.tensor(groups)
                mask[i, : u.cout] = True
        ng = int(gid.max()) + 1
        count = torch.zeros(g, ng).scatter_add_(1, gid, mask.float()).clamp_min_(1.0)
        self.g, self.k, self.cin_p, self.cout_p = g, k, cin_p, cout_p
        self.weight = w.reshape(g * cout_p, cin_p, k, k).to(device=device, dtype=dtype)
        self.bias = b.reshape(-1).to(device=device, dtype=dtype) if u0.bias else None
        self.normed = u0.role != "proj" and u0.role != "out"
        self.gid, self.count = gid.to(device), count.to(device)
        self.stat_mask, self.gamma, self.beta = mask.to(device), gamma, beta

    def conv(self, x: torch.Tensor, grouped: bool) -> torch.Tensor:
        p = self.k // 2
        if p:
            x = F.pad(x, (p, p, p, p), mode="circular")
        if grouped:
            return F.conv2d(x, self.weight, self.bias, groups=self.g)
        outs = []
        for i in range(self.g):
            wi = self.weight[i * self.cout_p : (i + 1) * self.cout_p]
            bi = None if self.bias is None else self.bias[i * self.cout_p : (i + 1) * self.cout_p]
            outs.append(F.conv2d(x[:, i * self.cin_p : (i + 1) * self.cin_p].contiguous(), wi, bi))
        return torch.cat(outs, dim=1)

    def norm(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_stacked(x, self.g, self.gid, self.count, self.stat_mask, self.gamma, self.beta)


class OperatorBank:
    """G operators of one bucket, ready to step.

    Args:
        specs: operators of one bucket (same :class:`BucketKey`); their order is kept.
        width: the bucket's padded base width.
        num_realizations: M.
        num_steps: total rollout steps (for the annealing schedule).
        device, dtype: where and in which precision the convolutions run.
        conv_mode: "grouped", "loop" or "auto" (grouped on CUDA, loop on CPU).
    """

    def __init__(
        self,
        specs: Sequence[OperatorSpec],
        width: int,
        *,
        num_realizations: int,
        num_steps: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        conv_mode: str = "auto",
    ) -> None:
        if conv_mode not in ("auto", "grouped", "loop"):
            raise ValueError(f"conv_mode must be auto, grouped or loop, got {conv_mode!r}")
        self.specs = list(specs)
        self.g = len(self.specs)
        self.m = num_realizations
        self.num_steps = num_steps
        self.device, self.dtype = torch.device(device), dtype
        self.grouped = conv_mode == "grouped" or (conv_mode == "auto" and self.device.type == "cuda")
        s0 = self.specs[0]
        self.c = s0.num_channels
        self.num_layers = int(s0.params["num_layers"])
        self.residual = self.num_layers > 3
        self.widths_p = hidden_widths(width, self.num_layers)
        plans = [unit_plan(s) for s in self.specs]
        params = [init_unit_params(s, self.device) for s in self.specs]
        self._build_units(plans, params)
        self._build_op_tables()

    # ------------------------------------------------------------------ construction
    def _build_units(self, plans, params) -> None:
        units = []
        cur = self.c  # padded width flowing along the main path
        for j, u in enumerate(plans[0]):
            if u.role == "in":
                cin, cout = self.c, self.widths_p[0]
            elif u.role == "hidden":
                cin, cout = cur, self.widths_p[u.block]
            elif u.role == "proj":
                cin = self.widths_p[u.block - 1] if u.block > 0 else self.widths_p[0]
                cout = self.widths_p[u.block]
            else:  # out
                cin, cout = self.widths_p[-1], self.c
            col_plan = [pl[j] for pl in plans]
            col_par = [pa[j] for pa in params]
            units.append(_StackedUnit(col_par, col_plan, self.g, cin, cout, self.device, self.dtype))
            if u.role in ("in", "hidden"):
                cur = cout
        self.units = units
        self.plan_roles = [(u.role, u.block) for u in plans[0]]

    def _build_op_tables(self) -> None:
        ps = [s.params for s in self.specs]
        dev = self.device
        # contiguous activation slices (callers sort specs by activation for fewest slices)
        self.act_slices: list[tuple[str, int, int]] = []
        for i, p in enumerate(ps):
            a = str(p["activation"])
            if self.act_slices and self.act_slices[-1][0] == a:
                self.act_slices[-1] = (a, self.act_slices[-1][1], i + 1)
            else:
                self.act_slices.append((a, i, i + 1))
        self.noise_types = [str(p["noise_type"]) for p in ps]
        self.noise_scale = [float(p["noise_scale"]) for p in ps]
        self.schedules = [(str(p["noise_schedule"]), float(p["schedule_period"])) for p in ps]
        self.dropout = [float(p["dropout_rate"]) for p in ps]
        self.true_widths = [hidden_widths(int(p["base_channels"]), self.num_layers) for p in ps]
        rho = torch.tensor([float(p["spatial_correlation"]) for p in ps])
        self.corr_idx = torch.nonzero(rho > 0).flatten().tolist()
        self.rho = rho
        self._transfer_cache: dict[tuple[int, int], torch.Tensor] = {}
        self.type_idx = {
            t: torch.tensor([i for i, n in enumerate(self.noise_types) if n == t], device=dev, dtype=torch.long)
            for t in set(self.noise_types)
        }

    # ------------------------------------------------------------------ randomness
    def draw(self, step: int, noise_seeds: Sequence[Sequence[int]], h: int, w: int) -> StochasticDraws:
        """Draw step ``step``'s noise and dropout masks from each (operator, realization) stream.

        ``noise_seeds[g][m]`` is the base seed of operator g's realization m. Each stream is
        reseeded with ``step_seed(base, step)`` and draws, in order, the dropout keep masks of
        the hidden blocks (uniforms over the true channels, only when ``dropout_rate > 0``)
        and then the standard-normal noise field over the true last-layer channels.
        """
        cl_p = self.widths_p[-1]
        noise = torch.zeros(self.m, self.g, cl_p, h, w, device=self.device, dtype=torch.float32)
        keep = []
        if any(p > 0 for p in self.dropout):
            keep = [torch.ones(self.m, self.g, cp, device=self.device) for cp in self.widths_p]
        gen = torch.Generator(device=self.device)
        for g in range(self.g):
            p = self.dropout[g]
            widths = self.true_widths[g]
            for m in range(self.m):
                gen.manual_seed(step_seed(noise_seeds[g][m], step))
                if p > 0:
                    for i, ci in enumerate(widths):
                        u = torch.rand(ci, generator=gen, device=self.device)
                        keep[i][m, g, :ci] = (u >= p).float() / (1.0 - p)
                noise[m, g, : widths[-1]].normal_(generator=gen)
        keep = [k.view(self.m, -1, 1, 1).to(self.dtype) for k in keep]
        return StochasticDraws(noise=noise, keep=keep)

    def _transfer(self, h: int, w: int) -> torch.Tensor:
        key = (h, w)
        if key not in self._transfer_cache:
            self._transfer_cache[key] = gaussian_filter_spectrum(self.rho[self.corr_idx], h, w, self.device)
        return self._transfer_cache[key]

    # ------------------------------------------------------------------ forward
    def _act(self, x: torch.Tensor, width_p: int) -> torch.Tensor:
        r, _, h, w = x.shape
        xv = x.view(r, self.g, width_p, h, w)
        for name, a, b in self.act_slices:
            if name != "none":
                xv[:, a:b] = apply_activation(xv[:, a:b], name)
        return x

    def _unit(self, x: torch.Tensor, j: int) -> torch.Tensor:
        u = self.units[j]
        y = u.conv(x, self.grouped)
        if u.normed:
            y = u.norm(y)
            y = self._act(y, u.cout_p)
        return y

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(self.m, *x.shape[1:]).contiguous() if x.shape[0] == 1 else x

    def _noise_head(self, hid: torch.Tensor, draws: StochasticDraws, step: int) -> torch.Tensor:
        hid = self._expand(hid)
        m, _, h, w = hid.shape
        cl_p = self.widths_p[-1]
        z = draws.noise
        if self.corr_idx:
            idx = torch.tensor(self.corr_idx, device=self.device)
            z = z.clone()
            z[:, idx] = correlate_noise(z[:, idx], self._transfer(h, w))
        scale = torch.tensor(
            [
                min(s * schedule_factor(sch, step, self.num_steps, per), 0.95 if t == "dropout" else float("inf"))
                for s, (sch, per), t in zip(self.noise_scale, self.schedules, self.noise_types)
            ],
            device=self.device,
        ).view(1, self.g, 1, 1, 1)
        hv = hid.view(m, self.g, cl_p, h, w)
        out = torch.empty_like(hv)
        for t, idx in self.type_idx.items():
            hs, zs, ss = hv[:, idx], z[:, idx], scale[:, idx]
            if t == "gaussian":
                res = hs + (ss * zs).to(hs.dtype)
            elif t == "laplace":
                res = hs + (ss * laplace_from_normal(zs)).to(hs.dtype)
            elif t == "multiplicative":
                res = hs * (1.0 + ss * zs).to(hs.dtype)
            else:  # dropout: drop where Φ(z) < p, rescale the kept units by 1/(1-p)
                thresh = math.sqrt(2.0) * torch.erfinv(2.0 * ss - 1.0)
                res = hs * ((zs >= thresh).float() / (1.0 - ss)).to(hs.dtype)
            out[:, idx] = res
        return out.view(m, self.g * cl_p, h, w)

    def forward(self, x: torch.Tensor, draws: StochasticDraws, step: int) -> torch.Tensor:
        """One operator evaluation ``O(x)`` for every operator and realization.

        Args:
            x: ``[R, G·C, H, W]`` states (R = 1: all realizations share x; else R = M).
            draws: the step's :class:`StochasticDraws`.
            step: rollout step (1-based), for the noise schedule.

        Returns:
            ``[M, G·C, H, W]`` float32 operator outputs.
        """
        x = x.to(self.dtype)
        j = 0
        hid = self._unit(x, j)
        j += 1
        for blk in range(self.num_layers):
            if self.residual:
                a = self._unit(hid, j)
                a = self._unit(a, j + 1)
                j += 2
                if j < len(self.plan_roles) and self.plan_roles[j][0] == "proj":
                    skip = self.units[j].conv(hid, self.grouped)
                    j += 1
                else:
                    skip = hid
                hid = a + skip
            else:
                hid = self._unit(hid, j)
                j += 1
            if draws.keep:
                hid = self._expand(hid) * draws.keep[blk]
        hid = self._noise_head(hid, draws, step)
        out = self.units[j].conv(hid, self.grouped)
        return out.float()
