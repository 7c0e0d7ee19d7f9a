"""The reference images composing models see: the product on white, and for scenes with
a person, the avatar's portrait beside the product.

Pillow only; used by the fan-out, which makes them once per job, and by the local
engine, which reads them back.
"""

from __future__ import annotations

import io

from PIL import Image

from lightbox.errors import InvalidInput

#: Margin around the product in the reference image the composing model sees.
REFERENCE_MARGIN = 0.12
#: The reference given to a single-image composing model: the person on the left, the
#: product on the right, each in a square of this side.
REFERENCE_SIDE = 768


def reference_from_cutout(cutout: Image.Image) -> Image.Image:
    """Trim a cutout to its product, pad it to a square, and whiten what is transparent."""
    rgba = cutout.convert("RGBA")
    bbox = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if bbox:
        rgba = rgba.crop(bbox)
    side = int(max(rgba.size) * (1 + 2 * REFERENCE_MARGIN))
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    canvas.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    # Only fully transparent pixels turn white: edge pixels keep their own colour, so
    # whoever composites with the alpha gets no white fringe.
    white = Image.new("RGBA", canvas.size, (255, 255, 255, 0))
    transparent = canvas.getchannel("A").point(lambda a: 255 if a == 0 else 0)
    canvas.paste(white, mask=transparent)
    return canvas


def side_by_side_reference(
    portrait: Image.Image, product: Image.Image, *, side: int = REFERENCE_SIDE
) -> Image.Image:
    """One RGBA reference: the portrait fitted in the left square, the product in the right.

    Whatever is not portrait or product is white and transparent: a model that ignores
    alpha sees both on white, and one that reads it (the local engine) finds each
    exactly. The product keeps its own alpha (the cutout's edge).
    """
    canvas = Image.new("RGBA", (2 * side, side), (255, 255, 255, 0))
    person = _contain(portrait.convert("RGB"), side).convert("RGBA")
    canvas.paste(person, ((side - person.width) // 2, (side - person.height) // 2))
    item = _contain(product.convert("RGBA"), side)
    layer = Image.new("RGBA", canvas.size, (255, 255, 255, 0))
    layer.paste(item, (side + (side - item.width) // 2, (side - item.height) // 2))
    return Image.alpha_composite(canvas, layer)


def split_side_by_side(reference: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The (portrait RGB, product RGBA) a side-by-side reference was made of, trimmed."""
    rgba = reference.convert("RGBA")
    half = rgba.width // 2
    left, right = rgba.crop((0, 0, half, rgba.height)), rgba.crop((half, 0, rgba.width,
                                                                   rgba.height))
    person_box = left.getchannel("A").point(lambda a: 255 if a > 250 else 0).getbbox()
    product_box = right.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if person_box is None or product_box is None:
        raise InvalidInput("The reference holds no person or no product.")
    return left.crop(person_box).convert("RGB"), right.crop(product_box)


def _contain(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()
