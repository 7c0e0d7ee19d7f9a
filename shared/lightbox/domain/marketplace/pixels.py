"""Pixel helpers that fitting and the compliance check share (Pillow and numpy)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lightbox.domain.marketplace.geometry import Box


def flatten_on_white(image: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
    """RGB over white, and the alpha (the product's coverage) when the shot is a cutout."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode.startswith("I;16") or image.mode == "I":
        image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8), "L")
    if not has_alpha:
        return image.convert("RGB"), None
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    alpha = np.asarray(rgba.getchannel("A"))
    coverage = alpha if alpha.min() < 255 else None
    return Image.alpha_composite(white, rgba).convert("RGB"), coverage


def border_ring(height: int, width: int, thickness: int) -> np.ndarray:
    ring = np.zeros((height, width), dtype=bool)
    t = max(1, min(thickness, height // 2, width // 2))
    ring[:t, :] = ring[-t:, :] = ring[:, :t] = ring[:, -t:] = True
    return ring


def mask_bbox(mask: np.ndarray) -> Box | None:
    """Bounding box (x0, y0, x1, y1), exclusive, ignoring stray specks."""
    height, width = mask.shape
    rows = np.flatnonzero(mask.sum(axis=1) >= max(1, round(0.002 * width)))
    cols = np.flatnonzero(mask.sum(axis=0) >= max(1, round(0.002 * height)))
    if rows.size == 0 or cols.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
