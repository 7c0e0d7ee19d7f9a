"""The local engine's portrait placeholder: the offline stand-in for Flux 1.1 Pro Ultra.

"With model" scenes need a person. Offline, Lightbox does not pretend to
photograph one: it draws a flat-shaded, clearly illustrated figure (head,
hair, shoulders, clothing) so the rest of the flow (composition, checks,
delivery) can be exercised with an image of the right shape. The prompt's
plain words steer it where that is easy: skin tone, hair colour and length,
clothing colour, a smile, glasses, a beard. Everything else comes from the
seed, and the same (prompt, seed) always draws the same picture.

Shapes are drawn at twice the size and reduced, which anti-aliases them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from lightbox.errors import InvalidInput

Rgb = tuple[int, int, int]

SKIN_TONES: dict[str, Rgb] = {
    "pale": (244, 222, 204),
    "fair": (240, 212, 190),
    "light": (232, 194, 164),
    "medium": (206, 156, 120),
    "olive": (190, 152, 108),
    "tan": (180, 128, 90),
    "tanned": (180, 128, 90),
    "brown": (142, 96, 66),
    "dark": (104, 68, 48),
    "deep": (78, 50, 36),
    "ebony": (70, 46, 34),
}
HAIR_COLOURS: dict[str, Rgb] = {
    "black": (32, 28, 28),
    "dark": (48, 36, 30),
    "brunette": (78, 52, 36),
    "brown": (100, 68, 44),
    "chestnut": (110, 62, 38),
    "auburn": (130, 58, 34),
    "red": (168, 72, 36),
    "ginger": (186, 92, 42),
    "copper": (180, 96, 52),
    "blonde": (222, 188, 118),
    "blond": (222, 188, 118),
    "golden": (214, 172, 92),
    "platinum": (236, 228, 206),
    "grey": (168, 166, 164),
    "gray": (168, 166, 164),
    "silver": (196, 196, 198),
    "white": (232, 230, 226),
    "pink": (232, 150, 180),
    "blue": (80, 110, 190),
    "purple": (130, 84, 160),
    "green": (84, 150, 100),
}
CLOTHING_COLOURS: dict[str, Rgb] = {
    "white": (238, 238, 234),
    "black": (38, 38, 42),
    "grey": (128, 130, 134),
    "gray": (128, 130, 134),
    "charcoal": (64, 66, 70),
    "navy": (40, 52, 90),
    "blue": (60, 100, 170),
    "denim": (84, 112, 150),
    "teal": (40, 128, 130),
    "green": (70, 130, 80),
    "olive": (112, 116, 64),
    "sage": (150, 170, 140),
    "red": (180, 46, 46),
    "burgundy": (110, 32, 46),
    "pink": (226, 150, 170),
    "purple": (110, 70, 140),
    "lavender": (180, 164, 210),
    "orange": (220, 120, 50),
    "yellow": (232, 196, 70),
    "mustard": (200, 160, 50),
    "beige": (214, 196, 168),
    "cream": (236, 226, 204),
    "camel": (190, 150, 100),
    "brown": (110, 76, 52),
    "khaki": (176, 162, 120),
}
GARMENTS = (
    "sweater",
    "jumper",
    "shirt",
    "t-shirt",
    "tshirt",
    "tee",
    "top",
    "blouse",
    "dress",
    "jacket",
    "coat",
    "hoodie",
    "cardigan",
    "suit",
    "blazer",
    "turtleneck",
    "polo",
)
BACKDROPS: tuple[Rgb, ...] = (
    (226, 224, 220),
    (214, 222, 228),
    (232, 222, 212),
    (218, 226, 216),
    (236, 230, 224),
    (204, 208, 214),
)


@dataclass(frozen=True)
class PortraitTraits:
    """What the placeholder shows; parsed from the prompt, the rest chosen by the seed."""

    skin: Rgb
    hair: Rgb
    hair_style: str  # short | long | bun | bald | curly
    clothing: Rgb
    backdrop: Rgb
    smiling: bool
    glasses: bool
    beard: bool
    light_from_left: bool


def _words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+(?:-[a-z]+)?", prompt.lower())


def _colour_before(words: list[str], nouns: tuple[str, ...], table: dict[str, Rgb]) -> Rgb | None:
    """The colour word in the few words before one of `nouns` ("long dark brown hair")."""
    for i, word in enumerate(words):
        base = word.split("-")[0]
        if word in nouns or base in nouns:
            for previous in reversed(words[max(0, i - 3) : i]):
                if previous in table:
                    return table[previous]
    return None


def _compound(words: list[str], suffixes: tuple[str, ...], table: dict[str, Rgb]) -> Rgb | None:
    """Hyphenated forms: "dark-skinned", "red-haired"."""
    for word in words:
        head, _, tail = word.partition("-")
        if tail in suffixes and head in table:
            return table[head]
    return None


def parse_traits(prompt: str, rng: np.random.Generator) -> PortraitTraits:
    """Read the easy attributes from the prompt's words; the seed picks the rest."""
    words = _words(prompt)
    vocabulary = set(words)
    skin = _colour_before(words, ("skin", "complexion", "skinned"), SKIN_TONES) or _compound(
        words, ("skinned",), SKIN_TONES
    )
    if skin is None:
        skin = list(SKIN_TONES.values())[int(rng.integers(len(SKIN_TONES)))]
    hair = _colour_before(
        words, ("hair", "haired", "curls", "ponytail", "bun"), HAIR_COLOURS
    ) or _compound(words, ("haired",), HAIR_COLOURS)
    if hair is None:
        for word, colour in (
            ("redhead", HAIR_COLOURS["red"]),
            ("brunette", HAIR_COLOURS["brunette"]),
            ("blonde", HAIR_COLOURS["blonde"]),
            ("blond", HAIR_COLOURS["blond"]),
        ):
            if word in vocabulary:
                hair = colour
                break
    if hair is None:
        natural = ("black", "dark", "brunette", "brown", "auburn", "blonde", "grey")
        hair = HAIR_COLOURS[natural[int(rng.integers(len(natural)))]]
    clothing = _colour_before(words, GARMENTS, CLOTHING_COLOURS)
    if clothing is None:
        clothing = list(CLOTHING_COLOURS.values())[int(rng.integers(len(CLOTHING_COLOURS)))]
    return PortraitTraits(
        skin=skin,
        hair=hair,
        hair_style=_hair_style(vocabulary, rng),
        clothing=clothing,
        backdrop=BACKDROPS[int(rng.integers(len(BACKDROPS)))],
        smiling=bool(vocabulary & {"smiling", "smile", "smiles", "laughing", "happy", "cheerful"}),
        glasses=bool(vocabulary & {"glasses", "spectacles", "eyeglasses"}),
        beard=bool(vocabulary & {"beard", "bearded", "stubble"}),
        light_from_left=bool(rng.random() < 0.5),
    )


def _hair_style(vocabulary: set[str], rng: np.random.Generator) -> str:
    if vocabulary & {"bald", "shaved", "shaven"}:
        return "bald"
    if vocabulary & {"bun", "updo", "ponytail"}:
        return "bun"
    if vocabulary & {"curly", "curls", "afro"}:
        return "curly"
    if vocabulary & {"long"}:
        return "long"
    if vocabulary & {"short", "cropped", "buzz"}:
        return "short"
    if vocabulary & {"woman", "women", "girl", "female", "she", "her"}:
        return ("long", "bun", "curly", "short")[int(rng.choice(4, p=(0.5, 0.2, 0.15, 0.15)))]
    if vocabulary & {"man", "men", "boy", "male", "he", "his"}:
        return ("short", "curly", "bald")[int(rng.choice(3, p=(0.75, 0.15, 0.1)))]
    return ("short", "long", "bun", "curly")[int(rng.integers(4))]


def _shade(colour: Rgb, factor: float) -> Rgb:
    r, g, b = (int(max(0, min(255, round(c * factor)))) for c in colour)
    return (r, g, b)


def _seed_rng(prompt: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def render_portrait(prompt: str, *, seed: int, size: tuple[int, int]) -> Image.Image:
    """An RGB placeholder portrait of `size`, drawn flat from the prompt's easy words."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("size must be (width, height)", value=size) from exc
    if not (16 <= width <= 10_000 and 16 <= height <= 10_000):
        raise InvalidInput("size must be within 16..10000 pixels a side", value=size)
    rng = _seed_rng(prompt or "", int(seed))
    traits = parse_traits(prompt or "", rng)
    supersample = 2
    canvas = _backdrop(traits.backdrop, (width * supersample, height * supersample))
    _draw_figure(canvas, traits, rng)
    return canvas.resize((width, height), Image.LANCZOS)


def _backdrop(colour: Rgb, size: tuple[int, int]) -> Image.Image:
    """A plain studio backdrop, a little brighter behind the head so the figure sits in light."""
    w, h = size
    y = (np.arange(h, dtype=np.float32)[:, None] - h * 0.35) / max(w, h)
    x = (np.arange(w, dtype=np.float32)[None, :] - w / 2) / max(w, h)
    light = 1.06 - 0.14 * np.clip(np.sqrt(x * x + y * y) / 0.7, 0.0, 1.0)
    pixels = np.clip(light[..., None] * np.asarray(colour, np.float32), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _draw_figure(canvas: Image.Image, t: PortraitTraits, rng: np.random.Generator) -> None:
    """Head-and-shoulders, in the order a painter would lay flat shapes down."""
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    unit = min(w, h)  # the figure is sized by the shorter side and centred
    cx = w / 2 + rng.uniform(-0.03, 0.03) * unit
    head_w = unit * rng.uniform(0.26, 0.3)
    head_h = head_w * rng.uniform(1.22, 1.32)
    head_top = h / 2 - unit * 0.36
    head_box = (cx - head_w / 2, head_top, cx + head_w / 2, head_top + head_h)
    chin = head_top + head_h
    side = -1 if t.light_from_left else 1  # the shadowed side

    if t.hair_style == "long":
        draw.rounded_rectangle(
            (cx - head_w * 0.62, head_top + head_h * 0.1, cx + head_w * 0.62, chin + head_h * 0.55),
            radius=head_w * 0.3,
            fill=_shade(t.hair, 0.85),
        )

    # Shoulders and clothing: a broad rounded shape running off the bottom of the frame.
    shoulder_w = head_w * rng.uniform(2.4, 2.8)
    body_top = chin + head_h * 0.22
    draw.rounded_rectangle(
        (cx - shoulder_w / 2, body_top, cx + shoulder_w / 2, h + unit * 0.3),
        radius=shoulder_w * 0.28,
        fill=t.clothing,
    )
    shadow_x = cx + side * shoulder_w * 0.12
    draw.rounded_rectangle(
        (
            min(shadow_x, shadow_x + side * shoulder_w * 0.4),
            body_top + head_h * 0.05,
            max(shadow_x, shadow_x + side * shoulder_w * 0.4),
            h + unit * 0.3,
        ),
        radius=shoulder_w * 0.2,
        fill=_shade(t.clothing, 0.82),
    )

    # Neck, with the shadow the chin throws on it.
    neck_w = head_w * 0.42
    draw.rectangle(
        (cx - neck_w / 2, chin - head_h * 0.1, cx + neck_w / 2, body_top + head_h * 0.12),
        fill=t.skin,
    )
    draw.ellipse(
        (cx - neck_w / 2, chin - head_h * 0.12, cx + neck_w / 2, chin + head_h * 0.12),
        fill=_shade(t.skin, 0.8),
    )
    # Neckline of the garment.
    draw.pieslice(
        (cx - neck_w * 0.9, body_top - head_h * 0.12, cx + neck_w * 0.9, body_top + head_h * 0.28),
        0,
        180,
        fill=t.skin,
    )

    # Ears, head, and the shadowed half of the face.
    ear = head_w * 0.14
    for direction in (-1, 1):
        ex = cx + direction * head_w * 0.5
        draw.ellipse(
            (ex - ear, head_top + head_h * 0.42, ex + ear, head_top + head_h * 0.62), fill=t.skin
        )
    draw.ellipse(head_box, fill=t.skin)
    _shade_half(draw, head_box, side, _shade(t.skin, 0.9))

    _draw_hair(draw, t, cx, head_top, head_w, head_h, rng)
    _draw_face(draw, t, cx, head_top, head_w, head_h)


def _shade_half(
    draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], side: int, fill: Rgb
) -> None:
    """Darken the half of an ellipse away from the light (a flat two-tone shading)."""
    start, end = (270, 90) if side > 0 else (90, 270)
    x0, y0, x1, y1 = box
    inset = (x1 - x0) * 0.18
    draw.chord(
        (x0 + (inset if side > 0 else 0), y0, x1 - (0 if side > 0 else inset), y1),
        start,
        end,
        fill=fill,
    )


def _draw_hair(
    draw: ImageDraw.ImageDraw,
    t: PortraitTraits,
    cx: float,
    top: float,
    head_w: float,
    head_h: float,
    rng: np.random.Generator,
) -> None:
    if t.hair_style == "bald":
        return
    hair = t.hair
    cap = (cx - head_w * 0.54, top - head_h * 0.06, cx + head_w * 0.54, top + head_h * 0.72)
    draw.chord(cap, 180, 360, fill=hair)
    part = rng.uniform(-0.2, 0.2) * head_w
    # A fringe swept from the parting: the face keeps its upper third framed.
    draw.polygon(
        [
            (cx - head_w * 0.54, top + head_h * 0.36),
            (cx + part, top + head_h * 0.08),
            (cx + head_w * 0.54, top + head_h * 0.36),
            (cx + head_w * 0.5, top + head_h * 0.2),
            (cx - head_w * 0.5, top + head_h * 0.2),
        ],
        fill=hair,
    )
    draw.polygon(
        [
            (cx + part, top + head_h * 0.05),
            (cx + part + head_w * 0.35, top + head_h * 0.28),
            (cx + head_w * 0.54, top + head_h * 0.33),
            (cx + head_w * 0.54, top + head_h * 0.2),
        ],
        fill=hair,
    )
    if t.hair_style == "bun":
        r = head_w * 0.2
        draw.ellipse(
            (cx - r, top - head_h * 0.2 - r * 0.4, cx + r, top - head_h * 0.2 + r * 1.6), fill=hair
        )
    elif t.hair_style == "curly":
        r = head_w * 0.12
        for k in range(11):
            angle = np.pi * (k / 10.0)
            px = cx - np.cos(angle) * head_w * 0.52
            py = top + head_h * 0.32 - np.sin(angle) * head_h * 0.4
            draw.ellipse((px - r, py - r, px + r, py + r), fill=hair)
    elif t.hair_style == "long":
        for direction in (-1, 1):
            x_out = cx + direction * head_w * 0.58
            x_in = cx + direction * head_w * 0.4
            draw.polygon(
                [
                    (x_out, top + head_h * 0.3),
                    (x_in, top + head_h * 0.3),
                    (x_in, top + head_h * 1.25),
                    (x_out, top + head_h * 1.4),
                ],
                fill=hair,
            )
    highlight = _shade(hair, 1.25) if sum(hair) < 500 else _shade(hair, 0.92)
    draw.arc(
        (cx - head_w * 0.4, top + head_h * 0.02, cx + head_w * 0.4, top + head_h * 0.5),
        215,
        260,
        fill=highlight,
        width=max(1, round(head_w * 0.04)),
    )


def _draw_face(
    draw: ImageDraw.ImageDraw,
    t: PortraitTraits,
    cx: float,
    top: float,
    head_w: float,
    head_h: float,
) -> None:
    """Minimal features: enough to read as a face, plainly an illustration."""
    eye_y = top + head_h * 0.5
    eye_dx = head_w * 0.2
    eye_r = head_w * 0.045
    ink = (46, 40, 40)
    for direction in (-1, 1):
        ex = cx + direction * eye_dx
        draw.ellipse((ex - eye_r, eye_y - eye_r, ex + eye_r, eye_y + eye_r), fill=ink)
        brow_y = eye_y - head_h * 0.09
        draw.line(
            (ex - eye_r * 2, brow_y, ex + eye_r * 2, brow_y - head_h * 0.01),
            fill=_shade(t.hair, 0.8) if t.hair_style != "bald" else _shade(t.skin, 0.6),
            width=max(1, round(head_w * 0.03)),
        )
        if t.glasses:
            gr = eye_r * 3.2
            draw.ellipse(
                (ex - gr, eye_y - gr * 0.8, ex + gr, eye_y + gr * 0.8),
                outline=(40, 40, 44),
                width=max(1, round(head_w * 0.02)),
            )
    if t.glasses:
        draw.line(
            (cx - eye_dx + eye_r * 3.2, eye_y, cx + eye_dx - eye_r * 3.2, eye_y),
            fill=(40, 40, 44),
            width=max(1, round(head_w * 0.02)),
        )
    nose_y = top + head_h * 0.66
    draw.line(
        (cx, eye_y + head_h * 0.06, cx - head_w * 0.04, nose_y, cx + head_w * 0.02, nose_y),
        fill=_shade(t.skin, 0.72),
        width=max(1, round(head_w * 0.025)),
    )
    if t.beard:
        draw.chord(
            (cx - head_w * 0.5, top + head_h * 0.35, cx + head_w * 0.5, top + head_h * 1.02),
            0,
            180,
            fill=_shade(t.hair, 0.95),
        )
    mouth_y = top + head_h * 0.78
    mouth_w = head_w * (0.24 if t.smiling else 0.18)
    lips = _shade(t.skin, 0.62) if not t.beard else _shade(t.skin, 0.8)
    if t.smiling:
        draw.chord(
            (cx - mouth_w / 2, mouth_y - head_h * 0.05, cx + mouth_w / 2, mouth_y + head_h * 0.06),
            0,
            180,
            fill=(250, 248, 244),
            outline=lips,
            width=max(1, round(head_w * 0.02)),
        )
    else:
        draw.line(
            (cx - mouth_w / 2, mouth_y, cx + mouth_w / 2, mouth_y),
            fill=lips,
            width=max(1, round(head_w * 0.03)),
        )
