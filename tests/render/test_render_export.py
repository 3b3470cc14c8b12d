"""MP4 / GIF / PNG writers decode back; writes are atomic (spinlock_core.render.export).

Output paths of the render commands (``resolve_outputs``) are tested with the render stage
(tests/stages/test_render_stage.py).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from spinlock_core.files import temp_owner_pid
from spinlock_core.render import GifWriter, Mp4Writer, PngFramesWriter, thumbnail_png
from spinlock_core.testing import assert_no_temp_files


def _frames(n: int = 6, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """Flat colour blocks (easy on lossy codecs) that change from frame to frame."""
    out = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, : w // 2] = (200, 40 + 30 * i, 40)
        f[:, w // 2 :] = (30, 60, 220 - 25 * i)
        out.append(f)
    return out


def _no_leftovers(d: Path) -> None:
    assert not [p.name for p in d.iterdir() if ".tmp" in p.name]
    assert_no_temp_files(d)


def _is_own_temp(tmp: Path, target: Path, ext: str) -> bool:
    """``tmp`` is ``<target name>.<this pid>.<8 hex>.tmp<ext>`` beside ``target``."""
    pattern = re.escape(target.name) + r"\.[0-9]+\.[0-9a-f]{8}\.tmp" + re.escape(ext)
    return (
        tmp.parent == target.parent
        and re.fullmatch(pattern, tmp.name) is not None
        and temp_owner_pid(tmp) == os.getpid()
    )


def test_mp4_is_h264_yuv420p_and_decodes_to_the_frames(tmp_path):
    frames = _frames()
    with Mp4Writer(tmp_path / "a.mp4", fps=12) as w:
        for f in frames:
            w.write(f)
        # while encoding: only a temporary name of this process (extension kept for ffmpeg)
        assert _is_own_temp(w.tmp, tmp_path / "a.mp4", ".mp4")
        assert not (tmp_path / "a.mp4").exists()
    path = tmp_path / "a.mp4"
    back = iio.imread(path, index=None)
    assert back.shape == (6, 48, 64, 3)
    assert np.abs(back.astype(int) - np.stack(frames).astype(int)).mean() < 4
    meta = iio2.get_reader(path, format="FFMPEG").get_meta_data()
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p") and meta["fps"] == 12
    assert path.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    _no_leftovers(tmp_path)


def test_mp4_rejects_odd_sizes_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="even"):
        with Mp4Writer(tmp_path / "odd.mp4", fps=5) as w:
            w.write(np.zeros((47, 64, 3), np.uint8))
    assert not list(tmp_path.iterdir())


def test_failed_render_removes_the_partial_file(tmp_path):
    with pytest.raises(RuntimeError):
        with Mp4Writer(tmp_path / "b.mp4", fps=5) as w:
            w.write(_frames(1)[0])
            raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="no frames"):
        Mp4Writer(tmp_path / "c.mp4", fps=5).close()
    assert not list(tmp_path.iterdir())


def test_gif_decodes_loops_and_keeps_colours(tmp_path):
    frames = _frames(5, 30, 41)  # odd sizes are fine for GIF
    with GifWriter(tmp_path / "a.gif", fps=10) as w:
        for f in frames:
            w.write(f)
        assert _is_own_temp(w.tmp, tmp_path / "a.gif", ".gif") and not (tmp_path / "a.gif").exists()
    back = iio.imread(tmp_path / "a.gif", index=None)
    assert back.shape[:3] == (5, 30, 41)
    assert np.abs(back[..., :3].astype(int) - np.stack(frames).astype(int)).max() <= 2
    with Image.open(tmp_path / "a.gif") as im:
        assert im.info["loop"] == 0 and im.info["duration"] == 100
    _no_leftovers(tmp_path)


def test_png_frames_are_lossless_with_metadata(tmp_path):
    frames = _frames(3)
    out = tmp_path / "frames"
    out.mkdir()
    (out / "stale.png").write_bytes(b"old")  # replaced as a whole
    with PngFramesWriter(out, fps=7, metadata={"operators": [1, 2]}) as w:
        for f in frames:
            w.write(f)
        # frames go to a temporary directory beside the target (no extension); the old one is intact
        assert _is_own_temp(w.tmp, out, "") and w.tmp.is_dir()
        assert sorted(p.name for p in w.tmp.iterdir()) == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
        assert [p.name for p in out.iterdir()] == ["stale.png"]
    assert sorted(p.name for p in out.iterdir()) == [
        "frame_0000.png",
        "frame_0001.png",
        "frame_0002.png",
        "metadata.json",
    ]
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(iio.imread(out / f"frame_{i:04d}.png"), f)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["num_frames"] == 3 and meta["fps"] == 7 and meta["operators"] == [1, 2]
    _no_leftovers(tmp_path)


def test_thumbnail_is_small_png():
    png = thumbnail_png(np.full((300, 800, 3), 90, np.uint8))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (160, 60)
