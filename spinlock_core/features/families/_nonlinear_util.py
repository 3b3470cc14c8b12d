"""Batched nonlinear time-series measures on series ``[B, L]``: RQA, correlation dimension,
permutation entropy (used by the ``nonlinear`` family).

Conventions (every function):

* series are float64 ``[B, L]`` (any float dtype is accepted and promoted); everything is batched
  over ``B``; the only Python loops run over embedding coordinates, pattern positions or chunks
  of ``B`` (bounded memory), never over single series;
* a delay embedding of dimension ``m`` and delay ``tau`` maps ``x [L]`` to the ``n = L - (m-1) tau``
  vectors ``(x_i, x_{i+tau}, ..., x_{i+(m-1)tau})`` (pyunicorn's / nolds' / antropy's layout);
* RQA follows pyunicorn 1.0 (``RecurrencePlot``) by default: ``R_ij = 1`` iff ``D_ij < eps``
  (strict), the recurrence rate counts the line of identity (LOI), diagonal-line statistics
  exclude the LOI (each off-diagonal line is counted in both triangles), vertical lines run over
  whole columns, LOI included; a Theiler window ``w >= 1`` additionally removes ``|i - j| < w``
  from every measure (RR's denominator becomes the number of remaining pairs);
* entropies are in **nats**; the permutation entropy is normalised by ``ln(order!)`` (base free).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = [
    "MIN_POINTS",
    "effective_factor",
    "subsampled_length",
    "delay_embed",
    "distance_matrix",
    "recurrence_matrix",
    "run_length_histogram",
    "rqa_measures",
    "rqa",
    "correlation_dimension",
    "permutation_entropy",
]

#: Fewest embedded vectors (RQA, correlation dimension) / ordinal patterns (permutation entropy) accepted.
MIN_POINTS = 10
#: Upper bound on ``B_chunk * n^2`` per chunk of the O(n^2) methods (elements of one [B, n, n] tensor).
_CHUNK_ELEMS = 1 << 22
_TINY = float(torch.finfo(torch.float64).tiny)


def effective_factor(ts: int, factor: int, max_points: int) -> int:
    """Subsampling stride: ``max(factor, ceil(ts / max_points))`` (at most ``max_points`` samples kept)."""
    return max(int(factor), -(-int(ts) // int(max_points)))


def subsampled_length(ts: int, factor: int, max_points: int) -> int:
    """Number of samples ``x[::f]`` keeps of a series of length ``ts`` (``f`` = :func:`effective_factor`)."""
    f = effective_factor(ts, factor, max_points)
    return (ts - 1) // f + 1


def delay_embed(x: torch.Tensor, dim: int, tau: int) -> torch.Tensor:
    """``x [B, L] -> [B, n, dim]`` with ``n = L - (dim-1) tau`` delay vectors."""
    n = x.shape[-1] - (dim - 1) * tau
    if n < 1:
        raise ValueError(f"series of length {x.shape[-1]} too short for dim={dim}, tau={tau}")
    return torch.stack([x[..., j * tau : j * tau + n] for j in range(dim)], dim=-1)


def distance_matrix(e: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """Pairwise distances ``[B, n, n]`` of the vectors ``e [B, n, dim]`` (exactly symmetric, zero diagonal).

    ``metric``: ``"euclidean"``, ``"supremum"`` (max norm) or ``"manhattan"``; accumulated
    coordinate by coordinate from exact differences (no ``|a|^2 + |b|^2 - 2ab`` cancellation).
    """
    acc = torch.zeros(e.shape[0], e.shape[1], e.shape[1], dtype=e.dtype, device=e.device)
    for j in range(e.shape[-1]):
        c = e[..., j]
        d = (c.unsqueeze(-1) - c.unsqueeze(-2)).abs_()
        if metric == "euclidean":
            acc.add_(d.square_())
        elif metric == "supremum":
            torch.maximum(acc, d, out=acc)
        elif metric == "manhattan":
            acc.add_(d)
        else:
            raise ValueError(f"unknown metric {metric!r}")
    return acc.sqrt_() if metric == "euclidean" else acc


def recurrence_matrix(
    x: torch.Tensor, dim: int, tau: int, mode: str, eps: float, metric: str = "euclidean"
) -> torch.Tensor:
    """Boolean recurrence matrices ``[B, n, n]``: ``R_ij = D_ij < thr``.

    ``mode`` sets ``thr`` per series: ``"std"``: ``eps * std(x)`` (population std of the scalar
    series, pyunicorn ``threshold_std``); ``"max_distance"``: ``eps * max D``; ``"recurrence_rate"``:
    the ``floor(eps (n^2 - 1))``-th smallest entry of ``D`` (0-based, pyunicorn
    ``recurrence_rate``). A threshold of 0 (constant series) is raised to the smallest positive
    double so that identical states recur (pyunicorn would leave ``R`` empty).
    """
    x = x.double()
    d = distance_matrix(delay_embed(x, dim, tau), metric)
    n = d.shape[-1]
    if mode == "std":
        thr = eps * x.std(-1, correction=0)
    elif mode == "max_distance":
        thr = eps * d.flatten(1).amax(-1)
    elif mode == "recurrence_rate":
        k = int(eps * (n * n - 1))
        thr = d.flatten(1).kthvalue(k + 1, dim=-1).values
    else:
        raise ValueError(f"unknown threshold mode {mode!r}")
    thr = thr.clamp_min(_TINY)
    return d < thr.reshape(-1, 1, 1)


def run_length_histogram(seq: torch.Tensor) -> torch.Tensor:
    """Run lengths of ``True`` in ``seq [B, K, L]`` along the last axis -> counts ``[B, L + 1]``.

    ``counts[b, l]`` = number of maximal runs of length ``l`` over all ``K`` rows of series ``b``
    (``counts[:, 0] == 0``). Cumulative sums: the run length at a position is the count of ones
    since the last zero; a run ends where a one is followed by a zero (a zero is appended).
    """
    b, k, length = seq.shape
    s = torch.cat([seq, torch.zeros(b, k, 1, dtype=torch.bool, device=seq.device)], dim=-1).to(torch.int32)
    c = torch.cumsum(s, dim=-1, dtype=torch.int32)
    last_zero = torch.cummax(c * (1 - s), dim=-1).values
    run = (c - last_zero)[..., :length]
    end = (s[..., :length] == 1) & (s[..., 1:] == 0)
    idx = torch.where(end, run, torch.zeros_like(run)).reshape(b, -1).long()
    counts = torch.zeros(b, length + 1, dtype=torch.float64, device=seq.device)
    counts.scatter_add_(1, idx, end.reshape(b, -1).double())
    counts[:, 0] = 0.0
    return counts


@lru_cache(maxsize=16)
def _diag_index(n: int, k0: int, device: str) -> torch.Tensor:
    """Flat indices into ``[n*n + 1]`` of the diagonals ``R[i + k, i]``, k = k0..n-1 (``n*n`` = padding)."""
    k = torch.arange(k0, n, device=device).reshape(-1, 1)
    i = torch.arange(n, device=device).reshape(1, -1)
    return torch.where(i + k < n, (i + k) * n + i, torch.full_like(i + k, n * n))


def _ratio(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b > 0, a / torch.where(b > 0, b, 1.0), torch.zeros_like(a))


def rqa_measures(r: torch.Tensor, l_min: int = 2, v_min: int = 2, theiler: int = 0) -> dict[str, torch.Tensor]:
    """RQA measures of boolean recurrence matrices ``r [B, n, n]`` (symmetric), float64 ``[B]`` each.

    Returns ``rr`` (recurrence rate), ``det`` (determinism), ``lam`` (laminarity), ``entr``
    (Shannon entropy, nats, of the length distribution of diagonal lines with ``l >= l_min``),
    ``avg_diag`` (mean length of diagonal lines ``>= l_min``), ``tt`` (trapping time = mean length of
    vertical lines ``>= v_min``), ``l_max`` / ``v_max`` (longest diagonal / vertical line, any
    length). Lengths are in embedded points. A ratio with an empty denominator is 0 (pyunicorn
    divides by ``den + 1e-8``: same up to 1e-8).
    """
    bsz, n, _ = r.shape
    dev = r.device
    ii = torch.arange(n, device=dev)
    offdiag = (ii.reshape(-1, 1) - ii.reshape(1, -1)).abs()
    allowed = offdiag >= theiler
    if theiler > 0:
        r = r & allowed
    rr = r.flatten(1).double().sum(-1) / float(allowed.sum())
    k0 = max(1, theiler)
    if n - k0 >= 1:
        flat = torch.cat([r.reshape(bsz, -1), torch.zeros(bsz, 1, dtype=torch.bool, device=dev)], dim=-1)
        diag = flat[:, _diag_index(n, k0, str(dev))]  # [B, n - k0, n]
        pd = 2.0 * run_length_histogram(diag)  # both triangles
    else:
        pd = torch.zeros(bsz, n + 1, dtype=torch.float64, device=dev)
    pv = run_length_histogram(r)
    lengths = torch.arange(n + 1, device=dev, dtype=torch.float64)
    pts_d, pts_v = pd * lengths, pv * lengths
    dl, vl = lengths >= l_min, lengths >= v_min
    det = _ratio(pts_d[:, dl].sum(-1), pts_d.sum(-1))
    lam = _ratio(pts_v[:, vl].sum(-1), pts_v.sum(-1))
    nd = pd[:, dl].sum(-1)
    avg_diag = _ratio(pts_d[:, dl].sum(-1), nd)
    tt = _ratio(pts_v[:, vl].sum(-1), pv[:, vl].sum(-1))
    p = _ratio(pd[:, dl], nd.unsqueeze(-1))
    entr = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)
    l_max = torch.where(pd > 0, lengths, torch.zeros_like(lengths)).amax(-1)
    v_max = torch.where(pv > 0, lengths, torch.zeros_like(lengths)).amax(-1)
    return {
        "rr": rr,
        "det": det,
        "lam": lam,
        "entr": entr,
        "avg_diag": avg_diag,
        "tt": tt,
        "l_max": l_max,
        "v_max": v_max,
    }


def rqa(
    x: torch.Tensor,
    dim: int = 3,
    tau: int = 1,
    mode: str = "std",
    eps: float = 0.5,
    metric: str = "euclidean",
    theiler: int = 0,
    l_min: int = 2,
    v_min: int = 2,
) -> dict[str, torch.Tensor]:
    """:func:`recurrence_matrix` + :func:`rqa_measures` of series ``x [B, L]``, chunked over ``B``."""
    n = x.shape[-1] - (dim - 1) * tau
    step = max(1, _CHUNK_ELEMS // max(1, n * n))
    parts = [
        rqa_measures(recurrence_matrix(x[i : i + step], dim, tau, mode, eps, metric), l_min, v_min, theiler)
        for i in range(0, x.shape[0], step)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def correlation_dimension(
    x: torch.Tensor, dim: int, tau: int, rvals: torch.Tensor, self_pairs: bool = False
) -> torch.Tensor:
    """Grassberger-Procaccia correlation dimension of ``x [B, L]`` at radii ``rvals [B, R]`` (> 0).

    ``C(r)`` = fraction of pairs ``i != j`` of embedded vectors with euclidean distance ``<= r``
    (``self_pairs=True`` also counts the ``n`` pairs ``i == i``, as nolds 0.6.2 ``corr_dim`` does,
    still dividing by ``n (n - 1)``); the result is the least-squares slope of ``ln C`` against
    ``ln r`` over the radii with ``C > 0`` (nolds ``fit="poly"``), 0 when fewer than 2 radii qualify
    or the fit is degenerate.
    """
    x = x.double()
    rvals = rvals.double()
    n = x.shape[-1] - (dim - 1) * tau
    iu = torch.triu_indices(n, n, offset=1, device=x.device)
    step = max(1, _CHUNK_ELEMS // max(1, n * n))
    counts = []
    for i in range(0, x.shape[0], step):
        d = distance_matrix(delay_embed(x[i : i + step], dim, tau), "euclidean")
        pairs = d[:, iu[0], iu[1]].sort(dim=-1).values
        counts.append(torch.searchsorted(pairs, rvals[i : i + step].contiguous(), right=True))
    cnt = 2.0 * torch.cat(counts).double() + (float(n) if self_pairs else 0.0)
    c = cnt / float(n * (n - 1))
    ok = (c > 0) & (rvals > 0)
    w = ok.double()
    lx = torch.where(ok, rvals.clamp_min(_TINY).log(), torch.zeros_like(rvals))
    ly = torch.where(ok, c.clamp_min(_TINY).log(), torch.zeros_like(c))
    nw = w.sum(-1)
    mx = _ratio((w * lx).sum(-1), nw).unsqueeze(-1)
    my = _ratio((w * ly).sum(-1), nw).unsqueeze(-1)
    sxx = (w * (lx - mx).square()).sum(-1)
    sxy = (w * (lx - mx) * (ly - my)).sum(-1)
    return torch.where((nw >= 2) & (sxx > 0), sxy / torch.where(sxx > 0, sxx, 1.0), torch.zeros_like(sxx))


def permutation_entropy(x: torch.Tensor, order: int = 3, delay: int = 1) -> torch.Tensor:
    """Normalised permutation entropy (Bandt & Pompe 2002) of ``x [B, L]`` -> ``[B]`` in [0, 1].

    Ordinal pattern of each delay vector = its stable argsort (ties ordered by position, as
    antropy's ``perm_entropy``); ``H = -sum p ln p / ln(order!)`` over the observed patterns.
    Patterns are counted by Lehmer code (rank of the permutation), batched over ``B``.
    """
    e = delay_embed(x, order, delay)  # [B, n, order]
    # rank of position j within its vector (0 = smallest; ties: earlier position ranks lower)
    ranks = []
    for j in range(order):
        rj = torch.zeros(e.shape[:-1], dtype=torch.long, device=x.device)
        for k in range(order):
            if k == j:
                continue
            rj += (e[..., k] < e[..., j]).long() if k > j else (e[..., k] <= e[..., j]).long()
        ranks.append(rj)
    code = torch.zeros_like(ranks[0])
    for j in range(order):
        smaller_after = sum(((ranks[k] < ranks[j]).long() for k in range(j + 1, order)), torch.zeros_like(code))
        code += smaller_after * math.factorial(order - 1 - j)
    nperm = math.factorial(order)
    counts = torch.zeros(x.shape[0], nperm, dtype=torch.float64, device=x.device)
    counts.scatter_add_(1, code, torch.ones_like(code, dtype=torch.float64))
    p = counts / counts.sum(-1, keepdim=True)
    h = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)
    return (h / math.log(nperm)).clamp(0.0, 1.0) + 0.0  # + 0.0: no -0.0
