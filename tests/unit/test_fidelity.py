"""Product-fidelity check: real product photos composed into shots that must pass or fail.

Each case composites a real product (a sample photo with its reference mask as the
cutout's alpha) onto a new backdrop, the way a composing model would, and then
applies one change. Passing cases change what a scene may change (position, scale,
light, backdrop); failing cases change the product or the scene in ways a customer
would reject. Every case is asserted on its own. `bench/fidelity_accuracy.py` runs
the same cases and prints the rates.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image
from skimage.color import hsv2rgb, rgb2hsv

from lightbox.domain.fidelity import CheckThresholds, ShotCheck, check_shot, check_shot_bytes
from lightbox.errors import InvalidInput

PRODUCTS = ("carvekit-handheld-product", "rembg-car-1", "rembg-car-2", "rembg-car-3")
LOW_TEXTURE_PRODUCT = "plain-mug"
FRAME = 1024
BASE_FILL = 0.65  # the product's long extent as a share of the frame, before scaling


def samples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"


# --- building blocks: cutouts, backdrops, compositing ---------------------------------------


@lru_cache(maxsize=8)
def load_cutout(name: str) -> Image.Image:
    """The product as Lightbox's cutout step delivers it: RGBA cropped to the product."""
    if name == LOW_TEXTURE_PRODUCT:
        return plain_mug_cutout()
    photo = Image.open(samples_dir() / "photos" / f"{name}.jpg").convert("RGB")
    mask = Image.open(samples_dir() / "masks" / f"{name}.png").convert("L")
    rgba = photo.copy()
    rgba.putalpha(mask)
    box = mask.point(lambda value: 255 if value > 127 else 0).getbbox()
    cutout = rgba.crop(box)
    cutout.thumbnail((900, 900), Image.Resampling.LANCZOS)
    return cutout


def plain_mug_cutout() -> Image.Image:
    """A low-texture product: a matte terracotta mug with soft shading and no print."""
    height, width = 520, 600
    rgba = np.zeros((height, width, 4), np.float32)
    body = np.zeros((height, width), np.uint8)
    cv2.rectangle(body, (60, 60), (420, 480), 255, -1)
    cv2.ellipse(body, (240, 480), (180, 30), 0, 0, 180, 255, -1)
    cv2.ellipse(body, (240, 60), (180, 30), 0, 0, 360, 255, -1)
    handle = np.zeros_like(body)
    cv2.ellipse(handle, (430, 260), (120, 130), 0, -90, 90, 255, 44)
    silhouette = cv2.GaussianBlur(np.maximum(body, handle), (0, 0), 1.2)
    xs = np.linspace(-1, 1, width)[None, :]
    shade = 0.78 + 0.22 * np.cos(np.clip(xs * 1.3, -np.pi / 2, np.pi / 2))
    base = np.array([186, 92, 62], np.float32)
    rgba[:, :, :3] = base[None, None, :] * shade[:, :, None]
    rgba[:, :, 3] = silhouette
    return Image.fromarray(np.clip(rgba, 0, 255).astype(np.uint8), "RGBA")


def backdrop(kind: str, size: tuple[int, int], seed: int) -> np.ndarray:
    """A new scene backdrop, float32 RGB 0..255."""
    width, height = size
    rng = np.random.default_rng(seed)
    ys = np.linspace(0, 1, height)[:, None, None]
    if kind == "white":
        return np.full((height, width, 3), 250.0, np.float32)
    if kind == "plain":
        return np.broadcast_to(np.array([214, 220, 226], np.float32), (height, width, 3)).copy()
    if kind == "gradient":
        top, bottom = np.array([246, 238, 226]), np.array([196, 180, 160])
        return np.broadcast_to(top + (bottom - top) * ys, (height, width, 3)).astype(np.float32)
    if kind == "wood":
        return wood_texture(width, height, rng)
    if kind == "concrete":
        noise = sum(smooth_noise(width, height, scale, rng) * weight
                    for scale, weight in ((64, 10.0), (16, 5.0), (4, 3.0)))
        base = np.array([168, 166, 160], np.float32)
        return np.clip(base[None, None, :] + noise[:, :, None], 0, 255).astype(np.float32)
    raise ValueError(kind)


def smooth_noise(width: int, height: int, scale: int, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.standard_normal((height // scale + 2, width // scale + 2)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def wood_texture(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Grain: bands bent by low-frequency noise, with fine fibres."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    warp = smooth_noise(width, height, 128, rng) * 18 + smooth_noise(width, height, 32, rng) * 4
    rings = np.sin((ys + warp) / height * 2 * np.pi * 14 + xs / width * 1.5)
    fibres = smooth_noise(width, height, 2, rng) * 0.25
    tone = 0.5 + 0.3 * rings + fibres
    light, dark = np.array([196, 150, 104], np.float32), np.array([150, 104, 66], np.float32)
    return dark + (light - dark) * np.clip(tone, 0, 1)[:, :, None]


def scaled_cutout(cutout: Image.Image, fill: float, frame: tuple[int, int]) -> Image.Image:
    """The cutout sized so its long extent covers `fill` of the frame."""
    width, height = frame
    scale = fill * min(width / cutout.width, height / cutout.height)
    size = (max(1, round(cutout.width * scale)), max(1, round(cutout.height * scale)))
    return cutout.resize(size, Image.Resampling.LANCZOS)


def paste(canvas: np.ndarray, layer: Image.Image, centre: tuple[float, float],
          shadow: bool = True) -> tuple[int, int]:
    """Alpha-composite `layer` centred at `centre` (fractions of the frame); returns its
    top-left corner. A soft contact shadow goes under it, as the scene renderer draws."""
    height, width = canvas.shape[:2]
    left = round(centre[0] * width - layer.width / 2)
    top = round(centre[1] * height - layer.height / 2)
    pixels = np.asarray(layer.convert("RGBA")).astype(np.float32)
    if shadow:
        shade = np.zeros((height, width), np.float32)
        cv2.ellipse(shade, (left + layer.width // 2, top + layer.height),
                    (int(layer.width * 0.45), max(2, int(layer.height * 0.04))),
                    0, 0, 360, 1.0, -1)
        shade = cv2.GaussianBlur(shade, (0, 0), max(1.0, layer.width * 0.03)) * 0.3
        canvas *= (1.0 - shade)[:, :, None]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + layer.width, width), min(top + layer.height, height)
    part = pixels[y0 - top: y1 - top, x0 - left: x1 - left]
    alpha = part[:, :, 3:4] / 255.0
    canvas[y0:y1, x0:x1] = alpha * part[:, :, :3] + (1 - alpha) * canvas[y0:y1, x0:x1]
    return left, top


def relight(canvas: np.ndarray, exposure: float, cast: tuple[float, float, float]) -> np.ndarray:
    """Exposure and a colour cast applied to the whole scene, in linear light."""
    linear = (canvas / 255.0) ** 2.2 * exposure * np.array(cast, np.float32)
    return np.clip(linear, 0, 1) ** (1 / 2.2) * 255.0


def edit_inside(layer: Image.Image, edit: Callable[[np.ndarray, np.ndarray], np.ndarray]
                ) -> Image.Image:
    """Apply `edit(rgb, central_region_mask)` to the product's pixels, keeping its alpha."""
    pixels = np.asarray(layer.convert("RGBA")).copy()
    rgb = pixels[:, :, :3].astype(np.float32)
    opaque = pixels[:, :, 3] > 127
    rows, cols = np.nonzero(opaque)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    central = np.zeros_like(opaque)
    h, w = bottom - top, right - left
    central[top + int(0.3 * h): top + int(0.7 * h), left + int(0.3 * w): left + int(0.7 * w)] = True
    central &= opaque
    pixels[:, :, :3] = np.clip(edit(rgb, central), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGBA")


def rotate_hue(rgb: np.ndarray, region: np.ndarray, degrees: float = 20.0) -> np.ndarray:
    hsv = rgb2hsv(rgb / 255.0)
    hsv[:, :, 0] = (hsv[:, :, 0] + degrees / 360.0) % 1.0
    return hsv2rgb(hsv) * 255.0


def blur_region(rgb: np.ndarray, region: np.ndarray) -> np.ndarray:
    sigma = max(rgb.shape[:2]) * 0.03
    blurred = cv2.GaussianBlur(rgb, (0, 0), sigma)
    return np.where(region[:, :, None], blurred, rgb)


def flatten_region(rgb: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The label area painted over with its own mean colour: colour kept, detail gone."""
    mean = rgb[region].mean(axis=0)
    return np.where(region[:, :, None], mean[None, None, :], rgb)


def retexture_region(rgb: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The label area replaced by another picture (a crop of another sample photo)."""
    other = Image.open(samples_dir() / "photos" / "rembg-plants-1.png").convert("RGB")
    other = np.asarray(other.resize((rgb.shape[1], rgb.shape[0]))).astype(np.float32)
    return np.where(region[:, :, None], other, rgb)


@lru_cache(maxsize=1)
def astronaut_face() -> Image.Image:
    """A real face (scikit-image's astronaut portrait), cut out with a soft oval."""
    portrait = skimage.data.astronaut()[10:250, 130:330]
    height, width = portrait.shape[:2]
    oval = np.zeros((height, width), np.uint8)
    cv2.ellipse(oval, (width // 2, height // 2), (width // 2 - 4, height // 2 - 4), 0, 0, 360,
                255, -1)
    rgba = np.dstack([portrait, cv2.GaussianBlur(oval, (0, 0), 3)])
    return Image.fromarray(rgba, "RGBA")


def encode_jpeg(canvas: np.ndarray) -> bytes:
    """Shots arrive from the model as JPEG: compress like it does."""
    buffer = io.BytesIO()
    Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# --- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One composed shot, what it should get, and how it was made."""

    name: str
    product: str
    expect_pass: bool
    shot: bytes
    options: dict[str, object] = field(default_factory=dict)
    #: the reason text a failing case must give (a fragment), so it fails for its cause
    reason: str = ""

    def run(self) -> ShotCheck:
        return check_shot_bytes(self.shot, load_cutout(self.product), **self.options)


def compose(product: str, *, kind: str = "plain", fill: float = BASE_FILL,
            centre: tuple[float, float] = (0.5, 0.5), frame: tuple[int, int] = (FRAME, FRAME),
            seed: int = 0, edit: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
            exposure: float = 1.0, cast: tuple[float, float, float] = (1.0, 1.0, 1.0),
            extra: Image.Image | None = None, extra_centre: tuple[float, float] = (0.8, 0.8),
            ) -> bytes:
    canvas = backdrop(kind, frame, seed)
    layer = scaled_cutout(load_cutout(product), fill, frame)
    if edit is not None:
        layer = edit_inside(layer, edit)
    paste(canvas, layer, centre)
    if extra is not None:
        paste(canvas, extra, extra_centre, shadow=False)
    return encode_jpeg(relight(canvas, exposure, cast))


WARM, COOL = (1.05, 1.0, 0.93), (0.93, 1.0, 1.05)


def passing_cases(product: str) -> list[Case]:
    """What a scene may change: place, size (60-110 %), light, backdrop."""
    return [
        Case("moved", product, True, compose(product, kind="plain", centre=(0.42, 0.56))),
        Case("scaled 60%", product, True,
             compose(product, kind="gradient", fill=BASE_FILL * 0.6, centre=(0.55, 0.5))),
        Case("scaled 110%", product, True, compose(product, kind="white", fill=BASE_FILL * 1.1)),
        Case("brighter, warm light", product, True,
             compose(product, kind="gradient", exposure=1.1, cast=WARM)),
        Case("darker, cool light", product, True,
             compose(product, kind="plain", exposure=0.9, cast=COOL, centre=(0.52, 0.45))),
        Case("wood backdrop", product, True, compose(product, kind="wood", seed=1)),
        Case("concrete backdrop, 4:5", product, True,
             compose(product, kind="concrete", seed=2, frame=(880, 1104)),
             options={"aspect_ratio": 0.8, "min_long_side": 1000}),
    ]


def failing_cases(product: str, other_product: str) -> list[Case]:
    """What a customer would reject: a changed product, an extra object, a face, a speck."""
    other = scaled_cutout(load_cutout(other_product), BASE_FILL * 0.45, (FRAME, FRAME))
    face = astronaut_face().resize((180, 216))
    return [
        Case("recoloured (hue +20°)", product, False,
             compose(product, edit=lambda rgb, region: rotate_hue(rgb, region)),
             reason="colour"),
        Case("label blurred", product, False, compose(product, edit=blur_region),
             reason="detail"),
        Case("label flattened", product, False, compose(product, edit=flatten_region),
             reason="detail"),
        Case("label replaced", product, False, compose(product, edit=retexture_region),
             reason="detail"),
        Case("second object", product, False,
             compose(product, kind="gradient", fill=BASE_FILL * 0.8, centre=(0.4, 0.4),
                     extra=other, extra_centre=(0.75, 0.8)),
             reason="extra object"),
        Case("face pasted in", product, False,
             compose(product, kind="plain", fill=BASE_FILL * 0.8, centre=(0.45, 0.55),
                     extra=face, extra_centre=(0.85, 0.17)),
             reason="face"),
        Case("scaled to 20%", product, False, compose(product, kind="wood", fill=0.2, seed=3),
             reason="too small"),
    ]
