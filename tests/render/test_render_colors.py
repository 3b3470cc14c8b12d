"""Normalisation, 8-bit conversion and colormaps of spinlock_core.render.colors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinlock_core.render import (
    COLORMAPS,
    apply_colormap,
    colormap_lut,
    cubehelix,
    fields_to_rgb,
    luminance,
    normalize,
    robust_limits,
    symmetric_limits,
    to_uint8,
)
from spinlock_core.seeding import numpy_rng


def test_robust_limits_are_the_percentiles():
    x = np.arange(101, dtype=float)  # percentile p of 0..100 is p exactly
    assert robust_limits(x) == pytest.approx((1.0, 99.0))
    assert robust_limits(x, 10, 90) == pytest.approx((10.0, 90.0))


def test_robust_limits_constant_and_nonfinite():
    assert robust_limits(np.full((4, 4), 3.5)) == (3.5, 4.5)
    assert robust_limits(np.array([np.nan, np.inf])) == (0.0, 1.0)
    # non-finite values are ignored, not propagated
    x = np.concatenate([np.arange(101.0), [np.nan, np.inf, -np.inf]])
    assert robust_limits(x) == pytest.approx((1.0, 99.0))
    with pytest.raises(ValueError, match="low"):
        robust_limits(x, 50, 50)


def test_normalize_clamps_beyond_limits():
    x = np.array([-1e6, -1.0, 0.0, 0.5, 1.0, 2.0, 1e6, np.inf, -np.inf, np.nan])
    y = normalize(x, 0.0, 1.0)
    np.testing.assert_array_equal(y, [0, 0, 0, 0.5, 1, 1, 1, 1, 0, 0])
    assert y.min() >= 0.0 and y.max() <= 1.0
    with pytest.raises(ValueError, match="vmin"):
        normalize(x, 1.0, 1.0)


def test_to_uint8_rounds_and_clips():
    np.testing.assert_array_equal(
        to_uint8(np.array([-0.5, 0.0, 0.5 / 255, 0.6 / 255, 0.5, 1.0, 1.7])), [0, 0, 0, 1, 128, 255, 255]
    )
    assert to_uint8(np.array([0.2])).dtype == np.uint8


def test_regression_bright_pixels_do_not_wrap_to_dark():
    """B11: the earlier gallery did ((x - vmin)/(vmax - vmin) * 255).astype(uint8) without a clamp."""
    rng = numpy_rng(3)
    x = rng.standard_normal((64, 64))
    x[0, 0], x[0, 1] = 50.0, -50.0  # far beyond the 1-99 % limits
    vmin, vmax = robust_limits(x)
    wrapped = ((x - vmin) / (vmax - vmin) * 255).astype(np.int64).astype(np.uint8)  # the old cast
    assert wrapped[0, 0] < 255 and wrapped[0, 1] > 0  # the defect this guards against
    img = to_uint8(normalize(x, vmin, vmax))
    assert img[0, 0] == 255 and img[0, 1] == 0
    above, below = x > vmax, x < vmin
    assert above.sum() > 0 and below.sum() > 0
    assert np.all(img[above] == 255) and np.all(img[below] == 0)
    # ordering is preserved: the 8-bit image is a monotone function of the field
    order = np.argsort(x, axis=None)
    assert np.all(np.diff(img.ravel()[order].astype(int)) >= 0)
    # the same through the full field renderer, all three channels
    rgb = fields_to_rgb(np.stack([x, x, x]))
    assert np.all(rgb[0, 0] == 255) and np.all(rgb[0, 1] == 0)


def test_cubehelix_matches_green_formula_and_is_monotone_in_luminance():
    lut = colormap_lut("cubehelix", "float")
    assert lut.shape == (256, 3)
    np.testing.assert_allclose(lut[0], [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(lut[-1], [1, 1, 1], atol=1e-12)
    # Green's luminance weights (0.30, 0.59, 0.11) are orthogonal to the perturbation, so that
    # luminance equals the grey level wherever no channel is clipped.
    lam = np.linspace(0, 1, 256)
    raw = cubehelix(lam)
    unclipped = np.all((raw > 0) & (raw < 1), axis=1)
    assert unclipped.sum() > 200
    np.testing.assert_allclose((raw @ [0.30, 0.59, 0.11])[unclipped], lam[unclipped], atol=2e-5)
    # Rec. 709 luminance strictly increases over the float LUT ...
    assert np.all(np.diff(luminance(lut)) > 0)
    # ... and, up to 8-bit rounding, over the uint8 LUT
    lum8 = luminance(colormap_lut("cubehelix").astype(float))
    assert np.all(np.diff(lum8) > -1.0) and lum8[-1] - lum8[0] == pytest.approx(255.0)
    # it is not grey: the helix has hue
    assert np.ptp(lut[128]) > 0.2


def test_gray_and_diverging_maps():
    g = colormap_lut("gray")
    np.testing.assert_array_equal(g[:, 0], np.arange(256))
    bwr = colormap_lut("bwr", "float")
    lum = luminance(bwr)
    assert np.all(np.diff(lum[:128]) > 0) and np.all(np.diff(lum[128:]) < 0)
    assert bwr[127].min() > 0.99 and bwr[128].min() > 0.99  # white in the middle
    assert bwr[0, 2] > bwr[0, 0] and bwr[-1, 0] > bwr[-1, 2]  # blue low end, red high end
    with pytest.raises(ValueError, match="allowed"):
        colormap_lut("viridis")


def test_apply_colormap_indexes_the_lut():
    x = np.array([[0.0, 1.0], [0.5, 2.0]])
    out = apply_colormap(x, "cubehelix")
    lut = colormap_lut("cubehelix")
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], lut[0])
    np.testing.assert_array_equal(out[1, 1], lut[255])  # clamped
    np.testing.assert_array_equal(out[1, 0], lut[128])


def test_fields_to_rgb_modes():
    rng = numpy_rng(7)
    f3 = rng.standard_normal((3, 16, 16))
    rgb = fields_to_rgb(f3)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    # joint limits over channels: scaling one channel down darkens only that channel
    g = f3.copy()
    g[1] *= 0.1
    out = fields_to_rgb(g)
    assert out[..., 1].astype(float).std() < 0.3 * out[..., 0].astype(float).std()
    # torch input is accepted and gives the same image
    np.testing.assert_array_equal(fields_to_rgb(torch.from_numpy(f3).float()), fields_to_rgb(f3.astype(np.float32)))
    # C = 1 and C = 2 use the colormap of channel 0; C = 5 uses channels 0..2
    np.testing.assert_array_equal(fields_to_rgb(f3[:1]), fields_to_rgb(f3[:2]))
    lut = colormap_lut("cubehelix")
    assert set(map(tuple, fields_to_rgb(f3[:1]).reshape(-1, 3))) <= set(map(tuple, lut))
    f5 = np.concatenate([f3, rng.standard_normal((2, 16, 16))])
    np.testing.assert_array_equal(fields_to_rgb(f5), rgb)
    # diverging: zero is white whatever the scale
    d = fields_to_rgb(np.array([[[-3.0, 0.0, 3.0]]]), mode="diverging")
    assert tuple(d[0, 1]) == tuple(colormap_lut("bwr")[128])
    assert symmetric_limits(np.array([-3.0, 0.0, 1.0]), 100) == (-3.0, 3.0)
    # constant field renders without error (maps to the low end)
    np.testing.assert_array_equal(fields_to_rgb(np.ones((1, 4, 4)))[0, 0], lut[0])
    with pytest.raises(ValueError, match="at least 3"):
        fields_to_rgb(f3[:2], mode="rgb")
    with pytest.raises(ValueError, match="allowed"):
        fields_to_rgb(f3, mode="pca")
    with pytest.raises(ValueError, match="shape"):
        fields_to_rgb(np.zeros((1, 2, 3, 4)))
    assert set(COLORMAPS) == {"cubehelix", "gray", "bwr"}
