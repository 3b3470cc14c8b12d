"""Frame layout and colour normalisation modes (spinlock_core.render.frames, .palettes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from render_test_data import synthetic

from spinlock_core.device import torch_threads
from spinlock_core.render import fields_to_rgb, robust_limits
from spinlock_core.render.frames import FrameOptions, FrameRenderer, header_height, label_width
from spinlock_core.render.palettes import ALL_COLORMAPS, NAN_COLOR, oklab_to_srgb, palette_lut, robust_range


def _renderer(fields, mode="per-cell", **kw) -> FrameRenderer:
    opts = FrameOptions(color_norm_mode=mode, cell_size=(16, 16), **kw)
    return FrameRenderer(fields, list(range(fields[0].shape[1])), [["op"]] * len(fields), opts)


def _cell(img: np.ndarray, r: FrameRenderer, op: int, col: int) -> np.ndarray:
    y, x, h, w = r.cell_box(op, col)
    return img[y : y + h, x : x + w]


def test_global_limits_are_constant_across_frames_operators_and_field_columns():
    r = _renderer(synthetic(3, frames=5), "global")
    field_cols = [j for j, c in enumerate(r.columns) if c.group == "field"]  # realizations + mean
    assert len(field_cols) == 3
    lims = {r.limits(op, j, f) for op in range(3) for j in field_cols for f in range(5)}
    assert len(lims) == 1
    env = r.columns.index(next(c for c in r.columns if c.title == "envelope"))
    assert len({r.limits(op, env, f) for op in range(3) for f in range(5)}) == 1
    assert r.limits(0, env, 0)[0] == 0.0  # non-negative aggregate: lower limit 0


def test_per_operator_limits_are_constant_in_time_and_differ_between_operators():
    fields = synthetic(2, frames=6)
    fields[0] = fields[0] * np.linspace(0.2, 3.0, 6, dtype=np.float32)[None, :, None, None, None]  # growing
    r = _renderer(fields, "per-operator")
    for j in range(len(r.columns) - 1):  # entropy (last) has its fixed range
        per_op = [{r.limits(op, j, f) for f in range(6)} for op in range(2)]
        assert all(len(s) == 1 for s in per_op), r.columns[j].title
        assert per_op[0] != per_op[1]
    # limits come from the whole rollout: the widest frame lies inside them only partly
    lo, hi = r.limits(0, 0, 0)
    assert (fields[0][:, -1] > hi).any() and not (fields[0][:, 0] > hi).any()


def test_per_cell_limits_are_each_cells_own_percentiles():
    fields = synthetic(2, frames=3, c=1)
    r = _renderer(fields, "per-cell")
    for op in range(2):
        for f in range(3):
            for real in range(2):
                ref = robust_limits(fields[op][real, f, 0])  # numpy percentiles, float64
                assert r.limits(op, real, f) == pytest.approx(ref, rel=1e-5, abs=1e-6)
    assert r.limits(0, 0, 0) != r.limits(0, 0, 1) != r.limits(1, 0, 1)


def test_fixed_ranges_ignore_the_mode():
    for mode in ("global", "per-operator", "per-cell"):
        r = _renderer(synthetic(2, m=4), mode, aggregates=("entropy", "ssim"))
        assert r.limits(1, 2, 3) == (0.0, math.log2(4)) and r.limits(0, 3, 0) == (0.0, 1.0)


def test_colours_do_not_flicker_with_stable_modes():
    """A region that keeps its values keeps its colour in global / per-operator mode, not per cell."""
    fields = synthetic(1, frames=4)
    f = fields[0]
    f[:, :, :, :4, :4] = 0.25  # constant patch
    f[:, :, :, 8:, :] *= np.arange(1, 5, dtype=np.float32)[None, :, None, None, None]  # the rest changes a lot
    for mode, stable in (("per-operator", True), ("global", True), ("per-cell", False)):
        r = _renderer(fields, mode, aggregates=())
        frames = list(r.frames())
        patches = [_cell(img, r, 0, 0)[:4, :4] for img in frames]
        same = all(np.array_equal(patches[0], p) for p in patches)
        assert same == stable, mode


def test_values_are_clamped_not_wrapped():
    fields = synthetic(2, frames=2, c=1)
    fields[1][0, 1, 0, 2, 3] = 1e6  # far above every limit
    fields[1][0, 1, 0, 5, 6] = -1e6  # far below
    r = _renderer(fields, "global", aggregates=())
    img = r.render(1)
    lut = palette_lut("cubehelix")
    cell = _cell(img, r, 1, 0)
    assert tuple(cell[2, 3]) == tuple(lut[255]) and tuple(cell[5, 6]) == tuple(lut[0])
    # every pixel is lut[round(255 clip((v - vmin) / (vmax - vmin), 0, 1))], with the global limits
    lo, hi = r.limits(1, 0, 1)
    u = np.clip((fields[1][0, 1, 0].astype(np.float64) - lo) / (hi - lo), 0, 1)
    assert np.abs(cell.astype(int) - lut[np.rint(u * 255).astype(int)].astype(int)).max() <= 1
    assert (u == 1).sum() > 1 and (u == 0).sum() > 1  # the 10x larger operator saturates at both ends


def test_per_cell_field_cells_match_the_still_image_renderer():
    for c in (1, 3):
        fields = synthetic(1, frames=2, c=c, g=16)
        r = _renderer(fields, "per-cell", aggregates=())
        img = r.render(0)
        for real in range(2):
            ref = fields_to_rgb(fields[0][real, 0])  # C=3: RGB of channels 0-2; C=1: cubehelix
            got = _cell(img, r, 0, real)
            assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1, c


def test_non_finite_values_are_grey():
    fields = synthetic(1, frames=2, c=1)
    fields[0][1, 1, 0, 4, 4] = np.nan
    r = _renderer(fields, "per-cell", aggregates=("envelope",))
    img = r.render(1)
    assert tuple(_cell(img, r, 0, 1)[4, 4]) == NAN_COLOR
    assert tuple(_cell(img, r, 0, 2)[4, 4]) == NAN_COLOR  # the envelope of a diverged pixel
    assert tuple(_cell(img, r, 0, 0)[4, 4]) != NAN_COLOR


def test_layout_sizes_headers_labels_and_spacing():
    fields = synthetic(3, frames=2)
    opts = FrameOptions(display_realizations=2, cell_size=(40, 50), add_spacing=True)
    r = FrameRenderer(fields, [0, 1], [["sample 0", "grf"], ["sample 1"], ["sample 2"]], opts)
    h, w, _ = r.shape
    assert h % 2 == 0 and w % 2 == 0
    sp, head, lw = 3, header_height(50), label_width(50)
    assert r.cell_box(0, 0) == (sp + head, sp + lw + sp, 40, 50)
    assert r.cell_box(2, 2)[:2] == (sp + head + 2 * 43, sp + lw + sp + 2 * 53 + 8)  # aggregates after a group gap
    assert w - (r.columns[-1].x + 50) in (sp, sp + 1) and h - (r.row_y[-1] + 40) in (sp, sp + 1)
    img = next(r.frames())
    assert (img[: sp + head, r.columns[0].x : r.columns[0].x + 50] < 200).any()  # a column title
    assert (img[r.row_y[0] : r.row_y[0] + 40, :lw] < 200).any()  # a row label
    y0 = r.row_y[0]
    assert (img[y0 : y0 + 40, r.columns[1].x - sp : r.columns[1].x] == 255).all()  # white gap
    assert [c.title for c in r.columns] == ["realization 0", "realization 1", "mean", "envelope", "entropy [bits]"]
    bare = FrameRenderer(
        fields,
        [0, 1],
        None,
        FrameOptions(cell_size=(40, 50), row_labels=False, headers=False, display_realizations=1, aggregates=("mean",)),
    )
    assert bare.shape == (3 * 40, 2 * 50, 3)


def test_value_normalizations():
    fields = synthetic(1, frames=3)
    mm = _renderer(fields, normalization="minmax", aggregates=())
    v = mm.ops[0].real.numpy()
    assert v.min() == pytest.approx(0.0) and v.max() == pytest.approx(1.0)
    z = _renderer(fields, normalization="zscore", aggregates=()).ops[0].real.numpy()
    assert np.abs(z.mean(axis=(0, 1, 3, 4))).max() < 1e-5 and np.allclose(z.std(axis=(0, 1, 3, 4)), 1.0, atol=1e-4)


def test_bad_options_are_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match="per-cell"):
        FrameOptions(color_norm_mode="per-frame").validate()
    with pytest.raises(ValueError, match="allowed: mean"):
        FrameOptions(aggregates=("median",)).validate()
    with pytest.raises(ValueError, match="nothing to show"):
        FrameOptions(display_realizations=0, aggregates=()).validate()
    with pytest.raises(ValueError, match="lagoon"):
        FrameOptions(colormap="jet").validate()
    with pytest.raises(ValueError, match="same number of frames"):
        FrameRenderer([np.zeros((2, 3, 1, 8, 8)), np.zeros((2, 4, 1, 8, 8))], [0, 1, 2])
    with pytest.raises(ValueError, match="needs C >= 3"):
        FrameRenderer(synthetic(1, c=1), [0, 1, 2, 3], None, FrameOptions(channel_mode="rgb"))


def test_robust_range_matches_numpy_and_handles_degenerate_rows():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((3, 1000)).astype(np.float32)
    v[1, 10] = np.nan
    v[2] = 5.0
    lo, hi = robust_range(v)
    assert (float(lo[0]), float(hi[0])) == pytest.approx(robust_limits(v[0]), rel=1e-5)
    assert (float(lo[1]), float(hi[1])) == pytest.approx(robust_limits(v[1]), rel=1e-5)
    assert (float(lo[2]), float(hi[2])) == (5.0, 6.0)
    lo, hi = robust_range(np.full((1, 4), np.inf))
    assert (float(lo[0]), float(hi[0])) == (0.0, 1.0)
    lo, _ = robust_range(v, zero_based=True)
    assert float(lo.abs().max()) == 0.0


def test_perceptual_palettes_have_monotone_lightness_and_stay_in_gamut():
    for name in ("ember", "lagoon"):
        lut = palette_lut(name).astype(np.float64) / 255.0
        lin = np.where(lut <= 0.04045, lut / 12.92, ((lut + 0.055) / 1.055) ** 2.4)
        lum = lin @ np.array([0.2126, 0.7152, 0.0722])
        assert (np.diff(lum) > -1e-3).all() and lum[-1] - lum[0] > 0.7, name
    assert set(ALL_COLORMAPS) >= {"cubehelix", "gray", "bwr", "ember", "lagoon"}
    assert np.allclose(oklab_to_srgb(np.array([1.0, 0.0, 0.0])), 1.0, atol=1e-3)  # OKLab white


def test_thread_setting_is_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
