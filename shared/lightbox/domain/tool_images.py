"""The single-image tools' pixel work (Pillow and numpy, no I/O).

A background-removal model may answer at a size of its own, and an upscaler may drop
the alpha channel; these put the photo's size and the product's alpha back, so each
tool's promise holds whatever the model did: a cutout at the photo's size, an upscale
that keeps transparency, a fit framed by the product's real outline.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lightbox.domain.marketplace.geometry import Box
from lightbox.domain.marketplace.pixels import mask_bbox
from lightbox.domain.provenance import Provenance, embed_provenance
from lightbox.errors import InvalidImage

#: Coverage above this (0..255) counts as product, as fitting counts it.
PRODUCT_ALPHA = 127


def has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands()


def cutout_at_photo_size(cutout: Image.Image, photo: Image.Image) -> Image.Image:
    """The cutout (RGBA) at the photo's size: as the model made it when the sizes agree,
    else the model's alpha resized onto the photo's own pixels."""
    if not has_alpha(cutout):
        raise InvalidImage("The background-removal model returned an image without "
                           "transparency.")
    if cutout.size == photo.size:
        return cutout.convert("RGBA")
    return with_alpha_of(photo, cutout)


def with_alpha_of(image: Image.Image, source: Image.Image) -> Image.Image:
    """`image` (RGBA) with `source`'s alpha, resized to `image`'s size."""
    alpha = source.getchannel("A")
    if alpha.size != image.size:
        alpha = alpha.resize(image.size, Image.Resampling.LANCZOS)
    rgba = image.convert("RGB")
    rgba.putalpha(alpha)
    return rgba


def product_box(cutout: Image.Image) -> Box | None:
    """Where the product is in a cutout (its alpha), specks ignored; None when empty."""
    return mask_bbox(np.asarray(cutout.getchannel("A")) > PRODUCT_ALPHA)


def opaque_for_upscaler(cutout: Image.Image) -> Image.Image:
    """A cutout as an upscaler takes it (RGB): what is fully transparent turns white,
    edge pixels keep their own colour, so the alpha put back afterwards (`with_alpha_of`)
    composites without a white or dark fringe."""
    rgba = cutout.convert("RGBA")
    pixels = np.asarray(rgba).copy()
    pixels[pixels[..., 3] == 0, :3] = 255
    return Image.fromarray(pixels[..., :3], "RGB")


def png_with_provenance(image: Image.Image, provenance: Provenance) -> bytes:
    """A lossless PNG (alpha kept) carrying the provenance XMP."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return embed_provenance(buffer.getvalue(), provenance)
