"""``error_correcting_code``: a binary codeword sent through a binary symmetric channel, as blocks.

**Layout.** The domain is tiled by ``nb x nb`` square blocks with ``nb = round(1 / block_size)``
(``block_size`` is a fraction of the domain side; ``nb`` is capped at N). Block row ``u`` covers
pixel rows ``i`` with ``floor(i nb / N) = u`` (likewise columns), so the blocks tile any grid
exactly; when N is not a multiple of ``nb`` block sides differ by at most one pixel. Bit ``j`` of
a word of length ``n = nb^2`` fills block ``(j // nb, j % nb)`` (row-major). Bits map to values
``2 b - 1`` (0 -> -1, 1 -> +1), so every channel has RMS 1 (times ``amplitude``).

**Code.** The message is ``k`` i.i.d. Bernoulli(1/2) bits; the codeword ``c`` (length ``n``):

* ``repetition``: ``k = max(1, floor(n code_rate))``; codeword bit ``j`` repeats message bit
  ``floor(j k / n)`` (each message bit fills a contiguous run of ``floor(n/k)`` or ``ceil(n/k)``
  blocks; majority decoding over a run recovers the bit when errors are rare);
* ``parity``: single-parity-check segments of length ``s = max(2, round(1 / (1 - code_rate)))``:
  each segment holds ``s - 1`` message bits then their even-parity bit (a shorter last segment
  holds ``r`` message bits + parity); effective rate ``k / n ~ (s - 1) / s``;
* ``random``: a random linear code: ``k = max(1, floor(n code_rate))``, generator matrix
  ``G ~ Bernoulli(1/2)^[k, n]`` drawn per sample, ``c = m G mod 2``.

**Channel (noise).** Each transmission flips every bit independently with probability
``error_rate``: the received word is ``c XOR e``.

**Channels (C).** ``0``: the received (noisy) word; ``1``: the transmitted codeword; ``2``: the
error pattern ``e`` of channel 0 (+1 where flipped); ``3, 4, ...``: further independent
transmissions of the same codeword (new error patterns). ``C = 1`` is the received word alone.

Draws per sample, in order: message ``U[0,1)^[k] < 1/2``, (``random`` only) ``G`` as
``U[0,1)^[k, n] < 1/2``, then the flips ``U[0,1)^[T, n] < error_rate`` for ``T = max(1, C - 2)``
transmissions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field

from ..registry import ICParams, register_ic
from ..spectral import sample_generators

__all__ = [
    "ErrorCorrectingCodeParams",
    "error_correcting_code",
    "code_layout",
    "block_index_map",
    "encode",
    "majority_decode",
]


class ErrorCorrectingCodeParams(ICParams):
    code_type: Literal["repetition", "parity", "random"] = Field(
        default="repetition", description=("code: repetition, single-parity-check segments, or random linear code")
    )
    code_rate: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description=("message bits per codeword bit k/n (parity: segments of round(1/(1-rate)) bits)"),
    )
    block_size: float = Field(
        default=1 / 16,
        gt=0,
        le=1,
        description=("side of one bit's block, fraction of the domain side (nb = round(1/block_size) blocks per side)"),
    )
    error_rate: float = Field(
        default=0.1, ge=0, le=1, description="bit-flip probability of the binary symmetric channel"
    )
    amplitude: float = Field(default=1.0, gt=0, description="values are +-amplitude (RMS amplitude)")


def code_layout(grid_size: int, params: ErrorCorrectingCodeParams) -> tuple[int, int, int]:
    """``(nb, n, k)``: blocks per side, codeword length ``n = nb^2`` and message length ``k``."""
    nb = max(1, min(grid_size, round(1.0 / params.block_size)))
    n = nb * nb
    if params.code_type == "parity":
        s = max(2, round(1.0 / (1.0 - params.code_rate)))
        full, rest = divmod(n, s)
        k = full * (s - 1) + max(rest - 1, 0)
    else:
        k = max(1, int(n * params.code_rate))
    return nb, n, k


def block_index_map(grid_size: int, nb: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[N, N]`` int64: index ``j`` of the codeword bit whose block contains each pixel."""
    b = (torch.arange(grid_size, device=device) * nb) // grid_size
    return b[:, None] * nb + b[None, :]


def encode(
    message: torch.Tensor, n: int, params: ErrorCorrectingCodeParams, generator_matrix: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B, k]`` bits (int64 0/1) -> ``[B, n]`` codeword bits."""
    bsz, k = message.shape
    dev = message.device
    if params.code_type == "repetition":
        return message[:, (torch.arange(n, device=dev) * k) // n]
    if params.code_type == "random":
        assert generator_matrix is not None
        return (message.double()[:, None, :] @ generator_matrix.double()).squeeze(1).long() % 2
    s = max(2, round(1.0 / (1.0 - params.code_rate)))
    out = torch.empty(bsz, n, dtype=torch.int64, device=dev)
    mi = 0
    for start in range(0, n, s):
        width = min(s, n - start)
        if width == 1:  # a lone trailing bit: parity of nothing
            out[:, start] = 0
            continue
        seg = message[:, mi : mi + width - 1]
        out[:, start : start + width - 1] = seg
        out[:, start + width - 1] = seg.sum(1) % 2
        mi += width - 1
    return out


def majority_decode(received: torch.Tensor, k: int) -> torch.Tensor:
    """Repetition code: ``[B, n]`` received bits -> ``[B, k]`` majority votes (ties -> 1)."""
    bsz, n = received.shape
    group = (torch.arange(n, device=received.device) * k) // n
    ones = torch.zeros(bsz, k, dtype=torch.float64, device=received.device).index_add_(1, group, received.double())
    size = torch.bincount(group, minlength=k).double()
    return (2 * ones >= size).long()


@register_ic(
    "error_correcting_code",
    tier="tier4",
    domain="information theory",
    description="codeword (repetition / parity / random linear) through a bit-flip channel, as +-1 blocks",
    params_model=ErrorCorrectingCodeParams,
)
def error_correcting_code(
    seeds: Sequence[int], grid_size: int, num_channels: int, device: torch.device, params: ErrorCorrectingCodeParams
) -> torch.Tensor:
    nb, n, k = code_layout(grid_size, params)
    t = max(1, num_channels - 2)
    msgs, gms, flips = [], [], []
    for g in sample_generators(seeds):
        msgs.append(torch.rand((k,), generator=g) < 0.5)
        if params.code_type == "random":
            gms.append(torch.rand((k, n), generator=g) < 0.5)
        flips.append(torch.rand((t, n), generator=g) < params.error_rate)
    message = torch.stack(msgs).to(device).long()
    gm = torch.stack(gms).to(device).long() if gms else None
    code = encode(message, n, params, gm)  # [B, n]
    err = torch.stack(flips).to(device).long()  # [B, T, n]
    received = code[:, None] ^ err
    words = [received[:, 0], code, err[:, 0]] + [received[:, j] for j in range(1, t)]
    bits = torch.stack(words[:num_channels], dim=1)  # [B, C, n]
    idx = block_index_map(grid_size, nb, device)
    return params.amplitude * (2.0 * bits[:, :, idx] - 1.0).to(torch.float32)
