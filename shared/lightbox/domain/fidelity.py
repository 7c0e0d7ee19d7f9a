"""Product fidelity: is the product in a composed shot still the customer's product?

Generative models change products: they shift a colour, redraw a label, reshape an
edge, add props or people. Every shot Lightbox composes is judged here against the
product cutout (RGBA: product opaque, background transparent) before the user sees
it or pays for it; a failing shot is composed again with a new seed by the caller.

How a shot is judged:

1. the frame: it decodes, its long side is large enough, its aspect ratio is the one
   asked for;
2. the product is located: SIFT features of the cutout matched into the shot with a
   RANSAC homography; a low-texture product (a plain cup) that gives too few
   features is located instead by its silhouette among the shot's foreground regions;
3. the located product is compared with the cutout warped onto it: features found
   again in place (matched share), colour (CIEDE2000 after the scene's exposure and
   light colour are taken out), detail (cell-wise correlation, which blur, flat
   fills and replaced labels break; texture appearing on plain parts), silhouette
   (IoU with the shot's foreground), its scale in the frame and how much of it is
   inside the frame;
4. the scene: foreground regions away from the product (second objects, props; soft
   shadows and the product's own reflection on a glossy floor excepted) and faces (OpenCV's bundled Haar cascades) where no person was
   asked for. A scene that asks for a person expects exactly one face, and its body
   and hands are not counted as extra objects.

Known blind spot: the hue of a near-grey product (a silver car) can turn without the
colour rule noticing, because so little of it is hue; such a turn is also hard to see.

Everything runs at a bounded working resolution (`work_long_side`) so a check costs
about the same for any output size. Thresholds are data: `catalog/checks.yaml`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

import lightbox
from lightbox.domain.colour import ciede2000, linear_rgb_to_lab, srgb_to_linear
from lightbox.errors import InvalidInput

_DEFAULT_CHECKS_PATH = Path(lightbox.__file__).parent / "catalog" / "checks.yaml"


class CheckThresholds(BaseModel):
    """Every threshold of the fidelity check; `catalog/checks.yaml` says why each value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_long_side: int = Field(ge=128, le=2048)
    reference_long_side: int = Field(ge=128, le=2048)
    min_inliers: int = Field(ge=4)
    match_ratio: float = Field(gt=0, lt=1)
    ransac_reprojection_px: float = Field(gt=0)
    min_silhouette_match: float = Field(ge=0, le=1)
    min_matched_share: float = Field(ge=0, le=1)
    matched_min_keypoints: int = Field(ge=1)
    matched_max_distance: float = Field(gt=0)
    colour_percentile: float = Field(ge=50, le=100)
    max_delta_e: float = Field(gt=0)
    max_exposure_gain: float = Field(ge=1)
    max_light_cast: float = Field(ge=0, lt=1)
    detail_cells_across: int = Field(ge=4, le=64)
    detail_min_texture: float = Field(ge=0)
    detail_min_ncc: float = Field(ge=-1, le=1)
    detail_min_contrast: float = Field(ge=0, le=1)
    max_detail_lost_share: float = Field(ge=0, le=1)
    max_detail_added_share: float = Field(ge=0, le=1)
    min_shape_iou: float = Field(ge=0, le=1)
    min_product_scale: float = Field(ge=0, le=1)
    #: The smallest product a scene with a person may show (held, worn or beside them).
    person_min_product_scale: float = Field(default=0.2, ge=0, le=1)
    min_product_in_frame: float = Field(ge=0, le=1)
    foreground_min_delta: float = Field(gt=0)
    foreground_texture_spreads: float = Field(gt=0)
    max_extra_object_share: float = Field(ge=0, le=1)
    extra_object_band: float = Field(ge=0, le=1)
    extra_object_min_region: float = Field(ge=0, le=1)
    scenery_min_edge_width: float = Field(gt=0)
    scenery_min_span: float = Field(gt=0, le=1)
    reflection_min_overlap: float = Field(ge=0, le=1)
    reflection_min_correlation: float = Field(ge=-1, le=1)
    face_min_size_share: float = Field(gt=0, le=1)
    face_min_neighbors: int = Field(ge=1)
    face_long_side: int = Field(ge=128, le=2048)
    aspect_tolerance: float = Field(ge=0, lt=1)

    @classmethod
    def load(cls, path: Path | None = None) -> CheckThresholds:
        """Read the thresholds from `path`, by default the packaged `catalog/checks.yaml`."""
        source = path or _DEFAULT_CHECKS_PATH
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        return cls.model_validate(data)


class ShotCheck(BaseModel):
    """The verdict on one shot: whether it passed, why not, and every measure taken."""

    passed: bool
    reasons: list[str]
    measures: dict[str, float]


# --- public entry points -------------------------------------------------------------


def check_shot(
    shot: Any,
    cutout: Any,
    *,
    expect_person: bool = False,
    min_long_side: int = 0,
    aspect_ratio: float | None = None,
    thresholds: CheckThresholds | None = None,
) -> ShotCheck:
    """Judge a composed `shot` against the product `cutout` (RGBA, product opaque).

    Both are pixels (`as_pixels`): numpy arrays, or Pillow images from callers that
    have Pillow (this module does not import it: the check runs on OpenCV alone).

    `aspect_ratio` is the width/height asked of the model (None: any);
    `expect_person` says the scene asked for a person, so exactly one face is expected.
    Raises InvalidInput when the cutout has no opaque pixels (a caller's bug).
    """
    limits = thresholds or _default_thresholds()
    measures: dict[str, float] = {"decoded": 1.0}
    shot_pixels = as_pixels(shot)
    size = (shot_pixels.shape[1], shot_pixels.shape[0])
    reasons = _frame_reasons(size, min_long_side, aspect_ratio, limits, measures)

    reference = _reference_for(cutout, limits)
    work = _work_image(shot_pixels, limits.work_long_side)
    scene = _SceneFeatures.of(work.gray)
    placement = _locate_by_features(reference, scene, limits)
    scene_foreground: _Foreground | None = None
    if placement is None:
        scene_foreground = _foreground(work, None, limits)
        placement = _locate_by_silhouette(reference, scene_foreground, limits)
    measures["located"] = float(placement is not None)
    measures["located_by_features"] = float(placement is not None and placement.by_features)

    expected: _Expected | None = None
    if placement is None:
        reasons.append("product not found in the shot (no feature or silhouette match)")
        foreground = scene_foreground or _foreground(work, None, limits)
    else:
        measures["inliers"] = float(placement.inliers)
        expected = _expected_product(reference, placement, work)
        reasons += _framing_reasons(expected, limits, measures)
        # A backdrop fitted away from the known product is the better model; the
        # silhouette fallback already has one that found the product.
        foreground = scene_foreground or _foreground(work, expected.mask, limits)
        reasons += _product_reasons(expected, work, scene, foreground, limits, measures)
    reasons += _extra_object_reasons(work, foreground, expected, limits, measures, expect_person)
    reasons += _face_reasons(work, expected, foreground, expect_person, limits, measures)
    return ShotCheck(passed=not reasons, reasons=reasons, measures=measures)


def check_shot_bytes(shot: bytes, cutout: Any, **kwargs: Any) -> ShotCheck:
    """Judge an encoded shot; bytes that do not decode fail the check instead of raising."""
    image, problem = decode(shot)
    if image is None:
        return ShotCheck(
            passed=False,
            reasons=[f"shot does not decode as an image ({problem})"],
            measures={"decoded": 0.0},
        )
    return check_shot(image, cutout, **kwargs)


# --- loading -----------------------------------------------------------------------


# OpenCV's detectors keep scratch state between calls and are not safe to share between
# threads; Lambda runs one event at a time, the local runtime runs many in one process.
_per_thread = threading.local()


@lru_cache(maxsize=1)
def _default_thresholds() -> CheckThresholds:
    return CheckThresholds.load()


def decode(data: bytes) -> tuple[np.ndarray | None, str]:
    """The pixels of a whole PNG, JPEG or WebP file (RGB or RGBA), or None and why not.

    Models deliver these three. A truncated file is refused by its missing end (libjpeg
    would otherwise fill in what is missing and only warn).
    """
    kind = _image_kind(data)
    if kind is None:
        return None, "not a PNG, JPEG or WebP file"
    if not _is_whole(data, kind):
        return None, f"the {kind} file is truncated"
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        return None, f"the {kind} data does not decode"
    if pixels.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB
        pixels = cv2.cvtColor(pixels, code)
    return pixels, ""


def _image_kind(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def _is_whole(data: bytes, kind: str) -> bool:
    if kind == "PNG":
        return b"IEND" in data[-64:]
    if kind == "JPEG":
        return data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
    declared = int.from_bytes(data[4:8], "little") + 8  # the RIFF header's own length
    return len(data) >= declared


def as_pixels(image: Any) -> np.ndarray:
    """uint8 pixels, HxWx3 (RGB) or HxWx4 (RGBA), of an array or a Pillow image.

    Arrays may also be HxW (grey) or 16-bit. A Pillow image is read through its own
    `convert` (duck-typed: tests and tools pass them; this module never imports Pillow).
    """
    if hasattr(image, "convert") and hasattr(image, "mode"):
        image = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")
    pixels = np.asarray(image)
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.dtype != np.uint8:
        raise InvalidInput(f"Images are 8- or 16-bit, not {pixels.dtype}.")
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise InvalidInput(f"An image has 1, 3 or 4 channels, not shape {pixels.shape}.")
    return pixels


@dataclass(frozen=True)
class _WorkImage:
    """The shot at the working resolution."""

    rgb: np.ndarray  # uint8 HxWx3
    gray: np.ndarray  # uint8 HxW

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape[0], self.gray.shape[1]


def _on_white(pixels: np.ndarray) -> np.ndarray:
    """RGB pixels; a transparent shot is seen on white, as a shop page would show it."""
    if pixels.shape[2] == 3:
        return pixels
    alpha = pixels[:, :, 3:].astype(np.uint16)
    rgb = pixels[:, :, :3].astype(np.uint16)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _resize_long_side(pixels: np.ndarray, long_side: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1.0:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def _work_image(shot: np.ndarray, long_side: int) -> _WorkImage:
    rgb = np.ascontiguousarray(_resize_long_side(_on_white(shot), long_side))
    return _WorkImage(rgb=rgb, gray=cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


# --- the reference (the cutout, prepared once) ------------------------------------------


@dataclass(frozen=True)
class _Reference:
    """The cutout cropped to its product, at the reference resolution, with its features."""

    rgb: np.ndarray  # uint8 HxWx3, product pixels meaningful where alpha > 0
    alpha: np.ndarray  # float32 HxW in 0..1
    mask: np.ndarray  # bool HxW, the product's silhouette
    points: np.ndarray  # float32 Nx2 keypoint positions
    descriptors: np.ndarray | None  # float32 Nx128


#: Prepared cutouts, most recently used last. A job's shots all share one cutout, so
#: a warm Lambda prepares it once; a few slots cover interleaved jobs.
_REFERENCES: OrderedDict[tuple[str, int], _Reference] = OrderedDict()
_REFERENCES_KEPT = 8
_REFERENCES_LOCK = threading.Lock()


def _reference_for(cutout: Any, limits: CheckThresholds) -> _Reference:
    pixels = as_pixels(cutout)
    if pixels.shape[2] == 3:
        pixels = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    rgba = np.ascontiguousarray(pixels)
    digest = hashlib.blake2b(rgba.tobytes(), digest_size=16).hexdigest()
    key = (f"{digest}:{rgba.shape}", limits.reference_long_side)
    with _REFERENCES_LOCK:
        if key in _REFERENCES:
            _REFERENCES.move_to_end(key)
            return _REFERENCES[key]
    reference = _prepare_reference(rgba, limits.reference_long_side)
    with _REFERENCES_LOCK:
        _REFERENCES[key] = reference
        while len(_REFERENCES) > _REFERENCES_KEPT:
            _REFERENCES.popitem(last=False)
    return reference


def _prepare_reference(rgba: np.ndarray, long_side: int) -> _Reference:
    opaque = rgba[:, :, 3] > 127
    if not opaque.any():
        raise InvalidInput("The cutout has no opaque pixels: there is no product to check.")
    rows, cols = np.nonzero(opaque)
    crop = rgba[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    crop = _resize_long_side(crop, long_side)
    rgb = np.ascontiguousarray(crop[:, :, :3])
    alpha = crop[:, :, 3].astype(np.float32) / 255.0
    mask = alpha > 0.5
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # Keypoints on the silhouette edge describe the old background too: keep inside.
    inner = cv2.erode(mask.astype(np.uint8), _disc(3))
    keypoints, descriptors = _sift().detectAndCompute(gray, inner)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
    return _Reference(rgb=rgb, alpha=alpha, mask=mask, points=points, descriptors=descriptors)


def _sift() -> cv2.SIFT:
    if not hasattr(_per_thread, "sift"):
        _per_thread.sift = cv2.SIFT_create(nfeatures=2000)
    return _per_thread.sift


def _disc(radius: int) -> np.ndarray:
    size = 2 * max(1, radius) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


# --- locating the product --------------------------------------------------------------


@dataclass(frozen=True)
class _SceneFeatures:
    points: np.ndarray  # float32 Nx2
    descriptors: np.ndarray | None

    @classmethod
    def of(cls, gray: np.ndarray) -> _SceneFeatures:
        keypoints, descriptors = _sift().detectAndCompute(gray, None)
        points = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
        return cls(points=points, descriptors=descriptors)


@dataclass(frozen=True)
class _Placement:
    """Where the cutout sits in the work image: a homography from reference pixels."""

    homography: np.ndarray
    inliers: int
    by_features: bool


def _locate_by_features(
    reference: _Reference, scene: _SceneFeatures, limits: CheckThresholds
) -> _Placement | None:
    if (
        reference.descriptors is None
        or scene.descriptors is None
        or len(reference.points) < limits.min_inliers
        or len(scene.points) < limits.min_inliers
    ):
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(reference.descriptors, scene.descriptors, k=2)
    good = [
        p[0] for p in pairs if len(p) == 2 and p[0].distance < limits.match_ratio * p[1].distance
    ]
    if len(good) < limits.min_inliers:
        return None
    source = reference.points[[m.queryIdx for m in good]]
    target = scene.points[[m.trainIdx for m in good]]
    homography, inlier_flags = cv2.findHomography(
        source, target, cv2.RANSAC, limits.ransac_reprojection_px, maxIters=2000, confidence=0.995
    )
    if homography is None or inlier_flags is None:
        return None
    inliers = int(inlier_flags.sum())
    if inliers < limits.min_inliers or not _plausible_homography(homography, reference.mask):
        return None
    return _Placement(homography=homography, inliers=inliers, by_features=True)


def _plausible_homography(homography: np.ndarray, mask: np.ndarray) -> bool:
    """A product seen again: no mirror, no collapse, no strong perspective tearing."""
    height, width = mask.shape
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    warped = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), homography).reshape(-1, 2)
    if not cv2.isContourConvex(warped.astype(np.float32)):
        return False
    edges = np.roll(warped, -1, axis=0) - warped
    signed_area = 0.5 * float(
        np.sum(warped[:, 0] * np.roll(warped[:, 1], -1) - np.roll(warped[:, 0], -1) * warped[:, 1])
    )
    if signed_area <= 0:  # mirrored: corners reversed
        return False
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    # Opposite sides of the warped box keep their lengths within a factor of two.
    return bool(
        lengths.min() > 2
        and lengths[0] / max(lengths[2], 1e-6) < 2
        and lengths[2] / max(lengths[0], 1e-6) < 2
        and lengths[1] / max(lengths[3], 1e-6) < 2
        and lengths[3] / max(lengths[1], 1e-6) < 2
    )


def _locate_by_silhouette(
    reference: _Reference, foreground: _Foreground, limits: CheckThresholds
) -> _Placement | None:
    """Low-texture products: where the cutout's silhouette best covers the foreground.

    The silhouette is slid over each sizeable foreground region at several scales
    (a region's box overstates the product when a contact shadow or reflection joins
    it); the score is the IoU between the silhouette and the foreground inside its box.
    """
    mask = foreground.mask.astype(np.float32)
    count, _, stats, _ = cv2.connectedComponentsWithStats(foreground.mask.astype(np.uint8))
    regions = sorted(range(1, count), key=lambda label: -stats[label, cv2.CC_STAT_AREA])
    best: tuple[float, np.ndarray] | None = None
    for label in regions[:4]:
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < 0.002 * mask.size or min(w, h) < 8:
            break
        found = _best_silhouette_fit(reference.mask, mask, (x, y, w, h))
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    if best is None or best[0] < limits.min_silhouette_match:
        return None
    return _Placement(homography=best[1], inliers=0, by_features=False)


def _best_silhouette_fit(
    silhouette: np.ndarray, foreground: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[float, np.ndarray] | None:
    """Best IoU of the scaled silhouette against the foreground, over a margin around it.

    The margin (empty in the silhouette) makes a large blob score low: the product's
    outline must be there, not just its area.
    """
    x, y, w, h = box
    ref_height, ref_width = silhouette.shape
    pad = 2 + round(0.1 * max(w, h))
    x0, y0 = x - 2 * pad, y - 2 * pad
    region = cv2.copyMakeBorder(
        foreground, 2 * pad, 2 * pad, 2 * pad, 2 * pad, cv2.BORDER_CONSTANT, value=0
    )
    region = np.ascontiguousarray(region[y : y + h + 4 * pad, x : x + w + 4 * pad])
    base = min(w / ref_width, h / ref_height)
    best: tuple[float, np.ndarray] | None = None
    for scale in base * np.linspace(0.7, 1.1, 13):
        width, height = round(ref_width * scale), round(ref_height * scale)
        margin = max(2, round(0.08 * max(width, height)))
        outer = (width + 2 * margin, height + 2 * margin)
        if min(width, height) < 8 or outer[0] > region.shape[1] or outer[1] > region.shape[0]:
            continue
        template = cv2.resize(
            silhouette.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA
        )
        template = cv2.copyMakeBorder(
            template, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0
        )
        overlap = cv2.matchTemplate(region, template, cv2.TM_CCORR)
        inside = cv2.boxFilter(region, -1, outer, normalize=False, borderType=cv2.BORDER_CONSTANT)
        top, left = outer[1] // 2, outer[0] // 2
        inside = inside[top : top + overlap.shape[0], left : left + overlap.shape[1]]
        iou = overlap / np.maximum(float(template.sum()) + inside - overlap, 1e-6)
        _, score, _, (dx, dy) = cv2.minMaxLoc(iou)
        if best is None or score > best[0]:
            homography = np.array(
                [
                    [width / ref_width, 0, x0 + dx + margin],
                    [0, height / ref_height, y0 + dy + margin],
                    [0, 0, 1],
                ],
                np.float64,
            )
            best = (float(score), homography)
    return best


# --- the expected product ---------------------------------------------------------------


@dataclass(frozen=True)
class _Expected:
    """The cutout warped to where the product is in the work image."""

    rgb: np.ndarray  # uint8 HxWx3 (work size)
    alpha: np.ndarray  # float32 HxW
    mask: np.ndarray  # bool HxW, inside the frame
    inside_share: float  # share of the warped product inside the frame
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the mask in the frame
    #: how far (share of the product's extent) the placement may be off: features pin
    #: a product to a pixel or two, a silhouette fit to a few per cent
    uncertainty: float


def _expected_product(reference: _Reference, placement: _Placement, work: _WorkImage) -> _Expected:
    height, width = work.shape
    size = (width, height)
    rgb = cv2.warpPerspective(
        reference.rgb,
        placement.homography,
        size,
        flags=cv2.INTER_AREA if _shrinks(placement) else cv2.INTER_LINEAR,
    )
    alpha = cv2.warpPerspective(reference.alpha, placement.homography, size, flags=cv2.INTER_LINEAR)
    mask = alpha > 0.5
    # The part that fell outside: warp into a canvas padded on every side.
    pad_x, pad_y = width, height
    shift = np.array([[1, 0, pad_x], [0, 1, pad_y], [0, 0, 1]], dtype=np.float64)
    small = cv2.resize(
        reference.mask.astype(np.uint8) * 255, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA
    )
    half = np.array([[2, 0, 0], [0, 2, 0], [0, 0, 1]], dtype=np.float64)
    canvas = (
        cv2.warpPerspective(
            small,
            shift @ placement.homography @ half,
            (3 * width, 3 * height),
            flags=cv2.INTER_LINEAR,
        )
        > 127
    )
    total = int(canvas.sum())
    inside = int(canvas[pad_y : pad_y + height, pad_x : pad_x + width].sum())
    inside_share = inside / total if total else 0.0
    if mask.any():
        rows, cols = np.nonzero(mask)
        box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    else:
        box = (0, 0, 0, 0)
    return _Expected(
        rgb=rgb,
        alpha=alpha,
        mask=mask,
        inside_share=inside_share,
        box=box,
        uncertainty=0.01 if placement.by_features else 0.03,
    )


def _shrinks(placement: _Placement) -> bool:
    return abs(float(np.linalg.det(placement.homography[:2, :2]))) < 1.0


# --- rules: frame ------------------------------------------------------------------------


def _frame_reasons(
    size: tuple[int, int],
    min_long_side: int,
    aspect_ratio: float | None,
    limits: CheckThresholds,
    measures: dict[str, float],
) -> list[str]:
    width, height = size
    measures["width"] = float(width)
    measures["height"] = float(height)
    measures["aspect_ratio"] = width / height if height else 0.0
    reasons = []
    if max(width, height) < min_long_side:
        reasons.append(f"shot too small (long side {max(width, height)} px < {min_long_side} px)")
    if aspect_ratio is not None and height:
        off = abs((width / height) / aspect_ratio - 1.0)
        if off > limits.aspect_tolerance:
            reasons.append(
                f"wrong aspect ratio ({width / height:.3f}, expected "
                f"{aspect_ratio:.3f} ± {limits.aspect_tolerance:.0%})"
            )
    return reasons


def _framing_reasons(
    expected: _Expected, limits: CheckThresholds, measures: dict[str, float]
) -> list[str]:
    height, width = expected.mask.shape
    x0, y0, x1, y1 = expected.box
    scale = max((x1 - x0) / width, (y1 - y0) / height)
    measures["product_scale"] = round(scale, 4)
    measures["product_in_frame"] = round(expected.inside_share, 4)
    reasons = []
    if scale < limits.min_product_scale:
        reasons.append(
            f"product too small in the frame (scale {scale:.2f} < {limits.min_product_scale:.2f})"
        )
    if expected.inside_share < limits.min_product_in_frame:
        reasons.append(
            f"product cut off by the frame ({expected.inside_share:.0%} inside < "
            f"{limits.min_product_in_frame:.0%})"
        )
    return reasons


# --- rules: the product ------------------------------------------------------------------


def _product_reasons(
    expected: _Expected,
    work: _WorkImage,
    scene: _SceneFeatures,
    foreground: _Foreground,
    limits: CheckThresholds,
    measures: dict[str, float],
) -> list[str]:
    reasons: list[str] = []
    if not expected.mask.any():
        return ["product not found in the shot (it lies outside the frame)"]
    colour = _colour_difference(expected, work, limits)
    gain = colour.exposure_gain
    measures["exposure_gain"] = round(gain, 4)
    measures["light_cast"] = round(colour.light_cast, 4)
    measures["delta_e"] = round(colour.delta_e, 3)
    measures["delta_e_median"] = round(colour.delta_e_median, 3)
    if colour.delta_e > limits.max_delta_e:
        reasons.append(
            f"product colour changed (ΔE2000 {colour.delta_e:.1f} > {limits.max_delta_e:.1f})"
        )

    matched_share = _matched_share(expected, work, scene, gain, limits)
    if matched_share is not None:
        measures["matched_share"] = round(matched_share, 4)
        if matched_share < limits.min_matched_share:
            reasons.append(
                f"product features changed (matched share {matched_share:.2f} < "
                f"{limits.min_matched_share:.2f})"
            )

    detail = _detail_change(expected, work, gain, limits)
    if detail.lost_share is not None:
        measures["detail_lost_share"] = round(detail.lost_share, 4)
        if detail.lost_share > limits.max_detail_lost_share:
            reasons.append(
                f"product detail lost or replaced ({detail.lost_share:.0%} of its "
                f"textured area > {limits.max_detail_lost_share:.0%})"
            )
    measures["detail_added_share"] = round(detail.added_share, 4)
    if detail.added_share > limits.max_detail_added_share:
        reasons.append(
            f"product detail added ({detail.added_share:.0%} of its area > "
            f"{limits.max_detail_added_share:.0%})"
        )

    iou = _shape_iou(expected, foreground, limits)
    measures["shape_iou"] = round(iou, 4)
    if iou < limits.min_shape_iou:
        reasons.append(
            f"product shape changed (silhouette IoU {iou:.2f} < {limits.min_shape_iou:.2f})"
        )
    return reasons


def _product_core(expected: _Expected) -> np.ndarray:
    """The product minus a rim: edges mix in the backdrop and any misregistration."""
    x0, y0, x1, y1 = expected.box
    extent = max(x1 - x0, y1 - y0)
    core = cv2.erode(expected.mask.astype(np.uint8), _disc(max(2, round(extent * 0.01))))
    return core.astype(bool) if core.any() else expected.mask


@dataclass(frozen=True)
class _ColourDifference:
    exposure_gain: float  # linear-light gain from cutout to shot
    light_cast: float  # largest per-channel tint absorbed as the scene's light colour
    delta_e: float  # CIEDE2000 at the configured percentile of the product's pixels
    delta_e_median: float


_LUMINANCE = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _colour_difference(
    expected: _Expected, work: _WorkImage, limits: CheckThresholds
) -> _ColourDifference:
    """CIEDE2000 between the shot's product and the cutout, after the scene's light.

    Both images are blurred slightly so that JPEG noise and a pixel of misregistration
    do not read as colour. The light is taken out in linear RGB as a single exposure
    gain and a bounded per-channel tint (a warm or cool source): a tint common to the
    whole product is the light, a change that differs across the product's colours (a
    turned hue) is not, and the bound keeps a one-colour product's recolouring from
    passing as light.
    """
    core = _product_core(expected)
    shot = cv2.GaussianBlur(work.rgb, (0, 0), 1.2)[core].astype(np.float32) / 255.0
    wanted = cv2.GaussianBlur(expected.rgb, (0, 0), 1.2)[core].astype(np.float32) / 255.0
    step = max(1, len(shot) // 40000)
    shot_linear = srgb_to_linear(shot[::step])
    wanted_linear = srgb_to_linear(wanted[::step])
    gain = float(
        np.median(shot_linear @ _LUMINANCE)
        / max(float(np.median(wanted_linear @ _LUMINANCE)), 1e-4)
    )
    gain = min(max(gain, 1.0 / limits.max_exposure_gain), limits.max_exposure_gain)
    lit = wanted_linear * gain
    # Dark pixels carry no reliable colour: estimate the tint from the others.
    usable = (lit.min(axis=1) > 0.02) & (shot_linear.min(axis=1) > 0.02)
    tint = np.ones(3, np.float32)
    if usable.sum() >= 50:
        tint = np.median(shot_linear[usable] / lit[usable], axis=0).astype(np.float32)
        tint /= float(tint @ _LUMINANCE)
        tint = np.clip(tint, 1 - limits.max_light_cast, 1 + limits.max_light_cast)
    difference = ciede2000(linear_rgb_to_lab(lit * tint), linear_rgb_to_lab(shot_linear))
    return _ColourDifference(
        exposure_gain=gain,
        light_cast=float(np.abs(tint - 1).max()),
        delta_e=float(np.percentile(difference, limits.colour_percentile)),
        delta_e_median=float(np.median(difference)),
    )


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _matched_share(
    expected: _Expected,
    work: _WorkImage,
    scene: _SceneFeatures,
    gain: float,
    limits: CheckThresholds,
) -> float | None:
    """Share of the keypoints the product should show that the shot shows in place.

    Keypoints are taken from the cutout warped into the shot (so both sides are at the
    same scale and sharpness) and looked for among the shot's own keypoints near the
    same position. None when the product has too little texture to say (a share of a
    handful of keypoints is noise).
    """
    x0, y0, x1, y1 = expected.box
    extent = max(x1 - x0, y1 - y0)
    composite = _composite_expected(expected, work, gain)
    gray = cv2.cvtColor(composite[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    core = _product_core(expected)[y0:y1, x0:x1].astype(np.uint8)
    keypoints, wanted = _sift().detectAndCompute(gray, core)
    if wanted is None or len(keypoints) < limits.matched_min_keypoints or scene.descriptors is None:
        return None
    wanted_points = np.array([kp.pt for kp in keypoints], np.float32) + np.array(
        [x0, y0], np.float32
    )
    radius = max(3.0, 0.015 * extent)
    near_box = (
        (scene.points[:, 0] >= x0 - radius)
        & (scene.points[:, 0] <= x1 + radius)
        & (scene.points[:, 1] >= y0 - radius)
        & (scene.points[:, 1] <= y1 + radius)
    )
    if not near_box.any():
        return 0.0
    shot_points = scene.points[near_box]
    shot_descriptors = scene.descriptors[near_box]
    distance = np.sqrt(
        np.maximum(
            (wanted**2).sum(1)[:, None]
            + (shot_descriptors**2).sum(1)[None, :]
            - 2.0 * wanted @ shot_descriptors.T,
            0.0,
        )
    )
    offsets = np.hypot(
        wanted_points[:, None, 0] - shot_points[None, :, 0],
        wanted_points[:, None, 1] - shot_points[None, :, 1],
    )
    distance[offsets > radius] = np.inf
    return float(np.mean(distance.min(axis=1) < limits.matched_max_distance))


def _composite_expected(expected: _Expected, work: _WorkImage, gain: float) -> np.ndarray:
    """The shot as it should look: the cutout over the shot's own backdrop."""
    wanted = np.clip(expected.rgb.astype(np.float32) * gain ** (1 / 2.2), 0, 255)
    alpha = expected.alpha[:, :, None]
    mixed = alpha * wanted + (1.0 - alpha) * work.rgb.astype(np.float32)
    return mixed.astype(np.uint8)


def _fine_detail(rgb: np.ndarray) -> np.ndarray:
    """Luminance band-passed to the scale of print and texture (not shading, not noise)."""
    luminance = _luminance(rgb)
    return cv2.GaussianBlur(luminance, (0, 0), 0.8) - cv2.GaussianBlur(luminance, (0, 0), 3.0)


@dataclass(frozen=True)
class _DetailChange:
    lost_share: float | None  # of the cutout's textured area; None: nothing textured
    added_share: float  # of the product's area: texture where the cutout is plain


#: A cell counts for detail when the product covers this much of it: cells on the
#: outline mix in the backdrop, and the outline is the placement's business, not print.
_INTERIOR = 0.9


def _detail_change(
    expected: _Expected, work: _WorkImage, gain: float, limits: CheckThresholds
) -> _DetailChange:
    """How much of the product's fine pattern the shot lost, and how much it gained.

    Cell by cell over the product, the cutout's fine detail is looked for in the shot
    within a few pixels: a cell is lost when the best correlation is low (the pattern is
    different: a replaced label) or the shot keeps too little of its contrast (a blur,
    a flat fill). Correlation ignores relighting; the contrast ratio is loose enough for
    a ±10 % exposure. A plain cell of the cutout that shows strong texture in the shot
    is added detail (a print or text drawn onto a plain product).
    """
    x0, y0, x1, y1 = expected.box
    extent = max(x1 - x0, y1 - y0)
    cell = max(6, round(extent / limits.detail_cells_across))
    slack = max(2, round(expected.uncertainty * extent))
    wanted = _fine_detail(_composite_expected(expected, work, gain))
    shot = _fine_detail(work.rgb)
    padded = cv2.copyMakeBorder(shot, slack, slack, slack, slack, cv2.BORDER_REFLECT)
    textured = lost = plain_area = added = 0.0
    for top in range(y0, y1, cell):
        for left in range(x0, x1, cell):
            bottom, right = min(top + cell, y1), min(left + cell, x1)
            coverage = float(expected.mask[top:bottom, left:right].mean())
            template = np.ascontiguousarray(wanted[top:bottom, left:right])
            if coverage < _INTERIOR or template.shape[0] < 4 or template.shape[1] < 4:
                continue
            contrast = float(template.std())
            weight = coverage * template.size
            if contrast < limits.detail_min_texture:
                plain_area += weight
                # Texture in the shot counts as added unless the cutout has some within
                # the located position's slack: a product edge a few pixels off is not
                # a print on a plain product.
                nearby = wanted[max(0, top - slack) : bottom + slack,
                                max(0, left - slack) : right + slack]
                strong = 2 * limits.detail_min_texture
                if float(shot[top:bottom, left:right].std()) > strong and nearby.std() <= strong:
                    added += weight
                continue
            search = padded[top : bottom + 2 * slack, left : right + 2 * slack]
            scores = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
            _, score, _, (dx, dy) = cv2.minMaxLoc(scores)
            found = search[dy : dy + template.shape[0], dx : dx + template.shape[1]]
            kept = float(found.std()) / contrast
            textured += weight
            if score < limits.detail_min_ncc or kept < limits.detail_min_contrast:
                lost += weight
    return _DetailChange(
        lost_share=lost / textured if textured else None,
        added_share=added / (textured + plain_area) if plain_area else 0.0,
    )


def _shape_iou(expected: _Expected, foreground: _Foreground, limits: CheckThresholds) -> float:
    """IoU of the warped silhouette with the foreground in a band around it.

    Beyond the band, foreground is the extra-object rule's business (a horizon or a
    table edge touching the product must not count as the product's shape).
    """
    return _iou(expected.mask, foreground.mask & _near_product(expected, limits))


def _near_product(expected: _Expected, limits: CheckThresholds) -> np.ndarray:
    """The product and a band around it (contact shadow, reflection, re-drawn rim)."""
    height, width = expected.mask.shape
    margin = max(3, round(limits.extra_object_band * max(height, width)))
    return cv2.dilate(expected.mask.astype(np.uint8), _disc(margin)).astype(bool)


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    union = int(np.logical_or(first, second).sum())
    return int(np.logical_and(first, second).sum()) / union if union else 0.0


# --- rules: the scene ------------------------------------------------------------------


@dataclass(frozen=True)
class _Foreground:
    """Pixels that stand out from a smooth model of the backdrop, and their regions."""

    mask: np.ndarray  # bool HxW
    backdrop_rgb: np.ndarray  # float32 HxWx3 in 0..1, the fitted backdrop
    contrast: np.ndarray  # float32 HxW: |L* - backdrop L*|
    gradient: np.ndarray  # float32 HxW: |grad L*| per pixel, nearly unblurred


def _foreground(
    work: _WorkImage, product: np.ndarray | None, limits: CheckThresholds
) -> _Foreground:
    """Segment what is not backdrop.

    The backdrop is modelled as a smooth colour surface (a quadratic in x and y per Lab
    channel, enough for gradients, sweeps and vignettes) fitted to the pixels away from
    the product, then trimmed of outliers; its own texture (wood grain, linen) sets how
    far a pixel must stand out.
    """
    height, width = work.shape
    blurred = cv2.GaussianBlur(work.rgb, (0, 0), 2.0).astype(np.float32) / 255.0
    lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2Lab)
    ys, xs = np.mgrid[0:height:6, 0:width:6]
    if product is not None and product.any():
        margin = max(3, round(0.02 * max(height, width)))
        near_product = cv2.dilate(product.astype(np.uint8), _disc(margin)).astype(bool)
        sample_ok = ~near_product[ys, xs]
    else:
        # Product unknown: a studio product may fill most of the frame, so the backdrop
        # is sampled where it reliably shows, an outer ring (trimming drops the parts
        # of the product that reach into it).
        ring = 0.1
        sample_ok = (
            (xs < ring * width)
            | (xs >= (1 - ring) * width)
            | (ys < ring * height)
            | (ys >= (1 - ring) * height)
        )
    design = _surface_terms(xs / width, ys / height)
    values = lab[ys, xs]
    keep = sample_ok.ravel()
    design_all = design.reshape(-1, design.shape[-1])
    values_all = values.reshape(-1, 3)
    coefficients = np.zeros((design.shape[-1], 3))
    # Trimmed least squares: objects pull the fit, so refit on the closer half.
    for _ in range(3):
        if keep.sum() < 12:
            keep = np.ones_like(keep)
        chosen = design_all[keep]
        # Normal equations: six unknowns, so this is exact enough and far cheaper.
        coefficients = np.linalg.solve(
            chosen.T @ chosen + 1e-6 * np.eye(chosen.shape[1]), chosen.T @ values_all[keep]
        )
        residual = np.linalg.norm(values_all - design_all @ coefficients, axis=1)
        cut = np.percentile(residual[keep], 60)
        keep = keep & (residual <= max(cut, 1e-6))
    backdrop_residual = residual[sample_ok.ravel()] if sample_ok.any() else residual
    centre = float(np.median(backdrop_residual))
    spread = 1.4826 * float(np.median(np.abs(backdrop_residual - centre)))
    threshold = max(
        limits.foreground_min_delta, centre + limits.foreground_texture_spreads * spread
    )
    full_design = _surface_terms(*np.meshgrid(np.arange(width) / width, np.arange(height) / height))
    model = full_design @ coefficients
    distance = np.linalg.norm(lab - model.astype(np.float32), axis=2)
    mask = distance > threshold
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, _disc(1)).astype(bool)
    backdrop_rgb = cv2.cvtColor(model.astype(np.float32), cv2.COLOR_Lab2RGB)
    # Edges are measured on a barely blurred lightness, so a step stays a step.
    sharp = cv2.GaussianBlur(work.rgb, (0, 0), 0.7).astype(np.float32) / 255.0
    lightness = cv2.cvtColor(sharp, cv2.COLOR_RGB2Lab)[:, :, 0]
    gradient_x = cv2.Sobel(lightness, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gradient_y = cv2.Sobel(lightness, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return _Foreground(
        mask=mask,
        backdrop_rgb=backdrop_rgb,
        contrast=np.abs(lab[:, :, 0] - model[:, :, 0].astype(np.float32)),
        gradient=np.hypot(gradient_x, gradient_y),
    )


def _surface_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).astype(np.float64)


def _extra_object_reasons(
    work: _WorkImage,
    foreground: _Foreground,
    expected: _Expected | None,
    limits: CheckThresholds,
    measures: dict[str, float],
    expect_person: bool,
) -> list[str]:
    """Foreground away from the product: a second object, a prop, a hand, a person."""
    near = _near_product(expected, limits) if expected is not None and expected.mask.any() else None
    away = foreground.mask & ~near if near is not None else foreground.mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(away.astype(np.uint8))
    # A horizon or table edge may be cut in two by the product: judge spans with it.
    joined = away | near if near is not None else away
    _, joined_labels, joined_stats, _ = cv2.connectedComponentsWithStats(joined.astype(np.uint8))
    # Specks (texture, noise) are not objects: only regions of some size count.
    minimum = limits.extra_object_min_region * away.size
    mirror = _Mirror.of(expected, work) if expected is not None else None
    area = reflected = 0
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < minimum:
            continue
        region = labels == label
        whole = joined_stats[joined_labels[region][0]]
        span = (int(whole[cv2.CC_STAT_WIDTH]), int(whole[cv2.CC_STAT_HEIGHT]))
        if _is_scenery(region, span, foreground, limits):
            continue
        if mirror is not None and mirror.shows_in(region, limits):
            reflected += int(stats[label, cv2.CC_STAT_AREA])
            continue
        area += int(stats[label, cv2.CC_STAT_AREA])
    share = area / away.size
    measures["extra_object_share"] = round(share, 4)
    measures["reflection_share"] = round(reflected / away.size, 4)
    if expect_person or share <= limits.max_extra_object_share:
        # A scene with a person has a body, hands and clothes beside the product.
        return []
    return [
        (
            f"extra object in the scene ({share:.1%} of the frame > "
            f"{limits.max_extra_object_share:.1%})"
        )
    ]


@dataclass(frozen=True)
class _Mirror:
    """The product mirrored about its own ground line, column by column: where a glossy
    floor shows its reflection, and what the reflection looks like (dimmer, fading,
    perhaps blurred, but with the product's light and dark parts where they mirror)."""

    lightness: np.ndarray  # float32 HxW: L* of the mirrored product, lightly blurred
    footprint: np.ndarray  # bool HxW: where the mirrored product lies
    shot_lightness: np.ndarray  # float32 HxW: L* of the shot, blurred alike

    @classmethod
    def of(cls, expected: _Expected, work: _WorkImage) -> _Mirror:
        mask = expected.alpha > 0.5
        height, width = mask.shape
        standing = mask.any(axis=0)
        ground = np.where(standing, height - 1 - np.argmax(mask[::-1], axis=0), -1)
        rows = np.arange(height)[:, None]
        source = 2 * ground[None, :] - rows
        below = standing[None, :] & (rows > ground[None, :]) & (source >= 0)
        source = np.clip(source, 0, height - 1)
        columns = np.broadcast_to(np.arange(width), (height, width))
        footprint = below & (expected.alpha[source, columns] > 0.5)
        return cls(
            lightness=_blurred_lightness(expected.rgb[source, columns]),
            footprint=footprint,
            shot_lightness=_blurred_lightness(work.rgb),
        )

    def shows_in(self, region: np.ndarray, limits: CheckThresholds) -> bool:
        """The region lies in the mirrored product's place and follows its light and
        dark parts (correlation of lightness): a reflection, not a second object."""
        inside = region & self.footprint
        if inside.sum() < limits.reflection_min_overlap * region.sum() or inside.sum() < 16:
            return False
        shot, mirrored = self.shot_lightness[inside], self.lightness[inside]
        if shot.std() < 1e-3 or mirrored.std() < 1e-3:
            return False
        return float(np.corrcoef(shot, mirrored)[0, 1]) >= limits.reflection_min_correlation


def _blurred_lightness(rgb: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(rgb, (0, 0), 2.0).astype(np.float32) / 255.0
    return cv2.cvtColor(blurred, cv2.COLOR_RGB2Lab)[:, :, 0]


def _is_scenery(
    region: np.ndarray, span: tuple[int, int], foreground: _Foreground, limits: CheckThresholds
) -> bool:
    """Backdrop detail, not an object: out of focus, or spanning the frame.

    A shadow, bokeh or an out-of-focus window changes over a wide edge; a horizon, a
    table edge or a wall line runs across the frame. An object competing with the
    product is in focus (its edge is a step a pixel or two wide) and compact.
    """
    height, width = region.shape
    if span[0] >= limits.scenery_min_span * width or span[1] >= limits.scenery_min_span * height:
        return True
    return _edge_width(region, foreground) >= limits.scenery_min_edge_width


def _edge_width(region: np.ndarray, foreground: _Foreground) -> float:
    """How wide the region's edge is, as a percentage of the frame's long side.

    Its contrast with the backdrop over the steepest lightness gradient on its rim:
    a step is a pixel or two wide whatever its contrast; a blur spreads it.
    """
    as_bytes = region.astype(np.uint8)
    rim = cv2.dilate(as_bytes, _disc(2)).astype(bool) & ~cv2.erode(as_bytes, _disc(2)).astype(bool)
    contrast = float(np.median(foreground.contrast[region]))
    steepest = float(np.percentile(foreground.gradient[rim], 90)) if rim.any() else 0.0
    pixels = contrast / max(steepest, 1e-3)
    return 100.0 * pixels / max(region.shape)


# --- rules: faces ------------------------------------------------------------------------


def _cascades() -> tuple[cv2.CascadeClassifier, cv2.CascadeClassifier]:
    if not hasattr(_per_thread, "cascades"):
        folder = Path(cv2.data.haarcascades)
        _per_thread.cascades = (
            cv2.CascadeClassifier(str(folder / "haarcascade_frontalface_default.xml")),
            cv2.CascadeClassifier(str(folder / "haarcascade_profileface.xml")),
        )
    return _per_thread.cascades


def _detect_faces(gray: np.ndarray, limits: CheckThresholds) -> list[tuple[int, int, int, int]]:
    """Frontal faces and profiles looking either way, in `gray`'s pixels, merged."""
    frontal, profile = _cascades()
    scale = min(1.0, limits.face_long_side / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    side = max(20, round(limits.face_min_size_share * min(small.shape)))
    options = {
        "scaleFactor": 1.15,
        "minNeighbors": limits.face_min_neighbors,
        "minSize": (side, side),
    }
    width = small.shape[1]
    found = [tuple(int(v) for v in box) for box in frontal.detectMultiScale(small, **options)]
    found += [tuple(int(v) for v in box) for box in profile.detectMultiScale(small, **options)]
    found += [
        (width - int(x) - int(w), int(y), int(w), int(h))
        for x, y, w, h in profile.detectMultiScale(cv2.flip(small, 1), **options)
    ]
    merged: list[tuple[int, int, int, int]] = []
    for box in found:
        if all(_box_overlap(box, kept) < 0.3 for kept in merged):
            merged.append(box)
    return [
        (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for x, y, w, h in merged
    ]


def _box_overlap(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    inter_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    smaller = min(aw * ah, bw * bh)
    return inter_w * inter_h / smaller if smaller else 0.0


def _face_reasons(
    work: _WorkImage,
    expected: _Expected | None,
    foreground: _Foreground,
    expect_person: bool,
    limits: CheckThresholds,
    measures: dict[str, float],
) -> list[str]:
    hull = _hull(expected.mask) if expected is not None and expected.mask.any() else None
    boxes = _detect_faces(_where_objects_are(work, foreground, hull), limits)
    if hull is not None:
        # What lies on the product (a printed face, a pattern seen through a handle)
        # is the product's: its detail and colour rules judge it.
        boxes = [
            (x, y, w, h)
            for x, y, w, h in boxes
            if not hull[min(y + h // 2, hull.shape[0] - 1), min(x + w // 2, hull.shape[1] - 1)]
        ]
    faces = len(boxes)
    measures["faces"] = float(faces)
    if expect_person and faces != 1:
        return [f"expected one person's face, found {faces}"]
    if not expect_person and faces:
        return [f"face found in a scene without a person ({faces} face{'s' if faces > 1 else ''})"]
    return []


def _where_objects_are(
    work: _WorkImage, foreground: _Foreground, hull: np.ndarray | None
) -> np.ndarray:
    """The shot's luminance where a counted face could be; the smooth backdrop elsewhere.

    A face is an object that stands out from the backdrop, and a face centred on the
    product is not counted. Replacing the plain backdrop and the product's interior by
    the fitted backdrop spares the cascades most of their work (their scan is the
    costliest step of a check) and keeps wood grain or a grille from reading as a face.
    The product's rim is kept, so a face beside the product, overlapping it, is seen.
    """
    height, width = foreground.mask.shape
    near = cv2.dilate(foreground.mask.astype(np.uint8), _disc(round(0.02 * max(height, width))))
    keep = near.astype(bool)
    if hull is not None:
        rows, cols = np.nonzero(hull)
        rim = round(0.15 * min(rows.max() - rows.min(), cols.max() - cols.min())) + 1
        keep &= ~cv2.erode(hull.astype(np.uint8), _disc(rim)).astype(bool)
    backdrop = np.clip(foreground.backdrop_rgb * 255.0, 0, 255).astype(np.uint8)
    return np.where(keep, work.gray, cv2.cvtColor(backdrop, cv2.COLOR_RGB2GRAY))


def _hull(mask: np.ndarray) -> np.ndarray:
    points = cv2.findNonZero(mask.astype(np.uint8))
    hull = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    return hull.astype(bool)
