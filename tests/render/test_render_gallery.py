"""IC gallery layout and seeding (spinlock_core.render.gallery); the command: tests/cli/test_visualize_cli.py."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spinlock_core.ics import IC_REGISTRY, TIERS, generate_ics, ic_names_by_tier
from spinlock_core.render import (
    fields_to_rgb,
    gallery_seed,
    gallery_shape,
    render_ic_gallery,
    resolve_ic_types,
    resolve_tiers,
    save_png,
    type_key,
)
from spinlock_core.seeding import Stream, derive_seed

A, B = "gaussian_random_field", "localized"
G = 16  # IC grid side used throughout


def _gallery(names=(A, B), **kw):
    args = dict(variations=3, grid_size=G, num_channels=3, seed=5, cell_size=G, add_labels=False, add_spacing=False)
    args.update(kw)
    return render_ic_gallery(list(names), **args)


def _cells(img, rows, k, s, x0=0, sp=0):
    return [
        [img[i * (s + sp) : i * (s + sp) + s, x0 + v * (s + sp) : x0 + v * (s + sp) + s] for v in range(k)]
        for i in range(rows)
    ]


@pytest.mark.parametrize(
    "labels, spacing, expected",
    [
        (False, False, (2 * 32, 3 * 32)),
        (False, True, (2 * 32 + 2, 3 * 32 + 2 * 2)),
        (True, False, (2 * 32, 160 + 3 * 32)),  # label column max(160, 2 * 32)
        (True, True, (2 * 32 + 2, 160 + 2 + 3 * 32 + 2 * 2)),
    ],
)
def test_gallery_shape_matches_the_documented_formula(labels, spacing, expected):
    img = _gallery(cell_size=32, add_labels=labels, add_spacing=spacing)
    assert img.shape == (*expected, 3) and img.dtype == np.uint8
    assert img.shape == gallery_shape(2, 3, 32, add_labels=labels, add_spacing=spacing)
    assert gallery_shape(2, 3, 128, add_labels=True, add_spacing=True) == (258, 256 + 2 + 388, 3)


def test_spacing_is_white_and_labels_are_drawn():
    s, sp, lw = 32, 2, 160
    img = _gallery(cell_size=s, add_labels=True, add_spacing=True)
    assert np.all(img[s : s + sp] == 255)  # gap between the two rows
    x0 = lw + sp
    assert np.all(img[:, lw:x0] == 255)  # gap after the label column
    for v in range(1, 3):
        gap = x0 + v * s + (v - 1) * sp
        assert np.all(img[:, gap : gap + sp] == 255)
    labels = img[:, :lw]
    for i in range(2):  # each row's label box holds dark text
        box = labels[i * (s + sp) : i * (s + sp) + s]
        assert (box.min(axis=2) < 100).sum() > 20
    # the label pixels are the only difference with an unlabelled, spaced gallery
    plain = _gallery(cell_size=s, add_labels=False, add_spacing=True)
    np.testing.assert_array_equal(img[:, x0:], plain)


def test_cells_are_the_rendered_ics_of_the_gallery_seeds():
    img = _gallery()
    for i, name in enumerate((A, B)):
        x = generate_ics([(name, None, gallery_seed(5, name, v)) for v in range(3)], G, 3, "cpu").numpy()
        for v in range(3):
            np.testing.assert_array_equal(img[i * G : (i + 1) * G, v * G : (v + 1) * G], fields_to_rgb(x[v]))


def test_variations_differ_and_a_seed_is_deterministic():
    img = _gallery()
    cells = _cells(img, 2, 3, G)
    for row in cells:
        for a in range(3):
            for b in range(a + 1, 3):
                assert not np.array_equal(row[a], row[b])
    np.testing.assert_array_equal(img, _gallery())
    assert not np.array_equal(img, _gallery(seed=6))


def test_a_row_does_not_depend_on_the_other_rows():
    both = _gallery((A, B))
    np.testing.assert_array_equal(both[G : 2 * G], _gallery((B,)))
    np.testing.assert_array_equal(both[:G], _gallery((B, A))[G : 2 * G])


def test_gallery_seeds_are_distinct_and_derived():
    seeds = {gallery_seed(42, n, v) for n in IC_REGISTRY for v in range(50)}
    assert len(seeds) == 50 * len(IC_REGISTRY)
    assert gallery_seed(42, A, 1) != gallery_seed(42, B, 1)
    assert type_key(A) == type_key(A) and 0 <= type_key(A) < 2**32
    from spinlock_core.render.gallery import GALLERY_STREAM

    assert gallery_seed(42, A, 2) == derive_seed(42, Stream.IC, GALLERY_STREAM, type_key(A), 2)


def test_nearest_resize_repeats_pixels():
    small = _gallery((A,), variations=1)
    big = _gallery((A,), variations=1, cell_size=2 * G, resample="nearest")
    np.testing.assert_array_equal(big, np.repeat(np.repeat(small, 2, axis=0), 2, axis=1))
    smooth = _gallery((A,), variations=1, cell_size=2 * G)  # bilinear
    assert smooth.shape == big.shape and not np.array_equal(smooth, big)


def test_single_channel_uses_the_colormap():
    from spinlock_core.render import colormap_lut

    img = _gallery((A,), variations=2, num_channels=1)
    assert set(map(tuple, img.reshape(-1, 3))) <= set(map(tuple, colormap_lut("cubehelix")))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="registered"):
        _gallery(("no_such_type",))
    with pytest.raises(ValueError, match="variations"):
        _gallery(variations=0)
    with pytest.raises(ValueError, match="resample"):
        _gallery(resample="cubic")


def test_resolve_tiers():
    by_tier = ic_names_by_tier()
    assert resolve_tiers(["baseline"]) == by_tier["baseline"]
    assert resolve_tiers(["all"]) == [n for t in TIERS for n in by_tier[t]]
    assert sorted(resolve_tiers(["all"])) == sorted(IC_REGISTRY)
    # canonical tier order whatever the given order; repeats ignored
    mixed = [t for t in TIERS if by_tier[t]][:2]
    assert resolve_tiers(mixed[::-1] + mixed) == resolve_tiers(mixed)
    with pytest.raises(ValueError, match=r"allowed: \['all', 'baseline', 'tier1'"):
        resolve_tiers(["baseline", "tier9"])
    with pytest.raises(ValueError):
        resolve_tiers([])
    assert resolve_ic_types([B, A, B]) == [B, A]
    with pytest.raises(ValueError, match="registered"):
        resolve_ic_types(["nope"])


def test_save_png_is_atomic_and_readable(tmp_path):
    img = _gallery((A,), variations=2)
    out = save_png(img, tmp_path / "sub" / "g.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (img.shape[1], img.shape[0])
        np.testing.assert_array_equal(np.asarray(im), img)
    assert [p.name for p in out.parent.iterdir()] == ["g.png"]  # no temporary left behind
    with pytest.raises(ValueError, match="directory"):
        save_png(img, tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        save_png(img.astype(np.float32), tmp_path / "f.png")


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_gallery_on_cuda_matches_cpu():
    cpu = _gallery(cell_size=32, add_labels=True, add_spacing=True)
    gpu = _gallery(cell_size=32, add_labels=True, add_spacing=True, device="cuda")
    diff = np.abs(cpu.astype(int) - gpu.astype(int))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01  # float rounding moves a few pixels by an LSB
