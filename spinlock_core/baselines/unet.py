"""A small periodic 2-D UNet, and the forecaster wrapper that makes any backbone a residual model.

Spinlock's domain is the periodic unit square (``spinlock_core/ics/grid.py``; every operator
convolution pads circularly, ``spinlock_core/operators/architecture.py``), so every
convolution here pads circularly too, downsampling is a 2 x 2 average and upsampling a stride-2
transposed convolution (neither needs padding): the UNet is equivariant to periodic shifts by
multiples of ``2 ** depth`` pixels.

:class:`Forecaster` wraps a backbone ``[B, k*C, g, g] (+ cond [B, D]) -> [B, h*C, g, g]``:

1. **per-item scale**: ``sigma [B, C]``, the RMS of each channel over the ``k`` input frames
   (at least ``scale_floor``), divides the input, and multiplies the output. Spinlock's fields
   span six orders of magnitude across operators (target RMS from 1e-3 to 4e3 in the default
   dataset), which no single normalisation constant tames;
2. **residual** (delta) prediction: the backbone's ``h`` outputs are one-step increments
   (in units of ``sigma``), so ``x[t + j] = x[t] + sigma * (d_1 + ... + d_j)``; the backbone's
   last layer starts at zero (:class:`UNet2d`), so an untrained model *is* persistence;
3. **conditioning** (optional): ``cond = [params, one-hots, log sigma]`` (the operator's
   unit-cube Sobol point ``[P]``, categorical labels such as the update policy one-hot, and the
   scales ``[C]`` that step 1 hid), for backbones that take it (FiLM and the linear bypass in
   :class:`UNet2d`; constant input channels in ``examples/train_fno.py``).

Shapes: ``x [B, k, C, g, g]`` in, ``[B, h, C, g, g]`` out, in the units of ``x``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet2d", "Forecaster"]


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class _Block(nn.Module):
    """Two circular 3 x 3 convolutions with GroupNorm and GELU, a FiLM of the embedded condition, a skip."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="circular")
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, padding_mode="circular")
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.film = nn.Linear(cond_dim, 2 * c_out) if cond_dim > 0 else None
        if self.film is not None:  # start as no modulation
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(F.gelu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None and cond is not None:
            scale, shift = self.film(cond).chunk(2, dim=-1)
            h = h * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        h = self.conv2(F.gelu(h))
        return h + self.skip(x)


class UNet2d(nn.Module):
    """A periodic UNet ``[B, in_channels, g, g] (+ cond [B, cond_dim]) -> [B, out_channels, g, g]``.

    Args:
        in_channels, out_channels: stacked input / output channels (``k*C`` and ``h*C`` in a
            :class:`Forecaster`).
        width: channels of the first level; level ``i`` has ``width * 2**i``.
        depth: levels below the first (each halves the grid): ``g`` must be divisible by ``2**depth``.
        cond_dim: length of the conditioning vector (0: none); embedded by a two-layer MLP
            (``2 * width`` wide), then a FiLM (per-channel scale and shift) in every block.

    Besides the UNet path, a **linear bypass** adds ``A x`` pointwise, ``A [out, in]`` a learned
    matrix plus (with a condition) one predicted from it: the policy-aware linear extrapolation
    ``x[t+1] ~ x[t] + a (x[t] - x[t-1])`` that Spinlock's residual and convex updates make nearly
    exact is one matrix, which a deep nonlinear path learns only roughly. The output
    convolution and the bypass start at zero (the forecast starts as persistence).
    """

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 32, depth: int = 2, cond_dim: int = 0):
        super().__init__()
        if min(in_channels, out_channels, width) < 1 or depth < 0 or cond_dim < 0:
            raise ValueError(f"bad UNet2d sizes: in {in_channels}, out {out_channels}, width {width}, depth {depth}")
        self.depth, self.cond_dim = depth, cond_dim
        embed = 2 * width if cond_dim else 0  # the condition's embedding, FiLM-ed into every block
        self.embed = nn.Sequential(nn.Linear(cond_dim, embed), nn.GELU(), nn.Linear(embed, embed)) if cond_dim else None
        widths = [width * 2**i for i in range(depth + 1)]
        self.lift = nn.Conv2d(in_channels, widths[0], 3, padding=1, padding_mode="circular")
        self.down = nn.ModuleList(_Block(widths[i], widths[i], embed) for i in range(depth))
        self.pool_proj = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 1) for i in range(depth))
        self.mid = _Block(widths[depth], widths[depth], embed)
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth))
        self.up = nn.ModuleList(_Block(2 * widths[i], widths[i], embed) for i in range(depth))
        self.head_norm = nn.GroupNorm(_groups(widths[0]), widths[0])
        self.head = nn.Conv2d(widths[0], out_channels, 1, bias=False)
        nn.init.zeros_(self.head.weight)
        # linear bypass: out += A x pointwise, A [out, in] (from the condition when there is one)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bypass = nn.Linear(embed, out_channels * in_channels) if cond_dim else None
        self.bypass_fixed = nn.Parameter(torch.zeros(out_channels, in_channels))
        if self.bypass is not None:
            nn.init.zeros_(self.bypass.weight)
            nn.init.zeros_(self.bypass.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        g1, g2 = x.shape[-2:]
        step = 2**self.depth
        if g1 % step or g2 % step:
            raise ValueError(f"grid {g1}x{g2} is not divisible by 2**depth = {step}")
        if self.cond_dim and (cond is None or cond.shape[-1] != self.cond_dim):
            raise ValueError(f"this UNet2d needs cond [B, {self.cond_dim}]")
        if self.embed is not None and cond is not None:
            cond = self.embed(cond)
        else:
            cond = None
        h = self.lift(x)
        skips = []
        for block, proj in zip(self.down, self.pool_proj):
            h = block(h, cond)
            skips.append(h)
            h = proj(F.avg_pool2d(h, 2))
        h = self.mid(h, cond)
        for i in reversed(range(self.depth)):
            h = self.upsample[i](h)
            h = self.up[i](torch.cat([h, skips[i]], dim=1), cond)
        mix = self.bypass_fixed.expand(x.shape[0], -1, -1)
        if self.bypass is not None and cond is not None:
            mix = mix + self.bypass(cond).view(-1, self.out_channels, self.in_channels)
        return self.head(F.gelu(self.head_norm(h))) + torch.einsum("boi,bixy->boxy", mix, x)


class Forecaster(nn.Module):
    """Per-item scaled, residual forecaster around ``backbone`` (see module docstring).

    Args:
        backbone: ``backbone(z [B, k*C, g, g], cond [B, cond_dim] | None) -> [B, h*C, g, g]``.
        n_steps_input, n_steps_output, num_channels: ``k``, ``h``, ``C``.
        num_params: ``P``, the operator's unit-cube Sobol point's length (0: not used).
        categories: ``(item key, vocabulary size)`` pairs of categorical labels of an item
            (e.g. ``("policy", len(ds.policies))``), given to the backbone one-hot.
        condition: give the backbone ``cond = [params, one-hots, log sigma]`` (length
            :attr:`cond_dim`); False: ``None`` (and no descriptor is needed).
        scale_floor: the least ``sigma`` (in the units of ``x``), so a near-zero input is not
            blown up.

    :meth:`descriptor` builds the ``[B, D]`` operator descriptor (params and one-hots) from a
    :class:`~spinlock_core.data.TrajectoryDataset` batch; :meth:`forward` takes it.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        n_steps_input: int,
        n_steps_output: int,
        num_channels: int,
        num_params: int = 0,
        categories: tuple[tuple[str, int], ...] = (),
        condition: bool = True,
        scale_floor: float = 1e-3,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.k, self.h, self.c, self.p = n_steps_input, n_steps_output, num_channels, num_params
        self.categories = tuple((str(key), int(n)) for key, n in categories)
        self.condition = condition
        self.scale_floor = float(scale_floor)

    @property
    def descriptor_dim(self) -> int:
        """``D``: length of the operator descriptor (params, then the one-hots)."""
        return self.p + sum(n for _, n in self.categories)

    @property
    def cond_dim(self) -> int:
        """Length of the backbone's conditioning vector (0 without conditioning)."""
        return self.descriptor_dim + self.c if self.condition else 0

    def descriptor(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, D]`` float32: ``batch["params"] [B, P]`` (if ``P``) and one one-hot per category."""
        b = batch["input_fields"].shape[0]
        parts = [batch["params"].float()] if self.p else []
        parts += [F.one_hot(batch[key].long(), n).float() for key, n in self.categories]
        return torch.cat(parts, dim=-1) if parts else torch.zeros(b, 0)

    def forward(self, x: torch.Tensor, descriptor: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, k, C, g, g]``, ``descriptor [B, D]`` -> forecast ``[B, h, C, g, g]`` (units of ``x``)."""
        if x.ndim != 5 or x.shape[1] != self.k or x.shape[2] != self.c:
            raise ValueError(f"expected x [B, {self.k}, {self.c}, g, g], got {tuple(x.shape)}")
        b, _, c, g1, g2 = x.shape
        sigma = x.pow(2).mean(dim=(1, 3, 4)).sqrt().clamp_min(self.scale_floor)  # [B, C]
        z = (x / sigma[:, None, :, None, None]).reshape(b, self.k * c, g1, g2)
        cond = None
        if self.condition:
            parts = [sigma.log()]
            if self.descriptor_dim:
                if descriptor is None or descriptor.shape != (b, self.descriptor_dim):
                    raise ValueError(f"this Forecaster needs a descriptor [B, {self.descriptor_dim}]")
                parts.insert(0, descriptor.to(x.dtype))
            cond = torch.cat(parts, dim=-1)
        d = self.backbone(z, cond).reshape(b, self.h, c, g1, g2)
        return x[:, -1:] + torch.cumsum(d, dim=1) * sigma[:, None, :, None, None]
