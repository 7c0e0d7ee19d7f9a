"""Fitting a shot to a preset's canvas: resize, pad, crop, and white backdrops at 255."""

from __future__ import annotations

import logging
import math

import numpy as np
from PIL import Image

from lightbox.catalog.presets import Background, Preset
from lightbox.domain.marketplace.geometry import LANCZOS_CLEAN_UPSCALE, plan_fit
from lightbox.domain.marketplace.pixels import border_ring, flatten_on_white, mask_bbox
from lightbox.errors import InvalidInput

logger = logging.getLogger(__name__)

#: Product estimation on white-background shots: colour distance from the backdrop.
BACKDROP_DISTANCE = 12
#: What must stay inside the frame on white shots (product, shadow, the shadow's tail):
#: anything further than this from the backdrop. Closer pixels end at 253 or more once
#: the backdrop is lifted to white, which the background rule accepts.
CONTENT_DISTANCE = 7
#: A backdrop whose border is at least this light in every channel is a white studio
#: that `_lift_backdrop_to_white` may bring to exactly 255.
NEAR_WHITE_BACKDROP = 230


def fit_to_preset(
    shot: Image.Image, preset: Preset, *, product_mask: Image.Image | None = None
) -> Image.Image:
    """The shot resized, padded and cropped to the preset canvas (RGB).

    White-background presets: the shot's near-white backdrop is lifted to pure 255, the
    frame is extended with pure white, and the product is scaled and centred to the
    preset's target fill. ``product_mask`` (mode L, the shot's size, 255 = product)
    says where the product is; without it an alpha channel is used, or the product is
    estimated as whatever differs from the backdrop. Other presets: the shot covers the
    canvas, cropped around the product when its position is known.

    Raises InvalidInput when the shot would need more than ``LANCZOS_CLEAN_UPSCALE``:
    call ``needs_upscale`` and upscale with a real upscaler first.
    """
    fitted, _ = fit_with_mask(shot, preset, product_mask=product_mask)
    return fitted


def fit_with_mask(
    shot: Image.Image, preset: Preset, *, product_mask: Image.Image | None = None
) -> tuple[Image.Image, Image.Image | None]:
    """``fit_to_preset`` plus the product mask moved to the delivered frame.

    The mask is the one fit framed by (given, alpha or estimated), soft edges kept, so
    the compliance checker can be handed the product's position in the delivered image.
    """
    rgb, alpha = flatten_on_white(shot)
    # A scene that is not on white (a kitchen, a beach) is never re-framed on white:
    # padding it with white would only dress a lifestyle shot up as a white-background
    # one. It is delivered as composed, and the checker reports its background.
    on_white = preset.white_background and (alpha is not None or _backdrop_is_near_white(rgb))
    framing = preset if on_white or not preset.white_background else _as_scene_preset(preset)
    coverage = _product_mask_for_fit(rgb, framing, product_mask, alpha)
    mask = coverage > 127 if coverage is not None else None
    bbox = mask_bbox(mask) if mask is not None else None
    if on_white and bbox is None:
        raise InvalidInput("No product found on the shot: it is all backdrop.")
    content = None
    if on_white:
        content = mask_bbox(_estimate_product_on_backdrop(np.asarray(rgb), CONTENT_DISTANCE))
    plan = plan_fit(rgb.size, framing, bbox, content)
    if plan.scale > LANCZOS_CLEAN_UPSCALE + 1e-9:
        raise InvalidInput(
            f"The shot needs a {plan.scale:.2f}x upscale for preset {preset.id}; "
            "run the upscaler first.",
            needed=math.ceil(plan.scale * 100) / 100,
        )
    if on_white:
        rgb = _lift_backdrop_to_white(rgb, mask)
        fill_colour: tuple[int, int, int] = (255, 255, 255)
    else:
        fill_colour = _border_colour(np.asarray(rgb))
    size = plan.scaled_size(rgb.size)
    resized = rgb if size == rgb.size else rgb.resize(size, Image.Resampling.LANCZOS)
    fitted = Image.new("RGB", plan.canvas, fill_colour)
    fitted.paste(resized, plan.offset)
    if coverage is None:
        return fitted, None
    mask_image = Image.fromarray(coverage, "L")
    if size != mask_image.size:
        mask_image = mask_image.resize(size, Image.Resampling.BILINEAR)
    fitted_mask = Image.new("L", plan.canvas, 0)
    fitted_mask.paste(mask_image, plan.offset)
    return fitted, fitted_mask


def _backdrop_is_near_white(rgb: Image.Image) -> bool:
    return min(_border_colour(np.asarray(rgb))) >= NEAR_WHITE_BACKDROP


def _as_scene_preset(preset: Preset) -> Preset:
    """The same canvas and limits, framed like a scene (cover, no white padding)."""
    return preset.model_copy(update={"background": Background(rule="any")})


def _product_mask_for_fit(
    rgb: Image.Image,
    preset: Preset,
    product_mask: Image.Image | None,
    alpha_mask: np.ndarray | None,
) -> np.ndarray | None:
    """The product's coverage, 0..255 (soft edges kept), or None when unknown."""
    if product_mask is not None:
        if product_mask.size != rgb.size:
            raise InvalidInput(
                "product_mask must have the shot's size.",
                mask_size=product_mask.size,
                shot_size=rgb.size,
            )
        return np.asarray(product_mask.convert("L"))
    if alpha_mask is not None:
        return alpha_mask
    if preset.white_background:
        estimated = _estimate_product_on_backdrop(np.asarray(rgb))
        return np.where(estimated, 255, 0).astype(np.uint8)
    return None


def _border_colour(pixels: np.ndarray) -> tuple[int, int, int]:
    height, width = pixels.shape[:2]
    ring = border_ring(height, width, max(2, round(0.02 * min(height, width))))
    median = np.median(pixels[ring], axis=0)
    return int(median[0]), int(median[1]), int(median[2])


def _estimate_product_on_backdrop(
    pixels: np.ndarray, threshold: int = BACKDROP_DISTANCE
) -> np.ndarray:
    """Whatever differs from the backdrop colour (product and its shadow)."""
    backdrop = np.array(_border_colour(pixels), dtype=np.int16)
    distance = np.abs(pixels.astype(np.int16) - backdrop).max(axis=2)
    return distance > threshold


def _lift_backdrop_to_white(rgb: Image.Image, product: np.ndarray | None) -> Image.Image:
    """Set the white point from the backdrop, outside the product only.

    A generator's "white" studio is rarely 255; marketplaces check for exactly 255. The
    backdrop colour maps to 255 per channel (shadows lighten in proportion, so they keep
    their shape) and values that end near white are eased onto 255 with a smooth
    curve, so a shadow's tail has no visible step.
    """
    pixels = np.asarray(rgb)
    backdrop = np.array(_border_colour(pixels), dtype=np.float64)
    if backdrop.min() < NEAR_WHITE_BACKDROP:
        logger.info("backdrop %s is not near white; leaving it as it is", backdrop.tolist())
        return rgb
    levels = np.arange(256, dtype=np.float64)
    lut = np.empty((3, 256), dtype=np.uint8)
    for channel in range(3):
        lifted = np.clip(levels * 255.0 / backdrop[channel], 0, 255)
        ease = np.clip((lifted - 240.0) / 12.0, 0, 1)
        ease = ease * ease * (3 - 2 * ease)
        lut[channel] = np.round(lifted + (255.0 - lifted) * ease).astype(np.uint8)
    lifted_pixels = np.stack([lut[c][pixels[..., c]] for c in range(3)], axis=2)
    if product is not None:
        lifted_pixels = np.where(product[..., None], pixels, lifted_pixels)
    return Image.fromarray(lifted_pixels, "RGB")
