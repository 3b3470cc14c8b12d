"""The render stage (spinlock_core.stages.renders) and its row ``renders`` of the stage table.

render_dataset (``spinlock visualize-dataset``), resolve_outputs, render_partition_preview and
render_preview_stage (what the ``renders`` asset runs): files, the JSON render record with its
hashes, the stage-table metadata, and previews of final-state-only datasets (replayed).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from render_helpers import ROLLOUT_STAGES, generate, tiny_render_config

from spinlock_core.config import RendersConfig, load_config
from spinlock_core.dataset import DatasetError, PartitionId, read_render_record
from spinlock_core.render import FrameOptions
from spinlock_core.stages import (
    STAGES,
    Markdown,
    PathValue,
    RenderOptions,
    StaleInput,
    hashes_of,
    layout_of,
    render_dataset,
    render_preview_stage,
    resolve_outputs,
    stage,
)
from spinlock_core.stages.renders import render_partition_preview
from spinlock_core.testing import assert_no_temp_files, run_stages, tiny_config

THUMB_PREFIX = "![poster](data:image/png;base64,"


def _with(cfg, **overrides):
    return load_config(cfg.model_dump(mode="json"), overrides)


@pytest.fixture(scope="module")
def partition(tmp_path_factory):
    cfg = tiny_render_config(tmp_path_factory.mktemp("render_dataset") / "data", steps=4)
    return cfg, generate(cfg)


# ----------------------------------------------------------------------------- render_partition_preview


def test_partition_preview_writes_video_poster_and_thumbnail(partition, tmp_path):
    _, part = partition
    cfg = RendersConfig(n_operators=3, size=32, aggregates=["mean", "stddev", "pca"], fps=4)
    out = tmp_path / "renders"
    video, poster, thumb, stats = render_partition_preview(part, out / "v.mp4", out / "v.png", cfg)
    assert video == out / "v.mp4" and poster == out / "v.png"
    frames = iio.imread(video, index=None)
    assert frames.shape[0] == 5 == stats["frames"] and stats["operators"] == [0, 1, 2]
    still = iio.imread(poster)
    assert still.shape == frames.shape[1:]
    assert np.abs(still.astype(int) - frames[-1].astype(int)).mean() < 8  # the poster is the last frame
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "PNG" and im.width == 160
    assert stats["aggregates"] == ["mean", "stddev", "pca"] and stats["source"] == "stored"
    assert sorted(p.name for p in out.iterdir()) == ["v.mp4", "v.png"]  # no temporary left behind


def test_gif_preview(partition, tmp_path):
    _, part = partition
    cfg = RendersConfig(format="gif", size=16, stride=2, n_operators=1)
    res = render_partition_preview(part, tmp_path / "p.gif", tmp_path / "p.png", cfg)
    assert res.video_path.suffix == ".gif" and iio.imread(res.video_path, index=None).shape[0] == 3
    assert res.video_path.read_bytes()[:4] == b"GIF8" and res.poster_path.is_file()


# ----------------------------------------------------------------------------- render_preview_stage


def test_preview_stage_follows_the_experiment_config(partition):
    cfg, _ = partition
    p = PartitionId(grid=16, batch=0)
    small = _with(cfg, **{"renders.size": 16})
    res = render_preview_stage(small, p)
    layout = layout_of(cfg)
    assert res.video_path == layout.render_video(p) and res.poster_path == layout.render_poster(p)
    assert res.video_path.is_file() and res.stats["enabled"]
    assert str(res.video_path).startswith(cfg.dataset.output_dir)
    rec = read_render_record(layout, p)
    assert rec["hash"] == hashes_of(small).renders and rec["rollouts_hash"] == hashes_of(cfg).rollouts
    # the render options are part of the renders hash (not of the rollouts hash)
    assert hashes_of(small).renders != hashes_of(cfg).renders and hashes_of(small).rollouts == hashes_of(cfg).rollouts
    off = render_preview_stage(_with(cfg, **{"renders.enabled": False}), p)
    assert off.video_path is None and off.poster_path is None and off.stats == {"enabled": False}
    assert read_render_record(layout, p)["hash"] == hashes_of(small).renders  # untouched when disabled


def test_preview_stage_without_rollouts_raises_a_dataset_error(partition):
    cfg, _ = partition
    missing = PartitionId(grid=32, batch=0)
    with pytest.raises(DatasetError) as err:
        render_preview_stage(cfg, missing)
    assert str(layout_of(cfg).rollouts(missing)) in str(err.value) and "\n" not in str(err.value)
    assert not layout_of(cfg).render_video(missing).parent.exists()


def test_preview_stage_without_rollouts_says_how_to_fix_it(partition):
    cfg, _ = partition
    with pytest.raises(DatasetError, match="materialize rollouts_hdf5") as err:
        render_preview_stage(cfg, PartitionId(grid=32, batch=0))
    assert err.value.fix


def test_preview_stage_refuses_rollouts_of_another_config(partition):
    cfg, _ = partition
    p = PartitionId(grid=16, batch=0)
    other = _with(cfg, **{"simulation.num_timesteps": 3})  # another rollouts hash, same files
    assert hashes_of(other).rollouts != hashes_of(cfg).rollouts
    before = layout_of(cfg).render_record(p).read_bytes() if layout_of(cfg).render_record(p).exists() else None
    with pytest.raises(StaleInput, match=re.escape("re-materialize rollouts_hdf5 for partition 0000|16")) as err:
        render_preview_stage(other, p)
    assert hashes_of(cfg).rollouts in str(err.value) and hashes_of(other).rollouts in str(err.value)
    after = layout_of(cfg).render_record(p).read_bytes() if layout_of(cfg).render_record(p).exists() else None
    assert before == after  # nothing rendered or recorded


# ----------------------------------------------------------------------------- render_dataset, outputs


def test_render_dataset_summary_and_all_formats(partition, tmp_path):
    cfg, _ = partition
    opts = RenderOptions(format="both", n_operators=2, steps=2, frame=FrameOptions(cell_size=(24, 24), aggregates=()))
    s = render_dataset(cfg.dataset.output_dir, tmp_path / "out", opts)
    assert s.frames == 3 and (s.first_step, s.last_step) == (0, 2) and s.operators == [0, 1]
    assert s.displayed_realizations == 2 and s.realizations == 3 and s.aggregates == []
    assert set(s.outputs) == {"video", "frames"} and s.frames_per_s > 0
    assert iio.imread(s.outputs["video"], index=None).shape == (3, s.height, s.width, 3)
    assert len(list((tmp_path / "out" / "frames").glob("frame_*.png"))) == 3
    assert_no_temp_files(tmp_path)
    with pytest.raises(ValueError, match="does not fit"):
        render_dataset(cfg.dataset.output_dir, tmp_path / "x.gif", RenderOptions(format="video"))
    assert not (tmp_path / "x.gif").exists()


def test_render_dataset_of_no_dataset_raises_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset") as err:
        render_dataset(tmp_path / "nope", tmp_path / "v.mp4")
    assert str(tmp_path / "nope") in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_output_paths():
    assert resolve_outputs("out/x.mp4", None) == {"video": Path("out/x.mp4")}
    assert resolve_outputs("out/x.gif", None) == {"gif": Path("out/x.gif")}
    assert resolve_outputs("out", None) == {"video": Path("out/evolution.mp4")}
    assert resolve_outputs("out", "both") == {"video": Path("out/evolution.mp4"), "frames": Path("out/frames")}
    assert resolve_outputs("out/x.mp4", "both") == {"video": Path("out/x.mp4"), "frames": Path("out/x_frames")}
    assert resolve_outputs("out", "frames") == {"frames": Path("out/frames")}
    for bad, fmt in (("x.gif", "video"), ("x.mp4", "gif"), ("x.avi", None), ("x.mp4", "frames")):
        with pytest.raises(ValueError):
            resolve_outputs(bad, fmt)
    with pytest.raises(ValueError, match="video, gif, frames, both"):
        resolve_outputs("out", "webm")


# ----------------------------------------------------------------------------- the "renders" row


def _experiment(tmp_path, **extra):
    """Partition (batch 1, grid 16) of the tiny experiment with its points, specs and rollouts."""
    cfg = tiny_config(
        tmp_path / "data",
        **{"simulation.grid_sizes": [16], "renders.size": 32, "renders.n_operators": 2, **extra},
    )
    part = PartitionId(grid=16, batch=1)
    run_stages(cfg, [part], stages=ROLLOUT_STAGES)
    return cfg, part


def _decode_thumbnail(md: dict) -> bytes:
    thumb = md["thumbnail"]
    assert isinstance(thumb, Markdown) and thumb.text.startswith(THUMB_PREFIX) and thumb.text.endswith(")")
    return base64.b64decode(thumb.text[len(THUMB_PREFIX) : -1])


def test_renders_row_writes_a_partition_preview_with_its_record(tmp_path):
    cfg, part = _experiment(tmp_path)
    layout = layout_of(cfg)
    h = hashes_of(cfg)
    res = stage("renders").run(cfg, part)
    md = res.metadata
    root = tmp_path / "data" / "renders" / "grid_0016"
    video, poster, record = root / "batch_0001.mp4", root / "batch_0001.png", root / "batch_0001.json"
    assert (layout.render_video(part), layout.render_poster(part), layout.render_record(part)) == (
        video,
        poster,
        record,
    )
    assert res.files == [video, poster, record]
    assert md["video"] == PathValue(str(video)) and md["poster"] == PathValue(str(poster))
    frames = cfg.simulation.num_timesteps + 1
    assert md["frames"] == frames and md["seconds"] > 0 and md["frames_per_s"] > 0
    decoded = iio.imread(video, index=None)
    assert decoded.shape[0] == frames and decoded.shape[1] % 2 == 0 and decoded.shape[2] % 2 == 0
    assert md["size"] == f"{decoded.shape[2]}x{decoded.shape[1]}"
    assert iio.imread(poster).shape == decoded.shape[1:]
    with Image.open(io.BytesIO(_decode_thumbnail(md))) as im:
        assert im.format == "PNG" and im.width <= 160
    assert md["operators"] == [3, 4] and md["source"] == "stored" and md["enabled"] is True
    assert md["aggregates"] == cfg.renders.aggregates
    assert "replay_max_abs_diff" not in md  # stored frames: nothing replayed
    assert res.data_version == h.renders and str(video) in res.message
    # the record names the files (relative to the dataset) and the hashes they came from
    rec = read_render_record(layout, part)
    assert rec["kind"] == "renders" and rec["hash"] == h.renders and rec["rollouts_hash"] == h.rollouts
    assert rec["partition"] == part.key == "0001|16"
    assert rec["files"] == {"video": "renders/grid_0016/batch_0001.mp4", "poster": "renders/grid_0016/batch_0001.png"}
    assert rec["stats"]["frames"] == frames and rec["stats"]["operators"] == [3, 4]
    assert rec["stats"]["source"] == "stored" and "outputs" not in rec["stats"]
    (check,) = stage("renders").checks
    assert check.name == "renders_files" and check.fn(cfg, part).passed
    assert sorted(p.name for p in root.iterdir()) == ["batch_0001.json", "batch_0001.mp4", "batch_0001.png"]
    assert_no_temp_files(layout.root)


def test_renders_files_check_fails_on_a_damaged_preview(tmp_path):
    cfg, part = _experiment(tmp_path)
    (check,) = stage("renders").checks
    out = check.fn(cfg, part)
    assert not out.passed and str(layout_of(cfg).render_record(part)) in out.description  # not rendered yet
    stage("renders").run(cfg, part)
    assert check.fn(cfg, part).passed
    layout_of(cfg).render_video(part).write_bytes(b"not a video at all")
    out = check.fn(cfg, part)
    assert not out.passed and "signature" in out.description
    layout_of(cfg).render_poster(part).unlink()
    assert not check.fn(cfg, part).passed
    assert check.fn(_with(cfg, **{"renders.enabled": False}), part).passed  # nothing to check


def test_renders_row_definition():
    row = stage("renders")
    assert row in STAGES and row.name == "renders"
    assert row.inputs == ("sdf_features",) and row.outputs == ("renders",) and row.hash_of == "renders"
    assert row.group == "renders" and row.partitioned and row.description
    assert {"pytorch", "mp4"} <= set(row.kinds)
    assert [c.name for c in row.checks] == ["renders_files"] and not row.checks[0].blocking
    assert row.checks[0].severity == "warn"


def test_renders_row_is_enabled_by_the_renders_and_features_switches(tiny_cfg):
    row = stage("renders")
    assert row.enabled(tiny_cfg)
    assert not row.enabled(_with(tiny_cfg, **{"renders.enabled": False}))
    assert not row.enabled(_with(tiny_cfg, **{"features.extract": False}))


def test_disabled_renders_write_nothing(tmp_path):
    cfg, part = _experiment(tmp_path, **{"renders.enabled": False})
    res = stage("renders").run(cfg, part)
    assert res.files == [] and res.metadata == {"enabled": False}
    assert res.data_version == hashes_of(cfg).renders
    assert not (tmp_path / "data" / "renders").exists()


def test_final_state_dataset_preview_is_replayed_exactly(tmp_path):
    """store_trajectories: false keeps the final state only: the preview replays every step from the seeds."""
    final_cfg, part = _experiment(tmp_path / "final", **{"dataset.storage.store_trajectories": False})
    full_cfg, _ = _experiment(tmp_path / "full")
    final = stage("renders").run(final_cfg, part)
    full = stage("renders").run(full_cfg, part)
    md = final.metadata
    assert md["source"] == "replay" and md["replay_max_abs_diff"] == 0.0 and md["replay_ic_exact"] is True
    frames = final_cfg.simulation.num_timesteps + 1
    assert md["frames"] == frames == full.metadata["frames"]  # every step, though one is stored
    rec = read_render_record(layout_of(final_cfg), part)
    assert rec["stats"]["source"] == "replay" and rec["stats"]["replay_max_abs_diff"] == 0.0
    assert rec["stats"]["replay_ic_exact"] is True
    assert rec["hash"] == hashes_of(final_cfg).renders and rec["rollouts_hash"] == hashes_of(final_cfg).rollouts
    # same seeds: the replayed preview shows what the stored trajectories show
    a = iio.imread(layout_of(final_cfg).render_poster(part))
    b = iio.imread(layout_of(full_cfg).render_poster(part))
    assert np.array_equal(a, b)
    assert iio.imread(layout_of(final_cfg).render_video(part), index=None).shape[0] == frames
    assert_no_temp_files(layout_of(final_cfg).root)
