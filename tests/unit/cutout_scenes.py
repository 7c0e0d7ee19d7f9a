"""Synthetic photos for the cutout's tests: the ways a classic cutout fails to generalise.

The shared samples are a handful of photos; a threshold can fit them and still fail
on the next one. These scenes rebuild, from seeded noise, the situations that broke
the cutout on photos it had never seen, each with its true mask and the regions a
test looks at:

- a subject sitting on a wooden bench that runs out of the frame, in front of a
  defocused park: the bench is a support surface, not part of the product;
- a bicycle on a boardwalk: the boards seen through its wheels and its frame are
  background, although the bicycle encloses them;
- eyes, a nose and catchlights on the subject's face, whose colours also occur in
  the background (the gaps between the bench's planks, the sky through the trees):
  details of the subject, never holes.

Everything is drawn at twice the size and reduced, so edges are anti-aliased like a
lens's, and lightly noised like a sensor's. The same arguments give the same pixels.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw

#: Drawing happens at this multiple of the photo's size, then is reduced (anti-aliasing).
SUPERSAMPLE = 2


@dataclass(frozen=True)
class Scene:
    """A rendered photo, its true product mask, and named regions of interest (bool)."""

    photo: Image.Image
    truth: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)


# --- drawing helpers -----------------------------------------------------------------


class _Canvas:
    """Shapes drawn at SUPERSAMPLE times the size, read back as coverage (0..1) per pixel."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def coverage(self, draw: Callable[[ImageDraw.ImageDraw, int], object]) -> np.ndarray:
        layer = Image.new("L", (self.width * SUPERSAMPLE, self.height * SUPERSAMPLE), 0)
        draw(ImageDraw.Draw(layer), SUPERSAMPLE)
        reduced = layer.resize((self.width, self.height), Image.BOX)
        return np.asarray(reduced, np.float32) / 255.0


def _smooth_noise(shape: tuple[int, int], cell: float, rng: np.random.Generator) -> np.ndarray:
    """Noise in 0..1 with features about `cell` pixels across."""
    height, width = shape
    grid = rng.random((max(2, round(height / cell)) + 2, max(2, round(width / cell)) + 2))
    noise = cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    noise -= noise.min()
    return noise / max(float(noise.max()), 1e-6)


def _lay(pixels: np.ndarray, coverage: np.ndarray, colour: np.ndarray | tuple) -> None:
    """Paint `colour` (one RGB, or an image) over `pixels` with the given coverage."""
    a = coverage[..., None]
    pixels *= 1.0 - a
    pixels += a * np.asarray(colour, np.float32)


def _finish(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Sensor noise and 8 bits, as a camera would hand the photo over."""
    noisy = pixels + rng.normal(0.0, 3.0, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _wood(
    shape: tuple[int, int], base: tuple[int, int, int], rng: np.random.Generator
) -> np.ndarray:
    """Planed wood: grain running along x, knots of darker and lighter streaks."""
    height, width = shape
    ys, xs = np.indices(shape, dtype=np.float32)
    wobble = 6.0 * _smooth_noise(shape, 40, rng)
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (ys + wobble + 0.02 * xs) / 7.0)
    streaks = _smooth_noise((height, max(2, width // 8)), 3, rng)
    streaks = cv2.resize(streaks, (width, height), interpolation=cv2.INTER_LINEAR)
    shade = 0.82 + 0.12 * grain + 0.14 * (streaks - 0.5)
    return np.asarray(base, np.float32) * shade[..., None]


def _park(
    shape: tuple[int, int], rng: np.random.Generator, *, bush: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A defocused park: foliage in several greens, trunks, and sky between the leaves;
    with `bush`, a flowering bush in orange and yellow, well inside the frame (as
    salient in colour as any subject, and as out of focus as the park). Returns the
    pixels and where the bush is."""
    height, width = shape
    foliage = _smooth_noise(shape, 60, rng)
    tone = _smooth_noise(shape, 25, rng)
    dark, light = np.array([38, 62, 34], np.float32), np.array([112, 150, 70], np.float32)
    pixels = dark + (light - dark) * tone[..., None]
    sky = foliage > 0.78
    pixels[sky] = (226, 234, 240)
    for x in rng.uniform(0.05, 0.95, 4) * width:
        x0, x1 = int(x), int(x + rng.uniform(0.015, 0.03) * width)
        pixels[:, x0:x1] = (70, 55, 45)
    if bush:
        ys, xs = np.indices(shape, dtype=np.float32)
        inside = ((xs - 0.76 * width) / (0.13 * width)) ** 2 + (
            (ys - 0.3 * height) / (0.16 * height)
        ) ** 2 < 1
        blossom = _smooth_noise(shape, 8, rng)[..., None]
        flowers = np.array([226, 84, 36], np.float32) * (1 - blossom) + np.array(
            [244, 196, 58], np.float32
        ) * blossom
        pixels[inside] = flowers[inside]
    else:
        inside = np.zeros(shape, bool)
    return cv2.GaussianBlur(pixels, (0, 0), 5.0), inside


# --- a subject on a bench -------------------------------------------------------------


def subject_on_bench(
    subject: Image.Image | None = None,
    *,
    coat: str = "tabby",
    whole_bench: bool = False,
    painted: tuple[int, int, int] | None = None,
    bush: bool = False,
    seed: int = 11,
) -> Scene:
    """A cat with the given coat (or the given RGBA subject) sitting on a park bench.

    The bench runs out of the frame on both sides, or with `whole_bench` stands
    inside it, its ends and legs in view (then nothing but its colour and its place
    under the subject says it is not the product). A `painted` bench has that colour
    instead of the wood's (a black park bench is the colour of the cat's eyes). With
    `bush`, a flowering bush stands out in the defocused park behind.

    Regions: "support" is the bench (seat, apron and legs) where the subject does not
    cover it; "details" the drawn cat's eyes, nose and catchlights (and a siamese's
    face mask), absent for a given subject; "bush" the bush, when there is one.
    """
    width, height = 900, 600
    rng = np.random.default_rng(seed)
    canvas = _Canvas(width, height)
    left, right = (70, 830) if whole_bench else (0, width)
    seat_colour, apron_colour, leg_colour = (
        ((158, 108, 66), (118, 80, 50), (92, 62, 40)) if painted is None else (painted,) * 3
    )
    pixels, bush_area = _park((height, width), rng, bush=bush)
    # The ground under and behind the bench: a sandy path, in focus where the bench stands.
    ground = canvas.coverage(
        lambda d, s: d.rectangle((0, 430 * s, width * s, height * s), fill=255)
    )
    path = (
        np.array([168, 150, 120], np.float32)
        * (0.9 + 0.2 * _smooth_noise((height, width), 4, rng))[..., None]
    )
    _lay(pixels, ground, path)
    # The bench: three planks with dark gaps, a darker apron, two legs, its shadow.
    shadow = canvas.coverage(
        lambda d, s: d.ellipse(((left + 40) * s, 520 * s, (right - 40) * s, 575 * s), fill=255)
    )
    _lay(pixels, cv2.GaussianBlur(shadow, (0, 0), 8) * 0.5, (40, 34, 28))
    bench = np.zeros((height, width), np.float32)
    legs = canvas.coverage(
        lambda d, s: [
            d.rectangle((x * s, 420 * s, (x + 32) * s, 548 * s), fill=255)
            for x in (left + 95, right - 130)
        ]
    )
    _lay(pixels, legs, _wood((height, width), leg_colour, rng))
    bench = np.maximum(bench, legs)
    gaps = np.array([40, 32, 26], np.float32)
    seat = canvas.coverage(
        lambda d, s: d.rectangle((left * s, 330 * s, right * s, 403 * s), fill=255)
    )
    _lay(pixels, seat, gaps)
    for top in (330, 355, 380):
        plank = canvas.coverage(
            lambda d, s, top=top: d.rectangle(
                (left * s, top * s, right * s, (top + 22) * s), fill=255
            )
        )
        _lay(pixels, plank, _wood((height, width), seat_colour, rng))
    apron = canvas.coverage(
        lambda d, s: d.rectangle((left * s, 403 * s, right * s, 428 * s), fill=255)
    )
    _lay(pixels, apron, _wood((height, width), apron_colour, rng))
    bench = np.maximum.reduce([bench, seat, apron])

    if subject is None:
        cover, regions = _draw_cat(pixels, canvas, rng, coat)
    else:
        cover, regions = _place_subject(pixels, subject, base_y=362, height_share=0.52)
    truth = cover >= 0.5
    regions["support"] = (bench >= 0.5) & ~truth
    if bush:
        regions["bush"] = bush_area & ~truth
    return Scene(_finish(pixels, rng), truth, regions)


def _draw_cat(
    pixels: np.ndarray, canvas: _Canvas, rng: np.random.Generator, coat: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A cat sitting upright, facing the camera, its base on the seat at y = 362.

    A "tabby" is ginger with darker stripes, a cream chest and muzzle, black eyes and
    white catchlights. A "siamese" is cream with dark seal points (face mask, ears,
    paws, tail), pale blue eyes inside the mask, and the catchlights.
    """
    height, width = pixels.shape[:2]

    def ears(d: ImageDraw.ImageDraw, s: int) -> None:
        d.polygon([(392 * s, 112 * s), (398 * s, 38 * s), (442 * s, 78 * s)], fill=255)
        d.polygon([(508 * s, 112 * s), (502 * s, 38 * s), (458 * s, 78 * s)], fill=255)

    def paws(d: ImageDraw.ImageDraw, s: int) -> None:
        d.ellipse((372 * s, 330 * s, 432 * s, 366 * s), fill=255)
        d.ellipse((468 * s, 330 * s, 528 * s, 366 * s), fill=255)

    def tail(d: ImageDraw.ImageDraw, s: int) -> None:
        d.line([(520 * s, 345 * s), (600 * s, 352 * s), (650 * s, 335 * s)], fill=255, width=22 * s)

    def shapes(d: ImageDraw.ImageDraw, s: int) -> None:
        d.ellipse((360 * s, 170 * s, 540 * s, 368 * s), fill=255)  # body
        d.ellipse((385 * s, 62 * s, 515 * s, 182 * s), fill=255)  # head
        ears(d, s)
        paws(d, s)
        tail(d, s)

    cover = canvas.coverage(shapes)
    fur = 0.85 + 0.3 * _smooth_noise((height, width), 2, rng)
    eyes = canvas.coverage(
        lambda d, s: [
            d.ellipse(((x - 13) * s, 104 * s, (x + 13) * s, 124 * s), fill=255) for x in (427, 473)
        ]
    )
    nose = canvas.coverage(
        lambda d, s: d.polygon(
            [(441 * s, 138 * s), (459 * s, 138 * s), (450 * s, 150 * s)], fill=255
        )
    )
    glints = canvas.coverage(
        lambda d, s: [
            d.ellipse(((x - 4) * s, 107 * s, (x + 3) * s, 114 * s), fill=255) for x in (423, 469)
        ]
    )
    dark = (34, 28, 24)  # the colour of the gaps between the planks
    if coat == "siamese":
        cream = np.array([236, 226, 208], np.float32)[None, None] * fur[..., None]
        _lay(pixels, cover, cream)
        points = np.array([58, 44, 36], np.float32)[None, None] * fur[..., None]
        mask = canvas.coverage(
            lambda d, s: d.ellipse((398 * s, 92 * s, 502 * s, 172 * s), fill=255)
        )
        extremities = np.maximum.reduce(
            [canvas.coverage(ears), canvas.coverage(paws), canvas.coverage(tail)]
        )
        _lay(pixels, cv2.GaussianBlur(mask, (0, 0), 4) * cover, points)
        _lay(pixels, extremities * cover, points)
        _lay(pixels, eyes, (150, 186, 226))
        pupils = canvas.coverage(
            lambda d, s: [
                d.ellipse(((x - 4) * s, 106 * s, (x + 4) * s, 122 * s), fill=255)
                for x in (427, 473)
            ]
        )
        _lay(pixels, np.maximum(pupils, nose), dark)
        details = np.maximum.reduce([mask, eyes, nose]) >= 0.5
    else:
        ys, xs = np.indices((height, width), dtype=np.float32)
        stripes = 0.5 + 0.5 * np.sin(
            2 * np.pi * (xs * 0.25 + ys) / 26.0 + 4 * _smooth_noise((height, width), 30, rng)
        )
        ginger = np.array([214, 132, 62], np.float32)[None, None] * (0.72 + 0.28 * stripes)[
            ..., None
        ]
        _lay(pixels, cover, ginger * fur[..., None])
        chest = canvas.coverage(
            lambda d, s: d.ellipse((410 * s, 190 * s, 490 * s, 300 * s), fill=255)
        )
        muzzle = canvas.coverage(
            lambda d, s: d.ellipse((420 * s, 128 * s, 480 * s, 172 * s), fill=255)
        )
        cream = np.array([238, 226, 206], np.float32)[None, None] * fur[..., None]
        _lay(pixels, np.maximum(chest, muzzle) * cover, cream)
        _lay(pixels, np.maximum(eyes, nose), dark)
        details = np.maximum.reduce([eyes, nose, glints]) >= 0.5
    # Catchlights: the white of the sky between the leaves.
    _lay(pixels, glints, (250, 250, 248))
    return cover, {"details": details}


def _place_subject(
    pixels: np.ndarray, subject: Image.Image, *, base_y: int, height_share: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Paste an RGBA subject centred, at most a share of the height tall, its base at base_y."""
    height, width = pixels.shape[:2]
    alpha = np.asarray(subject.getchannel("A"))
    rows, cols = np.flatnonzero(alpha.max(1) >= 128), np.flatnonzero(alpha.max(0) >= 128)
    cropped = subject.crop((cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))
    # As tall as asked, but narrower than the bench (a lying animal is long).
    scale = min(height_share * height / cropped.height, 0.6 * width / cropped.width)
    size = (max(1, round(cropped.width * scale)), max(1, round(cropped.height * scale)))
    placed = np.asarray(cropped.resize(size, Image.LANCZOS), np.float32)
    x0, y0 = (width - size[0]) // 2, base_y - size[1]
    cover = np.zeros((height, width), np.float32)
    cover[y0 : y0 + size[1], x0 : x0 + size[0]] = placed[..., 3] / 255.0
    colour = np.zeros_like(pixels)
    colour[y0 : y0 + size[1], x0 : x0 + size[0]] = placed[..., :3]
    _lay(pixels, cover, colour)
    return cover, {}


# --- a bicycle on a boardwalk -----------------------------------------------------------


def bicycle_on_boardwalk(*, seed: int = 5) -> Scene:
    """A bicycle side on, on a boardwalk by the sea; its wheels and frame show the boards.

    Regions: "see_through" is the background inside the wheels and the frame's
    triangles, away from spokes and tubes; "support" the boardwalk outside the bicycle;
    "solid" the tyres, the frame's tubes, the saddle and the handlebar.
    """
    width, height = 960, 640
    rng = np.random.default_rng(seed)
    canvas = _Canvas(width, height)
    ys = np.arange(height, dtype=np.float32)[:, None, None]
    pixels = np.broadcast_to(
        np.array([196, 218, 238], np.float32) - ys * np.array([0.15, 0.1, 0.05], np.float32),
        (height, width, 3),
    ).copy()
    sea = canvas.coverage(lambda d, s: d.rectangle((0, 190 * s, width * s, 300 * s), fill=255))
    waves = (
        np.array([44, 92, 128], np.float32)
        * (0.85 + 0.3 * _smooth_noise((height, width // 6), 3, rng).repeat(6, 1)[:, :width])[
            ..., None
        ]
    )
    _lay(pixels, sea, waves)
    # Planks across the frame, wider towards the camera; dark gaps between them.
    boardwalk = canvas.coverage(
        lambda d, s: d.rectangle((0, 300 * s, width * s, height * s), fill=255)
    )
    _lay(pixels, boardwalk, (52, 46, 40))
    edges = 300 + 340 * (np.arange(15) / 14) ** 1.5
    for top, bottom in itertools.pairwise(edges):
        gap = 1.0 + 0.02 * (bottom - top)
        plank = canvas.coverage(
            lambda d, s, t=top, b=bottom, g=gap: d.rectangle(
                (0, t * s, width * s, (b - g) * s), fill=255
            )
        )
        tint = rng.uniform(0.88, 1.08)
        _lay(pixels, plank, _wood((height, width), (150, 136, 116), rng) * tint)
    shadow = canvas.coverage(lambda d, s: d.ellipse((170 * s, 570 * s, 800 * s, 612 * s), fill=255))
    _lay(pixels, cv2.GaussianBlur(shadow, (0, 0), 6) * 0.45, (30, 28, 26))

    rear, front, radius = (300, 460), (660, 460), 125
    bottom_bracket, seat_top, head_top, head_bottom = (455, 472), (425, 318), (612, 312), (628, 362)
    spokes = canvas.coverage(
        lambda d, s: [
            d.line(
                [
                    (cx * s, cy * s),
                    ((cx + (radius - 14) * np.cos(a)) * s, (cy + (radius - 14) * np.sin(a)) * s),
                ],
                fill=255,
                width=2 * s,
            )
            for cx, cy in (rear, front)
            for a in np.linspace(0, 2 * np.pi, 18, endpoint=False) + 0.1
        ]
    )
    _lay(pixels, spokes, (160, 162, 168))
    tyres = canvas.coverage(
        lambda d, s: [
            d.ellipse(
                ((cx - radius) * s, (cy - radius) * s, (cx + radius) * s, (cy + radius) * s),
                outline=255,
                width=13 * s,
            )
            for cx, cy in (rear, front)
        ]
    )
    _lay(pixels, tyres, (26, 26, 30))
    rims = canvas.coverage(
        lambda d, s: [
            d.ellipse(
                (
                    (cx - radius + 13) * s,
                    (cy - radius + 13) * s,
                    (cx + radius - 13) * s,
                    (cy + radius - 13) * s,
                ),
                outline=255,
                width=4 * s,
            )
            for cx, cy in (rear, front)
        ]
    )
    _lay(pixels, rims, (178, 180, 186))
    tubes = [
        (rear, bottom_bracket),
        (bottom_bracket, seat_top),
        (seat_top, rear),
        (bottom_bracket, head_bottom),
        (seat_top, head_top),
        (head_top, head_bottom),
        (head_bottom, front),
    ]
    frame = canvas.coverage(
        lambda d, s: [
            d.line([(a[0] * s, a[1] * s), (b[0] * s, b[1] * s)], fill=255, width=13 * s)
            for a, b in tubes
        ]
    )
    _lay(pixels, frame, (186, 32, 38))
    parts = canvas.coverage(
        lambda d, s: [
            d.ellipse(
                ((rear[0] - 10) * s, (rear[1] - 10) * s, (rear[0] + 10) * s, (rear[1] + 10) * s),
                fill=255,
            ),
            d.ellipse(
                (
                    (front[0] - 10) * s,
                    (front[1] - 10) * s,
                    (front[0] + 10) * s,
                    (front[1] + 10) * s,
                ),
                fill=255,
            ),
            d.ellipse(
                (
                    (bottom_bracket[0] - 26) * s,
                    (bottom_bracket[1] - 26) * s,
                    (bottom_bracket[0] + 26) * s,
                    (bottom_bracket[1] + 26) * s,
                ),
                fill=255,
            ),
            d.ellipse((392 * s, 300 * s, 462 * s, 318 * s), fill=255),  # saddle
            d.line(
                [(612 * s, 312 * s), (606 * s, 290 * s), (650 * s, 284 * s)], fill=255, width=9 * s
            ),
        ]
    )
    _lay(pixels, parts, (40, 40, 44))
    cover = np.maximum.reduce([spokes, tyres, rims, frame, parts])
    truth = cover >= 0.5

    see_through = np.zeros((height, width), bool)
    yy, xx = np.indices((height, width))
    for cx, cy in (rear, front):
        see_through |= (xx - cx) ** 2 + (yy - cy) ** 2 < (radius - 22) ** 2
    triangles = canvas.coverage(
        lambda d, s: [
            d.polygon([(p[0] * s, p[1] * s) for p in (rear, bottom_bracket, seat_top)], fill=255),
            d.polygon(
                [(p[0] * s, p[1] * s) for p in (bottom_bracket, seat_top, head_top, head_bottom)],
                fill=255,
            ),
        ]
    )
    see_through |= triangles >= 0.5
    near_part = cv2.dilate(truth.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    see_through &= ~near_part
    regions = {
        "see_through": see_through,
        "support": (boardwalk >= 0.5) & ~near_part & ~see_through,
        # What a cutout at a few hundred pixels can hold on to: not the spokes.
        "solid": np.maximum.reduce([tyres, frame, parts]) >= 0.5,
    }
    return Scene(_finish(pixels, rng), truth, regions)


# --- a mug with a logo ------------------------------------------------------------------


def mug_with_logo(*, seed: int = 3) -> Scene:
    """A white mug with a black logo, on a pale table in front of a black wall.

    The logo is as black as the wall, and the glint on the rim as white as the mug's
    highlight on the table is bright: both colours are the background's, elsewhere.
    Regions: "details" is the logo; "see_through" the table seen through the handle.
    """
    width, height = 800, 600
    rng = np.random.default_rng(seed)
    canvas = _Canvas(width, height)
    pixels = np.empty((height, width, 3), np.float32)
    pixels[:] = (24, 22, 24)  # the wall
    table = canvas.coverage(lambda d, s: d.rectangle((0, 260 * s, width * s, height * s), fill=255))
    grain = 0.94 + 0.06 * _smooth_noise((height, width), 6, rng)
    _lay(pixels, table, np.array([214, 208, 198], np.float32) * grain[..., None])
    shadow = canvas.coverage(lambda d, s: d.ellipse((250 * s, 470 * s, 600 * s, 520 * s), fill=255))
    _lay(pixels, cv2.GaussianBlur(shadow, (0, 0), 10) * 0.45, (60, 56, 52))

    def body(d: ImageDraw.ImageDraw, s: int) -> None:
        d.rounded_rectangle((280 * s, 150 * s, 500 * s, 490 * s), radius=18 * s, fill=255)

    def handle(d: ImageDraw.ImageDraw, s: int) -> None:
        d.ellipse((440 * s, 230 * s, 590 * s, 400 * s), outline=255, width=26 * s)

    cover = np.maximum(canvas.coverage(body), canvas.coverage(handle))
    xs = np.arange(width, dtype=np.float32)[None, :]
    shade = 0.8 + 0.2 * np.cos((xs - 370) / 140.0)  # a round body, lit from the left
    _lay(pixels, cover, np.array([240, 240, 236], np.float32)[None, None] * shade[..., None])
    # A black badge with a white bar across it: big enough to hold superpixels of its
    # own that look like nothing but the wall.
    logo = canvas.coverage(lambda d, s: d.ellipse((320 * s, 300 * s, 450 * s, 430 * s), fill=255))
    _lay(pixels, logo, (22, 20, 22))
    bar = canvas.coverage(lambda d, s: d.rectangle((345 * s, 355 * s, 425 * s, 375 * s), fill=255))
    _lay(pixels, bar, (246, 246, 244))
    truth = cover >= 0.5
    inside_handle = canvas.coverage(
        lambda d, s: d.ellipse((470 * s, 262 * s, 560 * s, 368 * s), fill=255)
    )
    see_through = (inside_handle >= 0.5) & ~truth
    see_through &= cv2.erode(see_through.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return Scene(_finish(pixels, rng), truth, {"details": logo >= 0.5, "see_through": see_through})
