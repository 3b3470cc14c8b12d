"""Text on rendered images (labels, headers): one font source and width-limited strings."""

from __future__ import annotations

import re

from PIL import ImageDraw, ImageFont

__all__ = ["font", "fit", "wrap"]


def font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at ``px`` pixels (Pillow < 10.1: its fixed-size bitmap font)."""
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def fit(draw: ImageDraw.ImageDraw, text: str, face, width: int) -> str:
    """``text`` truncated with "…" so that it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=face) <= width:
        return text
    while text and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def wrap(draw: ImageDraw.ImageDraw, text: str, face, width: int) -> list[str]:
    """Greedy wrap of ``text`` to ``width`` pixels, breaking after spaces and underscores."""
    tokens = [t for t in re.split(r"(?<=[ _])", text) if t]
    lines: list[str] = []
    cur = ""
    for tok in tokens:
        if cur and draw.textlength((cur + tok).rstrip(), font=face) > width:
            lines.append(cur.rstrip())
            cur = tok
        else:
            cur += tok
    if cur.strip():
        lines.append(cur.rstrip())
    return [fit(draw, line, face, width) for line in lines]
