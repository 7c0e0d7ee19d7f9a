"""IPTC Digital Source Type in JPEG, PNG and WebP, written and read back without exiftool.

Each round trip is verified three ways: Lightbox's own reader, Pillow's ``info["xmp"]``
(an independent parser of the containers), and the raw bytes holding the namespace URI.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pydantic
import pytest
from PIL import Image

from lightbox.catalog.presets import load_presets
from lightbox.domain.marketplace.encode import encode_for_preset
from lightbox.domain.marketplace.fit import fit_to_preset
from lightbox.domain.provenance import (
    IPTC_EXT_NS,
    Provenance,
    build_xmp_packet,
    embed_provenance,
    parse_xmp_packet,
    read_digital_source_type,
    read_provenance,
)
from lightbox.errors import InvalidImage

AI_URI = b"http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def picture(mode: str = "RGB", size: tuple[int, int] = (97, 61)) -> Image.Image:
    """Seeded noise: any change to the compressed data would show in the pixels."""
    rng = np.random.default_rng(11)
    channels = len(mode)
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decoded_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(data)).convert("RGBA"))


CONTAINERS = [
    pytest.param("RGB", "JPEG", {"quality": 85}, id="jpeg"),
    pytest.param("RGB", "PNG", {}, id="png"),
    pytest.param("RGBA", "PNG", {}, id="png-alpha"),
    pytest.param("RGB", "WEBP", {"quality": 80}, id="webp-lossy-simple"),
    pytest.param("RGBA", "WEBP", {"quality": 80}, id="webp-lossy-alpha-extended"),
    pytest.param("RGBA", "WEBP", {"lossless": True}, id="webp-lossless-alpha-simple"),
]


@pytest.mark.parametrize(("mode", "fmt", "options"), CONTAINERS)
def test_provenance_round_trips_and_leaves_the_pixels_alone(
    mode: str, fmt: str, options: dict[str, object]
) -> None:
    # Given an unlabelled image
    original = encoded(picture(mode), fmt, **options)
    assert read_digital_source_type(original) is None
    # When Lightbox labels it
    labelled = embed_provenance(original, Provenance(models=["flux-kontext-pro"]))
    # Then it reads back through Lightbox and through Pillow, in the same format
    assert read_digital_source_type(labelled) == "trainedAlgorithmicMedia"
    reopened = Image.open(BytesIO(labelled))
    assert reopened.format == fmt
    assert AI_URI in reopened.info["xmp"]
    assert IPTC_EXT_NS.encode() in labelled
    # And the pixels are exactly those of the original
    assert np.array_equal(decoded_pixels(labelled), decoded_pixels(original))


@pytest.mark.parametrize(("mode", "fmt", "options"), CONTAINERS)
def test_labelling_twice_leaves_one_packet(mode: str, fmt: str, options: dict[str, object]) -> None:
    once = embed_provenance(encoded(picture(mode), fmt, **options), Provenance())
    twice = embed_provenance(once, Provenance(description="second"))
    assert twice.count(IPTC_EXT_NS.encode()) == 1
    provenance = read_provenance(twice)
    assert provenance is not None and provenance.description == "second"


def test_every_field_round_trips_with_characters_xml_would_choke_on() -> None:
    wanted = Provenance(
        digital_source_type="compositeWithTrainedAlgorithmicMedia",
        description='Mug "Aurora" <350 ml> & saucer, on oak — é',
        credit="Shop & Co <studio>",
        models=["black-forest-labs/flux-kontext-pro", "lightbox/upscaler"],
    )
    data = embed_provenance(encoded(picture(), "JPEG"), wanted)
    assert read_provenance(data) == wanted


def test_a_jpeg_keeps_its_exif_next_to_the_new_xmp() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Lightbox test camera"  # Make
    original = encoded(picture(), "JPEG", exif=exif.tobytes())
    labelled = embed_provenance(original, Provenance())
    reopened = Image.open(BytesIO(labelled))
    assert reopened.getexif()[0x010F] == "Lightbox test camera"
    assert read_digital_source_type(labelled) == "trainedAlgorithmicMedia"


def test_other_containers_are_refused() -> None:
    with pytest.raises(InvalidImage):
        embed_provenance(encoded(picture(), "GIF"), Provenance())


def test_reading_junk_or_an_unlabelled_image_gives_none() -> None:
    assert read_digital_source_type(b"") is None
    assert read_digital_source_type(b"\xff\xd8\xff\xe0 truncated") is None
    assert read_digital_source_type(encoded(picture(), "PNG")) is None


def test_a_packet_with_a_dtd_is_not_parsed() -> None:
    # Given a packet that tries entity expansion: XMP never needs a DTD
    packet = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        + build_xmp_packet(Provenance()).split(b"?>", 1)[1]
    )
    assert parse_xmp_packet(packet) is None


def test_the_attribute_spelling_of_the_property_is_read_too() -> None:
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        b'Iptc4xmpExt:DigitalSourceType="' + AI_URI + b'"/></rdf:RDF></x:xmpmeta>'
    )
    data = encoded(picture(), "JPEG", xmp=packet)
    assert read_digital_source_type(data) == "trainedAlgorithmicMedia"


def test_an_unknown_source_type_code_is_refused_but_a_uri_is_kept() -> None:
    with pytest.raises(pydantic.ValidationError):
        Provenance(digital_source_type="trainedAlgorithmicMedai")
    uri = "https://example.org/vocab/generated"
    data = embed_provenance(encoded(picture(), "PNG"), Provenance(digital_source_type=uri))
    assert read_digital_source_type(data) == uri


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_label_survives_fit_and_encode(fmt: str) -> None:
    # Given a shot fitted to a preset delivered as JPEG, PNG or WebP
    preset = load_presets()["instagram-square"]
    preset = preset.model_copy(update={"format": fmt})
    shot = picture(size=(1200, 1000))
    fitted = fit_to_preset(shot, preset)
    # When it is encoded with Lightbox's provenance
    data = encode_for_preset(fitted, preset, provenance=Provenance(models=["m"]))
    # Then the delivered file carries the label, readable by Pillow and by Lightbox
    reopened = Image.open(BytesIO(data))
    assert reopened.format == fmt
    xmp = reopened.info["xmp"]
    assert AI_URI in (xmp.encode() if isinstance(xmp, str) else xmp)
    assert read_digital_source_type(data) == "trainedAlgorithmicMedia"
    assert IPTC_EXT_NS.encode() in data
