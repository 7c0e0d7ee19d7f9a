"""The local engine's scene renderer: the offline stand-in for the composing model.

Flux Kontext puts the product cutout into a scene described by a prompt. Offline,
Lightbox draws the scene instead, from the template's `look` block in
``catalog/scenes.yaml``: a seamless backdrop, a textured floor seen in
perspective, a contact shadow that follows the product's own base, an optional
floor reflection and the template's colour grade. This is the free tier, so the
bar is a usable product photo: the product's pixels are kept (only a light touch
of the grade reaches them) and the white studio is pure RGB 255 with its shadow
kept clear of the frame edges, as Amazon's main-image rules ask.

Everything is vectorised numpy / OpenCV. Smooth, blurred things (shadows,
reflections' blur, scenery) are computed on a quarter-resolution grid and
scaled up, which keeps a 1600 px render well under a second on one core.
Pixels depend only on the inputs and the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import cv2
import numpy as np
from PIL import Image

from lightbox.errors import InvalidImage, InvalidInput

Rgb = tuple[float, float, float]
Texture = Literal[
    "none", "wood", "marble", "linen", "concrete", "sand", "grass", "stone", "terrazzo"
]
SceneryKind = Literal["bokeh", "window", "leaves", "band"]

TEXTURES: tuple[str, ...] = get_args(Texture)
SCENERY_KINDS: tuple[str, ...] = get_args(SceneryKind)

# Smooth layers live on a grid this many times coarser than the output.
_GRID = 4
# Side of the square, periodic texture tile the floor samples from.
_TILE = 512
# The product receives this share of the template's grade; the backdrop all of it.
_PRODUCT_GRADE = 0.25
# Dither amplitude in 8-bit levels: below 0.5, so a flat colour (pure white) stays exact.
_DITHER = 0.45
# How strongly each seed moves things (fractions of the frame, degrees, gamma).
_JITTER_X = 0.025
_JITTER_Y = 0.012
_JITTER_SCALE = 0.03
_JITTER_ANGLE = 6.0
_JITTER_GAMMA = 0.03


# --- the look, as data ------------------------------------------------------------------


def _rgb(value: Any, what: str) -> Rgb:
    """An sRGB 0-255 triple from the catalogue, as floats 0-1."""
    try:
        r, g, b = (float(c) for c in value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be three numbers 0-255", value=value) from exc
    if not all(0.0 <= c <= 255.0 for c in (r, g, b)):
        raise InvalidInput(f"{what} must be within 0-255", value=value)
    return (r / 255.0, g / 255.0, b / 255.0)


def _number(d: dict[str, Any], key: str, default: float, lo: float, hi: float, what: str) -> float:
    raw = d.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what}.{key} must be a number", value=raw) from exc
    if not lo <= value <= hi:
        raise InvalidInput(f"{what}.{key} must be within {lo}..{hi}", value=value)
    return value


@dataclass(frozen=True)
class FloorLook:
    color: Rgb
    texture: Texture
    horizon: float  # 0 = flat lay (top-down), 1 = seamless sweep, else where floor meets wall


@dataclass(frozen=True)
class ShadowLook:
    opacity: float
    softness: float  # blur as a fraction of the product's width
    angle: float  # where the light comes from: 0 = front, 90 = right, -90 = left


@dataclass(frozen=True)
class LightLook:
    warmth: float
    exposure: float  # stops
    contrast: float
    falloff: float = 0.0  # how much the backdrop darkens away from the key light's side


@dataclass(frozen=True)
class SceneryLook:
    """One out-of-focus background element (the prompt's "softly blurred ..." part).

    Fields mean what the header of scenes.yaml says; `top` and `bottom` are fractions
    of the wall's height, `size` and `x` fractions of the frame's width.
    """

    kind: SceneryKind
    colors: tuple[Rgb, ...] = ()
    count: int = 0
    size: float = 0.05
    strength: float = 0.3
    top: float = 0.0
    bottom: float = 1.0
    x: float = 0.5


@dataclass(frozen=True)
class PodiumLook:
    color: Rgb
    width: float  # as a multiple of the product's width
    height: float  # as a fraction of the frame height


@dataclass(frozen=True)
class SceneLook:
    """A scene template's `look` block, parsed and checked once."""

    backdrop_top: Rgb
    backdrop_bottom: Rgb
    floor: FloorLook
    shadow: ShadowLook
    reflection: float
    light: LightLook
    fill: float
    vignette: float
    scenery: tuple[SceneryLook, ...] = ()
    podium: PodiumLook | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneLook:
        """Parse a `look` dict from scenes.yaml; InvalidInput names the bad field."""
        if not isinstance(d, dict):
            raise InvalidInput("a scene look must be a mapping", value=d)
        backdrop = d.get("backdrop") or {}
        floor = d.get("floor") or {}
        shadow = d.get("shadow") or {}
        light = d.get("light") or {}
        texture = str(floor.get("texture", "none"))
        if texture not in TEXTURES:
            raise InvalidInput(f"unknown floor texture {texture!r}", allowed=TEXTURES)
        top = _rgb(backdrop.get("top", [255, 255, 255]), "backdrop.top")
        return cls(
            backdrop_top=top,
            backdrop_bottom=_rgb(
                backdrop.get("bottom", backdrop.get("top", [255] * 3)), "backdrop.bottom"
            ),
            floor=FloorLook(
                color=_rgb(floor.get("color", [255, 255, 255]), "floor.color"),
                texture=texture,  # type: ignore[arg-type]
                horizon=_number(floor, "horizon", 1.0, 0.0, 1.0, "floor"),
            ),
            shadow=ShadowLook(
                opacity=_number(shadow, "opacity", 0.4, 0.0, 1.0, "shadow"),
                softness=_number(shadow, "softness", 0.12, 0.0, 1.0, "shadow"),
                angle=_number(shadow, "angle", 0.0, -180.0, 180.0, "shadow"),
            ),
            reflection=_number(d, "reflection", 0.0, 0.0, 1.0, "look"),
            light=LightLook(
                warmth=_number(light, "warmth", 0.0, -1.0, 1.0, "light"),
                exposure=_number(light, "exposure", 0.0, -2.0, 2.0, "light"),
                contrast=_number(light, "contrast", 1.0, 0.5, 1.5, "light"),
                falloff=_number(light, "falloff", 0.0, 0.0, 1.0, "light"),
            ),
            fill=_number(d, "fill", 0.6, 0.05, 1.0, "look"),
            vignette=_number(d, "vignette", 0.0, 0.0, 1.0, "look"),
            scenery=tuple(_parse_scenery(item) for item in d.get("scenery") or ()),
            podium=_parse_podium(d.get("podium")),
        )


def _parse_scenery(item: Any) -> SceneryLook:
    if not isinstance(item, dict) or item.get("kind") not in SCENERY_KINDS:
        raise InvalidInput("scenery items need a kind", allowed=SCENERY_KINDS, value=item)
    colors = tuple(_rgb(c, "scenery.colors") for c in item.get("colors") or ())
    if item["kind"] in ("bokeh", "band") and not colors:
        raise InvalidInput(f"{item['kind']} scenery needs colors", value=item)
    return SceneryLook(
        kind=item["kind"],
        colors=colors,
        count=int(_number(item, "count", 12, 0, 200, "scenery")),
        size=_number(item, "size", 0.05, 0.001, 1.0, "scenery"),
        strength=_number(item, "strength", 0.3, 0.0, 1.0, "scenery"),
        top=_number(item, "top", 0.0, 0.0, 1.0, "scenery"),
        bottom=_number(item, "bottom", 1.0, 0.0, 1.0, "scenery"),
        x=_number(item, "x", 0.5, -1.0, 2.0, "scenery"),
    )


def _parse_podium(item: Any) -> PodiumLook | None:
    if item is None:
        return None
    if not isinstance(item, dict):
        raise InvalidInput("podium must be a mapping", value=item)
    return PodiumLook(
        color=_rgb(item.get("color", [236, 230, 218]), "podium.color"),
        width=_number(item, "width", 1.3, 0.5, 4.0, "podium"),
        height=_number(item, "height", 0.1, 0.01, 0.5, "podium"),
    )


# --- the product ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Product:
    """The cutout cropped to its alpha's bounding box, at its placed size."""

    color: np.ndarray  # (h, w, 3) straight (not premultiplied) sRGB 0-1, edges decontaminated
    alpha: np.ndarray  # (h, w) 0-1


def _alpha_bbox(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box of the visible product; faint mask noise does not widen it."""
    visible = alpha > 8
    rows = np.flatnonzero(visible.any(axis=1))
    cols = np.flatnonzero(visible.any(axis=0))
    if rows.size == 0:
        raise InvalidImage("the cutout has no visible product (its alpha is empty)")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill every pixel with the weighted colour of its nearest confident neighbours.

    A coarse-to-fine pyramid: cheap at any size, unlike wide Gaussian blurs.
    """
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    v = values * weight[..., None]
    w = weight
    while min(w.shape) > 2 and len(levels) < 14:
        levels.append((v, w))
        size = (max(1, w.shape[1] // 2), max(1, w.shape[0] // 2))
        v = cv2.resize(v, size, interpolation=cv2.INTER_AREA)
        w = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
    estimate = v.reshape(-1, 3).sum(0) / max(float(w.sum()), 1e-6) * np.ones_like(v)
    for v_level, w_level in reversed(levels):
        size = (w_level.shape[1], w_level.shape[0])
        up = cv2.resize(estimate, size, interpolation=cv2.INTER_LINEAR)
        own = v_level / np.maximum(w_level, 1e-6)[..., None]
        trust = np.clip(w_level * 4.0, 0.0, 1.0)[..., None]
        estimate = own * trust + up * (1.0 - trust)
    return estimate


def _decontaminate(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Edge colours without the old background, so no halo survives compositing.

    A soft edge pixel is C = a*F + (1-a)*B. B is estimated from the nearby fully
    transparent pixels (whatever the cutout left there: the old background, or
    black from a premultiplied export) and F solved for; where alpha is too low
    to solve reliably, the colour of the nearby solid product is used. Masks are
    often a pixel too generous, so the outermost ring of "solid" pixels still
    carries the old background: every edge pixel outside the solid core leans
    towards the colour just inside it.
    """
    solid = (alpha >= 0.95).astype(np.uint8)
    core = cv2.erode(
        solid, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
    )
    if core.sum() < 1:
        core = solid if solid.sum() >= 1 else (alpha > 0).astype(np.uint8)
    clear = (alpha <= 0.05).astype(np.float32)
    inside = _push_pull(rgb, core.astype(np.float32))
    outside = _push_pull(rgb, clear) if clear.sum() >= 1 else inside
    a = alpha[..., None]
    solved = np.clip((rgb - (1.0 - a) * outside) / np.maximum(a, 1e-3), 0.0, 1.0)
    # Mask edges are rarely exact, so even a solved edge colour is trusted only partly.
    trust = 0.4 * _smoothstep(0.15, 0.6, a)
    color = solved * trust + inside * (1.0 - trust)
    return np.where(core[..., None] > 0, rgb, color).astype(np.float32)


def _prepare_product(cutout: Image.Image, size: tuple[int, int]) -> _Product:
    """Crop to the alpha's box, scale to `size` (w, h) and clean the edge colours."""
    rgba = np.asarray(cutout.convert("RGBA"))
    x0, y0, x1, y1 = _alpha_bbox(rgba[..., 3])
    crop = rgba[y0:y1, x0:x1].astype(np.float32) / 255.0
    rgb, alpha = crop[..., :3], crop[..., 3]
    w, h = size
    if w < rgb.shape[1] and h < rgb.shape[0]:
        # Shrink first (straight colour: the compositing equation stays linear),
        # so the clean-up runs on the pixels that will be shown.
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        return _Product(color=_decontaminate(rgb, alpha), alpha=alpha)
    color = _decontaminate(rgb, alpha)
    premul = np.dstack([color * alpha[..., None], alpha])
    premul = cv2.resize(premul, size, interpolation=cv2.INTER_CUBIC)
    alpha = np.clip(premul[..., 3], 0.0, 1.0)
    color = np.clip(premul[..., :3] / np.maximum(alpha, 1e-4)[..., None], 0.0, 1.0)
    return _Product(color=color.astype(np.float32), alpha=alpha.astype(np.float32))


# --- where things go -------------------------------------------------------------------


@dataclass(frozen=True)
class _Podium:
    """Where the podium is drawn, output pixels: its top ellipse's centre line and radius."""

    x0: float
    top: float
    w: float
    h: float  # from the top ellipse's centre to the bottom ellipse's centre
    ry: float


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    x0: int  # product box, output pixels
    y0: int
    w: int
    h: int
    angle: float  # light direction after the seed's nudge, degrees
    gamma: tuple[float, float, float]  # the seed's small light change (keeps 0 and 1 fixed)
    podium: _Podium | None

    @property
    def base(self) -> int:
        return self.y0 + self.h


def _layout(
    crop_size: tuple[int, int], look: SceneLook, size: tuple[int, int], rng: np.random.Generator
) -> _Layout:
    """Place the product: centred, standing on the floor, its larger relative side at `fill`."""
    width, height = size
    pw, ph = crop_size
    jitter = rng.uniform(-1.0, 1.0, size=6)
    fill = look.fill * (1.0 + _JITTER_SCALE * 0.5 * (jitter[0] + 1.0))
    scale = fill * min(height / ph, width / pw)
    scale = min(scale, 0.96 * min(height / ph, width / pw))
    w, h = max(1, round(pw * scale)), max(1, round(ph * scale))
    margin_x = max(0, (width - w) // 2 - round(0.02 * width))
    x0 = (width - w) // 2 + int(np.clip(round(jitter[1] * _JITTER_X * width), -margin_x, margin_x))
    horizon = look.floor.horizon
    centred = (height + h) / 2
    podium = None
    if horizon <= 0.0:
        base = centred + jitter[2] * _JITTER_Y * height
    elif horizon >= 1.0:
        # A sweep: centred, nudged up a little so the shadow has room below the product.
        base = h + 0.42 * (height - h) + jitter[2] * _JITTER_Y * height
    else:
        floor_y = horizon * height
        # As near the frame's centre as the floor allows, but always well onto the floor.
        stand = floor_y + 0.3 * (height - floor_y)
        base = max(stand, centred) + jitter[2] * _JITTER_Y * height
        if look.podium is not None:
            pod_h = look.podium.height * height
            pod_w = min(w * look.podium.width, 0.9 * width)
            ground = max(floor_y + 0.6 * (height - floor_y), centred + pod_h)
            ground = min(ground, height - 0.04 * height)
            base = ground - pod_h + jitter[2] * _JITTER_Y * height * 0.3
            podium = _Podium(x0 + w / 2 - pod_w / 2, base, pod_w, ground - base, 0.08 * pod_w)
    base = float(np.clip(base, h + 0.02 * height, height - 0.03 * height))
    y0 = round(base) - h
    gamma = (1.0 + _JITTER_GAMMA * jitter[3],) * 3
    tilt = 0.01 * jitter[4]
    angle = look.shadow.angle + _JITTER_ANGLE * jitter[5]
    return _Layout(
        width=width,
        height=height,
        x0=x0,
        y0=y0,
        w=w,
        h=h,
        angle=angle,
        gamma=(gamma[0] - tilt, gamma[1], gamma[2] + tilt),
        podium=podium,
    )


def _fit_podium(layout: _Layout, ground: np.ndarray) -> _Layout:
    """Make the podium's top deep enough for the product's footprint (its ground line)."""
    assert layout.podium is not None
    pod = layout.podium
    back, front = layout.y0 + float(ground.min()), layout.y0 + float(ground.max())
    ry = max(pod.ry, (front - back) / 2 + 0.03 * layout.h)
    top = (front + back) / 2
    w = max(pod.w, ry * 2 / 0.32)
    fitted = _Podium(layout.x0 + layout.w / 2 - w / 2, top, w, pod.top + pod.h - top, ry)
    return replace(layout, podium=fitted)


# --- small numeric helpers ---------------------------------------------------------------


def _smoothstep(edge0: float, edge1: float, x: np.ndarray | float) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=np.float32) - edge0) / max(edge1 - edge0, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return image
    return cv2.GaussianBlur(
        image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE
    )


def _periodic_noise(
    rng: np.random.Generator,
    n: int,
    scale_u: float,
    scale_v: float | None = None,
    rough: float = 0.0,
) -> np.ndarray:
    """Tileable smooth noise (zero mean, unit deviation) with features of about `scale` pixels.

    Filtering white noise in the Fourier domain makes it wrap seamlessly, which the
    perspective floor needs. Separate u/v scales give grain-like streaks; `rough`
    adds a 1/f tail of finer detail.
    """
    scale_v = scale_u if scale_v is None else scale_v
    spectrum = np.fft.rfft2(rng.standard_normal((n, n)).astype(np.float32))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    envelope = np.exp(-((fx * scale_u) ** 2 + (fy * scale_v) ** 2) * 4.0)
    if rough > 0:
        radius = np.sqrt(fx**2 + fy**2) + 1.0 / n
        envelope = envelope + rough * (radius * min(scale_u, scale_v)) ** -1.0 * np.exp(
            -radius * 12
        )
    noise = np.fft.irfft2(spectrum * envelope, s=(n, n)).astype(np.float32)
    noise -= noise.mean()
    return noise / max(float(noise.std()), 1e-6)


def _wrap_blur(tile: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a tileable image that stays tileable."""
    pad = int(3 * sigma) + 1
    padded = np.pad(tile, ((pad, pad), (pad, pad), (0, 0)), mode="wrap")
    blurred = cv2.GaussianBlur(padded, (0, 0), sigma)[pad:-pad, pad:-pad]
    return blurred.reshape(tile.shape)  # OpenCV drops a single channel's axis


# --- floor textures (tileable, in floor space) -------------------------------------------


def _tint(base: Rgb, shade: np.ndarray) -> np.ndarray:
    """The base colour modulated by a brightness map (1 = unchanged)."""
    return shade[..., None] * np.asarray(base, dtype=np.float32)[None, None, :]


def _texture_wood(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Planks running left-right: growth rings warped by noise, fine grain, seams."""
    v = np.arange(n, dtype=np.float32)[:, None]
    u = np.arange(n, dtype=np.float32)[None, :]
    planks = 8
    plank_h = n / planks
    index = np.floor(v / plank_h).astype(int) % planks
    warp = _periodic_noise(rng, n, 256.0, 40.0)
    rings = np.sin(2 * np.pi * (v / 14.0 + 2.5 * warp + index * 0.37))
    fine = _periodic_noise(rng, n, 120.0, 1.2)
    tone = rng.uniform(-0.07, 0.07, planks)[index]
    # Plank ends, staggered from plank to plank.
    joints = rng.uniform(0, n, planks)[index]
    end = np.abs(((u - joints) % n) - n / 2) > (n / 2 - 1.2)
    seam_v = np.abs((v % plank_h) - 0.5) < 1.0
    shade = 1.0 + tone + 0.05 * rings + 0.07 * fine
    shade = np.where(seam_v | end, shade * 0.78, shade)
    return _tint(base, shade.astype(np.float32))


def _texture_marble(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Carrara-like: a cloudy ground crossed by meandering grey veins.

    Veins are where a smooth noise field crosses zero: that draws long, wandering,
    occasionally branching curves, which is how marble veining looks. A second
    field fades them in and out along their length.
    """
    cloud = _periodic_noise(rng, n, 70.0)
    veins = np.zeros((n, n), np.float32)
    for scale, width, strength in ((70.0, 0.05, 0.7), (35.0, 0.035, 0.4), (18.0, 0.03, 0.2)):
        field = _periodic_noise(rng, n, scale * 1.6, scale * 0.7) + 0.12 * _periodic_noise(
            rng, n, scale / 5
        )
        fade = np.clip(0.55 + 0.6 * _periodic_noise(rng, n, scale * 1.5), 0.0, 1.0)
        line = 1.0 - _smoothstep(0.0, width * 3.0, np.abs(field))
        veins = np.maximum(veins, line * line * fade * strength)
    veins = _wrap_blur(veins[..., None], 0.7)[..., 0]
    color = _tint(base, (1.0 + 0.025 * cloud).astype(np.float32))
    grey = np.asarray((0.52, 0.53, 0.55), np.float32)
    return color * (1 - veins[..., None] * 0.55) + grey * veins[..., None] * 0.55


def _texture_linen(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Plain weave: threads over and under, each thicker and thinner along its length (slubs)."""
    period = 3
    i = np.arange(n)[:, None] // period
    j = np.arange(n)[None, :] // period
    warp_on_top = ((i + j) % 2) == 0
    across = np.cos(np.pi * ((np.arange(n) % period) + 0.5) / period - np.pi / 2).astype(np.float32)
    # Slubs run along a thread: long in one direction, one thread wide in the other.
    slub_warp = _periodic_noise(rng, n, 3.0, 50.0)
    slub_weft = _periodic_noise(rng, n, 50.0, 3.0)
    shade = (
        np.where(
            warp_on_top,
            1.0 + 0.05 * across[None, :] + 0.03 * slub_warp,
            1.0 + 0.05 * across[:, None] + 0.03 * slub_weft,
        )
        - 0.03
    )
    cloud = _periodic_noise(rng, n, 120.0)
    return _tint(base, (shade + 0.012 * cloud).astype(np.float32))


def _texture_concrete(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Polished concrete: mottled, with scattered pores."""
    mottle = _periodic_noise(rng, n, 120.0, rough=0.5)
    fine = _periodic_noise(rng, n, 2.0)
    pores = (_periodic_noise(rng, n, 1.5) > 2.8).astype(np.float32)
    shade = 1.0 + 0.05 * mottle + 0.02 * fine - 0.18 * pores
    return _tint(base, shade.astype(np.float32))


def _texture_sand(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Fine grains over gentle wind ripples."""
    v = np.arange(n, dtype=np.float32)[:, None]
    warp = _periodic_noise(rng, n, 200.0, 80.0)
    ripples = np.sin(2 * np.pi * (v * 12 / n + 0.8 * warp))
    grains = _periodic_noise(rng, n, 1.0)
    tone = _periodic_noise(rng, n, 150.0)
    shade = 1.0 + 0.03 * ripples + 0.05 * grains + 0.03 * tone
    return _tint(base, shade.astype(np.float32))


def _texture_grass(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Short lawn: blade streaks in depth, patches of lighter and yellower green."""
    blades = _periodic_noise(rng, n, 1.2, 6.0)
    patches = _periodic_noise(rng, n, 100.0)
    shade = 1.0 + 0.18 * blades + 0.08 * patches
    color = _tint(base, shade.astype(np.float32))
    yellow = np.clip(patches, 0.0, None)[..., None] * np.asarray((0.05, 0.03, -0.02), np.float32)
    return color + yellow


def _texture_stone(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Flat natural stone: broad mottling and light and dark mineral specks."""
    mottle = _periodic_noise(rng, n, 80.0, rough=0.6)
    specks = _periodic_noise(rng, n, 1.2)
    shade = 1.0 + 0.07 * mottle + 0.05 * np.clip(specks, -2.5, 2.5)
    shade = np.where(specks > 2.4, shade + 0.12, shade)
    return _tint(base, shade.astype(np.float32))


def _texture_terrazzo(base: Rgb, rng: np.random.Generator, n: int) -> np.ndarray:
    """Cement ground with scattered chips of stone in a few muted colours."""
    ground = _tint(base, (1.0 + 0.015 * _periodic_noise(rng, n, 30.0)).astype(np.float32))
    b = np.asarray(base, np.float32)
    palette = [
        b * 0.62,
        b * 0.8,
        np.array((0.78, 0.52, 0.42)),
        np.array((0.55, 0.6, 0.52)),
        np.minimum(b * 1.08, 1.0),
        np.array((0.3, 0.3, 0.32)),
    ]
    canvas = np.ascontiguousarray(ground)
    for _ in range(int(n * n / 900)):
        cx, cy = rng.uniform(0, n, 2)
        radius = rng.uniform(1.5, 6.0) if rng.random() < 0.85 else rng.uniform(6.0, 11.0)
        sides = int(rng.integers(4, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, sides))
        radii = radius * rng.uniform(0.6, 1.0, sides)
        colour = tuple(float(c) for c in palette[int(rng.integers(len(palette)))])
        for ox in (-n, 0, n):
            for oy in (-n, 0, n):
                if abs(cx + ox - n / 2) > n / 2 + 12 or abs(cy + oy - n / 2) > n / 2 + 12:
                    continue
                pts = np.stack(
                    [cx + ox + radii * np.cos(angles), cy + oy + radii * np.sin(angles)], 1
                )
                cv2.fillPoly(
                    canvas, [np.round(pts * 4).astype(np.int32)], colour, cv2.LINE_AA, shift=2
                )
    return canvas


def _texture_tile(texture: str, base: Rgb, rng: np.random.Generator, n: int = _TILE) -> np.ndarray:
    makers = {
        "wood": _texture_wood,
        "marble": _texture_marble,
        "linen": _texture_linen,
        "concrete": _texture_concrete,
        "sand": _texture_sand,
        "grass": _texture_grass,
        "stone": _texture_stone,
        "terrazzo": _texture_terrazzo,
    }
    if texture not in makers:
        return np.broadcast_to(np.asarray(base, np.float32), (n, n, 3)).copy()
    return np.clip(makers[texture](base, rng, n), 0.0, 1.0).astype(np.float32)


# How finely each texture is laid on the floor (tile pixels per output pixel at the front
# edge, for a 1600 px frame; linen's weave is fine, planks and chips are large), and how
# much the floor's depth is foreshortened.
_TEXTURE_DENSITY = {"linen": 1.7, "wood": 0.45, "terrazzo": 0.5, "sand": 0.7, "grass": 0.8}
_FORESHORTEN = 0.45


def _sample_tile(
    tile: np.ndarray, map_u: np.ndarray, map_v: np.ndarray, footprint: np.ndarray
) -> np.ndarray:
    """Sample a tileable texture, blurring where one output pixel covers many tile pixels.

    A tiny mip chain selected per pixel by footprint: far floor is both anti-aliased
    and softened, which reads as depth of field.
    """
    levels = [tile, _wrap_blur(tile, 1.2), _wrap_blur(tile, 4.0)]
    mean = tile.reshape(-1, 3).mean(0)
    lod = np.log2(np.maximum(footprint, 1.0))[..., None]
    flat = np.empty(map_u.shape + (3,), np.float32)
    flat[:] = mean
    samples = [
        cv2.remap(level, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        for level in levels
    ]
    stops = (0.0, 1.2, 2.6, 4.5)
    result = samples[0]
    for k in range(1, 4):
        nxt = samples[k] if k < 3 else flat
        t = np.clip((lod - stops[k - 1]) / (stops[k] - stops[k - 1]), 0.0, 1.0)
        result = result * (1 - t) + nxt * t
    return result


def _paint_floor(
    look: SceneLook, layout: _Layout, top: int, rng: np.random.Generator
) -> np.ndarray:
    """The floor from row `top` down: texture in perspective (or top-down for a flat lay)."""
    width, height = layout.width, layout.height
    rows = height - top
    tile = _texture_tile(look.floor.texture, look.floor.color, rng)
    density = (
        _TEXTURE_DENSITY.get(look.floor.texture, 0.6) * _TILE / 1024.0 * 1600.0 / max(width, height)
    )
    offset_u, offset_v = rng.uniform(0, _TILE, 2)
    x = np.arange(width, dtype=np.float32)[None, :] - width / 2
    if look.floor.horizon <= 0.0 or look.floor.horizon >= 1.0:
        # Top-down (a flat lay), or a sweep whose floor curves up into the wall: no perspective.
        y = np.arange(rows, dtype=np.float32)[:, None]
        map_u = np.broadcast_to(x * density + offset_u, (rows, width))
        map_v = np.broadcast_to(y * density + offset_v, (rows, width))
        footprint = np.full((rows, 1), density, np.float32)
    else:
        horizon = look.floor.horizon * height
        depth = np.maximum(np.arange(top, height, dtype=np.float32)[:, None] - horizon + 0.5, 1.5)
        nearest = height - horizon
        ratio = nearest / depth  # floor units per output pixel, relative to the front edge
        map_u = x * ratio * density + offset_u
        map_v = np.broadcast_to(nearest * ratio * density / _FORESHORTEN + offset_v, (rows, width))
        footprint = density * ratio * np.maximum(1.0, ratio / _FORESHORTEN)
    map_u = np.mod(map_u, _TILE).astype(np.float32)
    map_v = np.mod(map_v, _TILE).astype(np.float32)
    footprint = np.broadcast_to(footprint, (rows, 1)).astype(np.float32)
    floor = _sample_tile(tile, map_u, map_v, footprint)
    if 0.0 < look.floor.horizon < 1.0:
        # Nearer floor is a touch darker: the light is above and behind the camera.
        near = np.linspace(0.0, 1.0, rows, dtype=np.float32)[:, None, None]
        floor = floor * (1.0 - 0.06 * near)
    return floor


# --- backdrop ----------------------------------------------------------------------------


def _vertical_gradient(top: Rgb, bottom: Rgb, rows: int) -> np.ndarray:
    t = _smoothstep(0.0, 1.0, np.linspace(0.0, 1.0, max(rows, 1), dtype=np.float32))[:, None, None]
    a = np.asarray(top, np.float32)
    b = np.asarray(bottom, np.float32)
    return a * (1 - t) + b * t


def _key_light(layout: _Layout, strength: float) -> np.ndarray:
    """Brightness (H, W) of a soft key light on the side the light comes from."""
    width, height = layout.width, layout.height
    side = math.sin(math.radians(layout.angle))
    gx = np.arange(width, dtype=np.float32)[None, :] / width - 0.5 - 0.6 * side
    gy = np.arange(height, dtype=np.float32)[:, None] / height - 0.15
    dist = np.sqrt(gx * gx + gy * gy)
    return 1.0 - strength * _smoothstep(0.1, 1.2, dist)


def _paint_background(look: SceneLook, layout: _Layout, rng: np.random.Generator) -> np.ndarray:
    """Wall and floor, before shadow, reflection and grade."""
    width, height = layout.width, layout.height
    horizon = look.floor.horizon
    canvas = np.empty((height, width, 3), np.float32)
    if horizon <= 0.0:
        canvas[:] = _paint_floor(look, layout, 0, rng)
        # The backdrop colours become a gentle top-to-bottom light change over the surface.
        ramp = _vertical_gradient(look.backdrop_top, look.backdrop_bottom, height)
        mean = (np.asarray(look.backdrop_top) + np.asarray(look.backdrop_bottom)) / 2
        canvas *= ramp / np.maximum(mean, 1e-3).astype(np.float32)
    elif horizon >= 1.0:
        # A sweep: wall gradient, then curving onto the floor colour at the bottom.
        split = int(0.8 * height)
        canvas[:split] = _vertical_gradient(look.backdrop_top, look.backdrop_bottom, split)
        canvas[split:] = _vertical_gradient(look.backdrop_bottom, look.floor.color, height - split)
        _paint_scenery(canvas, look, layout, rng, wall_rows=height)
        if look.floor.texture != "none":
            floor = _paint_floor(look, layout, 0, rng)
            canvas *= floor / np.maximum(np.asarray(look.floor.color, np.float32), 1e-3)
    else:
        edge = horizon * height
        top = math.floor(edge)
        canvas[: top + 1] = _vertical_gradient(look.backdrop_top, look.backdrop_bottom, top + 1)
        canvas[top + 1 :] = canvas[top]
        _paint_scenery(canvas, look, layout, rng, wall_rows=top + 1)
        floor = _paint_floor(look, layout, top, rng)
        y = np.arange(top, height, dtype=np.float32)[:, None, None]
        blend = _smoothstep(edge - 0.8, edge + 1.2, y)
        canvas[top:] = canvas[top:] * (1 - blend) + floor * blend
        # A faint line of light along the table's front edge makes it read as a surface.
        lip = np.exp(-(((y - edge - 1.5) / 1.2) ** 2)) * 0.05
        canvas[top:] = np.clip(canvas[top:] + lip, 0.0, 1.0)
    if look.light.falloff > 0:
        canvas *= _key_light(layout, look.light.falloff)[..., None]
    return canvas


# --- scenery: out-of-focus background details ---------------------------------------------


def _paint_scenery(
    canvas: np.ndarray, look: SceneLook, layout: _Layout, rng: np.random.Generator, wall_rows: int
) -> None:
    """Add the template's background elements to the wall (rows above `wall_rows`)."""
    if not look.scenery:
        return
    width = layout.width
    gw, gh = max(8, width // _GRID), max(8, wall_rows // _GRID)
    for element in look.scenery:
        painter = {"bokeh": _bokeh, "window": _window, "leaves": _leaves, "band": _band}[
            element.kind
        ]
        color, coverage = painter(element, gw, gh, rng)
        coverage = cv2.resize(coverage, (width, wall_rows), interpolation=cv2.INTER_LINEAR)
        color = cv2.resize(color, (width, wall_rows), interpolation=cv2.INTER_LINEAR)
        wall = canvas[:wall_rows]
        if element.kind == "leaves":
            wall *= 1.0 - coverage[..., None]
        elif element.kind == "window":
            wall += (1.0 - wall) * coverage[..., None]
        else:
            wall[:] = wall * (1 - coverage[..., None]) + color * coverage[..., None]


def _bokeh(
    element: SceneryLook, gw: int, gh: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-focus lights or leaves: soft-edged discs of the given colours."""
    color = np.zeros((gh, gw, 3), np.float32)
    weight = np.zeros((gh, gw), np.float32)
    for _ in range(element.count):
        radius = max(1.0, element.size * gw * rng.uniform(0.5, 1.3))
        cx = rng.uniform(-0.05, 1.05) * gw
        cy = rng.uniform(element.top, element.bottom) * gh
        disc = np.zeros((gh, gw), np.float32)
        cv2.circle(
            disc, (round(cx * 4), round(cy * 4)), round(radius * 4), 1.0, -1, cv2.LINE_AA, shift=2
        )
        disc *= rng.uniform(0.4, 1.0)
        pick = element.colors[int(rng.integers(len(element.colors)))]
        color += disc[..., None] * np.asarray(pick, np.float32)
        weight += disc
    blurred_w = _blur(weight, max(1.0, element.size * gw * 0.15))
    blurred_c = _blur(color, max(1.0, element.size * gw * 0.15))
    mean = blurred_c / np.maximum(blurred_w, 1e-4)[..., None]
    return mean, np.clip(blurred_w, 0.0, 1.0) * element.strength


def _window(
    element: SceneryLook, gw: int, gh: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Soft daylight from a window out of frame: a bright, blurred grid of panes."""
    light = np.zeros((gh, gw), np.float32)
    panes_w = element.size * gw
    left = element.x * gw - panes_w
    top, bottom = element.top * gh, element.bottom * gh
    bar = max(1.0, panes_w * 0.06)
    for col in range(2):
        x0 = left + col * panes_w + bar
        x1 = left + (col + 1) * panes_w - bar
        for y0, y1 in ((top, (top + bottom) / 2 - bar), ((top + bottom) / 2 + bar, bottom)):
            cv2.rectangle(light, (round(x0), round(y0)), (round(x1), round(y1)), 1.0, -1)
    light = _blur(light, max(1.0, panes_w * 0.12))
    return np.ones((gh, gw, 3), np.float32), light * element.strength


def _leaves(
    element: SceneryLook, gw: int, gh: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Dappled shadows of a few leafy branches across a sunlit wall."""
    shade = np.zeros((gh, gw), np.float32)
    branches = max(1, element.count // 8)
    per_branch = max(1, element.count // branches)
    size = element.size * gw
    for _ in range(branches):
        x = (element.x + rng.uniform(-0.3, 0.3)) * gw
        y = (element.top + rng.uniform(-0.1, 0.2)) * gh
        heading = math.radians(rng.uniform(95, 160))  # downwards, mostly to the left
        step = (element.bottom - element.top) * gh / per_branch * rng.uniform(0.5, 0.9)
        for k in range(per_branch):
            heading += rng.normal(0, 0.12)
            nx, ny = x + math.cos(heading) * step, y + math.sin(heading) * step
            cv2.line(
                shade,
                (round(x), round(y)),
                (round(nx), round(ny)),
                1.0,
                max(1, round(size * 0.06)),
                cv2.LINE_AA,
            )
            for sign in (-1, 1):
                if rng.random() < 0.2:
                    continue
                leaf_angle = heading + sign * rng.uniform(0.5, 1.0)
                length = size * rng.uniform(0.7, 1.3)
                lx = nx + math.cos(leaf_angle) * length * 0.55
                ly = ny + math.sin(leaf_angle) * length * 0.55
                cv2.ellipse(
                    shade,
                    ((lx, ly), (length, length * 0.38), math.degrees(leaf_angle)),
                    1.0,
                    -1,
                    cv2.LINE_AA,
                )
            x, y = nx, ny
    shade = _blur(np.clip(shade, 0.0, 1.0), max(0.7, size * 0.05))
    return np.zeros((gh, gw, 3), np.float32), shade * element.strength


def _band(
    element: SceneryLook, gw: int, gh: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A horizontal band (the sea, a far wall, a counter): soft-edged, its colours top to bottom."""
    rows = np.arange(gh, dtype=np.float32)[:, None] / gh
    soft = max(element.size, 1e-3)
    coverage = _smoothstep(element.top - soft, element.top + soft, rows) * (
        1.0 - _smoothstep(element.bottom - soft, element.bottom + soft, rows)
    )
    colors = element.colors if len(element.colors) > 1 else element.colors * 2
    t = np.clip((rows - element.top) / max(element.bottom - element.top, 1e-3), 0.0, 1.0)
    color = (
        np.asarray(colors[0], np.float32) * (1 - t[..., None])
        + np.asarray(colors[-1], np.float32) * t[..., None]
    )
    shimmer = 1.0 + 0.03 * _blur(rng.standard_normal((gh, gw)).astype(np.float32), 1.0)[..., None]
    color = np.broadcast_to(color, (gh, gw, 3)) * shimmer
    return color.astype(np.float32), np.broadcast_to(coverage * element.strength, (gh, gw)).astype(
        np.float32
    )


# --- podium --------------------------------------------------------------------------------


def _paint_podium(canvas: np.ndarray, look: SceneLook, layout: _Layout) -> None:
    """A plaster cylinder for the product to stand on, with its own soft shadow on the floor."""
    assert look.podium is not None and layout.podium is not None
    pod = layout.podium
    height, width = canvas.shape[:2]
    grid_shape = (-(-height // _GRID), -(-width // _GRID))
    floor_shadow = _podium_shadow(
        pod, layout.angle, grid_shape, look.shadow.softness * pod.w / _GRID
    )
    floor_shadow = cv2.resize(
        floor_shadow * look.shadow.opacity * _edge_taper(grid_shape),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    canvas *= (1.0 - floor_shadow)[..., None]
    # Draw only inside the podium's box; coordinates below are relative to it.
    bx0, by0 = max(0, int(pod.x0) - 2), max(0, int(pod.top - pod.ry) - 2)
    bx1, by1 = min(width, int(pod.x0 + pod.w) + 3), min(height, int(pod.top + pod.h + pod.ry) + 3)
    if bx1 <= bx0 or by1 <= by0:
        return
    shape = (by1 - by0, bx1 - bx0)
    cx, top = pod.x0 + pod.w / 2 - bx0, pod.top - by0
    sub = 4  # OpenCV's fixed-point drawing: quarter-pixel precision

    def pts(x: float, y: float) -> tuple[int, int]:
        return round(x * sub), round(y * sub)

    body = np.zeros(shape, np.float32)
    cv2.rectangle(
        body,
        pts(cx - pod.w / 2, top),
        pts(cx + pod.w / 2, top + pod.h),
        1.0,
        -1,
        cv2.LINE_AA,
        shift=2,
    )
    cv2.ellipse(
        body, pts(cx, top + pod.h), pts(pod.w / 2, pod.ry), 0, 0, 360, 1.0, -1, cv2.LINE_AA, shift=2
    )
    lid = np.zeros(shape, np.float32)
    cv2.ellipse(lid, pts(cx, top), pts(pod.w / 2, pod.ry), 0, 0, 360, 1.0, -1, cv2.LINE_AA, shift=2)
    body = np.maximum(body, lid)
    side = math.sin(math.radians(layout.angle))
    u = np.clip((np.arange(shape[1], dtype=np.float32) - cx) / (pod.w / 2), -1.0, 1.0)
    # Lambert shading round a cylinder lit from the side the light comes from.
    lit = 0.74 + 0.22 * np.clip(u * side * 0.8 + np.sqrt(np.maximum(0.0, 1 - u * u)) * 0.7, 0, 1)
    shading = np.where(lid > 0.5, 1.03, lit[None, :])
    painted = np.clip(shading[..., None] * np.asarray(look.podium.color, np.float32), 0.0, 1.0)
    region = canvas[by0:by1, bx0:bx1]
    region[:] = region * (1 - body[..., None]) + painted * body[..., None]


# --- shadow and reflection -----------------------------------------------------------------


def _bottom_profile(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the product: the lowest solid row, and whether the column has any."""
    solid = alpha > 0.5
    present = solid.any(axis=0)
    lowest = alpha.shape[0] - 1 - np.argmax(solid[::-1], axis=0)
    return np.where(present, lowest, -1), present


def _ground_line(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the floor runs under the product, per column, and how far the outline is above it.

    The product rests on the points of its outline that are lowest "as a plane sees
    them": the lower convex hull of the bottom profile. Seen at an angle, that line
    tilts (a car's rear wheel stands higher in the picture than its front wheel);
    columns on the hull touch the floor, columns above it (the body between the
    wheels, the gap under a chair) do not. Returns (ground y, gap, present).
    """
    lowest, present = _bottom_profile(alpha)
    cols = np.flatnonzero(present)
    ground = np.full(alpha.shape[1], float(alpha.shape[0] - 1), np.float32)
    if cols.size == 0:
        return ground, np.zeros_like(ground), present
    hull: list[int] = []
    for c in cols:
        # Monotone chain keeping the hull that bounds the outline from below (y grows down).
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (b - a) * (lowest[c] - lowest[a]) - (lowest[b] - lowest[a]) * (c - a)
            if cross < 0:
                break
            hull.pop()
        hull.append(int(c))
    xs = np.asarray(hull, np.float32)
    ys = lowest[hull].astype(np.float32)
    ground = np.interp(np.arange(alpha.shape[1], dtype=np.float32), xs, ys).astype(np.float32)
    gap = np.where(present, ground - lowest, 0.0).astype(np.float32)
    return ground, np.maximum(gap, 0.0), present


def _edge_taper(shape: tuple[int, int]) -> np.ndarray:
    """1 inside, 0 at the frame edges: no shadow is ever cut off by the frame."""
    gh, gw = shape
    margin, ramp = 0.015 * min(gh, gw), 0.04 * min(gh, gw)
    y = np.arange(gh, dtype=np.float32)[:, None]
    x = np.arange(gw, dtype=np.float32)[None, :]
    dy = np.minimum(y, gh - 1 - y)
    dx = np.minimum(x, gw - 1 - x)
    return _smoothstep(margin, margin + ramp, dy) * _smoothstep(margin, margin + ramp, dx)


def _shadow_map(look: SceneLook, layout: _Layout, product: _Product) -> np.ndarray:
    """Shadow strength (H, W) 0-1: a dark contact line following the product's base and a
    softer cast shadow away from the light, both from the cutout's own alpha."""
    width, height = layout.width, layout.height
    gw, gh = -(-width // _GRID), -(-height // _GRID)
    q = 1.0 / _GRID
    pw, ph = max(1, round(layout.w * q)), max(1, round(layout.h * q))
    small = cv2.resize(product.alpha, (pw, ph), interpolation=cv2.INTER_AREA)
    grid = np.zeros((gh, gw), np.float32)
    gx0, gy0 = round(layout.x0 * q), round(layout.y0 * q)
    _paste(grid, small, gx0, gy0)
    base = layout.base * q
    softness = look.shadow.softness * layout.w * q
    angle = math.radians(layout.angle)
    opacity = look.shadow.opacity
    if look.floor.horizon <= 0.0:
        shadow = _drop_shadow(grid, softness, angle, layout.w * q)
    else:
        contact = _contact_shadow(product.alpha, layout, grid.shape)
        cast = _cast_shadow(grid, base, softness, angle, ph)
        if look.floor.horizon < 1.0 and layout.podium is None:
            # The floor ends at the horizon; the wall behind is far away, out of its reach.
            edge = look.floor.horizon * gh
            rows = np.arange(gh, dtype=np.float32)[:, None]
            cast = cast * _smoothstep(edge - 1.0, edge + 2.0, rows)
        shadow = 1.0 - (1.0 - 0.9 * contact) * (1.0 - 0.7 * cast)
    shadow = np.clip(shadow * opacity, 0.0, 1.0) * _edge_taper(grid.shape)
    return cv2.resize(shadow, (width, height), interpolation=cv2.INTER_LINEAR)


def _podium_shadow(
    pod: _Podium, angle: float, shape: tuple[int, int], softness: float
) -> np.ndarray:
    """Where the podium stands on the floor: a soft ellipse a little wider than its foot,
    pushed away from the light."""
    q = 1.0 / _GRID
    grid = np.zeros(shape, np.float32)
    w, ry = pod.w * q, max(1.0, pod.ry * q)
    cx = (pod.x0 + pod.w / 2) * q - math.sin(math.radians(angle)) * 0.1 * w
    cy = (pod.top + pod.h) * q - 0.2 * ry
    cv2.ellipse(grid, ((cx, cy), (w * 1.08, ry * 2.6), 0.0), 1.0, -1, cv2.LINE_AA)
    return np.clip(_blur(grid, max(1.0, softness * 0.5)) * 1.2, 0.0, 1.0)


def _paste(grid: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    """Write `patch` into `grid` at (x0, y0), clipped to the grid."""
    gh, gw = grid.shape[:2]
    ph, pw = patch.shape[:2]
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1, dy1 = min(gw, x0 + pw), min(gh, y0 + ph)
    if dx1 > dx0 and dy1 > dy0:
        grid[dy0:dy1, dx0:dx1] = patch[sy0 : sy0 + dy1 - dy0, sx0 : sx0 + dx1 - dx0]


def _contact_shadow(alpha: np.ndarray, layout: _Layout, shape: tuple[int, int]) -> np.ndarray:
    """Occlusion where the product meets the floor, following its ground line: darkest
    where the outline touches it, fading where the outline lifts (a car's body between
    its wheels, the gap between a chair's legs)."""
    gh, gw = shape
    q = 1.0 / _GRID
    ground, gap, present = _ground_line(alpha)
    decay = max(2.0, 0.04 * min(layout.h, layout.w * 0.6))
    touch = np.where(present, np.exp(-gap / decay), 0.0).astype(np.float32)
    # Beneath a lifted part the floor is darker the closer that part is.
    shade = np.where(present, 0.55 * np.exp(-gap / max(2.0, 0.25 * layout.h)), 0.0).astype(
        np.float32
    )
    cols_g = max(1, round(layout.w * q))

    def per_column(values: np.ndarray) -> np.ndarray:
        return cv2.resize(
            values[None, :].astype(np.float32), (cols_g, 1), interpolation=cv2.INTER_AREA
        )[0]

    ground_g = per_column(ground) * q + layout.y0 * q
    top_g = ground_g - per_column(gap) * q
    touch_g, shade_g = per_column(touch), per_column(shade)
    # The floor under a standing product is seen at an angle: its footprint reaches
    # below the outline by a share of the product's smaller side.
    thickness = max(1.0, 0.06 * min(layout.w, layout.h) * q)
    rows = np.arange(gh, dtype=np.float32)[:, None]
    # The core: a dark line right where the outline meets the floor.
    core_band = (rows >= ground_g[None, :] - thickness * 0.5) & (
        rows <= ground_g[None, :] + thickness * 0.5
    )
    core = np.where(core_band, touch_g[None, :], 0.0).astype(np.float32)
    # The occlusion around it, including the floor seen under lifted parts.
    under = (rows >= top_g[None, :] - 0.5) & (rows <= ground_g[None, :] + thickness * 1.2)
    ambient = np.where(under, np.maximum(0.6 * touch_g, shade_g)[None, :], 0.0).astype(np.float32)
    x0 = round(layout.x0 * q)
    core_grid = np.zeros((gh, gw), np.float32)
    ambient_grid = np.zeros((gh, gw), np.float32)
    _paste(core_grid, core, x0, 0)
    _paste(ambient_grid, ambient, x0, 0)
    core_grid = np.clip(_blur(core_grid, max(0.7, thickness * 0.45)) * 1.5, 0.0, 1.0)
    ambient_grid = np.clip(_blur(ambient_grid, max(1.0, thickness * 1.5)) * 1.2, 0.0, 1.0)
    return 1.0 - (1.0 - core_grid) * (1.0 - 0.7 * ambient_grid)


def _cast_shadow(
    grid: np.ndarray, base: float, softness: float, angle: float, height_g: int
) -> np.ndarray:
    """The silhouette laid down on the floor away from the light, sharper near the base."""
    gh, gw = grid.shape
    depth_squash = 0.28 * max(0.15, math.cos(angle))
    lateral = -0.55 * math.sin(angle)
    # x' = x + lateral * (base - y), y' = base - squash * (base - y)
    matrix = np.float32(
        [[1.0, -lateral, lateral * base], [0.0, depth_squash, base * (1 - depth_squash)]]
    )
    rows = np.arange(gh, dtype=np.float32)[:, None]
    # How high above the floor each silhouette pixel is (0 at the base, 1 at the top),
    # carried through the same warp so the penumbra can widen with it at any angle.
    height_above = np.clip((base - rows) / max(1.0, float(height_g)), 0.0, 1.0)
    laid = cv2.warpAffine(grid, matrix, (gw, gh), flags=cv2.INTER_LINEAR, borderValue=0.0)
    laid_height = cv2.warpAffine(
        grid * height_above, matrix, (gw, gh), flags=cv2.INTER_LINEAR, borderValue=0.0
    )
    spread = max(1.0, softness * 0.3)
    lift = np.clip(_blur(laid_height, spread) / np.maximum(_blur(laid, spread), 1e-3), 0.0, 1.0)
    near = _blur(laid, max(0.8, softness * 0.25))
    far = _blur(laid, max(1.0, softness * 0.6))
    return (near * (1 - lift) + far * lift) * (1.0 - 0.45 * lift)


def _drop_shadow(grid: np.ndarray, softness: float, angle: float, width_g: float) -> np.ndarray:
    """Top-down: the product lies on the surface; the light throws a short offset shadow."""
    gh, gw = grid.shape
    dx, dy = -math.sin(angle), -math.cos(angle)
    near_off = 0.006 * width_g
    far_off = 0.025 * width_g
    near = cv2.warpAffine(
        grid, np.float32([[1, 0, dx * near_off], [0, 1, dy * near_off]]), (gw, gh)
    )
    far = cv2.warpAffine(grid, np.float32([[1, 0, dx * far_off], [0, 1, dy * far_off]]), (gw, gh))
    near = _blur(near, max(0.8, softness * 0.15))
    far = _blur(far, max(1.0, softness * 0.6))
    return 1.0 - (1.0 - 0.7 * near) * (1.0 - 0.6 * far)


def _add_reflection(
    canvas: np.ndarray, look: SceneLook, layout: _Layout, product: _Product
) -> None:
    """A mirrored, fading, slightly blurred copy of the product on a glossy floor.

    Each column is mirrored about its own ground line, so a product seen at an
    angle reflects from where it actually stands.
    """
    strength = look.reflection
    if strength <= 0 or look.floor.horizon <= 0.0:
        return
    ground, _, _ = _ground_line(product.alpha)
    top = math.floor(float(ground.min()))
    # From the highest ground point down to a full product height below the lowest one.
    depth = min(2 * layout.h - top, layout.height - (layout.y0 + top))
    if depth <= 0:
        return
    rows = np.arange(top, top + depth, dtype=np.float32)[:, None]
    below = rows - ground[None, :]
    map_y = (2.0 * ground[None, :] - rows).astype(np.float32)
    map_x = np.broadcast_to(np.arange(layout.w, dtype=np.float32)[None, :], map_y.shape).copy()
    premul = np.dstack([product.color * product.alpha[..., None], product.alpha])
    mirrored = cv2.remap(
        premul,
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0.0, 0.0, 0.0, 0.0),
    )
    fade = np.where(below > 0, np.exp(-below / max(1.0, 0.22 * layout.h)), 0.0) * strength
    mirrored = _blur(mirrored * fade[..., None].astype(np.float32), max(0.5, 0.004 * layout.h))
    y0 = layout.y0 + top
    x0, x1 = max(0, layout.x0), min(layout.width, layout.x0 + layout.w)
    if x1 <= x0:
        return
    patch = mirrored[:, x0 - layout.x0 : x1 - layout.x0]
    region = canvas[y0 : y0 + depth, x0:x1]
    region[:] = patch[..., :3] + region * (1.0 - patch[..., 3:4])


# --- light ---------------------------------------------------------------------------------


def _vignette_map(width: int, height: int) -> np.ndarray:
    """0 in the middle of the frame rising to 1 in the corners."""
    gx = (np.arange(width, dtype=np.float32)[None, :] - width / 2) / (width / 2)
    gy = (np.arange(height, dtype=np.float32)[:, None] - height / 2) / (height / 2)
    return _smoothstep(0.35, 1.45, np.sqrt(gx * gx + gy * gy))


def _grade(
    image: np.ndarray,
    look: SceneLook,
    layout: _Layout,
    strength: float,
    vignette: np.ndarray | None,
) -> np.ndarray:
    """The template's light: exposure, white balance, contrast, the seed's gamma, vignette.

    `strength` scales every change (1 for the backdrop, lightly for the product). The
    seed's change is a per-channel gamma, which keeps pure white and black exact.
    """
    light = look.light
    warm = light.warmth * strength
    gain = 2.0 ** (light.exposure * strength / 2.2)
    balance = np.asarray((1 + 0.07 * warm, 1 + 0.012 * warm, 1 - 0.08 * warm), np.float32) * gain
    out = image * balance if (warm != 0 or gain != 1) else image
    contrast = 1.0 + (light.contrast - 1.0) * strength
    if contrast != 1.0:
        out = (out - 0.5) * contrast + 0.5
    out = np.clip(out, 0.0, 1.0)
    gamma = np.asarray([1.0 + (g - 1.0) * strength for g in layout.gamma], np.float32)
    if np.any(gamma != 1.0):
        out = np.power(out, gamma)
    if vignette is not None and look.vignette > 0:
        out = out * (1.0 - look.vignette * strength * 0.55 * vignette)[..., None]
    return out


# --- putting it together ---------------------------------------------------------------------


@dataclass(frozen=True)
class SceneRender:
    """A render and where the product landed in it (what checks and tests measure)."""

    image: Image.Image
    product_box: tuple[int, int, int, int]  # x0, y0, x1, y1 in output pixels (may overhang)
    product_alpha: np.ndarray  # (h, w) 0-1, the product's coverage inside that box


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a requested image size, each 16..10000 pixels."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("size must be (width, height)", value=size) from exc
    if not (16 <= width <= 10_000 and 16 <= height <= 10_000):
        raise InvalidInput("size must be within 16..10000 pixels a side", value=size)
    return width, height


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(int(seed) % (1 << 64)))


def compose_scene(
    cutout: Image.Image, look: SceneLook, *, seed: int, size: tuple[int, int]
) -> SceneRender:
    """Render the scene and say where the product is (render_scene's full answer)."""
    width, height = check_size(size)
    rng = _rng(seed)
    rgba = cutout.convert("RGBA") if cutout.mode != "RGBA" else cutout
    bbox = _alpha_bbox(np.asarray(rgba.getchannel("A")))
    crop_size = (bbox[2] - bbox[0], bbox[3] - bbox[1])
    layout = _layout(crop_size, look, (width, height), rng)
    product = _prepare_product(rgba, (layout.w, layout.h))
    if layout.podium is not None:
        layout = _fit_podium(layout, _ground_line(product.alpha)[0])
    background = _paint_background(look, layout, rng)
    if layout.podium is not None:
        _paint_podium(background, look, layout)
    shadow = _shadow_map(look, layout, product)
    background *= (1.0 - shadow)[..., None]
    _add_reflection(background, look, layout, product)
    vignette = _vignette_map(width, height) if look.vignette > 0 else None
    out = _grade(background, look, layout, 1.0, vignette)
    _composite_product(out, product, look, layout, vignette)
    pixels = _to_uint8(out, rng)
    return SceneRender(
        image=Image.fromarray(pixels, "RGB"),
        product_box=(layout.x0, layout.y0, layout.x0 + layout.w, layout.y0 + layout.h),
        product_alpha=product.alpha,
    )


def _composite_product(
    out: np.ndarray,
    product: _Product,
    look: SceneLook,
    layout: _Layout,
    vignette: np.ndarray | None,
) -> None:
    """Premultiplied "over" of the lightly graded product, clipped to the frame."""
    x0, y0 = max(0, layout.x0), max(0, layout.y0)
    x1, y1 = min(layout.width, layout.x0 + layout.w), min(layout.height, layout.y0 + layout.h)
    if x1 <= x0 or y1 <= y0:
        return
    sx, sy = x0 - layout.x0, y0 - layout.y0
    color = product.color[sy : sy + y1 - y0, sx : sx + x1 - x0]
    alpha = product.alpha[sy : sy + y1 - y0, sx : sx + x1 - x0, None]
    local_vignette = vignette[y0:y1, x0:x1] if vignette is not None else None
    graded = _grade(color, look, layout, _PRODUCT_GRADE, local_vignette)
    region = out[y0:y1, x0:x1]
    region[:] = graded * alpha + region * (1.0 - alpha)


def _to_uint8(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quantise with a little dither so gradients do not band; flat colours stay exact."""
    noise = rng.random(image.shape[:2], dtype=np.float32)
    noise = (noise - 0.5) * (2 * _DITHER)
    scaled = image * 255.0 + noise[..., None]
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def render_scene(
    cutout: Image.Image, look: SceneLook, *, seed: int, size: tuple[int, int]
) -> Image.Image:
    """Put the product cutout (RGBA, transparent background) into the scene; RGB of `size`."""
    return compose_scene(cutout, look, seed=seed, size=size).image
