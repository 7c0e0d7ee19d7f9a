"""Checking and normalising an uploaded product photo.

A shop owner's upload arrives as raw bytes straight from a phone: any of the
formats phones and desktop tools write, rotated by an EXIF flag, in a wide-gamut
or CMYK colour space, sometimes 16-bit, sometimes a decompression bomb. Before
anything costs money, `upload_received` turns it into one predictable thing:
an 8-bit sRGB RGB (or RGBA, when the transparency is real) image, upright, no
larger than the models need; or it refuses it with an error the shop owner can act on.

Pure domain code: bytes in, image out, typed errors from `lightbox.errors`.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import struct
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps

from lightbox.errors import ImageTooLarge, InvalidImage, LightboxError

logger = logging.getLogger(__name__)

# HEIC is what iPhones write by default; registering once at import keeps every
# later `Image.open` able to read it without each caller remembering to.
pillow_heif.register_heif_opener()
Image.init()

_MEGABYTE = 2**20
_MEGAPIXEL = 1_000_000

_SUPPORTED_HINT = "Please upload a JPEG, PNG, WebP or HEIC photo."

# Which Pillow decoders may read each sniffed type. Restricting Pillow to the
# decoder that matches the magic bytes keeps a crafted file from being routed
# to some other, less exercised plugin. MPO is how Pillow names the
# multi-picture JPEGs many phones write.
_DECODERS_BY_MEDIA_TYPE: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("JPEG", "MPO"),
    "image/png": ("PNG",),
    "image/webp": ("WEBP",),
    "image/heic": ("HEIF",),
    "image/heif": ("HEIF", "AVIF"),
    "image/avif": ("AVIF",),
    "image/tiff": ("TIFF",),
    "image/bmp": ("BMP",),
    "image/gif": ("GIF",),
}

# Shop-owner wording for types we recognise but do not read.
_UNSUPPORTED_NAMES: dict[str, str] = {
    "image/jp2": "JPEG 2000",
    "image/jxl": "JPEG XL",
    "image/avif": "AVIF",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
}

# Format names reported to callers: MPO is a JPEG as far as anyone cares.
_REPORTED_FORMAT = {"MPO": "JPEG"}

_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
# BITMAPCOREHEADER .. BITMAPV5HEADER sizes: "BM" alone is too weak a signature.
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


@dataclass(frozen=True)
class NormalisedImage:
    """An upload made predictable: upright, 8-bit sRGB, alpha only when it means something."""

    image: Image.Image
    source_format: str
    source_size: tuple[int, int]
    has_alpha: bool

    def to_png_bytes(self) -> bytes:
        """Lossless bytes for the `work/` copy.

        Low compression: the copy lives briefly and is read by our own steps, so
        encoding time matters more than a few megabytes of S3.
        """
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


def sniff_image_type(data: bytes) -> str | None:
    """The media type the magic bytes announce, or None when they announce no image.

    Trusts only the content, never a file name or a browser's Content-Type.
    Recognises some types Lightbox cannot read (JPEG 2000, JPEG XL) so that the
    refusal can name them.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "image/tiff"
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_DIB_HEADER_SIZES:
        return "image/bmp"
    if data[4:8] == b"ftyp":
        return _sniff_iso_media_brand(data)
    if data.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "image/jp2"
    if data.startswith((b"\x00\x00\x00\x0cJXL \r\n\x87\n", b"\xff\x0a")):
        return "image/jxl"
    return None


def _sniff_iso_media_brand(data: bytes) -> str | None:
    """HEIC, HEIF or AVIF from an ISO media `ftyp` box; None for videos and the rest.

    The major brand decides when it is specific; otherwise the compatible brands
    do, because many files declare the generic `mif1` first.
    """
    box_size = int.from_bytes(data[:4], "big")
    box_end = min(max(box_size, 16), len(data), 512)
    major = data[8:12]
    compatible = [data[i : i + 4] for i in range(16, box_end - 3, 4)]
    for brands in ([major], compatible):
        if any(brand in _AVIF_BRANDS for brand in brands):
            return "image/avif"
        if any(brand in _HEIC_BRANDS for brand in brands):
            return "image/heic"
    if major in _GENERIC_HEIF_BRANDS or any(b in _GENERIC_HEIF_BRANDS for b in compatible):
        return "image/heif"
    return None


def normalise_upload(
    data: bytes,
    *,
    max_bytes: int = 25 * 2**20,
    max_pixels: int = 50_000_000,
    max_long_side: int = 4096,
) -> NormalisedImage:
    """Check an uploaded photo and turn it into an upright 8-bit sRGB image.

    Raises `ImageTooLarge` for more than `max_bytes`, or more than `max_pixels`
    declared in the header (checked before any pixel is decoded; Pillow's own
    `Image.MAX_IMAGE_PIXELS` ceiling applies too). Raises `InvalidImage` for empty
    data, data that is not an image, an image type Lightbox does not read, and
    truncated or corrupt files. Downscales (Lanczos) when the long side exceeds
    `max_long_side`.
    """
    _refuse_oversized_file(data, max_bytes)
    decoders = _decoders_for(data)
    image, header_size = _decode_checked(data, decoders, max_pixels, max_long_side)
    source_format = _REPORTED_FORMAT.get(image.format or "", image.format or "unknown")
    icc_profile = image.info.get("icc_profile")

    upright = _apply_exif_orientation(image)
    orientation_swapped = upright.size != image.size
    source_size = header_size[::-1] if orientation_swapped else header_size

    srgb = _to_srgb_8bit(upright, icc_profile)
    srgb = _drop_opaque_alpha(srgb)
    srgb = _downscale_to_long_side(srgb, max_long_side)
    # EXIF (with the phone's GPS position) and the source's ICC profile must not
    # travel with the pixels: the profile no longer describes them.
    srgb.info = {}
    return NormalisedImage(
        image=srgb,
        source_format=source_format,
        source_size=(source_size[0], source_size[1]),
        has_alpha=srgb.mode == "RGBA",
    )


# --- checks that happen before decoding ------------------------------------------------


def _refuse_oversized_file(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        limit_mb = max_bytes / _MEGABYTE
        size_mb = _shown_above_limit(len(data) / _MEGABYTE, limit_mb)
        raise ImageTooLarge(
            f"The file is {size_mb} MB; the limit is {_plain_number(limit_mb)} MB.",
            size_bytes=len(data),
            limit_bytes=max_bytes,
        )


def _decoders_for(data: bytes) -> tuple[str, ...]:
    """The Pillow decoders allowed for these bytes, or the refusal a shop owner can act on."""
    if not data:
        raise InvalidImage(f"The file is empty. {_SUPPORTED_HINT}")
    media_type = sniff_image_type(data)
    if media_type is None:
        raise InvalidImage(f"This file is not a photo Lightbox can read. {_SUPPORTED_HINT}")
    decoders = tuple(
        name for name in _DECODERS_BY_MEDIA_TYPE.get(media_type, ()) if name in Image.ID
    )
    if not decoders:
        name = _UNSUPPORTED_NAMES.get(media_type, media_type)
        raise InvalidImage(
            f"{name} photos are not supported. {_SUPPORTED_HINT}", media_type=media_type
        )
    return decoders


def _refuse_too_many_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        limit_mp = max_pixels / _MEGAPIXEL
        shown_mp = _shown_above_limit(width * height / _MEGAPIXEL, limit_mp)
        raise ImageTooLarge(
            f"The photo is {width} × {height} pixels ({shown_mp} megapixels); "
            f"the limit is {_plain_number(limit_mp)} megapixels.",
            width=width,
            height=height,
            limit_pixels=max_pixels,
        )


def _pixel_ceiling_message(max_pixels: int) -> str:
    """For bombs Pillow refuses at open, before we learn the declared size."""
    ceiling = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    return (
        "The photo has too many pixels; the limit is "
        f"{_plain_number(ceiling / _MEGAPIXEL)} megapixels."
    )


# --- decoding ----------------------------------------------------------------------------


def _decode_checked(
    data: bytes, decoders: tuple[str, ...], max_pixels: int, max_long_side: int
) -> tuple[Image.Image, tuple[int, int]]:
    """Open, check the declared size, then decode every pixel.

    Returns the decoded image and the size its header declared (a big JPEG may
    be decoded smaller than that).

    Opening reads only the header, so the pixel count is refused before a bomb is
    allocated. `load()` forces the full decode so a truncated file fails here,
    not later in a model call (`ImageFile.LOAD_TRUNCATED_IMAGES` stays False).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(decoders))
            header_size = image.size
            _refuse_too_many_pixels(header_size, max_pixels)
            _decode_jpeg_at_reduced_scale(image, max_long_side)
            image.load()
    except LightboxError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as error:
        raise ImageTooLarge(_pixel_ceiling_message(max_pixels), limit_pixels=max_pixels) from error
    # Pillow's decoders answer hostile input with an open set of exception types
    # (OSError, SyntaxError, ValueError, struct.error, zlib.error, ...): any of
    # them means the same thing to a shop owner.
    except Exception as error:
        logger.info("Upload could not be decoded: %s: %s", type(error).__name__, error)
        raise InvalidImage(
            "The photo could not be read: the file is damaged or incomplete. "
            "Please upload it again.",
        ) from error
    return image, header_size


def _decode_jpeg_at_reduced_scale(image: Image.Image, max_long_side: int) -> None:
    """Let libjpeg decode a big JPEG at 1/2, 1/4 or 1/8 scale when we would shrink it anyway.

    DCT scaling is several times faster than decoding in full and resampling, and
    never goes below the size we resize to, so Lanczos still sets the final size.
    """
    long_side = max(image.size)
    if image.format not in ("JPEG", "MPO") or long_side <= max_long_side:
        return
    scale = max_long_side / long_side
    image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))


# What Pillow's EXIF parser raises on a malformed block.
_MALFORMED_METADATA_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    struct.error,
)


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Upright copy of the image; a malformed EXIF block leaves it as stored.

    A broken EXIF block is common in edited photos and says nothing about the
    pixels, so it is not a reason to refuse the upload.
    """
    try:
        upright = ImageOps.exif_transpose(image)
    except _MALFORMED_METADATA_ERRORS as error:
        logger.warning("Ignoring unreadable EXIF orientation: %s: %s", type(error).__name__, error)
        return image.copy()
    assert upright is not None  # not in place, so Pillow returns the new image
    return upright


# --- colour --------------------------------------------------------------------------------


def _to_srgb_8bit(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """RGB or RGBA in sRGB, whatever the source's mode, depth and colour space."""
    image = _high_bit_depth_to_8bit(image)
    if image.mode == "CMYK":
        return _cmyk_to_srgb(image, icc_profile)
    working = _expand_to_rgb_or_rgba(image)
    transform = _srgb_transform(icc_profile, working.mode) if icc_profile else None
    if transform is None:
        return working
    return ImageCms.applyTransform(working, transform) or working


def _high_bit_depth_to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16-bit and 32-bit grey images into 0..255 instead of letting Pillow clip them.

    Pillow's own `convert("L")` clips values above 255, which turns a 16-bit
    photo almost white. (16-bit RGB PNG and TIFF already reach us as 8-bit RGB:
    Pillow keeps the high byte, which is a correct scaling.)
    """
    if image.mode.startswith("I;16"):
        values = np.asarray(image).astype(np.uint32)
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    if image.mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        return Image.fromarray(_stretch_to_8bit(values), mode="L")
    return image


def _stretch_to_8bit(values: np.ndarray) -> np.ndarray:
    """Map a 32-bit grey image to 0..255 by the range its values imply.

    Floats in 0..1 and integers in 0..65535 are the usual encodings; anything
    else is stretched between its own extremes.
    """
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif low >= 0.0 and high <= 65535.0:
        scaled = values * (255.0 / 65535.0)
    else:
        scaled = (values - low) * (255.0 / max(high - low, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _expand_to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA"):
        return image
    keeps_alpha = "A" in image.getbands() or "a" in image.getbands()
    if image.mode == "P":
        keeps_alpha = image.has_transparency_data
    if image.mode in ("La", "RGBa"):
        image = image.convert(image.mode.upper())  # un-premultiply first
    try:
        return image.convert("RGBA" if keeps_alpha else "RGB")
    except ValueError as error:
        raise InvalidImage(
            f"Photos in the {image.mode} colour mode are not supported. {_SUPPORTED_HINT}",
            mode=image.mode,
        ) from error


def _cmyk_to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """CMYK through its own profile when it has one, else Pillow's plain formula.

    Pillow already undoes the inversion Adobe applications write into CMYK JPEGs.
    """
    transform = _srgb_transform(icc_profile, "CMYK") if icc_profile else None
    if transform is not None:
        converted = ImageCms.applyTransform(image, transform)
        if converted is not None:
            return converted
    return image.convert("RGB")


@functools.lru_cache(maxsize=16)
def _srgb_transform(icc_profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the embedded profile to sRGB, or None when none is needed or possible.

    Cached by profile bytes: a phone writes the same profile into every photo.
    None when the profile does not match the pixels, is unreadable (then the
    pixels are taken as sRGB, as for a photo with no profile), or already maps
    colours onto themselves, which saves a pass over every pixel.
    """
    expected_space = "CMYK" if mode == "CMYK" else "RGB "
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if source.profile.xcolor_space != expected_space:
            logger.info(
                "Ignoring a %r ICC profile on a %s image", source.profile.xcolor_space, mode
            )
            return None
        output_mode = "RGBA" if mode == "RGBA" else "RGB"
        transform = ImageCms.buildTransform(
            source,
            _SRGB_PROFILE,
            mode,
            output_mode,
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as error:
        logger.warning("Ignoring an unreadable ICC profile: %s", error)
        return None
    if mode != "CMYK" and _maps_colours_onto_themselves(transform, mode):
        return None
    return transform


_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _colour_probe() -> Image.Image:
    """Every grey level plus a 9-step colour cube: enough to tell sRGB from anything else."""
    grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    steps = np.linspace(0, 255, 9).round().astype(np.uint8)
    cube = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    pixels = np.concatenate([grey, cube])
    return Image.fromarray(pixels.reshape(1, -1, 3), mode="RGB")


_COLOUR_PROBE = _colour_probe()


def _maps_colours_onto_themselves(transform: ImageCms.ImageCmsTransform, mode: str) -> bool:
    probe = _COLOUR_PROBE if mode == "RGB" else _COLOUR_PROBE.convert(mode)
    mapped = ImageCms.applyTransform(probe, transform)
    if mapped is None:
        return False
    before = np.asarray(probe.convert("RGB"), dtype=np.int16)
    after = np.asarray(mapped.convert("RGB"), dtype=np.int16)
    return int(np.abs(after - before).max()) <= 1


def _drop_opaque_alpha(image: Image.Image) -> Image.Image:
    """Keep alpha only when some pixel is see-through: an opaque alpha just costs bytes."""
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
        return image.convert("RGB")
    return image


# --- size ------------------------------------------------------------------------------------


def _downscale_to_long_side(image: Image.Image, max_long_side: int) -> Image.Image:
    long_side = max(image.size)
    if long_side <= max_long_side:
        return image
    scale = max_long_side / long_side
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap lets Pillow halve cheaply first; at 3.0 the result is
    # indistinguishable from a full Lanczos pass.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# --- wording ------------------------------------------------------------------------------------


def _plain_number(value: float) -> str:
    """25.0 -> "25", 12.5 -> "12.5": limits read as people write them."""
    shown = f"{value:.1f}".removesuffix(".0")
    return shown if shown != "0" or value == 0 else f"{value:.2g}"


def _shown_above_limit(value: float, limit: float) -> str:
    """One decimal, rounded up when plain rounding would make it look no larger than the limit."""
    shown = round(value, 1)
    if shown <= limit:
        shown = math.ceil(value * 10) / 10
    return _plain_number(shown)
