"""Optimised code paths of the feature families pinned against straightforward references.

The families use faster formulations than the definitions they implement: slices instead of
``torch.roll``, order statistics by bin selection instead of full sorts, ``bincount`` histograms,
``rfft2`` half planes with conjugate multiplicities instead of the full ``fft2`` plane, cache-sized
chunks of fields, a threaded batch of small SVDs. Each is checked here against the plain version
(bit for bit where the arithmetic is the same, else to float rounding).
"""

from __future__ import annotations

import math

import pytest
import torch

from spinlock_core.features import load_features_config, ops
from spinlock_core.features.extract import FeatureExtractor
from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.features.families import _series as ts
from spinlock_core.features.families import _spatial_util as su
from spinlock_core.features.families._spectral_util import geometry, half_plane

GEN = torch.Generator().manual_seed(7)


def _smooth(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, h, w, generator=g, dtype=torch.float64)
    ky = torch.fft.fftfreq(h, 1.0 / h, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(w, 1.0 / w, dtype=torch.float64)[None, :]
    return torch.fft.ifft2(torch.fft.fft2(z) * torch.exp(-(kx**2 + ky**2) / 50.0)).real.float()


# ----------------------------------------------------------------------------- stencils
@pytest.mark.parametrize("shape", [(3, 16, 16), (2, 5, 7), (2, 3, 3), (2, 2, 4), (1, 1, 5), (2, 4, 1)])
def test_stencils_match_roll(shape):
    u = torch.randn(*shape, generator=GEN)
    for dim in (-1, -2):
        ref = torch.roll(u, -1, dims=dim) - torch.roll(u, 1, dims=dim)
        assert torch.equal(ops.central_diff(u, dim), ref)
        nsum = torch.roll(u, 1, dims=dim) + torch.roll(u, -1, dims=dim)
        assert torch.equal(ops._neighbour_sum(u, dim), nsum)
    lap = (
        torch.roll(u, 1, dims=-2)
        + torch.roll(u, -1, dims=-2)
        + torch.roll(u, 1, dims=-1)
        + torch.roll(u, -1, dims=-1)
        - 4.0 * u
    )
    assert torch.equal(ops.laplacian(u), lap)
    gy, gx = ops.grad_xy(u)
    assert torch.equal(gy, 0.5 * (torch.roll(u, -1, dims=-2) - torch.roll(u, 1, dims=-2)))
    assert torch.equal(gx, 0.5 * (torch.roll(u, -1, dims=-1) - torch.roll(u, 1, dims=-1)))


# ----------------------------------------------------------------------------- histograms
def _labels_reference(v, bins, lo, hi):
    span = (hi - lo).unsqueeze(-1)
    pos = torch.where(span > 0, (v - lo.unsqueeze(-1)) / torch.where(span > 0, span, 1.0), torch.zeros_like(v))
    return (pos * bins).floor().clamp_(0, bins - 1).long()


@pytest.mark.parametrize("bins", [4, 16, 37])
def test_histogram_labels_and_counts(bins):
    v = torch.cat(
        [torch.randn(5, 300, generator=GEN), torch.full((1, 300), 2.5), torch.randn(1, 300, generator=GEN) ** 5]
    )
    lo, hi = v.amin(-1), v.amax(-1)
    ref = _labels_reference(v, bins, lo, hi)
    assert torch.equal(ops.histogram_labels(v, bins, lo, hi).long(), ref)
    counts = torch.zeros(v.shape[0], bins).scatter_add_(1, ref, torch.ones_like(v))
    assert torch.equal(ops.histogram_counts(v, bins, lo, hi), counts)
    glab = ops.histogram_labels(v, bins, lo, hi, offset=True)
    assert torch.equal(ops.offset_bincount(glab, v.shape[0], bins), counts)
    # nested refinement: fine label >> m is the histogram label
    fine = ops.histogram_labels(v, bins * 64, lo, hi)
    assert torch.equal((fine // 64).long(), ref)


# ----------------------------------------------------------------------------- order statistics
def _rows():
    k = 1000
    rows = [
        torch.randn(k, generator=GEN),
        torch.randint(0, 5, (k,), generator=GEN).float(),  # heavy ties
        torch.randn(k, generator=GEN) ** 7,  # heavy tails: most values in one bin
        torch.full((k,), -3.25),  # constant
        torch.where(torch.rand(k, generator=GEN) < 0.01, 100.0, 0.0),  # spiky
    ]
    return torch.stack(rows)


def test_order_statistics_equal_full_sort():
    v = _rows()
    lo, hi = v.amin(-1), v.amax(-1)
    const = lo == hi
    glab = ops.histogram_labels(v, 256, lo, hi, offset=True)
    ranks = torch.tensor([0, 1, 49, 499, 500, 950, 998, 999])
    got = su.order_statistics(v, glab, 256, ranks, const)
    assert torch.equal(got, torch.sort(v, -1).values[:, ranks])
    q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95, 0.123], dtype=torch.float64)
    ref = su.quantiles_from_sorted(torch.sort(v, -1).values, q)
    assert torch.equal(su.quantiles(v, glab, 256, q, const), ref)
    assert torch.allclose(ref, torch.quantile(v, q.float(), dim=-1).T, atol=1e-5)


def test_spatial_order_features_equal_sort_reference():
    fam = FAMILY_REGISTRY["spatial"]
    cfg = fam.config_model()
    x = torch.cat([_smooth(4, 24, 20), _rows()[:, :480].reshape(5, 24, 20)]).reshape(3, 3, 24, 20)
    names = [n for n in (s.name for s in fam.catalogue(cfg)) if n.startswith("percentile_")] + [
        "spatial_iqr",
        "spatial_mad",
    ]
    out = fam.compute(x, cfg, names)
    flat = x.reshape(9, -1)
    srt = torch.sort(flat, -1).values
    q = torch.tensor([p / 100 for p in cfg.percentiles] + [0.25, 0.5, 0.75], dtype=torch.float64)
    qv = su.quantiles_from_sorted(srt, q)
    for i, p in enumerate(cfg.percentiles):
        assert torch.equal(out[su.percentile_name(p)].reshape(-1), qv[:, i])
    assert torch.equal(out["spatial_iqr"].reshape(-1), qv[:, -1] - qv[:, -3])
    dev = torch.sort((flat - qv[:, -2:-1]).abs(), -1).values
    mad = su.quantiles_from_sorted(dev, torch.tensor([0.5], dtype=torch.float64))[:, 0]
    assert torch.equal(out["spatial_mad"].reshape(-1), mad)


# ----------------------------------------------------------------------------- SVD
def test_threaded_svdvals_equal_one_call():
    a = _smooth(7, 32, 32)
    assert torch.equal(su._svdvals(a), torch.linalg.svdvals(a))


# ----------------------------------------------------------------------------- half plane
@pytest.mark.parametrize("h,w", [(16, 16), (12, 16), (9, 11), (8, 5), (2, 6)])
def test_half_plane_sums_equal_full_plane(h, w):
    hp = half_plane(h, w, 3, "cpu")
    geo = geometry(h, w, 3, "cpu")
    u = torch.randn(4, h, w, generator=GEN, dtype=torch.float64)
    full = (torch.fft.fft2(u, norm="ortho").abs() ** 2).reshape(4, -1)
    half = (torch.fft.rfft2(u, norm="ortho").abs() ** 2).reshape(4, -1)
    kx, ky = geo.kx.double(), geo.ky.double()
    cols = [geo.nondc.double(), geo.kmag.double(), kx * kx, ky * ky, kx * ky]
    cols += [(geo.band == b).double() for b in range(3)]
    cols += [(geo.shell == n).double() for n in range(1, geo.n_shells + 1)]
    ref = full @ torch.stack(cols, 1)
    assert torch.allclose(half @ hp.sym.double(), ref, rtol=1e-5, atol=1e-9)
    assert torch.allclose(half @ hp.weight.double(), (full * geo.nondc).sum(1), rtol=1e-12)
    # the stored conjugate of each mode has the same power
    assert torch.allclose(half[:, hp.mirror], half, rtol=1e-10, atol=1e-12)


def test_spectral_matches_full_plane_reference():
    """A few spectral features from the full fft2 plane, as the definitions state them."""
    fam = FAMILY_REGISTRY["spectral"]
    cfg = fam.config_model()
    u = torch.cat([_smooth(3, 32, 32), torch.randn(3, 32, 32, generator=GEN)])
    out = fam.compute(u.reshape(2, 3, 32, 32), cfg, [])
    geo = geometry(32, 32, cfg.num_bands, "cpu")
    v = u - u.mean((-2, -1), keepdim=True)
    v = v / v.abs().amax((-2, -1), keepdim=True)
    P = (torch.fft.fft2(v.double(), norm="ortho").abs() ** 2).reshape(6, -1) * geo.nondc
    p = P / P.sum(1, keepdim=True)
    k = geo.kmag.double()
    cen = (p * k).sum(1)
    assert torch.allclose(out["spectral_centroid"].reshape(-1).double(), cen, rtol=1e-5)
    bw = (p * (k - cen[:, None]) ** 2).sum(1).sqrt()
    assert torch.allclose(out["spectral_bandwidth"].reshape(-1).double(), bw, rtol=1e-4)
    ent = -(p * p.clamp_min(1e-300).log()).sum(1) / math.log(32 * 32 - 1)
    assert torch.allclose(out["spectral_entropy"].reshape(-1).double(), ent, atol=1e-6)
    for i in range(cfg.num_bands):
        frac = (p * (geo.band == i)).sum(1)
        assert torch.allclose(out[f"spectral_band{i}_power_fraction"].reshape(-1).double(), frac, atol=1e-6)
    kstar = P.argmax(1)
    assert torch.equal(out["spectral_dominant_k"].reshape(-1), geo.kmag[kstar])
    cs = p[:, geo.order].cumsum(1)
    ro = geo.kmag_sorted[(cs < cfg.rolloff_fraction).sum(1)]
    assert torch.equal(out["spectral_rolloff"].reshape(-1), ro)


# ----------------------------------------------------------------------------- chunking
def test_chunked_reductions_do_not_depend_on_chunk_size(monkeypatch):
    x = _smooth(2 * 5 * 3, 16, 16).reshape(2, 5, 3, 16, 16) * 3 + 1
    cfg = load_features_config(None)
    families = ("temporal", "causality", "invariant_drift", "nonlinear")
    whole = {}
    for name in families:
        fam = FAMILY_REGISTRY[name]
        names = [s.name for s in fam.selected(getattr(cfg, name)) if s.mask_reason(3, 5) is None]
        whole[name] = (names, fam.compute(x, getattr(cfg, name), names))
    monkeypatch.setattr(ts, "FIELD_CHUNK", 16 * 16 * 2)  # 2 fields per chunk
    for name in families:
        names, ref = whole[name]
        got = FAMILY_REGISTRY[name].compute(x, getattr(cfg, name), names)
        for n in names:
            assert torch.allclose(got[n], ref[n], rtol=1e-6, atol=1e-7, equal_nan=True), (name, n)


def test_extractor_cpu_chunk_cap_matches_one_chunk(monkeypatch):
    from spinlock_core.features import extract

    x = _smooth(2 * 3 * 2 * 3, 16, 16).reshape(2, 3, 2, 3, 16, 16)
    x[1, 2, 1, 0, 3, 3] = float("nan")
    cfg = load_features_config(None)
    ref = FeatureExtractor(cfg, "cpu").extract(x)
    monkeypatch.setattr(extract, "_CPU_FRAME_CHUNK", 3 * 16 * 16 * 2)  # 2 frames per chunk
    got = FeatureExtractor(cfg, "cpu").extract(x)
    for cat, blk in ref.items():
        assert torch.allclose(
            torch.from_numpy(got[cat].values), torch.from_numpy(blk.values), rtol=1e-5, atol=1e-6, equal_nan=True
        ), cat
