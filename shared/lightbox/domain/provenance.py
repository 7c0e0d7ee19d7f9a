"""AI-image labelling: the IPTC Digital Source Type in an image's XMP packet.

Every delivered shot that a generative model made carries
``Iptc4xmpExt:DigitalSourceType = http://cv.iptc.org/newscodes/digitalsourcetype/
trainedAlgorithmicMedia``. Google Merchant Center requires exactly that on AI-generated
product images and asks merchants not to strip it (Merchant Center help 14743464, read
2026-11-24); Google Search, and the IPTC itself, read the same property.

Only XMP is written. The older IPTC IIM block (JPEG APP13) has no Digital Source Type
field, and writing credit/description twice means keeping two copies in step; the
readers that matter here read XMP. Alongside the source type the packet carries the
IPTC Core credit line (``photoshop:Credit``), a description (``dc:description``), the
models used (``Iptc4xmpExt:AISystemUsed``, IPTC Photo Metadata 2025.1) and
``xmp:CreatorTool``.

Where the packet goes, per container (all written with the standard library, no
exiftool):

- JPEG: an APP1 segment ``http://ns.adobe.com/xap/1.0/\\0`` + packet.
- PNG: an uncompressed ``iTXt`` chunk with keyword ``XML:com.adobe.xmp``, before IDAT.
  (Pillow 13's ``save(xmp=...)`` writes JPEG and WebP XMP but silently ignores it for
  PNG, so PNG goes through ``PngInfo``/chunk splicing.)
- WebP: an ``XMP `` chunk in the extended (VP8X) layout with the XMP flag set.

``embed_provenance`` splices the packet into the existing container, so the compressed
image data, and therefore the pixels, stay byte-for-byte the same. An XMP packet already
in the file is replaced, not merged: Lightbox writes its own outputs.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from typing import Literal
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import pydantic
from PIL import Image, UnidentifiedImageError

from lightbox.errors import InvalidImage, InvalidInput

IPTC_DIGITAL_SOURCE_TYPE_BASE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
PHOTOSHOP_NS = "http://ns.adobe.com/photoshop/1.0/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XMP_NS = "http://ns.adobe.com/xap/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

#: Codes of the IPTC Digital Source Type vocabulary. A typo here would make the label
#: silently meaningless to Google, so unknown short codes are refused (a full URI of
#: another vocabulary is still accepted).
KNOWN_DIGITAL_SOURCE_TYPES = frozenset(
    {
        "digitalCapture",
        "computationalCapture",
        "negativeFilm",
        "positiveFilm",
        "print",
        "humanEdits",
        "minorHumanEdits",
        "compositeCapture",
        "algorithmicallyEnhanced",
        "digitalCreation",
        "digitalArt",
        "dataDrivenMedia",
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "compositeSynthetic",
        "composite",
        "algorithmicMedia",
        "screenCapture",
        "virtualRecording",
    }
)

_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
_JPEG_MAX_SEGMENT_PAYLOAD = 0xFFFF - 2
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"
_WEBP_XMP_FLAG = 0x04
_WEBP_ALPHA_FLAG = 0x10
_MAX_DESCRIPTION_CHARS = 2000

ContainerFormat = Literal["JPEG", "PNG", "WEBP"]


class Provenance(pydantic.BaseModel):
    """What Lightbox states about how a delivered image came to be."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    digital_source_type: str = "trainedAlgorithmicMedia"
    description: str = pydantic.Field(default="", max_length=_MAX_DESCRIPTION_CHARS)
    credit: str = pydantic.Field(default="Lightbox", max_length=500)
    models: list[str] = []

    @pydantic.field_validator("digital_source_type")
    @classmethod
    def _known_source_type(cls, value: str) -> str:
        if value.startswith(("http://", "https://")) or value in KNOWN_DIGITAL_SOURCE_TYPES:
            return value
        raise ValueError(
            f"{value!r} is not an IPTC Digital Source Type code "
            f"(e.g. trainedAlgorithmicMedia) nor a URI"
        )

    @property
    def digital_source_type_uri(self) -> str:
        if self.digital_source_type.startswith(("http://", "https://")):
            return self.digital_source_type
        return IPTC_DIGITAL_SOURCE_TYPE_BASE + self.digital_source_type


# --- the packet -------------------------------------------------------------------------


def build_xmp_packet(provenance: Provenance) -> bytes:
    """The XMP packet (UTF-8) that labels an image with ``provenance``."""
    properties = [
        _xmp_text("Iptc4xmpExt:DigitalSourceType", provenance.digital_source_type_uri),
        _xmp_text("photoshop:Credit", provenance.credit) if provenance.credit else "",
        _xmp_text("xmp:CreatorTool", provenance.credit or "Lightbox"),
        (
            _xmp_text("Iptc4xmpExt:AISystemUsed", ", ".join(provenance.models))
            if provenance.models
            else ""
        ),
        (
            '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{escape(provenance.description)}</rdf:li></rdf:Alt></dc:description>"
            if provenance.description
            else ""
        ),
    ]
    body = "\n    ".join(p for p in properties if p)
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        f' <rdf:RDF xmlns:rdf="{RDF_NS}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:Iptc4xmpExt="{IPTC_EXT_NS}"\n'
        f'    xmlns:photoshop="{PHOTOSHOP_NS}"\n'
        f'    xmlns:dc="{DC_NS}"\n'
        f'    xmlns:xmp="{XMP_NS}">\n'
        f"    {body}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


def _xmp_text(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>"


def parse_xmp_packet(packet: bytes) -> Provenance | None:
    """Read Lightbox's fields back from an XMP packet (None when it has no source type).

    XMP never needs a DTD, so a packet that declares one is refused rather than handed
    to the XML parser (entity-expansion attacks ride on DTDs).
    """
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        return None
    try:
        root = ElementTree.fromstring(_strip_to_xml(packet))
    except ElementTree.ParseError:
        return None
    source_type = _first_value(root, f"{{{IPTC_EXT_NS}}}DigitalSourceType")
    if not source_type:
        return None
    code = source_type.removeprefix(IPTC_DIGITAL_SOURCE_TYPE_BASE)
    models = _first_value(root, f"{{{IPTC_EXT_NS}}}AISystemUsed")
    description = ""
    for element in root.iter(f"{{{DC_NS}}}description"):
        description = "".join(li.text or "" for li in element.iter(f"{{{RDF_NS}}}li"))
        break
    try:
        return Provenance(
            digital_source_type=code if code in KNOWN_DIGITAL_SOURCE_TYPES else source_type,
            description=description[:_MAX_DESCRIPTION_CHARS],
            credit=(_first_value(root, f"{{{PHOTOSHOP_NS}}}Credit") or "")[:500],
            models=[m.strip() for m in models.split(",")] if models else [],
        )
    except pydantic.ValidationError:
        return None


def _strip_to_xml(packet: bytes) -> bytes:
    # Some writers pad or NUL-terminate the packet; the parser wants the document only.
    packet = packet.strip(b"\x00 \r\n\t")
    start = packet.find(b"<")
    return packet[start:] if start > 0 else packet


def _first_value(root: ElementTree.Element, qualified_name: str) -> str | None:
    """A simple XMP property in any of RDF's three spellings (element, attribute, resource)."""
    for element in root.iter():
        if qualified_name in element.attrib:
            return element.attrib[qualified_name].strip()
        if element.tag == qualified_name:
            resource = element.attrib.get(f"{{{RDF_NS}}}resource")
            if resource:
                return resource.strip()
            return (element.text or "").strip()
    return None


# --- public entry points ----------------------------------------------------------------


def embed_provenance(image_bytes: bytes, provenance: Provenance) -> bytes:
    """The same image with ``provenance`` as its XMP packet; compressed data untouched.

    JPEG, PNG and WebP in, the same format out. Raises InvalidImage for anything else
    or for a container too damaged to walk.
    """
    packet = build_xmp_packet(provenance)
    container = detect_container(image_bytes)
    if container == "JPEG":
        return _jpeg_with_xmp(image_bytes, packet)
    if container == "PNG":
        return _png_with_xmp(image_bytes, packet)
    return _webp_with_xmp(image_bytes, packet)


def read_digital_source_type(image_bytes: bytes) -> str | None:
    """The IPTC Digital Source Type of an image: the short code for IPTC's vocabulary
    (``"trainedAlgorithmicMedia"``), the raw URI otherwise, None when absent."""
    provenance = read_provenance(image_bytes)
    return provenance.digital_source_type if provenance else None


def read_provenance(image_bytes: bytes) -> Provenance | None:
    """Everything Lightbox wrote into an image's XMP, or None when it carries no label."""
    packet = read_xmp_packet(image_bytes)
    return parse_xmp_packet(packet) if packet else None


def read_xmp_packet(image_bytes: bytes) -> bytes | None:
    """The raw XMP packet of a JPEG, PNG or WebP image, if it has one."""
    try:
        container = detect_container(image_bytes)
    except InvalidImage:
        return _xmp_through_pillow(image_bytes)
    try:
        if container == "JPEG":
            return _jpeg_xmp(image_bytes)
        if container == "PNG":
            return _png_xmp(image_bytes)
        return _webp_xmp(image_bytes)
    except InvalidImage:
        return None


def detect_container(image_bytes: bytes) -> ContainerFormat:
    if image_bytes[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if image_bytes[:8] == _PNG_SIGNATURE:
        return "PNG"
    if image_bytes[:4] == b"RIFF" and image_bytes[8:12] == b"WEBP":
        return "WEBP"
    raise InvalidImage("Provenance can be written into JPEG, PNG or WebP only.")


def _xmp_through_pillow(image_bytes: bytes) -> bytes | None:
    try:
        with Image.open(BytesIO(image_bytes)) as image:
            xmp = image.info.get("xmp")
    except (UnidentifiedImageError, OSError):
        return None
    if isinstance(xmp, str):
        return xmp.encode("utf-8")
    return xmp if isinstance(xmp, bytes) else None


# --- JPEG: APP1 segment -----------------------------------------------------------------


def _jpeg_segments(data: bytes) -> tuple[list[bytes], bytes]:
    """The marker segments before the scan, and everything from the scan on."""
    segments: list[bytes] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise InvalidImage("The JPEG's marker structure is damaged.")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: the rest is data
            return segments, data[pos:]
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            segments.append(data[pos : pos + 2])
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            raise InvalidImage("The JPEG has a truncated marker segment.")
        segments.append(data[pos : pos + 2 + length])
        pos += 2 + length
    raise InvalidImage("The JPEG ends before its image data.")


def _is_jpeg_xmp_segment(segment: bytes) -> bool:
    return segment[1:2] == b"\xe1" and (
        segment[4:].startswith(_JPEG_XMP_HEADER)
        or segment[4:].startswith(_JPEG_EXTENDED_XMP_HEADER)
    )


def _jpeg_xmp(data: bytes) -> bytes | None:
    segments, _ = _jpeg_segments(data)
    for segment in segments:
        if segment[1:2] == b"\xe1" and segment[4:].startswith(_JPEG_XMP_HEADER):
            return segment[4 + len(_JPEG_XMP_HEADER) :]
    return None


def _jpeg_with_xmp(data: bytes, packet: bytes) -> bytes:
    payload = _JPEG_XMP_HEADER + packet
    if len(payload) > _JPEG_MAX_SEGMENT_PAYLOAD - 2:
        raise InvalidInput("The provenance packet is too large for one JPEG APP1 segment.")
    segments, rest = _jpeg_segments(data)
    kept = [s for s in segments if not _is_jpeg_xmp_segment(s)]
    # XMP goes after the JFIF/Exif headers that readers expect first.
    insert_at = 0
    while insert_at < len(kept) and (
        kept[insert_at][1:2] == b"\xe0"
        or (kept[insert_at][1:2] == b"\xe1" and kept[insert_at][4:10] == b"Exif\x00\x00")
    ):
        insert_at += 1
    xmp_segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    kept.insert(insert_at, xmp_segment)
    return b"\xff\xd8" + b"".join(kept) + rest


# --- PNG: iTXt chunk --------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise InvalidImage("The PNG has a truncated chunk.")
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos = end
        if kind == b"IEND":
            return chunks
    raise InvalidImage("The PNG has no IEND chunk.")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _is_png_xmp_chunk(kind: bytes, body: bytes) -> bool:
    return kind == b"iTXt" and body.startswith(_PNG_XMP_KEYWORD + b"\x00")


def _png_xmp(data: bytes) -> bytes | None:
    for kind, body in _png_chunks(data):
        if not _is_png_xmp_chunk(kind, body):
            continue
        rest = body[len(_PNG_XMP_KEYWORD) + 1 :]
        compressed, rest = rest[0], rest[2:]  # compression flag, compression method
        _language, rest = rest.split(b"\x00", 1)
        _translated, text = rest.split(b"\x00", 1)
        return zlib.decompress(text) if compressed else text
    return None


def _png_with_xmp(data: bytes, packet: bytes) -> bytes:
    chunks = [(k, b) for k, b in _png_chunks(data) if not _is_png_xmp_chunk(k, b)]
    # keyword, NUL, uncompressed, method 0, empty language tag, empty translated keyword
    itxt = _PNG_XMP_KEYWORD + b"\x00\x00\x00" + b"\x00" + b"\x00" + packet
    first_idat = next(i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    chunks.insert(first_idat, (b"iTXt", itxt))
    return _PNG_SIGNATURE + b"".join(_png_chunk(k, b) for k, b in chunks)


# --- WebP: XMP chunk in the VP8X layout -------------------------------------------------


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= end:
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if pos + 8 + length > end:
            raise InvalidImage("The WebP has a truncated chunk.")
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    if not chunks:
        raise InvalidImage("The WebP has no chunks.")
    return chunks


def _webp_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _webp_xmp(data: bytes) -> bytes | None:
    for kind, body in _webp_chunks(data):
        if kind == b"XMP ":
            return body
    return None


def _webp_with_xmp(data: bytes, packet: bytes) -> bytes:
    chunks = [(k, b) for k, b in _webp_chunks(data) if k != b"XMP "]
    if chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        header[0] |= _WEBP_XMP_FLAG
        chunks[0] = (b"VP8X", bytes(header))
    else:
        chunks.insert(0, (b"VP8X", _vp8x_header_for(data)))
    chunks.append((b"XMP ", packet))
    body = b"WEBP" + b"".join(_webp_chunk(k, b) for k, b in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _vp8x_header_for(data: bytes) -> bytes:
    """A VP8X header for a simple (VP8 / VP8L) WebP, which has nowhere to put XMP."""
    try:
        with Image.open(BytesIO(data)) as image:
            width, height = image.size
            has_alpha = image.mode in ("RGBA", "LA")
    except (UnidentifiedImageError, OSError) as error:
        raise InvalidImage("The WebP cannot be decoded.") from error
    flags = _WEBP_XMP_FLAG | (_WEBP_ALPHA_FLAG if has_alpha else 0)
    return (
        bytes([flags, 0, 0, 0])
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
