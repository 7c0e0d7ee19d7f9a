"""Where a shot lands on a preset's canvas: scale and offset, and the upscale it needs.

Plain Python: the step that checks shots plans with it without loading Pillow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightbox.catalog.presets import Preset, SafeArea
from lightbox.errors import InvalidInput

#: The largest enlargement fit_to_preset does itself. Lanczos adds no detail; past a
#: quarter the softness shows at zoom, which is the reason marketplaces ask for pixels.
LANCZOS_CLEAN_UPSCALE = 1.25
#: White-background framing keeps the product and its shadow this far (share of the
#: frame's shorter side) from the edge: clear of the 2 % border band that the
#: background rule reads, so nothing is cut by the frame.
WHITE_MARGIN = 0.025

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FitPlan:
    canvas: tuple[int, int]
    scale: float
    offset: tuple[int, int]

    def scaled_size(self, shot_size: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(shot_size[0] * self.scale)), max(1, round(shot_size[1] * self.scale))


def safe_frame(preset: Preset, canvas: tuple[int, int]) -> tuple[float, float, float, float]:
    """Where the product may sit: the canvas minus the preset's safe-area insets."""
    inset = preset.safe_area or SafeArea()
    x0, y0 = inset.left, inset.top
    return x0, y0, canvas[0] - inset.right - x0, canvas[1] - inset.bottom - y0


def plan_fit(
    shot_size: tuple[int, int],
    preset: Preset,
    product_bbox: Box | None,
    content_bbox: Box | None = None,
) -> FitPlan:
    """Scale and placement of the shot on the preset canvas.

    ``content_bbox`` is the product with whatever belongs to it on a white shot (its
    shadow, a reflection): white-background framing keeps that inside the frame too,
    giving up some fill (never below the preset's floor) rather than cutting a shadow.
    """
    canvas = preset.canvas.size_for(shot_size)
    if preset.white_background:
        return _plan_white(shot_size, preset, canvas, product_bbox, content_bbox)
    if preset.canvas.long_side is not None:
        return FitPlan(canvas, canvas[0] / shot_size[0], (0, 0))
    return _plan_cover(shot_size, preset, canvas, product_bbox)


def _plan_white(
    shot_size: tuple[int, int],
    preset: Preset,
    canvas: tuple[int, int],
    product_bbox: Box | None,
    content_bbox: Box | None,
) -> FitPlan:
    assert preset.fill is not None
    fx, fy, fw, fh = safe_frame(preset, canvas)
    product = product_bbox or (0, 0, shot_size[0], shot_size[1])
    content = _union(product, content_bbox) if content_bbox else product
    share = max((product[2] - product[0]) / fw, (product[3] - product[1]) / fh)
    margin = WHITE_MARGIN * min(fw, fh)
    fits_content = min(
        (fw - 2 * margin) / (content[2] - content[0]), (fh - 2 * margin) / (content[3] - content[1])
    )
    floor = (preset.fill.min + 0.005) / share if preset.fill.min else 0.0
    scale = min(preset.fill.target / share, max(fits_content, floor))
    cx, cy = (product[0] + product[2]) / 2, (product[1] + product[3]) / 2
    ox = _shift_into(
        fx + fw / 2 - cx * scale,
        content[0] * scale,
        content[2] * scale,
        fx + margin,
        fx + fw - margin,
    )
    oy = _shift_into(
        fy + fh / 2 - cy * scale,
        content[1] * scale,
        content[3] * scale,
        fy + margin,
        fy + fh - margin,
    )
    return FitPlan(canvas, scale, (round(ox), round(oy)))


def _plan_cover(
    shot_size: tuple[int, int], preset: Preset, canvas: tuple[int, int], product_bbox: Box | None
) -> FitPlan:
    """Cover the canvas (crop), unless that would cut the product or hide it under UI."""
    sw, sh = shot_size
    fx, fy, fw, fh = safe_frame(preset, canvas)
    scale = max(canvas[0] / sw, canvas[1] / sh)
    if product_bbox is None:
        cx, cy = sw / 2, sh / 2
    else:
        x0, y0, x1, y1 = product_bbox
        scale = min(scale, 0.95 * fw / (x1 - x0), 0.95 * fh / (y1 - y0))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    wanted = (fx + fw / 2 - cx * scale, fy + fh / 2 - cy * scale)
    ox = _cover_offset(wanted[0], sw * scale, canvas[0])
    oy = _cover_offset(wanted[1], sh * scale, canvas[1])
    if product_bbox is not None:
        x0, y0, x1, y1 = (v * scale for v in product_bbox)
        in_safe_frame = (
            ox + x0 >= fx - 1
            and oy + y0 >= fy - 1
            and ox + x1 <= fx + fw + 1
            and oy + y1 <= fy + fh + 1
        )
        if not in_safe_frame:
            # The product matters more than an edge-to-edge scene: leave a gap instead.
            ox, oy = wanted
    return FitPlan(canvas, scale, (round(ox), round(oy)))


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _shift_into(offset: float, lo: float, hi: float, frame_lo: float, frame_hi: float) -> float:
    """Move a span [offset + lo, offset + hi] the least so it lies within the frame."""
    if hi - lo > frame_hi - frame_lo:
        return (frame_lo + frame_hi) / 2 - (lo + hi) / 2
    return min(max(offset, frame_lo - lo), frame_hi - hi)


def _cover_offset(wanted: float, scaled_length: float, canvas_length: int) -> float:
    """Centre on the product, but never leave a gap the scaled shot could have covered."""
    if scaled_length <= canvas_length:
        return (canvas_length - scaled_length) / 2
    return min(0.0, max(canvas_length - scaled_length, wanted))


def needs_upscale(
    shot_size: tuple[int, int],
    preset: Preset,
    product_bbox: tuple[int, int, int, int] | None = None,
) -> float:
    """The scale factor a real upscaler must apply first (1.0 = none).

    It is the enlargement ``fit_to_preset`` would need to reach the preset's canvas and
    framing; up to ``LANCZOS_CLEAN_UPSCALE`` fit covers it itself, so 1.0 is returned.
    Without ``product_bbox`` a white-background preset assumes the product fills the
    shot, the most favourable case; pass the bbox for the real figure.
    """
    if min(shot_size) <= 0:
        raise InvalidInput("The shot has no pixels.")
    scale = plan_fit(shot_size, preset, product_bbox).scale
    if scale <= LANCZOS_CLEAN_UPSCALE:
        return 1.0
    return math.ceil(scale * 100) / 100
