"""Write frames (``uint8 [H, W, 3]``, H and W even) as MP4, GIF or PNG files, atomically.

* **MP4**: H.264 (libx264 through the ffmpeg binary of ``imageio-ffmpeg``), ``yuv420p`` pixels
  (what browsers play), CRF 20, preset ``veryfast``, ``+faststart`` (the index first, so a
  browser starts playing before the download ends), constant frame rate ``fps``. yuv420p
  needs even sizes: frames with an odd side are rejected (the frame renderer makes them even).
* **GIF**: Pillow, each frame quantised to an adaptive 256-colour palette (median cut, no
  dithering: flat cells stay flat), duration ``round(1000 / fps)`` ms per frame (GIF counts
  hundredths of a second), looping forever.
* **PNG frames**: ``frame_0000.png``, ``frame_0001.png``, ... (4 digits, more when needed)
  plus ``metadata.json`` in a directory.

Every sink writes into a temporary name in the target directory and renames it onto the
target only when complete (``os.replace``; for a directory the old one is removed first), so
a killed render never leaves a partial file under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from spinlock_core.files import tmp_path_for

__all__ = [
    "FrameSink",
    "Mp4Writer",
    "GifWriter",
    "PngFramesWriter",
    "write_png",
    "png_bytes",
    "thumbnail_png",
    "MP4_CRF",
    "MP4_PRESET",
]

MP4_CRF = 20
MP4_PRESET = "veryfast"


def _check_frame(frame: np.ndarray, size: tuple[int, int] | None, even: bool) -> tuple[int, int]:
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"frames must be uint8 [H, W, 3], got {a.dtype} {tuple(a.shape)}")
    h, w = a.shape[:2]
    if even and (h % 2 or w % 2):
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {w}x{h}")
    if size is not None and (h, w) != size:
        raise ValueError(f"frame size changed from {size[1]}x{size[0]} to {w}x{h}")
    return h, w


class FrameSink:
    """Base of the writers: ``with Writer(path, fps) as w: w.write(frame)``; renamed on success."""

    suffix = ""
    is_dir = False

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.count = 0
        self.size: tuple[int, int] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path_for(self.path, keep_suffix=not self.is_dir)
        if self.is_dir:
            self.tmp.mkdir()

    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        pass

    def close(self) -> Path:
        """Finish the file and move it onto ``path``; returns ``path``."""
        if self.count == 0:
            self.abort()
            raise ValueError(f"{self.path}: no frames written")
        try:
            self._finish()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the unfinished file."""
        try:
            self._abort()
        finally:
            if self.tmp.is_dir():
                shutil.rmtree(self.tmp, ignore_errors=True)
            elif self.tmp.exists():
                self.tmp.unlink()

    def __enter__(self) -> FrameSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Mp4Writer(FrameSink):
    """H.264 / yuv420p MP4 (module docstring), streamed to ffmpeg frame by frame."""

    suffix = ".mp4"

    def __init__(self, path: str | os.PathLike, fps: float, *, crf: int = MP4_CRF, preset: str = MP4_PRESET) -> None:
        super().__init__(path, fps)
        self.crf, self.preset = crf, preset
        self._gen: Any = None

    def write(self, frame: np.ndarray) -> None:
        h, w = _check_frame(frame, self.size, even=True)
        if self._gen is None:
            import imageio_ffmpeg  # only when a video is written: everything else runs without ffmpeg

            self.size = (h, w)
            self._gen = imageio_ffmpeg.write_frames(
                str(self.tmp),
                (w, h),
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                fps=self.fps,
                quality=None,
                codec="libx264",
                macro_block_size=1,
                ffmpeg_log_level="error",
                output_params=["-crf", str(self.crf), "-preset", self.preset, "-movflags", "+faststart", "-f", "mp4"],
            )
            self._gen.send(None)
        self._gen.send(np.ascontiguousarray(frame))
        self.count += 1

    def _finish(self) -> None:
        self._gen.close()
        self._gen = None

    def _abort(self) -> None:
        if self._gen is not None:
            try:
                self._gen.close()
            finally:
                self._gen = None


class GifWriter(FrameSink):
    """Looping GIF (module docstring); frames are quantised as they come (1 byte per pixel kept)."""

    suffix = ".gif"

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        super().__init__(path, fps)
        self._frames: list[Image.Image] = []

    def write(self, frame: np.ndarray) -> None:
        self.size = _check_frame(frame, self.size, even=False)
        img = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
        self._frames.append(img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
        self.count += 1

    def _finish(self) -> None:
        first, rest = self._frames[0], self._frames[1:]
        first.save(
            self.tmp,
            format="GIF",
            save_all=True,
            append_images=rest,
            loop=0,
            duration=max(10, int(round(1000.0 / self.fps))),
            disposal=1,
            optimize=False,
        )
        self._frames = []


class PngFramesWriter(FrameSink):
    """A directory of ``frame_NNNN.png`` plus ``metadata.json`` (module docstring)."""

    is_dir = True

    def __init__(self, path: str | os.PathLike, fps: float, metadata: dict | None = None) -> None:
        self.metadata = dict(metadata or {})
        super().__init__(path, fps)

    def write(self, frame: np.ndarray) -> None:
        self.size = _check_frame(frame, self.size, even=False)
        Image.fromarray(np.ascontiguousarray(frame), mode="RGB").save(self.tmp / f"frame_{self.count:04d}.png")
        self.count += 1

    def _finish(self) -> None:
        assert self.size is not None  # close() finishes only after a frame was written
        meta = {
            "fps": self.fps,
            "num_frames": self.count,
            "height": self.size[0],
            "width": self.size[1],
            "pattern": "frame_{:04d}.png",
            **self.metadata,
        }
        (self.tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))

    def close(self) -> Path:
        if self.count and self.path.exists():
            if not self.path.is_dir():
                self.abort()
                raise ValueError(f"{self.path} exists and is not a directory")
            shutil.rmtree(self.path)
        return super().close()


def png_bytes(img: np.ndarray) -> bytes:
    """PNG encoding of ``uint8 [H, W, 3]``."""
    import io

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_png(img: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``uint8 [H, W, 3]`` as a PNG at ``path`` atomically (tmp + rename); returns the path."""
    from .gallery import save_png

    return save_png(np.asarray(img, dtype=np.uint8), path)


def thumbnail_png(img: np.ndarray, max_width: int = 160) -> bytes:
    """PNG bytes of ``img`` shrunk (Lanczos, aspect kept) to at most ``max_width`` px wide."""
    im = Image.fromarray(np.ascontiguousarray(img))
    if im.width > max_width:
        im = im.resize((max_width, max(1, round(im.height * max_width / im.width))), Image.Resampling.LANCZOS)
    return png_bytes(np.asarray(im))
