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

from lightbox_local.engine.vision.render import check_size

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
    width, height = check_size(size)
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
    # One flat tone on the head: a two-tone split down the middle of the face hides it
    # from the face detector the shot check uses (lightbox.domain.fidelity).
    draw.ellipse(head_box, fill=t.skin)

    _draw_hair(draw, t, cx, head_top, head_w, head_h, rng)
    _draw_face(draw, t, cx, head_top, head_w, head_h)


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
    cap = (cx - head_w * 0.54, top - head_h * 0.06, cx + head_w * 0.54, top + head_h * 0.5)
    draw.chord(cap, 180, 360, fill=hair)
    part = rng.uniform(-0.2, 0.2) * head_w
    # A fringe swept from the parting. The hairline stays above the brows: a lit
    # forehead over the darker eyes is what a face detector looks for first.
    draw.polygon(
        [
            (cx - head_w * 0.54, top + head_h * 0.26),
            (cx + part, top + head_h * 0.06),
            (cx + head_w * 0.54, top + head_h * 0.26),
            (cx + head_w * 0.5, top + head_h * 0.14),
            (cx - head_w * 0.5, top + head_h * 0.14),
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
            py = top + head_h * 0.26 - np.sin(angle) * head_h * 0.34
            draw.ellipse((px - r, py - r, px + r, py + r), fill=hair)
    elif t.hair_style == "long":
        for direction in (-1, 1):
            x_out = cx + direction * head_w * 0.58
            x_in = cx + direction * head_w * 0.44
            draw.polygon(
                [
                    (x_out, top + head_h * 0.25),
                    (x_in, top + head_h * 0.25),
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
    """Minimal features: plainly an illustration, yet a face to a face detector.

    "With model" shots are checked for exactly one face (OpenCV's Haar cascades), so
    the placeholder keeps the light pattern those cascades know: eye sockets darker
    than the forehead and cheeks, a lighter bridge between them, a dark mouth. Darker
    skin gets highlights on the forehead, nose and cheekbones, as light gives a face.
    """
    eye_y = top + head_h * 0.5
    eye_dx = head_w * 0.21
    eye_r = head_w * 0.06
    luminance = 0.299 * t.skin[0] + 0.587 * t.skin[1] + 0.114 * t.skin[2]
    if luminance < 150:
        sheen = _shade(t.skin, 1.2)
        draw.ellipse((cx - head_w * 0.3, top + head_h * 0.22, cx + head_w * 0.3,
                      top + head_h * 0.38), fill=sheen)
        draw.rectangle((cx - head_w * 0.05, top + head_h * 0.42, cx + head_w * 0.05,
                        top + head_h * 0.64), fill=sheen)
        for direction in (-1, 1):
            bx = cx + direction * head_w * 0.24
            draw.ellipse((bx - head_w * 0.1, top + head_h * 0.58, bx + head_w * 0.1,
                          top + head_h * 0.7), fill=sheen)
    socket = _shade(t.skin, 0.6)
    for direction in (-1, 1):
        ex = cx + direction * eye_dx
        draw.ellipse((ex - eye_r * 2.4, eye_y - eye_r * 1.9, ex + eye_r * 2.4,
                      eye_y + eye_r * 1.3), fill=socket)
    brow = _shade(t.hair, 0.6) if t.hair_style != "bald" else _shade(t.skin, 0.45)
    frame = (40, 40, 44)
    for direction in (-1, 1):
        ex = cx + direction * eye_dx
        draw.ellipse((ex - eye_r, eye_y - eye_r, ex + eye_r, eye_y + eye_r), fill=(28, 24, 24))
        brow_y = eye_y - head_h * 0.1
        draw.line((ex - eye_r * 2.5, brow_y, ex + eye_r * 2.5, brow_y - head_h * 0.012),
                  fill=brow, width=max(1, round(head_w * 0.045)))
        if t.glasses:
            gr = eye_r * 3.0
            draw.ellipse((ex - gr, eye_y - gr * 0.8, ex + gr, eye_y + gr * 0.8),
                         outline=frame, width=max(1, round(head_w * 0.015)))
    if t.glasses:
        draw.line((cx - eye_dx + eye_r * 3.0, eye_y, cx + eye_dx - eye_r * 3.0, eye_y),
                  fill=frame, width=max(1, round(head_w * 0.015)))
    nose_y = top + head_h * 0.67
    draw.ellipse((cx - head_w * 0.08, nose_y - head_h * 0.025, cx + head_w * 0.08,
                  nose_y + head_h * 0.025), fill=_shade(t.skin, 0.7))
    mouth_y = top + head_h * 0.8
    mouth_w = head_w * 0.28
    lips = _shade(t.skin, 0.5)
    if t.smiling:
        draw.chord((cx - mouth_w / 2, mouth_y - head_h * 0.05, cx + mouth_w / 2,
                    mouth_y + head_h * 0.05), 0, 180, fill=(200, 196, 192), outline=lips,
                   width=max(1, round(head_w * 0.03)))
    else:
        draw.ellipse((cx - mouth_w / 2, mouth_y - head_h * 0.025, cx + mouth_w / 2,
                      mouth_y + head_h * 0.025), fill=lips)
    if t.beard:
        # Along the jaw and chin, the mouth left clear.
        draw.chord((cx - head_w * 0.5, top + head_h * 0.3, cx + head_w * 0.5,
                    top + head_h * 1.02), 50, 130, fill=_shade(t.hair, 0.95))
        draw.ellipse((cx - head_w * 0.14, mouth_y - head_h * 0.025, cx + head_w * 0.14,
                      mouth_y + head_h * 0.025), fill=lips)
