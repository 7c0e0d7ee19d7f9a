"""The compliance check: a delivered file read back and judged rule by rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from io import BytesIO
from typing import Literal

import numpy as np
import pydantic
from PIL import Image, UnidentifiedImageError

from lightbox.catalog.presets import PolicyWarning, Preset
from lightbox.domain.marketplace.encode import profile_description
from lightbox.domain.marketplace.geometry import safe_frame
from lightbox.domain.marketplace.pixels import border_ring, flatten_on_white, mask_bbox
from lightbox.domain.morphology import dilate_cross, within_distance
from lightbox.domain.provenance import read_digital_source_type

#: A pixel is "not white" when its darkest channel is this far below 255. Wide enough to
#: ignore JPEG ringing next to a sharp edge, narrow enough to catch a visible grey.
NOT_WHITE_TOLERANCE = 12
#: The halo rule looks at the product's outline in this many angular sectors.
SECTORS = 16

GENERATIVE_SOURCE_TYPES = frozenset(
    {
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "compositeSynthetic",
        "algorithmicMedia",
    }
)


class RuleResult(pydantic.BaseModel):
    rule: str
    passed: bool
    detail: str
    severity: Literal["error", "warning"]


class ComplianceReport(pydantic.BaseModel):
    preset: str
    passed: bool
    rules: list[RuleResult]

    def failures(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]

    def rule(self, rule_id: str) -> RuleResult:
        return next(r for r in self.rules if r.rule == rule_id)


def _ok(rule: str, detail: str, severity: Literal["error", "warning"] = "error") -> RuleResult:
    return RuleResult(rule=rule, passed=True, detail=detail, severity=severity)


def _fail(rule: str, detail: str, severity: Literal["error", "warning"] = "error") -> RuleResult:
    return RuleResult(rule=rule, passed=False, detail=detail, severity=severity)


@dataclass(frozen=True)
class _Decoded:
    image: Image.Image
    pixels: np.ndarray
    data: bytes


def check_compliance(
    data: bytes,
    preset: Preset,
    *,
    product_mask: Image.Image | None = None,
    ai_generated: bool = True,
) -> ComplianceReport:
    """Pass/fail per rule for one delivered file against one preset.

    ``product_mask`` (L, 255 = product, soft edges welcome; resized if it is not the
    image's size) makes the framing and halo rules exact; without it the product is
    estimated as whatever is not white, and the halo rule is not checked. It must mark
    the product itself (a segmentation, ``fit_with_mask``'s output): a fringe that the
    mask itself covers cannot be told from the product. ``passed`` is False when any
    error-severity rule failed; warnings never fail a report.
    """
    decoded, decode_result = _decode(data)
    rules = [decode_result]
    if decoded is None:
        return ComplianceReport(preset=preset.id, passed=False, rules=rules)
    coverage = _mask_for_check(product_mask, decoded.image.size)
    mask = coverage > 127 if coverage is not None else None
    rules += [
        _rule_format(decoded, preset),
        *_size_rules(decoded, preset),
        _rule_file_size(decoded, preset),
        _rule_colour_space(decoded),
        _rule_provenance(decoded, preset, ai_generated),
    ]
    if preset.white_background:
        product = mask if mask is not None else _non_white(decoded.pixels, NOT_WHITE_TOLERANCE)
        rules += [
            _rule_white_background(decoded, preset, mask),
            _rule_fill(product, preset, estimated=mask is None),
            _rule_not_cut(decoded, mask),
            _rule_no_halo(decoded, coverage),
        ]
    if preset.safe_area is not None:
        rules.append(_rule_safe_area(preset, decoded, mask))
    rules += [_rule_policy(warning, ai_generated) for warning in preset.policy_warnings]
    passed = all(r.passed or r.severity == "warning" for r in rules)
    return ComplianceReport(preset=preset.id, passed=passed, rules=rules)


def _decode(data: bytes) -> tuple[_Decoded | None, RuleResult]:
    try:
        image = Image.open(BytesIO(data))
        image.load()
        pixels = np.asarray(flatten_on_white(image)[0])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return None, _fail("decodes", f"not a readable image: {error}")
    except Image.DecompressionBombError as error:
        return None, _fail("decodes", f"refused: {error}")
    decoded = _Decoded(image=image, pixels=pixels, data=data)
    width, height = decoded.image.size
    return decoded, _ok("decodes", f"{decoded.image.format} {width}x{height} {decoded.image.mode}")


def _mask_for_check(product_mask: Image.Image | None, size: tuple[int, int]) -> np.ndarray | None:
    if product_mask is None:
        return None
    mask = product_mask.convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(mask)


def _non_white(pixels: np.ndarray, tolerance: int) -> np.ndarray:
    return pixels.min(axis=2) < 255 - tolerance


def _rule_format(decoded: _Decoded, preset: Preset) -> RuleResult:
    fmt = "JPEG" if decoded.image.format == "MPO" else decoded.image.format
    allowed = ", ".join(preset.formats_allowed)
    if fmt in preset.formats_allowed:
        return _ok("format.allowed", f"{fmt} is accepted ({allowed})")
    return _fail("format.allowed", f"{fmt} is not accepted; use one of {allowed}")


def _size_rules(decoded: _Decoded, preset: Preset) -> list[RuleResult]:
    width, height = decoded.image.size
    long_side, short_side = max(width, height), min(width, height)
    limits = preset.limits
    rules = [
        _min_size_rule(
            "size.min", long_side, short_side, limits.min_long_side, limits.min_short_side, "error"
        ),
        _min_size_rule(
            "size.recommended",
            long_side,
            short_side,
            limits.recommended_long_side,
            limits.recommended_short_side,
            "warning",
        ),
    ]
    too_big = []
    if limits.max_long_side and long_side > limits.max_long_side:
        too_big.append(f"long side {long_side} px > {limits.max_long_side} px")
    if limits.max_pixels and width * height > limits.max_pixels:
        too_big.append(f"{width * height} pixels > {limits.max_pixels}")
    rules.append(
        _fail("size.max", "; ".join(too_big))
        if too_big
        else _ok("size.max", f"{width}x{height} is within the maximum")
    )
    if limits.aspect is not None:
        ratio_ok = math.isclose(width / height, limits.aspect, rel_tol=0.01)
        detail = f"{width}x{height} vs required {limits.aspect_ratio}"
        rules.append(_ok("size.aspect", detail) if ratio_ok else _fail("size.aspect", detail))
    canvas = preset.canvas
    if canvas.width is not None and canvas.height is not None:
        expected = (canvas.width, canvas.height)
        detail = f"{width}x{height}; the preset delivers {expected[0]}x{expected[1]}"
        rules.append(
            _ok("size.canvas", detail, "warning")
            if (width, height) == expected
            else _fail("size.canvas", detail, "warning")
        )
    return rules


def _min_size_rule(
    rule: str,
    long_side: int,
    short_side: int,
    min_long: int | None,
    min_short: int | None,
    severity: Literal["error", "warning"],
) -> RuleResult:
    if min_long is None and min_short is None:
        return _ok(rule, "no figure published", severity)
    short_of = []
    if min_long and long_side < min_long:
        short_of.append(f"long side {long_side} px < {min_long} px")
    if min_short and short_side < min_short:
        short_of.append(f"short side {short_side} px < {min_short} px")
    if short_of:
        return _fail(rule, "; ".join(short_of), severity)
    return _ok(rule, f"long side {long_side} px, short side {short_side} px", severity)


def _rule_file_size(decoded: _Decoded, preset: Preset) -> RuleResult:
    size, limit = len(decoded.data), preset.limits.max_bytes
    if limit is None:
        return _ok("file.max_bytes", f"{size} bytes; no limit published")
    detail = f"{size} bytes, limit {limit}"
    return _ok("file.max_bytes", detail) if size <= limit else _fail("file.max_bytes", detail)


def _rule_colour_space(decoded: _Decoded) -> RuleResult:
    image = decoded.image
    bits = _bit_depth(decoded)
    if image.mode != "RGB" or bits != 8:
        reason = {
            "CMYK": "CMYK (marketplaces show it with shifted colours)",
            "RGBA": "RGB with alpha (transparency shows grey or black)",
            "L": "greyscale, not RGB",
        }.get(image.mode, f"mode {image.mode}")
        detail = reason if image.mode != "RGB" else f"{bits} bits per channel, not 8"
        return _fail("colour.space", f"needs 8-bit RGB in sRGB: {detail}")
    icc = image.info.get("icc_profile")
    if not icc:
        return _ok("colour.space", "8-bit RGB, untagged (read as sRGB)")
    description = profile_description(icc)
    if "srgb" in description.lower():
        return _ok("colour.space", f"8-bit RGB, ICC profile '{description}'")
    return _fail("colour.space", f"ICC profile '{description}' is not sRGB")


def _bit_depth(decoded: _Decoded) -> int:
    if decoded.image.format == "PNG" and len(decoded.data) > 24:
        return decoded.data[24]  # IHDR bit depth: Pillow hides 16-bit RGB behind mode RGB
    return int(getattr(decoded.image, "bits", 8))


def _rule_provenance(decoded: _Decoded, preset: Preset, ai_generated: bool) -> RuleResult:
    rule = "provenance.digital_source_type"
    found = read_digital_source_type(decoded.data)
    if not ai_generated:
        return _ok(rule, f"not AI-generated; label found: {found or 'none'}")
    why = (
        "Google Merchant Center requires it on AI-generated images"
        if preset.ai_label_required
        else "Lightbox labels every AI-generated shot"
    )
    if found is None:
        return _fail(rule, f"no IPTC DigitalSourceType in the XMP; {why}")
    wanted = {"trainedAlgorithmicMedia"} if preset.ai_label_required else GENERATIVE_SOURCE_TYPES
    if found not in wanted:
        return _fail(
            rule, f"DigitalSourceType is {found}, expected {' or '.join(sorted(wanted))}; {why}"
        )
    return _ok(rule, f"IPTC DigitalSourceType {found}")


def _rule_white_background(
    decoded: _Decoded, preset: Preset, mask: np.ndarray | None
) -> RuleResult:
    """The backdrop at the frame's border is pure white (no off-white, no grey)."""
    rule = "background.pure_white"
    pixels = decoded.pixels
    height, width = pixels.shape[:2]
    band = border_ring(height, width, max(4, round(0.02 * min(height, width))))
    if mask is not None:
        band &= ~dilate_cross(mask, iterations=3)
    if not band.any():
        return _fail(rule, "no backdrop visible at the border: the product covers it")
    darkest = pixels[band].min(axis=1)
    floor = preset.background.value - preset.background.tolerance
    share = float((darkest >= floor).mean())
    median = int(np.median(darkest))
    detail = f"{share:.1%} of the border band is pure white (median darkest channel {median})"
    return _ok(rule, detail) if share >= 0.98 else _fail(rule, detail)


def _rule_fill(product: np.ndarray, preset: Preset, *, estimated: bool) -> RuleResult:
    rule = "framing.fill"
    assert preset.fill is not None
    bbox = mask_bbox(product)
    how = "estimated as the non-white region" if estimated else "from the product mask"
    if bbox is None:
        return _fail(rule, f"no product found ({how})")
    height, width = product.shape
    x0, y0, x1, y1 = bbox
    fill = max((x1 - x0) / width, (y1 - y0) / height)
    detail = f"product box {x1 - x0}x{y1 - y0} fills {fill:.1%} of the frame's longer axis ({how})"
    if preset.fill.min is None:
        return _ok(rule, f"{detail}; no minimum published", "warning")
    detail += f", minimum {preset.fill.min:.0%}"
    return _ok(rule, detail) if fill >= preset.fill.min else _fail(rule, detail)


def _rule_not_cut(decoded: _Decoded, mask: np.ndarray | None) -> RuleResult:
    """Nothing non-white touches the frame: no product or shadow cut by the edge."""
    rule = "framing.not_cut"
    pixels = decoded.pixels
    height, width = pixels.shape[:2]
    touching = _non_white(pixels, NOT_WHITE_TOLERANCE)
    if mask is not None:
        touching |= mask
    edges = {
        "top": touching[:2, :],
        "bottom": touching[-2:, :],
        "left": touching[:, :2],
        "right": touching[:, -2:],
    }
    allowance = max(3, round(0.001 * 2 * (width + height)))
    cut = [
        f"{name} ({int(edge.sum())} px)" for name, edge in edges.items() if edge.sum() > allowance
    ]
    if cut:
        return _fail(rule, "non-white pixels touch the frame at " + ", ".join(cut))
    return _ok(rule, "the frame's outer 2 px are white all round")


def _rule_no_halo(decoded: _Decoded, coverage: np.ndarray | None) -> RuleResult:
    """No light or dark fringe left around the product by background removal.

    Just outside a clean cutout on white the backdrop is white; just outside a haloed
    one it is a ring of leftover old background, neither white nor the product's own
    colour. The band 2..2+w px outside the mask is compared, sector by sector around
    the product, with pure white and with the band just inside. A shadow darkens a few
    sectors; a halo goes all the way round, so half the sectors decide. A soft mask's
    own ramp is the edge itself, not a fringe: "outside" starts where the mask is
    (nearly) 0 and "inside" where it is (nearly) 255.
    """
    rule = "edges.no_halo"
    if coverage is None:
        return _ok(rule, "not checked: needs the product mask", "warning")
    mask = coverage > 127
    bbox = mask_bbox(mask)
    if bbox is None:
        return _fail(rule, "the product mask is empty")
    pixels = decoded.pixels
    height, width = mask.shape
    gap = 2
    band = max(3, round(0.004 * min(height, width)))
    margin = gap + band + 2
    x0, y0 = max(0, bbox[0] - margin), max(0, bbox[1] - margin)
    x1, y1 = min(width, bbox[2] + margin), min(height, bbox[3] + margin)
    crop_coverage = coverage[y0:y1, x0:x1]
    crop = pixels[y0:y1, x0:x1].astype(np.int16)
    # Distance bands: "outside" is gap..gap+band px from any covered pixel, "inside"
    # the same from any pixel the mask leaves (nearly) uncovered.
    covered, uncovered = crop_coverage >= 8, crop_coverage <= 247
    outside = within_distance(covered, gap + band) & ~within_distance(covered, gap)
    inside = within_distance(uncovered, gap + band) & ~within_distance(uncovered, gap)
    centre = np.argwhere(crop_coverage > 127).mean(axis=0)
    out_pixels, out_sector = _band_by_sector(crop, outside, centre, SECTORS)
    in_pixels, in_sector = _band_by_sector(crop, inside, centre, SECTORS)
    halo_colours: list[np.ndarray] = []
    product_colours: list[np.ndarray] = []
    counted = 0
    for index in range(SECTORS):
        out_here, in_here = out_pixels[out_sector == index], in_pixels[in_sector == index]
        if len(out_here) < 20 or len(in_here) < 20:
            continue
        counted += 1
        if (out_here.min(axis=1) < 255 - NOT_WHITE_TOLERANCE).mean() < 0.3:
            continue  # white just outside: clean
        out_colour, in_colour = out_here.mean(axis=0), in_here.mean(axis=0)
        if np.abs(out_colour - in_colour).max() < 24:
            continue  # the product itself continues: the mask is a little tight, not a halo
        halo_colours.append(out_colour)
        product_colours.append(in_colour)
    if counted < SECTORS // 2:
        return _ok(rule, "not checked: the product outline is too small to judge", "warning")
    detail = (
        f"{len(halo_colours)} of {counted} sectors around the product have a non-white ring "
        f"{gap}-{gap + band} px outside its edge"
    )
    if len(halo_colours) * 2 < counted:
        return _ok(rule, detail)
    ring, product = np.mean(halo_colours, axis=0), np.mean(product_colours, axis=0)
    kind = "lighter" if ring.mean() > product.mean() else "darker"
    rgb = ", ".join(str(round(v)) for v in ring)
    return _fail(rule, f"halo: a ring of RGB ({rgb}), {kind} than the product; {detail}")


def _band_by_sector(
    pixels: np.ndarray, band: np.ndarray, centre: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The band's pixels, and the angular sector (0..count-1) of each around ``centre``."""
    ys, xs = np.nonzero(band)
    angle = np.arctan2(ys - centre[0], xs - centre[1])
    sector = ((angle + np.pi) / (2 * np.pi) * count).astype(np.int32) % count
    return pixels[ys, xs], sector


def _rule_safe_area(preset: Preset, decoded: _Decoded, mask: np.ndarray | None) -> RuleResult:
    rule = "framing.safe_area"
    if mask is None:
        return _ok(rule, "not checked: needs the product mask", "warning")
    bbox = mask_bbox(mask)
    if bbox is None:
        return _fail(rule, "the product mask is empty", "warning")
    fx, fy, fw, fh = safe_frame(preset, decoded.image.size)
    x0, y0, x1, y1 = bbox
    inside = x0 >= fx and y0 >= fy and x1 <= fx + fw and y1 <= fy + fh
    detail = f"product box {bbox} vs safe area {(int(fx), int(fy), int(fx + fw), int(fy + fh))}"
    return _ok(rule, detail, "warning") if inside else _fail(rule, detail, "warning")


def _rule_policy(warning: PolicyWarning, ai_generated: bool) -> RuleResult:
    rule = f"policy.{warning.id}"
    applies = warning.when == "always" or ai_generated
    if applies:
        return _fail(rule, warning.text.strip(), "warning")
    return _ok(rule, "does not apply: the shot is not AI-generated", "warning")
