"""The dataset card: generated from the files, same for the same data, charts that are real PNGs."""

from __future__ import annotations

import io

from PIL import Image

from spinlock_core.dataset import card_hashes, read_splits, read_stats, write_card
from spinlock_core.dataset.card import bar_chart_png
from spinlock_core.testing import build_dataset, copy_dataset


def test_card_describes_the_dataset_and_names_its_hashes(tmp_path):
    cfg, layout = build_dataset(tmp_path / "ds", **{"renders.enabled": False})
    text = layout.card.read_text()
    splits = read_splits(layout)
    stats = read_stats(layout, splits)
    assert card_hashes(layout) == (splits.hash, stats.to_json()["hash"])
    assert f"{cfg.sampling.total_samples} operators x grid sizes [16, 24]" in text
    assert f"train {splits.counts()['train']}" in text and "No operator is in two splits" in text
    assert "## Normalisation statistics (train split)" in text and "| 24 | 2 |" in text  # grid 24, channel 2
    for key in ("ic_types", "rollout_policies", "noise_regimes"):
        png = layout.root / "card" / f"{key}.png"
        assert f"(card/{key}.png)" in text and Image.open(png).format == "PNG"
    assert "from spinlock_core.data import TrajectoryDataset" in text and str(tmp_path) not in text
    # the same data elsewhere: the same card
    other = copy_dataset(layout.root, tmp_path / "elsewhere")
    from spinlock_core.dataset import DatasetLayout

    moved = DatasetLayout(other)
    write_card(moved, read_splits(moved), read_stats(moved))
    assert moved.card.read_text() == text


def test_bar_chart_draws_one_bar_per_value():
    img = Image.open(io.BytesIO(bar_chart_png({"a": 3, "b": 1, "c": 0}, "title")))
    assert img.size[0] == 640 and img.size[1] >= 3 * 24
    px = img.convert("RGB").load()
    blue = lambda y: sum(px[x, y] == (54, 110, 170) for x in range(img.size[0]))
    rows = [28 + i * 24 + 9 for i in range(3)]
    assert blue(rows[0]) > 2.5 * blue(rows[1]) > 0 and blue(rows[2]) <= 2  # a: 3x b; c: a 1-px stub
