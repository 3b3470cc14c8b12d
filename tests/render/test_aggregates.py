"""Aggregates over realizations: definitions, limiting cases, cross-checks (spinlock_core.render.aggregates)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spinlock_core.config.render import AGGREGATE_NAMES
from spinlock_core.render import aggregates as A
from spinlock_core.render.aggregates import AGGREGATES, compute_aggregates


def _rand(b=2, m=4, c=3, h=20, w=24, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, m, c, h, w, generator=g)


def _identical(b=2, m=4, c=3, h=20, w=24) -> torch.Tensor:
    one = _rand(b, 1, c, h, w, seed=3) * 7.3 + 0.1
    return one.expand(b, m, c, h, w).contiguous()


def test_registry_matches_config_names_and_describes_every_aggregate():
    assert tuple(AGGREGATES) == AGGREGATE_NAMES
    x = _rand()
    for name, agg in AGGREGATES.items():
        assert agg.name == name and agg.description and agg.title
        y = agg.fn(x)
        k = {"field": x.shape[2], "scalar": 1, "rgb": 3, "color": 3}[agg.output]
        assert y.shape == (2, k, 20, 24) and y.dtype == torch.float32, name
        assert torch.isfinite(y).all(), name


def test_identical_realizations_give_zero_spread_zero_entropy_and_unit_ssim():
    x = _identical()
    for name in ("variance", "stddev", "envelope", "entropy", "pca"):
        assert torch.count_nonzero(AGGREGATES[name].fn(x)) == 0, name  # exactly 0
    assert torch.allclose(A.aggregate_ssim(x), torch.ones(2, 1, 20, 24), atol=1e-6)
    assert torch.equal(A.aggregate_mean(x), x[:, 0])


def test_mean_variance_stddev_envelope_match_numpy():
    x = _rand()
    a = x.numpy().astype(np.float64)
    var = a.var(axis=1, ddof=1)  # [B, C, H, W]
    np.testing.assert_allclose(A.aggregate_mean(x).numpy(), a.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(A.aggregate_variance(x)[:, 0].numpy(), np.sqrt((var**2).sum(axis=1)), rtol=1e-5)
    np.testing.assert_allclose(A.aggregate_stddev(x)[:, 0].numpy(), np.sqrt(var.sum(axis=1)), rtol=1e-5)
    env = np.sqrt(((a.max(axis=1) - a.min(axis=1)) ** 2).sum(axis=1))
    np.testing.assert_allclose(A.aggregate_envelope(x)[:, 0].numpy(), env, rtol=1e-5)


def test_single_realization_has_zero_spread_and_unit_ssim():
    x = _rand(m=1)
    assert torch.count_nonzero(A.aggregate_variance(x)) == 0
    assert torch.count_nonzero(A.aggregate_entropy(x)) == 0
    assert torch.equal(A.aggregate_ssim(x), torch.ones(2, 1, 20, 24))


def test_spectral_peak_sits_at_the_sinusoid_frequency():
    h, w, ky, kx = 32, 40, 3, 5
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    s = torch.cos(2 * math.pi * (ky * yy / h + kx * xx / w))
    x = s.expand(1, 2, 1, h, w).contiguous()
    p = A.aggregate_spectral(x)[0, 0]
    peaks = {tuple(int(v) for v in torch.nonzero(p >= p.max() - 1e-4)[i]) for i in range(2)}
    assert peaks == {(h // 2 + ky, w // 2 + kx), (h // 2 - ky, w // 2 - kx)}
    # Parseval: P = |F|^2 / (HW), the two peaks carry the mean square 1/2 between them
    assert float(10 ** p.max()) == pytest.approx(h * w / 4, rel=1e-4)
    assert float(p.median()) < float(p.max()) - 6  # everything else is at the floor


def test_pca_recovers_a_planted_mode():
    g = torch.Generator().manual_seed(1)
    h = w = 24
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    phi = torch.exp(-((xx - 0.3) ** 2 + yy**2) / 0.1)  # the mode, channel 0; channel 1 twice as strong
    mode = torch.stack([phi, 2 * phi])  # [C=2, H, W]
    amp = torch.tensor([-1.5, -0.5, 0.5, 1.5, 0.0])  # per realization; std (ddof 1) = sqrt(1.25)
    base = torch.randn(1, 2, h, w, generator=g)
    x = (base + amp.view(-1, 1, 1, 1) * mode + 1e-3 * torch.randn(5, 2, h, w, generator=g))[None]
    maps = A.aggregate_pca(x)[0]  # [3, H, W]
    expected = amp.std() * mode.square().sum(0).sqrt()
    assert torch.corrcoef(torch.stack([maps[0].flatten(), expected.flatten()]))[0, 1] > 0.999
    assert float(maps[0].max()) == pytest.approx(float(expected.max()), rel=0.01)
    assert float(maps[1].max()) < 0.01 * float(maps[0].max())


def test_pca_maps_split_the_variance_exactly():
    x = _rand(m=3, c=1)
    maps = A.aggregate_pca(x)  # rank <= 2 <= 3 components: all of the variance
    var = x.numpy().astype(np.float64).var(axis=1, ddof=1)[:, 0]
    np.testing.assert_allclose((maps.double() ** 2).sum(1).numpy(), var, rtol=1e-4, atol=1e-6)
    assert torch.count_nonzero(maps[:, 2]) == 0  # beyond the rank M - 1


@pytest.mark.parametrize("m,base", [(16, 2.0), (32, 2.0), (64, math.e)])
def test_entropy_of_a_uniform_spread_is_log_bins(m, base):
    bins = A.ENTROPY_BINS
    g = torch.Generator().manual_seed(2)
    centres = (torch.arange(bins).repeat(m // bins) + 0.5) / bins  # m values, the same number per bin
    perm = torch.argsort(torch.rand(2, 3, 5, 6, m, generator=g), dim=-1)
    x = centres[perm].permute(0, 4, 1, 2, 3).contiguous()  # [B, M, C, H, W], shuffled per pixel
    e = A.aggregate_entropy(x, bins=bins, base=base)
    assert torch.allclose(e, torch.full_like(e, math.log(bins, base)), atol=1e-5)  # M > 32 uses the histogram path


def test_entropy_counts_bins_and_reaches_its_fixed_range():
    x = torch.zeros(1, 4, 1, 2, 2)
    x[:, 2:] = 1.0  # two bins, half the realizations each: exactly 1 bit
    assert torch.allclose(A.aggregate_entropy(x), torch.ones(1, 1, 2, 2))
    assert AGGREGATES["entropy"].fixed_range(4, 3) == (0.0, 2.0)  # log2(min(16, M))
    assert AGGREGATES["entropy"].fixed_range(100, 3) == (0.0, 4.0)
    with pytest.raises(ValueError, match="bins"):
        A.aggregate_entropy(x, bins=0)


def test_ssim_has_a_gaussian_window_and_matches_scikit_image_inside():
    metrics = pytest.importorskip("skimage.metrics")
    taps = A.gaussian_window(1.5)
    assert taps.numel() == 11 and float(taps.sum()) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(4)
    a = torch.randn(40, 36, generator=g).cumsum(0).cumsum(1)
    b = a + 3 * torch.randn(40, 36, generator=g)
    x = torch.stack([a, b])[None, :, None]  # [1, M=2, C=1, H, W]
    ours = A.aggregate_ssim(x)[0, 0].double().numpy()
    rng = float(x.max() - x.min())
    _, ref = metrics.structural_similarity(
        a.double().numpy(),
        b.double().numpy(),
        data_range=rng,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    r = 5  # window radius: boundary handling differs (ours periodic, scikit-image reflect)
    np.testing.assert_allclose(ours[r:-r, r:-r], ref[r:-r, r:-r], atol=2e-4)
    assert 0.0 < ours.mean() < 0.99  # a real structural difference


def test_ssim_window_is_spatial():
    """A pixel's SSIM depends on its neighbourhood (the earlier version compared channels per pixel)."""
    x = torch.zeros(1, 2, 1, 32, 32)
    x[0, 1, 0, 16, 16] = 5.0  # realizations differ at one pixel only
    s = A.aggregate_ssim(x)[0, 0]
    assert float(s[16, 18]) < 0.999 and float(s[16, 16]) < float(s[16, 18])  # neighbours feel it
    assert float(s[0, 0]) == pytest.approx(1.0)  # far away: identical


def test_overlay_blends_realizations_with_equal_weights():
    x = torch.rand(2, 3, 3, 8, 8)
    ident = lambda v: v[:, :, :3].clamp(0, 1)
    out = A.aggregate_overlay(x, ident)
    assert torch.allclose(out, x.mean(dim=1), atol=1e-6)
    assert torch.allclose(A.aggregate_overlay(x.flip(1), ident), out, atol=1e-6)  # order does not matter
    default = A.aggregate_overlay(x)
    assert default.shape == (2, 3, 8, 8) and float(default.min()) >= 0 and float(default.max()) <= 1


def test_non_finite_realizations_mark_their_pixels():
    x = _rand()
    x[0, 1, 0, 3, 4] = float("nan")
    x[1, 2, 1, 5, 6] = float("inf")
    for name in ("variance", "envelope", "entropy", "ssim"):
        y = AGGREGATES[name].fn(x)
        assert not torch.isfinite(y[0, 0, 3, 4]) and not torch.isfinite(y[1, 0, 5, 6]), name
        assert torch.isfinite(y[0, 0, 10, 10]), name
    assert torch.isnan(A.aggregate_pca(x)).all()  # a diverged realization spoils the whole frame's PCA


def test_compute_aggregates_chunks_frames_consistently():
    x = _rand(b=5)
    names = ("mean", "envelope", "entropy", "ssim")
    chunked = compute_aggregates(x, names, chunk=2)
    for n in names:
        assert torch.allclose(chunked[n], AGGREGATES[n].fn(x), atol=1e-6), n
    with pytest.raises(ValueError, match="allowed: mean, variance"):
        compute_aggregates(x, ("mean", "median"))
    with pytest.raises(ValueError, match=r"\[B, M, C, H, W\]"):
        A.aggregate_mean(x[0])
