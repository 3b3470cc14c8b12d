"""Entry points: render_dataset, render_partition_preview, render_preview_stage (spinlock_core.render.dataset)."""

from __future__ import annotations

import io

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from render_test_data import generate, tiny_render_config

from spinlock_core.config import RendersConfig, load_config
from spinlock_core.render import (
    FrameOptions,
    RenderOptions,
    render_dataset,
    render_partition_preview,
    render_preview_stage,
)


@pytest.fixture(scope="module")
def partition(tmp_path_factory):
    cfg = tiny_render_config(tmp_path_factory.mktemp("render_dataset") / "data", steps=4)
    return cfg, generate(cfg)


def test_partition_preview_writes_video_poster_and_thumbnail(partition, tmp_path):
    _, part = partition
    cfg = RendersConfig(n_operators=3, size=32, aggregates=["mean", "stddev", "pca"], fps=4)
    video, poster, thumb, stats = render_partition_preview(part, tmp_path / "renders", cfg)
    assert video == tmp_path / "renders" / "grid_0016" / "batch_0000.mp4"
    assert poster == video.with_suffix(".png")
    frames = iio.imread(video, index=None)
    assert frames.shape[0] == 5 == stats["frames"] and stats["operators"] == [0, 1, 2]
    still = iio.imread(poster)
    assert still.shape == frames.shape[1:]
    assert np.abs(still.astype(int) - frames[-1].astype(int)).mean() < 8  # the poster is the last frame
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "PNG" and im.width == 160
    assert stats["aggregates"] == ["mean", "stddev", "pca"] and stats["source"] == "stored"
    assert sorted(p.name for p in video.parent.iterdir()) == ["batch_0000.mp4", "batch_0000.png"]


def test_gif_preview(partition, tmp_path):
    _, part = partition
    res = render_partition_preview(part, tmp_path, RendersConfig(format="gif", size=16, stride=2, n_operators=1))
    assert res.video_path.suffix == ".gif" and iio.imread(res.video_path, index=None).shape[0] == 3


def test_preview_stage_follows_the_experiment_config(partition, tmp_path):
    cfg, _ = partition
    res = render_preview_stage(load_config(cfg.model_dump(mode="json"), {"renders.size": 16}), 0, 16)
    assert res.video_path.is_file() and res.stats["enabled"]
    assert str(res.video_path).startswith(cfg.dataset.output_dir)
    off = render_preview_stage(load_config(cfg.model_dump(mode="json"), {"renders.enabled": False}), 0, 16)
    assert off.video_path is None and off.stats == {"enabled": False}
    with pytest.raises(FileNotFoundError, match="materialize rollouts_hdf5"):
        render_preview_stage(cfg, 0, 32)


def test_render_dataset_summary_and_all_formats(partition, tmp_path):
    cfg, _ = partition
    opts = RenderOptions(format="both", n_operators=2, steps=2, frame=FrameOptions(cell_size=(24, 24), aggregates=()))
    s = render_dataset(cfg.dataset.output_dir, tmp_path / "out", opts)
    assert s.frames == 3 and (s.first_step, s.last_step) == (0, 2) and s.operators == [0, 1]
    assert s.displayed_realizations == 2 and s.realizations == 3 and s.aggregates == []
    assert set(s.outputs) == {"video", "frames"} and s.frames_per_s > 0
    assert iio.imread(s.outputs["video"], index=None).shape == (3, s.height, s.width, 3)
    assert len(list((tmp_path / "out" / "frames").glob("frame_*.png"))) == 3
    with pytest.raises(ValueError, match="does not fit"):
        render_dataset(cfg.dataset.output_dir, tmp_path / "x.gif", RenderOptions(format="video"))
    assert not (tmp_path / "x.gif").exists()
