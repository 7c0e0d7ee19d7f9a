"""A contact sheet: every shot of a job on one page, with its scene and its checks.

Shop owners skim this to see at a glance what a job made and why a shot was
rejected; it is also the quickest way to review a batch before publishing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

TILE = 320
CAPTION = 64
GAP = 12
BACKGROUND = (246, 246, 244)
INK = (34, 34, 34)
PASS = (30, 120, 60)
FAIL = (170, 40, 40)


@dataclass(frozen=True)
class SheetEntry:
    title: str
    status: str
    detail: str
    image: Image.Image | None


def render_contact_sheet(entries: list[SheetEntry], *, title: str, columns: int = 4) -> Image.Image:
    """One RGB image: a titled grid of thumbnails, each captioned with scene and result."""
    columns = max(1, min(columns, len(entries) or 1))
    rows = max(1, -(-len(entries) // columns))
    header = 48
    width = GAP + columns * (TILE + GAP)
    height = header + GAP + rows * (TILE + CAPTION + GAP)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font, text = _font(15)
    title_font, _ = _font(22)
    draw.text((GAP, 12), text(title), fill=INK, font=title_font)
    for n, entry in enumerate(entries):
        x = GAP + (n % columns) * (TILE + GAP)
        y = header + GAP + (n // columns) * (TILE + CAPTION + GAP)
        if entry.image is not None:
            thumb = ImageOps.contain(entry.image.convert("RGB"), (TILE, TILE))
            sheet.paste(thumb, (x + (TILE - thumb.width) // 2, y + (TILE - thumb.height) // 2))
        else:
            draw.rectangle((x, y, x + TILE - 1, y + TILE - 1), outline=(200, 200, 200))
            draw.text((x + 12, y + TILE // 2 - 8), "no image", fill=(150, 150, 150), font=font)
        colour = PASS if entry.status == "delivered" else FAIL
        draw.text((x, y + TILE + 6), text(entry.title), fill=INK, font=font)
        draw.text((x, y + TILE + 24), text(entry.status), fill=colour, font=font)
        detail = _fit(draw, text(entry.detail), font, TILE, ellipsis=text("…"))
        draw.text((x, y + TILE + 42), detail, fill=INK, font=font)
    return sheet


def _font(size: int) -> tuple[Any, Callable[[str], str]]:
    """A font with the glyphs captions use (ΔE, accented scene names) and how to write
    for it: DejaVu Sans where the system has it; else Pillow's own font, which covers
    ASCII only, with captions folded to ASCII ("ΔE" as "dE", "Café" as "Cafe")."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size), str
    except OSError:
        return ImageFont.load_default(size=size), _ascii


def _ascii(text: str) -> str:
    text = text.replace("Δ", "d").replace("…", "...").replace("·", "-")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int, *, ellipsis: str) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + ellipsis, font=font) > width:
        text = text[:-1]
    return text + ellipsis
