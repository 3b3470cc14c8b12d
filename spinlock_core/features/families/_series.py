"""Batched tools on time series ``[..., T]`` shared by the temporal and causality families.

Conventions (every function):

* series are ``[..., T]`` tensors, batched over every leading axis; nothing loops over series
  (the only Python loops run over lags, orders or a handful of windows);
* statistics are computed in **float64** (series are small: ``S * C * Ts`` values); callers
  cast results to float32 at the end (:func:`to_output`);
* time is measured in **steps** (frame index ``t = 0 .. Ts-1``; frame 0 is the initial condition);
* guards: a zero variance / zero norm gives a defined value (stated per function), never NaN
  for finite input; NaN input propagates.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "FMAX",
    "field_scale",
    "summary_series",
    "field_chunks",
    "chunk_fields",
    "flatten_rounding_noise",
    "to_output",
    "zscore",
    "acf_biased",
    "pacf_durbin_levinson",
    "acf_decay_time",
    "lag_design",
    "ls_rss",
    "count_sign_changes",
    "rolling_stats",
    "nn_divergence_rate",
    "pearson",
]

#: Largest float32: outputs are clamped to +-FMAX so huge-but-finite values stay finite in storage.
FMAX = float(torch.finfo(torch.float32).max)


def field_scale(x: torch.Tensor) -> torch.Tensor:
    """Per-trajectory-channel divisor ``[S, 1, C, 1, 1]`` of ``x [S, Ts, C, H, W]``: ``max |u|``
    where it exceeds ``1e15`` (so that float32 sums of squares cannot overflow), else exactly 1.
    Each trajectory's divisor depends on its own values only (batch independence)."""
    big = torch.maximum(x.amax(dim=(1, 3, 4), keepdim=True), -x.amin(dim=(1, 3, 4), keepdim=True))
    return torch.where(big > 1e15, big, torch.ones_like(big))


#: field elements per internal chunk of per-frame work on CPU (cache-sized temporaries run faster
#: there; an accelerator gets everything at once: fewer, larger kernels)
FIELD_CHUNK = 1 << 19


def chunk_fields(n_fields: int, field_elems: int, device: torch.device) -> int:
    """Fields per internal chunk: about :data:`FIELD_CHUNK` elements on CPU, all of them elsewhere."""
    if device.type != "cpu":
        return max(1, n_fields)
    return max(1, FIELD_CHUNK // max(1, field_elems))


def field_chunks(fields: torch.Tensor):
    """Slices of ``fields [F, H, W]`` of :func:`chunk_fields` fields each."""
    step = chunk_fields(fields.shape[0], fields.shape[-1] * fields.shape[-2], fields.device)
    for lo in range(0, fields.shape[0], step):
        yield fields[lo : lo + step]


def summary_series(x: torch.Tensor, with_var: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame spatial summaries of trajectories ``x [S, Ts, C, H, W]``.

    Returns float64 ``(m, energy, var)``, each ``[S, C, Ts]``: ``m(t) = mean_xy u`` (spatial
    mean), ``var(t) = mean_xy (u - m)^2`` (population spatial variance, two-pass: centred before
    squaring) and ``energy(t) = mean_xy u^2 = var + m^2`` (mean energy per pixel). The
    reductions run in float32 (the field dtype) on fields divided by :func:`field_scale` and are
    scaled back in float64, so huge finite fields do not overflow. ``with_var=False`` skips
    ``var``/``energy`` (returned as None). Frames are reduced in cache-sized chunks.
    """
    xf = x.to(torch.float32)
    sc = field_scale(xf)
    scaled = bool((sc != 1).any())
    if scaled:
        xf = xf / sc
    s, t, c, h, w = xf.shape
    means, vars_ = [], []
    for u in field_chunks(xf.reshape(-1, h, w)):
        mu = u.mean(dim=(-2, -1))
        means.append(mu)
        if with_var:
            vars_.append(torch.linalg.vector_norm(u - mu[:, None, None], dim=(-2, -1)).square_() / (h * w))
    m32 = torch.cat(means).reshape(s, t, c)
    sc64 = sc.reshape(sc.shape[0], 1, sc.shape[2]).to(torch.float64)  # [S, 1, C]
    m = (m32.to(torch.float64) * sc64).transpose(1, 2).contiguous()
    if not with_var:
        return m, None, None  # type: ignore[return-value]
    var32 = torch.cat(vars_).reshape(s, t, c)
    var = (var32.to(torch.float64) * sc64 * sc64).transpose(1, 2).contiguous()
    return m, var + m * m, var


def flatten_rounding_noise(m: torch.Tensor, energy: torch.Tensor, rel: float = 1e-6) -> torch.Tensor:
    """Replace spatial-mean series ``m [..., Ts]`` that are pure float32 rounding noise by their
    temporal mean: where ``std_t(m) <= rel * sqrt(max_t energy)`` (a spatial mean of float32 fields
    is only resolved to about 1e-7..1e-6 of the field's rms), ``m`` is treated as constant, so
    mean-conserving dynamics give the constant-series values instead of statistics of noise."""
    mu = m.mean(-1, keepdim=True)
    sd = (m - mu).square().mean(-1, keepdim=True).sqrt()
    noise = sd <= rel * energy.amax(-1, keepdim=True).clamp_min(0.0).sqrt()
    return torch.where(noise, mu.expand_as(m), m)


def to_output(v: torch.Tensor) -> torch.Tensor:
    """float64 -> float32, clamped to the float32 range (NaN stays NaN)."""
    return v.clamp(-FMAX, FMAX).to(torch.float32)


def zscore(y: torch.Tensor) -> torch.Tensor:
    """``(y - mean) / std`` over the last axis (population std); 0 for a constant series."""
    c = y - y.mean(-1, keepdim=True)
    sd = c.square().mean(-1, keepdim=True).sqrt()
    ok = sd > 0
    return torch.where(ok, c / torch.where(ok, sd, torch.ones_like(sd)), torch.zeros_like(c))


def acf_biased(y: torch.Tensor, nlags: int) -> torch.Tensor:
    """Biased sample autocorrelation ``rho[0..nlags]`` of ``y [..., T]`` by zero-padded FFT.

    ``acov_k = (1/T) sum_{t=0}^{T-1-k} (y_t - ybar)(y_{t+k} - ybar)`` (divisor T at every lag,
    statsmodels ``acovf(adjusted=False)``), ``rho_k = acov_k / acov_0``. ``nlags`` is clipped to
    ``T - 1``. A constant series gets ``rho_0 = 1`` and ``rho_k = 0`` for ``k >= 1``.
    """
    n = y.shape[-1]
    nlags = min(nlags, n - 1)
    yc = y - y.mean(-1, keepdim=True)
    nfft = 1 << max(1, (2 * n - 1).bit_length())
    spec = torch.fft.rfft(yc, n=nfft)
    acov = torch.fft.irfft(spec.real.square() + spec.imag.square(), n=nfft)[..., : nlags + 1] / n
    c0 = acov[..., :1]
    ok = c0 > 0
    rho = torch.where(ok, acov / torch.where(ok, c0, torch.ones_like(c0)), torch.zeros_like(acov))
    rho[..., 0] = 1.0
    return rho


def pacf_durbin_levinson(rho: torch.Tensor, nlags: int) -> torch.Tensor:
    """Partial autocorrelations ``[..., nlags]`` (lags 1..nlags) by the Durbin-Levinson recursion.

    ``rho [..., >= nlags+1]`` is an autocorrelation sequence with ``rho_0 = 1``. With the biased
    ACF of :func:`acf_biased` this is statsmodels ``pacf(method="ldbiased")``. Where the prediction
    error variance reaches 0 (a perfectly predictable or constant series) the remaining partial
    autocorrelations are set to 0. Values are clamped to ``[-1, 1]``.
    """
    shape = rho.shape[:-1]
    phi = rho.new_zeros(*shape, 0)
    v = torch.ones(shape, dtype=rho.dtype, device=rho.device)
    out = []
    for k in range(1, nlags + 1):
        num = rho[..., k] - (phi * rho[..., 1:k].flip(-1)).sum(-1) if k > 1 else rho[..., 1]
        ok = v > 1e-12
        a = torch.where(ok, num / torch.where(ok, v, torch.ones_like(v)), torch.zeros_like(v)).clamp(-1.0, 1.0)
        phi = torch.cat([phi - a.unsqueeze(-1) * phi.flip(-1), a.unsqueeze(-1)], dim=-1)
        v = v * (1.0 - a * a)
        out.append(a)
    return torch.stack(out, dim=-1)


def acf_decay_time(rho: torch.Tensor, threshold: float = math.exp(-1.0)) -> torch.Tensor:
    """First lag where ``rho [..., L+1]`` falls below ``threshold``, linearly interpolated.

    Between lags ``k-1`` (``rho >= thr``) and ``k`` (``rho < thr``):
    ``tau = k - 1 + (rho_{k-1} - thr) / (rho_{k-1} - rho_k)``. Never below within ``L`` lags:
    ``tau = L`` (the cap). In steps.
    """
    nl = rho.shape[-1] - 1
    below = rho[..., 1:] < threshold
    anyb = below.any(-1)
    k = torch.argmax(below.to(torch.int8), dim=-1) + 1  # first True (lags 1..L)
    r_prev = rho.gather(-1, (k - 1).unsqueeze(-1)).squeeze(-1)
    r_k = rho.gather(-1, k.unsqueeze(-1)).squeeze(-1)
    den = (r_prev - r_k).clamp_min(1e-300)
    tau = (k - 1).to(rho.dtype) + ((r_prev - threshold) / den).clamp(0.0, 1.0)
    return torch.where(anyb, tau, torch.full_like(tau, float(nl)))


def lag_design(y: torch.Tensor, p: int, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and lag matrix of an order-``p`` autoregression of ``y [..., T]``.

    Forward: target ``y_t`` for ``t = p .. T-1`` and lags ``[y_{t-1}, ..., y_{t-p}]``
    (``[..., T-p]`` and ``[..., T-p, p]``). ``reverse=True`` predicts ``y_t`` from
    ``[y_{t+1}, ..., y_{t+p}]`` for ``t = 0 .. T-1-p`` (the forward model of the reversed series).
    """
    if reverse:
        y = y.flip(-1)
    win = y.unfold(-1, p + 1, 1)  # [..., T-p, p+1] = y_{t-p} .. y_t
    return win[..., -1], win[..., :-1].flip(-1)


def ls_rss(design: torch.Tensor, target: torch.Tensor, intercept: bool = True) -> torch.Tensor:
    """Residual sum of squares of the least-squares fit ``target ~ [1, design]`` (batched).

    ``design [..., N, k]``, ``target [..., N]`` (float64). Solved by the normal equations with a
    ridge ``1e-10 * (mean diagonal + 1)`` (negligible for full-rank designs, keeps constant
    columns solvable on every device); the residual is formed explicitly. Returns ``[...]``.
    """
    if intercept:
        design = torch.cat([torch.ones_like(design[..., :1]), design], dim=-1)
    k = design.shape[-1]
    dt = design.transpose(-1, -2)
    g = dt @ design
    ridge = 1e-10 * (g.diagonal(dim1=-2, dim2=-1).mean(-1) + 1.0)
    g = g + ridge[..., None, None] * torch.eye(k, dtype=g.dtype, device=g.device)
    beta = torch.linalg.solve(g, (dt @ target.unsqueeze(-1)))
    res = target - (design @ beta).squeeze(-1)
    return res.square().sum(-1)


def count_sign_changes(d: torch.Tensor) -> torch.Tensor:
    """Number of sign changes along ``d [..., n]``, ignoring exact zeros.

    Each non-zero entry is compared with the last non-zero entry before it (so ``+, 0, -``
    counts one change and ``+, 0, +`` none). Returns float64 ``[...]``.
    """
    s = torch.sign(d)
    n = d.shape[-1]
    if n < 2:
        return torch.zeros(d.shape[:-1], dtype=torch.float64, device=d.device)
    idx = torch.arange(n, device=d.device).expand(s.shape)
    last = torch.where(s != 0, idx, torch.full_like(idx, -1)).cummax(-1).values
    filled = torch.where(last >= 0, s.gather(-1, last.clamp_min(0)), torch.zeros_like(s))
    prev, cur = filled[..., :-1], s[..., 1:]
    return ((cur != 0) & (prev != 0) & (cur != prev)).sum(-1).to(torch.float64)


def rolling_stats(y: torch.Tensor, w: int) -> dict[str, torch.Tensor]:
    """Sliding windows of length ``w`` (stride 1) over ``y [..., T]``: six summaries ``[...]``.

    Per window: mean, population std, max, min. Returned: ``mean``, ``std``, ``max``, ``min``
    (each averaged over the ``T - w + 1`` windows), ``mean_variability`` (population std over
    windows of the window means) and ``std_variability`` (same for the window stds).
    """
    win = y.unfold(-1, w, 1)  # [..., nwin, w]
    wm = win.mean(-1)
    ws = (win - wm.unsqueeze(-1)).square().mean(-1).sqrt()

    def _pstd(v: torch.Tensor) -> torch.Tensor:
        return (v - v.mean(-1, keepdim=True)).square().mean(-1).sqrt()

    return {
        "mean": wm.mean(-1),
        "std": ws.mean(-1),
        "max": win.amax(-1).mean(-1),
        "min": win.amin(-1).mean(-1),
        "mean_variability": _pstd(wm),
        "std_variability": _pstd(ws),
    }


def nn_divergence_rate(
    y: torch.Tensor, horizon: int = 5, theiler: int = 1, candidates: int = 8, eps: float = 1e-6
) -> torch.Tensor:
    """Nearest-neighbour divergence rate of ``y [..., T]`` (Rosenstein-type; nats per step).

    On the z-scored series ``z`` with embedding dimension 2 and delay 1, the states are
    ``v_t = (z_t, z_{t-1})`` for ``t = 1 .. T-1-horizon``. For each ``t`` the nearest neighbour
    ``s`` (Euclidean) is searched among the ``candidates`` states on either side of ``t`` in the
    order of ``z_t`` (an exact 1-D pre-selection, approximate in 2-D), excluding
    ``|s - t| <= theiler``. With ``d_k(t) = |v_{t+k} - v_{s+k}|`` the mean log divergence
    ``D_k = mean_t ln(d_k(t) + eps)`` (over the ``t`` that have a neighbour) is fitted by least
    squares against ``k = 0 .. horizon``; the rate is the slope. About ln 2 for the logistic map
    at r = 4; ``ln r`` for a decay ``c + a r^t``; about 0 for a sine; positive for noise. 0 when
    no state has a neighbour. ``eps`` is in units of the series' std.
    """
    z = zscore(y)
    n = z.shape[-1] - 1 - horizon
    if n < 2:
        return torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
    cur, prv = z[..., 1 : 1 + n], z[..., :n]
    ar = torch.arange(n, device=z.device)
    order = torch.argsort(cur, dim=-1)
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, ar.expand(order.shape))
    offs = torch.cat([torch.arange(-candidates, 0), torch.arange(1, candidates + 1)]).to(z.device)
    pos = rank.unsqueeze(-1) + offs  # [..., n, 2K] positions in the sort order
    inside = (pos >= 0) & (pos < n)
    cand = order.gather(-1, pos.clamp(0, n - 1).flatten(-2)).reshape(pos.shape)  # their time index
    valid = inside & ((cand - ar.unsqueeze(-1)).abs() > theiler)

    def _at(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return v.gather(-1, idx.flatten(-2)).reshape(idx.shape)

    d0 = ((cur.unsqueeze(-1) - _at(cur, cand)).square() + (prv.unsqueeze(-1) - _at(prv, cand)).square()).sqrt()
    d0 = torch.where(valid, d0, torch.full_like(d0, math.inf))
    s = cand.gather(-1, d0.argmin(-1, keepdim=True)).squeeze(-1)  # neighbour of t (index into cur)
    has = valid.any(-1).to(z.dtype)
    cnt = has.sum(-1)
    t = ar.expand(s.shape)
    logs = []
    for k in range(horizon + 1):  # v_{t+k} = (z[t+1+k], z[t+k]) in index units of cur
        da = z.gather(-1, t + 1 + k) - z.gather(-1, s + 1 + k)
        db = z.gather(-1, t + k) - z.gather(-1, s + k)
        logs.append((torch.log((da.square() + db.square()).sqrt() + eps) * has).sum(-1) / cnt.clamp_min(1))
    dk = torch.stack(logs, dim=-1)
    kk = torch.arange(horizon + 1, dtype=z.dtype, device=z.device)
    kc = kk - kk.mean()
    slope = ((dk - dk.mean(-1, keepdim=True)) * kc).sum(-1) / kc.square().sum()
    return torch.where(cnt > 0, slope, torch.zeros_like(slope))


def pearson(a: torch.Tensor, b: torch.Tensor, dim: int | tuple[int, ...] = -1) -> torch.Tensor:
    """Pearson correlation of ``a`` and ``b`` over ``dim`` (each centred on its own mean); 0 if
    either has zero variance."""
    ac = a - a.mean(dim, keepdim=True)
    bc = b - b.mean(dim, keepdim=True)
    cov = (ac * bc).sum(dim)
    den = (ac.square().sum(dim) * bc.square().sum(dim)).sqrt()
    ok = den > 0
    return torch.where(ok, cov / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(den)).clamp(-1.0, 1.0)
