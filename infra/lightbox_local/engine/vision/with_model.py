"""The local engine's "with model" compositor: the offline stand-in for a person with the product.

Flux Kontext, given the avatar's portrait and the product, makes a new photograph of
that person holding, wearing or standing beside the product. Offline, Lightbox does
not pretend to: it sets the product, untouched, in front of the avatar's portrait (a
placeholder figure locally), where the scene's `look.person` says, with a soft shadow
and the scene's light. The person's face stays clear of the product, so a shot made
this way shows exactly one face, as the shot check expects of a scene with a person.

Pixels depend only on the inputs and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from lightbox.errors import InvalidInput

Placement = Literal["hold", "wear", "beside"]

#: Where the person stands (their centre, as a share of the frame's width) and how tall
#: the portrait is drawn (a share of the frame's height; it runs off the bottom).
_PERSON = {"hold": (0.5, 1.0), "wear": (0.42, 1.0), "beside": (0.34, 0.9)}
#: The widest a product may be, as a share of the frame's width, so it never covers
#: the face beside it.
_MAX_WIDTH = {"hold": 0.6, "wear": 0.5, "beside": 0.45}


@dataclass(frozen=True)
class PersonLook:
    placement: Placement = "hold"
    #: The product's height as a share of the frame's.
    height: float = 0.42
    #: The product's centre as a share of the frame's width.
    x: float = 0.5

    @classmethod
    def from_look(cls, look: dict[str, Any]) -> PersonLook:
        d = look.get("person") or {}
        placement = str(d.get("placement", "hold"))
        if placement not in _PERSON:
            raise InvalidInput(f"unknown person placement {placement!r}",
                               allowed=sorted(_PERSON))
        height = float(d.get("height", 0.42))
        x = float(d.get("x", 0.5))
        if not (0.2 <= height <= 0.6 and 0.1 <= x <= 0.9):
            raise InvalidInput("person height must be 0.2-0.6 and x 0.1-0.9", value=d)
        return cls(placement=placement, height=height, x=x)  # type: ignore[arg-type]


def render_with_person(
    portrait: Image.Image,
    product: Image.Image,
    look: dict[str, Any],
    *,
    seed: int,
    size: tuple[int, int],
) -> Image.Image:
    """The product (RGBA, transparent around it) with the person of `portrait`; RGB of `size`."""
    width, height = size
    if not (64 <= width <= 8192 and 64 <= height <= 8192):
        raise InvalidInput("size must be within 64..8192 pixels a side", value=size)
    person = PersonLook.from_look(look)
    rng = np.random.default_rng(seed & 0xFFFFFFFF)
    canvas = _place_person(np.asarray(portrait.convert("RGB"), np.float32) / 255.0,
                           person.placement, (width, height))
    canvas = _light(canvas, look.get("light") or {})
    item = _trimmed(product.convert("RGBA"))
    scale = min(person.height * height / item.height,
                _MAX_WIDTH[person.placement] * width / item.width)
    item = item.resize((max(1, round(item.width * scale)), max(1, round(item.height * scale))),
                       Image.LANCZOS)
    cx = (person.x + rng.uniform(-0.02, 0.02)) * width
    left = round(float(min(max(cx - item.width / 2, 0.02 * width), 0.98 * width - item.width)))
    top = round(float(0.965 * height - item.height + rng.uniform(-0.01, 0.01) * height))
    canvas = _shadow(canvas, item, (left, top), look.get("shadow") or {})
    rgb = np.asarray(item, np.float32)[..., :3] / 255.0
    alpha = np.asarray(item, np.float32)[..., 3:] / 255.0
    region = canvas[top:top + item.height, left:left + item.width]
    canvas[top:top + item.height, left:left + item.width] = rgb * alpha + region * (1 - alpha)
    return Image.fromarray(np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")


def _place_person(portrait: np.ndarray, placement: Placement, size: tuple[int, int]) -> np.ndarray:
    """The portrait scaled and anchored at the bottom; the backdrop extended beyond it."""
    width, height = size
    centre, tall = _PERSON[placement]
    ph, pw = portrait.shape[:2]
    k = tall * height / ph
    tx = centre * width - k * pw / 2
    ty = height - k * ph
    matrix = np.array([[k, 0, tx], [0, k, ty]], np.float32)
    return cv2.warpAffine(portrait, matrix, (width, height), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def _light(canvas: np.ndarray, light: dict[str, Any]) -> np.ndarray:
    """The scene's warmth and exposure on the person and backdrop (never on the product)."""
    warmth = float(light.get("warmth", 0.0))
    exposure = float(light.get("exposure", 0.0))
    gain = np.array([1 + 0.05 * warmth, 1.0, 1 - 0.05 * warmth], np.float32) * 2.0 ** exposure
    return np.clip(canvas * gain, 0.0, 1.0)


def _trimmed(product: Image.Image) -> Image.Image:
    box = product.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if box is None:
        raise InvalidInput("the product reference is empty")
    return product.crop(box)


def _shadow(
    canvas: np.ndarray, item: Image.Image, origin: tuple[int, int], shadow: dict[str, Any]
) -> np.ndarray:
    """A soft shadow behind the product, falling away from the light."""
    opacity = float(shadow.get("opacity", 0.35))
    softness = float(shadow.get("softness", 0.06))
    angle = np.radians(float(shadow.get("angle", 0.0)))
    height, width = canvas.shape[:2]
    mask = np.zeros((height, width), np.float32)
    alpha = np.asarray(item.getchannel("A"), np.float32) / 255.0
    left, top = origin
    dx = round(float(-np.sin(angle) * 0.02 * width))
    dy = round(0.012 * height)
    x0, y0 = max(0, left + dx), max(0, top + dy)
    x1, y1 = min(width, left + dx + item.width), min(height, top + dy + item.height)
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] = alpha[y0 - (top + dy):y1 - (top + dy), x0 - (left + dx):x1 - (left + dx)]
    sigma = max(1.0, softness * max(item.size) * 0.5)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return canvas * (1.0 - opacity * mask[..., None])
