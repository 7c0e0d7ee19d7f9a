"""Background removal for Lightbox's local engine, with classic computer vision only.

This is the offline stand-in for the cloud background-removal model: it must give a
shop a cutout good enough for a white-background listing, on one CPU core, with no
model weights. No single classic cue is reliable on real phone snaps, so the cutout
combines several, each covering the others' blind spots:

1. *Boundary connectivity* (robust background detection on superpixels): background
   regions touch the frame along a long stretch for their size; a product sits inside
   it. Strong on plain or smooth backgrounds, confused by textured ones (a treeline
   breaks into many small regions that each look enclosed).
2. *Dissimilarity to the frame* in colour and texture (local binary patterns): a
   textured background looks, in the middle of the photo, like it does at the frame,
   so this cue catches much of what the first one misses. Frame regions that look
   like nothing else on the frame (a hand entering from the edge) are not taken as
   background samples.
3. *Depth of field*: each edge's own blur is estimated (Zhuo and Sim: blur it again,
   compare gradients). When the photo's frame is out of focus, a region clearly
   blurrier than the salient part (a tree on the horizon, a bush in the park behind)
   is scene behind the subject, however much it stands out in colour; regions
   without edges take the blur of like-coloured neighbours.
4. GrabCut, seeded from the product of the cues, turns the coarse prior into a
   pixel-accurate mask with colour models learnt from this very photo. When the
   cutout runs across the frame from side to side (a treeline or a runway came
   with the product), the seeds are made stricter step by step, as long as what
   falls away is clearly less salient than what stays.
5. *Background seen through the product* (the boards inside a bicycle's wheels),
   which boundary connectivity takes for product because it is enclosed: enclosed,
   frame-coloured, wide regions that are less salient than the rest and, in colour
   and texture, nearer to the background just outside than to the product around,
   are given back to the background, and GrabCut runs again from there.
6. *A support surface* (a bench, a table) under the subject: the cutout juts out on
   both sides along one flat edge under the subject's base. From that edge down,
   each pixel goes to the subject or to the surface by colour-and-texture mixtures
   of the subject above and of what lies beside the base below: paws and tyres
   stay, planks go, and a lower part of the subject's own stuff (a saucer) stays.
7. The cast shadow, which GrabCut keeps with the product, is found (the ground's
   colour, darker, in a thin wide layer under the product) and taken away, with a
   second GrabCut deciding where shadow meets product.
8. Clean-up that any product cutout needs: keep the main object(s), drop specks,
   and fill every hole unless its colour is a common one in the background nearest
   to it: the table through a mug's handle stays open, a black eye or logo that
   GrabCut gave to a black bench elsewhere in the photo is product again.
9. Edge matting at a higher resolution: in a band along the edge, each pixel's
   colour is placed between the nearby product and background colours, and a
   guided filter smooths that into a soft, sub-pixel edge; the colour of
   half-transparent edge pixels is replaced by the nearby product colour so no
   background halo shows on white.

The heavy analysis runs on a small copy (long side `ANALYSIS_SIDE`), the matting on a
copy of at most `MATTING_SIDE`, so the time hardly grows with the photo's size.
`bench/cutout_quality.py` measures it against the reference masks in the shared
samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix, diags
from scipy.sparse.csgraph import shortest_path
from scipy.sparse.linalg import spsolve
from skimage.feature import local_binary_pattern
from skimage.segmentation import slic

from lightbox.errors import InvalidImage

logger = logging.getLogger(__name__)

#: Long side of the copy on which the product is found. Larger costs time and gains
#: little: the matting step recovers the edge detail at a higher resolution.
ANALYSIS_SIDE = 400
#: Long side of the copy on which the edge is matted.
MATTING_SIDE = 1024
#: Below this many pixels on the short side there is nothing to analyse; the image
#: is returned opaque rather than guessed at.
MIN_SIDE = 24

# Superpixels and the robust-background saliency (Zhu et al., CVPR 2014). The sigmas
# are the paper's, for CIE Lab in its natural range (L in 0..100).
_SUPERPIXEL_SCALES = (300,)
_SIGMA_COLOUR = 10.0
_SIGMA_BOUNDARY = 1.0
_SIGMA_SPATIAL = 0.25
_SMOOTHNESS_FLOOR = 0.1
# Share of the standing-out area allowed above the top of the 0..1 scale.
_ROBUST_SHARE_CUES = 0.1
# Frame dissimilarity: distance to the k-th nearest frame sample, in a feature space
# of colour, local colour spread and texture.
_FRAME_NEIGHBOUR = 2
# A border superpixel is a trusted background sample when its `_FRAME_COMPANY`-th
# nearest border neighbour is within `_FRAME_OUTLIER_RATIO` times the typical such
# distance, or when one within `_FRAME_ALIKE` typical nearest-neighbour gaps meets
# another side of the frame.
_FRAME_COMPANY = 5
_FRAME_OUTLIER_RATIO = 4.0
_FRAME_ALIKE = 1.5
_TEXTURE_SIGMA = 5.0
# Depth of field (Zhuo and Sim's defocus estimate at edges): the edge is blurred again
# by `_REBLUR` px and the ratio of gradients gives its own blur. A superpixel with at
# least `_FOCUS_MIN_EDGES` edge pixels has a focus (the blur of its sharper edges, the
# `_FOCUS_PERCENTILE`th percentile: soft shading on a sharp subject is no defocus,
# while nothing in a defocused region is sharp). It counts
# as out of the subject's focal plane from `_DEFOCUS_MARGIN` px more blur than the
# salient part's, fully at `_DEFOCUS_RAMP` px beyond that, and then keeps
# 1 - `_DEFOCUS_WEIGHT` of its prior. The cue only speaks when the photo has a
# shallow depth of field: at least `_DEFOCUS_FRAME_SHARE` of the frame is out of focus.
_REBLUR = 1.0
_FOCUS_MIN_EDGES = 8
_FOCUS_PERCENTILE = 25
_DEFOCUS_MARGIN = 0.5
_DEFOCUS_RAMP = 0.5
_DEFOCUS_WEIGHT = 0.8
_DEFOCUS_FRAME_SHARE = 0.2
# Regions without edges take the defocus of neighbours within about `_SIGMA_COLOUR` in
# colour (summed weight above this), over at most this many steps.
_FOCUS_SPREAD_WEIGHT = 0.5
_FOCUS_SPREAD_STEPS = 10
# GrabCut seeds, on the combined prior normalised to 0..1. The probable-product
# threshold is raised step by step while the cutout still spans the frame.
_PRIOR_PROBABLE = 0.45
_PRIOR_PROBABLE_STRICTER = (0.55, 0.65, 0.75, 0.85)
# A stricter step that drops more than this share of the cutout, with a mean prior
# at least this share of what stays, is cutting into the product, not background.
_LADDER_NEGLIGIBLE = 0.1
_LADDER_AS_SALIENT = 0.9
_SPAN_CONTACT = 0.03
_PRIOR_SURE = 0.87
# Support surface: the cutout juts out on both sides by at least `_SUPPORT_OVERHANG`
# of the subject's width, along an edge within `_SUPPORT_EDGE` of its height of one
# row, with at least `_SUPPORT_PART` of its area above (the subject).
_SUPPORT_OVERHANG = 0.1
_SUPPORT_EDGE = 0.03
_SUPPORT_PART = 0.15
# A flat edge stays within `_SUPPORT_EDGE` rows over at least this many times as many
# columns (no steeper than 1 in 4).
_SUPPORT_FLAT = 4
# Subject and support are told apart by mixtures of this many components fitted to
# at most this many pixels each, their evidence pooled over this sigma (px).
_MIXTURE_COMPONENTS = 5
_MIXTURE_SAMPLES = 2000
_MIXTURE_MIN_SAMPLES = 200
_SUPPORT_SMOOTHING = 1.5
# See-through background: candidate regions must be at least this share of the
# object and 2 * `_SEE_THROUGH_NARROWEST` + 1 px wide at the analysis size (a stripe
# is not a window); the background and product they are compared with lie within
# `_SEE_THROUGH_CONTEXT` of the long side (or the region's own size) of them, sampled
# to at most `_SEE_THROUGH_SAMPLES` pixels each.
_SEE_THROUGH_SHARE = 0.02
_SEE_THROUGH_NARROWEST = 2
_SEE_THROUGH_CONTEXT = 0.05
_SEE_THROUGH_SAMPLES = 400
_PRIOR_SURE_BACKGROUND = 0.1
_FRAME_SEED_WIDTH = 0.02
_GRABCUT_ITERATIONS = 5
# Cast shadow: lightness against the nearby background (sigma of `_SHADOW_CONTEXT`
# of the long side) within this range, chroma within this distance (CIE Lab), and
# at most this thick, as a share of the product's height.
_SHADOW_CONTEXT = 0.04
_SHADOW_MIN_CONTEXT = 0.02
_SHADOW_DARKEST = 0.15
_SHADOW_LIGHTEST = 0.9
_SHADOW_CHROMA = 10.0
_SHADOW_THICKNESS = 0.2
_SHADOW_MIN_WIDTH = 0.04
_SHADOW_REFINE = 2
# How far above the shadow found GrabCut may still take pixels away, as a share of
# the product's height.
_SHADOW_REACH = 0.03
_SHADOW_AROUND = 0.1
# Clean-up, as fractions of the analysed image or of the main object.
_MIN_PART_OF_IMAGE = 0.002
_MIN_PART_OF_MAIN = 0.5
# Holes below this share of the object are filled whatever they show; larger ones
# only when their colour is not within `_BACKDROP_DELTA_E` of at least
# `_BACKDROP_SHARE` % of the background nearest to them (up to `_BACKDROP_RING` of
# the long side further than the nearest background pixel).
_SPECK = 0.001
_BACKDROP_RING = 0.03
_BACKDROP_SHARE = 25
_BACKDROP_DELTA_E = 10.0
# Letterbox bars: at most this share of the side each, and the photo must start
# with a line that differs from the bar along this share of its length.
_MAX_BAR_SHARE = 0.35
_BAR_EDGE_SHARE = 0.85
# Matting: the guided filter's window radius in analysis pixels, its regulariser,
# and how much the filtered edge is steepened (1 keeps the filter's own falloff).
_MATTING_RADIUS = 2.0
_MATTING_EPS = 1e-3
_EDGE_CONTRAST = 2.0
# In the edge band, how far apart (RGB, 0..1) product and background colours must be
# before the pixel colours, rather than the mask, say where the edge is.
_MATTING_MIN_CONTRAST = 0.1
# Alpha from which a pixel counts as solid product (and below 1 - this, as backdrop).
_SOLID = 0.98
# Alpha is "meaningful" when this share of pixels is clearly transparent and clearly
# opaque.
_MEANINGFUL_SHARE = 0.01


def remove_background(image: Image.Image) -> Image.Image:
    """RGBA image of the same size: the product opaque, the background transparent, a soft (matted) edge.

    An image that already carries a real cutout in its alpha (a shop's own PNG) is
    returned as it is, converted to RGBA. Raises `InvalidImage` when the image has no
    pixels or its data cannot be decoded (a truncated or corrupt file opened lazily).
    """
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImage("The photo cannot be read: its data is truncated or corrupt.",
                           reason=str(error)) from error
    if image.width == 0 or image.height == 0:
        raise InvalidImage("The photo has no pixels.", size=image.size)
    if alpha_is_meaningful(image):
        return image.convert("RGBA")
    rgb = np.asarray(image.convert("RGB"))
    alpha = _product_alpha(rgb)
    colour = _decontaminate_edge(rgb, alpha)
    rgba = np.dstack([colour, np.round(alpha * 255).astype(np.uint8)])
    return Image.fromarray(rgba, "RGBA")


def alpha_is_meaningful(image: Image.Image) -> bool:
    """True when an RGBA/LA/P-with-transparency image already carries a real cutout (some clearly transparent area, some opaque area); then remove_background returns it as is (converted to RGBA)."""
    has_alpha = image.mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return False
    alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    if alpha.size == 0:
        return False
    transparent = np.count_nonzero(alpha <= 16) / alpha.size
    opaque = np.count_nonzero(alpha >= 240) / alpha.size
    return transparent >= _MEANINGFUL_SHARE and opaque >= _MEANINGFUL_SHARE


# --- finding the product -----------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """Uniform bars (letterboxing) around the photo, in pixels; they are background."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    def crop(self, a: np.ndarray) -> np.ndarray:
        return a[self.top : a.shape[0] - self.bottom, self.left : a.shape[1] - self.right]


def _product_alpha(rgb: np.ndarray) -> np.ndarray:
    """Alpha in 0..1 at the photo's size."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        return np.ones((height, width), np.float32)
    frame = _letterbox(rgb)
    photo = frame.crop(rgb)
    if min(photo.shape[:2]) < MIN_SIDE:
        frame, photo = _Frame(), rgb
    small = _resize_long_side(photo, ANALYSIS_SIDE, cv2.INTER_AREA)
    mask = _find_product(small)
    if mask is None:
        logger.info("no product stands out from the background; keeping the whole photo")
        return np.ones((height, width), np.float32)
    alpha = np.zeros((height, width), np.float32)
    core = _matte(photo, mask)
    alpha[frame.top : height - frame.bottom, frame.left : width - frame.right] = core
    return alpha


def _find_product(small: np.ndarray) -> np.ndarray | None:
    """Binary mask of the product at the analysis size, or None when nothing stands out."""
    pixel_prior, trusted_frame, frame_coloured = _object_prior(small)
    if pixel_prior is None:
        return None
    # Seeds are never sure product where the photo has the backdrop's colour: a
    # hole through a handle is salient, enclosed, and still background.
    sure_prior = np.where(frame_coloured, np.minimum(pixel_prior, _PRIOR_SURE), pixel_prior)
    mask = _keep_main_objects(
        _grabcut(small, sure_prior, trusted_frame, _PRIOR_PROBABLE), pixel_prior
    )
    for threshold in _PRIOR_PROBABLE_STRICTER:
        if not _spans_frame(mask, trusted_frame):
            break
        stricter = _keep_main_objects(
            _grabcut(small, sure_prior, trusted_frame, threshold), pixel_prior
        )
        if _cuts_into_product(mask, stricter, pixel_prior):
            # What spans is the product itself (two cars side by side, a long shelf).
            break
        mask = stricter
    if not mask.any():
        return None
    openings = _see_through(small, mask, pixel_prior, frame_coloured)
    if openings.any():
        # GrabCut learnt the background seen through the product as product colour;
        # told where it shows, it also finds it where it was less sure (a frame's
        # triangle behind the wheels).
        seeds = _seeds(mask, sure_prior, trusted_frame)
        seeds[openings] = cv2.GC_BGD
        mask = _keep_main_objects(_grabcut_from_seeds(small, seeds), pixel_prior)
    shelf = _support_top(mask)
    if shelf is not None:
        mask = _without_support(small, mask, shelf, pixel_prior)
    shadow = _cast_shadow(small, mask)
    if shadow.any():
        if _SHADOW_REFINE:
            mask = _without_shadow(small, mask, shadow, sure_prior)
        mask = _keep_main_objects(mask & ~shadow, pixel_prior)
    return _fill_holes(mask, small)


def _support_top(mask: np.ndarray) -> int | None:
    """The row where a support surface under the subject begins, or None.

    A subject on a bench, a table or a plinth makes a T of the cutout: the subject,
    then, under its base, the flat top edge of a surface that juts out on both
    sides. Flat is the point: the body under a cat's head, the shoulders under a
    face or the bonnet below a windscreen widen the cutout too, but their outline
    curves or slopes away, where a surface's edge runs on along one row. So for each
    row, the columns beside the base (the rows just above) count as jutting out
    while the cutout's top edge there lies within a few rows of this one; the row
    chosen is where the lesser side juts out furthest, as a share of the subject's
    width (a cat's paws jut out from under its round belly, not beyond its body).
    The subject above must be a real part of the cutout; the surface below may be
    no more than the dark line between two planks.
    """
    rows = np.flatnonzero(mask.any(1))
    if len(rows) < 4:
        return None
    top, bottom = rows[0], rows[-1] + 1
    step = _support_step(mask)
    area_above = np.cumsum(np.count_nonzero(mask[top:bottom], 1))
    best, shelf = 0.0, None
    for row in range(top + step, bottom - step):
        share = area_above[row - 1 - top] / area_above[-1]
        if share < _SUPPORT_PART:
            continue
        base = np.flatnonzero(mask[row - step : row].any(0))
        if not len(base):
            continue
        edge_here = mask[row : row + step].any(0) & ~mask[row - step : row].any(0)
        jut = min(
            _run_length(edge_here[: base[0]][::-1], step),
            _run_length(edge_here[base[-1] + 1 :], step),
        )
        if jut < _SUPPORT_FLAT * step:
            continue  # within `step` rows over fewer columns: a curve, not an edge
        above = np.flatnonzero(mask[top:row].any(0))
        overhang = jut / (above[-1] - above[0] + 1)
        if overhang > best:
            best, shelf = overhang, row
    return shelf if best >= _SUPPORT_OVERHANG else None


def _run_length(flags: np.ndarray, gap: int) -> int:
    """How far the flags run on from the start, over gaps of at most `gap` misses."""
    misses = 0
    for index, flag in enumerate(flags):
        misses = 0 if flag else misses + 1
        if misses > gap:
            return index - misses + 1
    return len(flags) - misses


def _without_support(
    small: np.ndarray, mask: np.ndarray, shelf: int, prior: np.ndarray
) -> np.ndarray:
    """The mask less the support surface that starts at the row `shelf`.

    From the shelf down, each pixel of the cutout goes to the subject or to the
    support by which it looks more like, in colour and texture: a mixture model of
    the subject above the shelf against one of what lies below it beside the
    subject's base (the surface in plain view, and the ground under it). The
    subject's paws, tail or tyres on the surface look like the subject and stay; the
    planks go, though wood and skin share a colour (grain is not skin). A lower part
    made of the same stuff as the subject (a saucer under its cup) looks like the
    subject, and stays.
    """
    height, width = mask.shape
    above = np.arange(height)[:, None] < shelf
    subject = mask & above
    base_columns = np.flatnonzero(subject[max(0, shelf - _support_step(mask)) : shelf].any(0))
    if not len(base_columns):
        return mask
    # What lies beside the base below the shelf, in the cutout or already out of it,
    # within a base's width: the surface, and whatever else is there to be told
    # from the subject.
    first, last = base_columns[0], base_columns[-1]
    reach = last - first + 1
    beside = np.zeros(width, bool)
    beside[max(0, first - reach) : first] = True
    beside[last + 1 : last + 1 + reach] = True
    bottom = np.flatnonzero(mask.any(1))[-1]
    surface = ~above & (np.arange(height)[:, None] <= bottom) & beside[None, :]
    if np.count_nonzero(surface) < _MIXTURE_MIN_SAMPLES:
        return mask  # too little beside the subject to learn the surface from
    # Colour and its local spread (grain, fur): the LBP histogram, ten numbers that
    # blur across the subject's edge, would outvote the three of colour.
    features = _pixel_features(small)[..., :6]
    subject_model = _Mixture.fit(features[subject])
    surface_model = _Mixture.fit(features[surface])
    below = mask & ~above
    # Judged with the surface around it, the pixel's neighbours vote, as GrabCut's
    # smoothness would: a knot in a plank is not a paw, nor a dark gap between two
    # planks a line of the subject.
    judged = below | surface
    evidence = np.zeros(mask.shape, np.float32)
    evidence[judged] = subject_model.log_likelihood(
        features[judged]
    ) - surface_model.log_likelihood(features[judged])
    weight = cv2.GaussianBlur(judged.astype(np.float32), (0, 0), _SUPPORT_SMOOTHING)
    evidence = cv2.GaussianBlur(evidence, (0, 0), _SUPPORT_SMOOTHING) / np.maximum(weight, 1e-6)
    return _keep_main_objects(subject | (below & (evidence > 0)), prior)


def _support_step(mask: np.ndarray) -> int:
    """Rows within which a surface's top edge juts out: a share of the cutout's height."""
    rows = np.flatnonzero(mask.any(1))
    return max(2, round(_SUPPORT_EDGE * (rows[-1] - rows[0] + 1))) if len(rows) else 2


@dataclass(frozen=True)
class _Mixture:
    """A Gaussian mixture with diagonal covariances, fitted by k-means (as GrabCut's)."""

    log_weights: np.ndarray  # (k,)
    means: np.ndarray  # (k, d)
    variances: np.ndarray  # (k, d)

    @classmethod
    def fit(cls, samples: np.ndarray) -> _Mixture:
        samples = samples[:: max(1, len(samples) // _MIXTURE_SAMPLES)].astype(np.float32)
        k = min(_MIXTURE_COMPONENTS, len(samples))
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_MAX_ITER, 20, 1e-3)
        cv2.setRNGSeed(0)
        _, labels, _ = cv2.kmeans(samples, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
        labels = labels.ravel()
        # A floor under each variance: a flat backdrop must not give one component a
        # likelihood of infinity.
        floor = 1e-2 * float(samples.var(0).mean()) + 1e-6
        means, variances, counts = [], [], []
        for j in range(k):
            members = samples[labels == j]
            if len(members) < 2:
                continue
            means.append(members.mean(0))
            variances.append(members.var(0) + floor)
            counts.append(len(members))
        weights = np.asarray(counts, np.float64) / sum(counts)
        return cls(np.log(weights), np.stack(means), np.stack(variances))

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        per_component = np.stack(
            [
                log_weight
                - 0.5 * (((x - mean) ** 2) / variance + np.log(2 * np.pi * variance)).sum(1)
                for log_weight, mean, variance in zip(
                    self.log_weights, self.means, self.variances, strict=True
                )
            ],
            1,
        )
        top = per_component.max(1)
        return top + np.log(np.exp(per_component - top[:, None]).sum(1))


def _see_through(
    small: np.ndarray, mask: np.ndarray, prior: np.ndarray, frame_coloured: np.ndarray
) -> np.ndarray:
    """Background seen through the product, which GrabCut kept: the boards inside a
    bicycle's wheels, the wall through a basket's handle.

    Boundary connectivity takes anything enclosed by the product for product, and
    GrabCut, seeded so, learns its colours as product colours. Such a region has the
    frame's colour; it is enclosed; it is a real share of the object once thin
    product across it (spokes, strings) is looked past; it is clearly less salient
    than the rest of the product (as in the ladder); and, in colour and texture, most
    of it is nearer to the background just outside the product than to the product
    around it. A dark stripe on a tiger has the frame's colour too, but it is thin,
    and it looks like the fur beside it sooner than like the forest behind.
    """
    openings = np.zeros(mask.shape, bool)
    object_area = np.count_nonzero(mask)
    candidates = cv2.morphologyEx(
        (mask & frame_coloured).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)
    )
    wide = 2 * _SEE_THROUGH_NARROWEST + 1
    candidates = cv2.morphologyEx(
        candidates, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (wide, wide))
    )
    candidates &= mask.astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=4)
    outside = cv2.dilate((~mask).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    features = None
    for k in range(1, count):
        area = stats[k, cv2.CC_STAT_AREA]
        if area < _SEE_THROUGH_SHARE * object_area:
            continue
        region = labels == k
        if (region & outside).any():
            continue
        # The product to compare with is what no candidate claims: the boards inside
        # one wheel are not product beside the boards inside the other.
        rest = mask & (candidates == 0)
        if not rest.any() or prior[region].mean() >= _LADDER_AS_SALIENT * prior[rest].mean():
            continue
        if features is None:
            features = _pixel_features(small)
        context = max(_SEE_THROUGH_CONTEXT * max(mask.shape), np.sqrt(area))
        size = 2 * round(context) + 1
        around = cv2.dilate(
            region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        ) > 0
        if _nearer_to(features[region], features[around & ~mask], features[around & rest]):
            openings |= region
    return openings


def _pixel_features(small: np.ndarray) -> np.ndarray:
    """Per pixel: CIE Lab, local colour spread and LBP histogram, each block standardised
    over the photo and given equal weight (as the frame features are per superpixel)."""
    lab = _lab(small)
    texture = _local_texture(small, lab)
    blocks = [lab, texture[..., :3], texture[..., 3:]]
    scaled = []
    for block in blocks:
        flat = block.reshape(-1, block.shape[-1])
        scaled.append((flat - flat.mean(0)) / (flat.std(0) + 1e-6) / np.sqrt(flat.shape[1]))
    return np.concatenate(scaled, 1).reshape(small.shape[:2] + (-1,))


def _nearer_to(samples: np.ndarray, background: np.ndarray, product: np.ndarray) -> bool:
    """Whether most samples have their nearest neighbours among the background's rather
    than among the product's (k-th nearest, as for the frame dissimilarity)."""
    if not len(background) or not len(product):
        return False

    def spread(values: np.ndarray) -> np.ndarray:
        step = max(1, len(values) // _SEE_THROUGH_SAMPLES)
        return values[::step].astype(np.float32)

    samples, background, product = spread(samples), spread(background), spread(product)

    def kth_distance(reference: np.ndarray) -> np.ndarray:
        distance = np.linalg.norm(samples[:, None] - reference[None], axis=2)
        distance.sort(1)
        return distance[:, min(_FRAME_NEIGHBOUR, distance.shape[1] - 1)]

    return float((kth_distance(background) < kth_distance(product)).mean()) > 0.5


def _cuts_into_product(mask: np.ndarray, stricter: np.ndarray, prior: np.ndarray) -> bool:
    """Whether a stricter cutout drops a real share of what looks as salient as the rest.

    A treeline or a runway that ran across the frame with the product is less salient
    than the product: seeded more strictly, it falls away and the rest stays. When
    what falls away is about as salient as what stays, the stricter seeds are cutting
    into the product.
    """
    removed = mask & ~stricter
    if not stricter.any():
        return True
    if np.count_nonzero(removed) <= _LADDER_NEGLIGIBLE * np.count_nonzero(mask):
        return False
    return float(prior[removed].mean()) >= _LADDER_AS_SALIENT * float(prior[stricter].mean())


def _object_prior(small: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Per-pixel product prior (0..1), the trusted background frame (bool), and where
    the photo has the colour of that frame (bool).

    The cues are computed on superpixels at each granularity of `_SUPERPIXEL_SCALES`
    and averaged per pixel. One granularity is the default: averaging three
    (200, 300, 450) scored the same on the samples and cost three times as much.
    """
    lab = _lab(small)
    texture = _local_texture(small, lab)
    edge_blur = _edge_blur(small)
    priors, frames, frame_coloured = [], [], []
    for segments in _SUPERPIXEL_SCALES:
        regions = _Regions.of(small, lab, texture, segments)
        if regions.count < 2:
            continue
        saliency = _boundary_connectivity_saliency(regions)
        frame_samples = _trusted_frame_regions(regions)
        dissimilarity = _frame_dissimilarity(regions, frame_samples)
        prior = _normalise(saliency * np.sqrt(dissimilarity))
        prior = _normalise(prior * _in_focus(regions, edge_blur, prior, frame_samples))
        priors.append(prior[regions.labels])
        frames.append(frame_samples[regions.labels])
        frame_coloured.append(_has_colour_of(lab, regions.colour[frame_samples]))
    nothing = np.zeros(small.shape[:2], bool)
    if not priors:
        return None, nothing, nothing
    pixel_prior = _normalise(np.mean(priors, axis=0))
    if not np.isfinite(pixel_prior).all() or np.ptp(pixel_prior) < 1e-6:
        return None, nothing, nothing
    return pixel_prior, np.mean(frames, axis=0) >= 0.5, np.mean(frame_coloured, axis=0) >= 0.5


def _edge_blur(small: np.ndarray) -> np.ndarray:
    """Per pixel, the blur (Gaussian sigma, px) of the edge through it; NaN off edges.

    An edge blurred by sigma, blurred again by `_REBLUR`, loses gradient in the ratio
    R = sqrt(sigma^2 + r^2) / sigma; solved for sigma, that is the edge's own blur.
    """
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    level = grey.astype(np.float32)

    def gradient(x: np.ndarray) -> np.ndarray:
        return np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))

    ratio = gradient(level) / np.maximum(gradient(cv2.GaussianBlur(level, (0, 0), _REBLUR)), 1e-6)
    blur = _REBLUR / np.sqrt(np.maximum(ratio**2 - 1.0, 1e-3))
    edges = cv2.Canny(grey, 40, 100) > 0
    return np.where(edges, np.minimum(blur, 4 * _REBLUR + _DEFOCUS_MARGIN + _DEFOCUS_RAMP), np.nan)


def _in_focus(
    regions: _Regions, edge_blur: np.ndarray, prior: np.ndarray, frame_samples: np.ndarray
) -> np.ndarray:
    """Per superpixel, 1 where it may be the subject, less where it is out of its focus.

    A photographer focuses on the subject; with a shallow depth of field the scene
    behind it (a tree on the horizon, a park behind a bench) is blurred. A region
    whose edges are all clearly blurrier than the salient part's lies in another
    plane, however much it stands out in colour. Regions without edges (a plain
    backdrop, a glossy product) say nothing and keep their prior; so does every
    region of a photo that is sharp from front to back.
    """
    on_edge = np.isfinite(edge_blur).ravel()
    labels = regions.labels.ravel()[on_edge]
    count = np.bincount(labels, minlength=regions.count)
    focus = np.full(regions.count, np.nan)
    order = np.argsort(labels, kind="stable")
    blur_by_region = np.split(edge_blur.ravel()[on_edge][order], np.cumsum(count)[:-1])
    for k in np.flatnonzero(count >= _FOCUS_MIN_EDGES):
        focus[k] = np.percentile(blur_by_region[k], _FOCUS_PERCENTILE)
    known = np.isfinite(focus)
    salient = known & (prior >= 0.5)
    if not salient.any() or not (known & frame_samples).any():
        return np.ones(regions.count)
    # The subject's focus: the median over its salient part, weighted by salience and
    # by how much edge each region has to go by.
    weights = (prior * count)[salient]
    ranked = np.argsort(focus[salient])
    middle = np.searchsorted(np.cumsum(weights[ranked]), weights.sum() / 2)
    subject_focus = focus[salient][ranked][min(middle, len(ranked) - 1)]
    excess = np.nan_to_num(focus - subject_focus - _DEFOCUS_MARGIN, nan=0.0)
    defocus = np.clip(excess / _DEFOCUS_RAMP, 0.0, 1.0)
    if (defocus[known & frame_samples] > 0.5).mean() < _DEFOCUS_FRAME_SHARE:
        return np.ones(regions.count)
    return 1.0 - _DEFOCUS_WEIGHT * _spread_along_colour(defocus, known, regions)


def _spread_along_colour(values: np.ndarray, known: np.ndarray, regions: _Regions) -> np.ndarray:
    """Values of regions that have none taken from like-coloured neighbours, step by step.

    The inside of a blurred bush has no edge to measure, its rim has: the same
    colour carries the rim's blur inwards. A region with no like-coloured neighbour
    that knows (a plain backdrop, a smooth product) keeps 0.
    """
    values = np.where(known, values, 0.0)
    known = known.copy()
    i, j = regions.neighbours
    alike = np.exp(
        -((regions.colour[i] - regions.colour[j]) ** 2).sum(1) / (2 * _SIGMA_COLOUR**2)
    )
    for _ in range(_FOCUS_SPREAD_STEPS):
        total = np.zeros(regions.count)
        weight = np.zeros(regions.count)
        for a, b in ((i, j), (j, i)):
            np.add.at(total, a, alike * known[b] * values[b])
            np.add.at(weight, a, alike * known[b])
        learns = ~known & (weight > _FOCUS_SPREAD_WEIGHT)
        if not learns.any():
            break
        values[learns] = total[learns] / weight[learns]
        known = known | learns
    return values


def _has_colour_of(lab: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Per pixel: within `_BACKDROP_DELTA_E` of any of the given CIE Lab colours."""
    # Frame samples are mostly alike (sky, wall): one of each within a quarter of the
    # tolerance stands for the others, which makes this a few passes, not dozens.
    distinct: list[np.ndarray] = []
    for colour in colours.astype(np.float32):
        if all(((colour - kept) ** 2).sum() > (_BACKDROP_DELTA_E / 4) ** 2 for kept in distinct):
            distinct.append(colour)
    alike = np.zeros(lab.shape[:2], bool)
    for colour in distinct:
        alike |= ((lab - colour) ** 2).sum(-1) < _BACKDROP_DELTA_E**2
    return alike


@dataclass(frozen=True)
class _Regions:
    """Superpixels of the analysis image and what the cues need to know about them."""

    labels: np.ndarray  # (h, w) superpixel index
    count: int
    size: np.ndarray  # (n,) pixels
    colour: np.ndarray  # (n, 3) mean CIE Lab
    centre: np.ndarray  # (n, 2) mean (y, x) as fractions of the image
    texture: np.ndarray  # (n, k) local colour spread and LBP histogram
    neighbours: tuple[np.ndarray, np.ndarray]  # adjacent pairs (i < j)
    on_frame: np.ndarray  # indices of superpixels that touch the image border
    frame_sides: np.ndarray  # (n,) bit mask of the frame sides it meets (1 t, 2 b, 4 l, 8 r)

    @classmethod
    def of(cls, small: np.ndarray, lab: np.ndarray, texture: np.ndarray, segments: int) -> _Regions:
        labels = slic(small, n_segments=segments, compactness=10, start_label=0)
        labels = labels.astype(np.int64)
        count = int(labels.max()) + 1
        flat = labels.ravel()
        size = np.bincount(flat, minlength=count).astype(np.float64)

        def mean_of(values: np.ndarray) -> np.ndarray:
            columns = values.reshape(flat.size, -1)
            sums = [np.bincount(flat, columns[:, c], count) for c in range(columns.shape[1])]
            return np.stack(sums, 1) / size[:, None]

        height, width = labels.shape
        ys, xs = np.indices(labels.shape)
        centre = mean_of(np.dstack([ys / height, xs / width]))
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        return cls(
            labels=labels,
            count=count,
            size=size,
            colour=mean_of(lab),
            centre=centre,
            texture=mean_of(texture),
            neighbours=_adjacent_pairs(labels, count),
            on_frame=np.unique(border),
            frame_sides=_frame_sides(labels, count),
        )


def _frame_sides(labels: np.ndarray, count: int) -> np.ndarray:
    sides = np.zeros(count, np.int64)
    for bit, line in ((1, labels[0]), (2, labels[-1]), (4, labels[:, 0]), (8, labels[:, -1])):
        sides[np.unique(line)] |= bit
    return sides


def _local_texture(small: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Per-pixel texture description: local Lab spread and a local histogram of LBP codes.

    Blocks are scaled to equal weight so that neither dominates the distance.
    """
    mean = cv2.GaussianBlur(lab, (0, 0), _TEXTURE_SIGMA)
    spread = np.sqrt(np.maximum(cv2.GaussianBlur(lab * lab, (0, 0), _TEXTURE_SIGMA) - mean**2, 0))
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    codes = local_binary_pattern(grey, 8, 1, "uniform").astype(np.int64)
    histogram = np.dstack(
        [
            cv2.GaussianBlur((codes == k).astype(np.float32), (0, 0), _TEXTURE_SIGMA)
            for k in range(10)
        ]
    )
    return np.dstack([spread, histogram])


def _adjacent_pairs(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    differ = a != b
    low, high = np.minimum(a[differ], b[differ]), np.maximum(a[differ], b[differ])
    keys = np.unique(low * count + high)
    return keys // count, keys % count


def _boundary_connectivity_saliency(regions: _Regions) -> np.ndarray:
    """Per-superpixel saliency in 0..1 from boundary connectivity and weighted contrast.

    A region's boundary connectivity is how much of its (colour-geodesic) extent lies
    on the image border relative to its size; the saliency is the solution of the
    paper's quadratic smoothing of background and contrast cues.
    """
    n = regions.count
    i, j = regions.neighbours
    step = np.linalg.norm(regions.colour[i] - regions.colour[j], axis=1)
    graph = coo_matrix((step + 1e-6, (i, j)), shape=(n, n)).tocsr()
    geodesic = shortest_path(graph, method="D", directed=False)
    geodesic[~np.isfinite(geodesic)] = 1e6
    similar = np.exp(-(geodesic**2) / (2 * _SIGMA_COLOUR**2))
    on_frame = np.zeros(n)
    on_frame[regions.on_frame] = 1.0
    connectivity = (similar @ on_frame) / np.sqrt(similar.sum(1))
    background = 1 - np.exp(-(connectivity**2) / (2 * _SIGMA_BOUNDARY**2))

    colour_distance = np.linalg.norm(regions.colour[:, None] - regions.colour[None], axis=2)
    spatial = np.linalg.norm(regions.centre[:, None] - regions.centre[None], axis=2)
    closeness = np.exp(-(spatial**2) / (2 * _SIGMA_SPATIAL**2))
    contrast = _normalise((colour_distance * closeness * background[None]).sum(1))

    affinity = np.exp(-(step**2) / (2 * _SIGMA_COLOUR**2)) + _SMOOTHNESS_FLOOR
    weights = coo_matrix(
        (np.r_[affinity, affinity], (np.r_[i, j], np.r_[j, i])), shape=(n, n)
    ).tocsr()
    laplacian = diags(np.asarray(weights.sum(1)).ravel()) - weights
    system = (diags(background + contrast + 1e-9) + laplacian).tocsc()
    return _robust_unit(spsolve(system, contrast), regions.size, _ROBUST_SHARE_CUES)


def _trusted_frame_regions(regions: _Regions) -> np.ndarray:
    """Boolean per superpixel: on the border, and background-like by its company there.

    A product that enters the frame (an arm, a handle cut by the edge) crosses the
    border in one short stretch that looks like no other part of it, so it is not
    trusted as a background sample. A border superpixel is trusted when it looks
    like the border at large (its few nearest border neighbours are close), or
    when something like it also meets another side of the frame: a treeline seen
    at both the left and the right edge is background even if it is a minority.
    """
    features = _frame_features(regions)[regions.on_frame]
    sides = regions.frame_sides[regions.on_frame]
    gaps = np.linalg.norm(features[:, None] - features[None], axis=2)
    ranked = np.sort(gaps, 1)
    kth = ranked[:, min(_FRAME_COMPANY, len(features) - 1)]
    common = kth <= max(np.median(kth) * _FRAME_OUTLIER_RATIO, 1e-9)
    nearest = ranked[:, 1] if len(features) > 1 else np.zeros(len(features))
    alike = gaps <= _FRAME_ALIKE * max(float(np.median(nearest)), 1e-9)
    # sides: bit mask per superpixel (1 top, 2 bottom, 4 left, 8 right)
    other_side = (alike & ((sides[:, None] & sides[None]) == 0)).any(1)
    result = np.zeros(regions.count, bool)
    result[regions.on_frame[common | other_side]] = True
    return result


def _frame_features(regions: _Regions) -> np.ndarray:
    blocks = [regions.colour, regions.texture[:, :3], regions.texture[:, 3:]]
    scaled = [(b - b.mean(0)) / (b.std(0) + 1e-6) / np.sqrt(b.shape[1]) for b in blocks]
    return np.concatenate(scaled, 1)


def _frame_dissimilarity(regions: _Regions, trusted: np.ndarray) -> np.ndarray:
    """Per superpixel, 0..1: how unlike any trusted border sample it is."""
    features = _frame_features(regions)
    samples = features[trusted] if trusted.any() else features[regions.on_frame]
    distance = np.linalg.norm(features[:, None] - samples[None], axis=2)
    distance.sort(1)
    kth = distance[:, min(_FRAME_NEIGHBOUR, distance.shape[1] - 1)]
    return _robust_unit(kth, regions.size, _ROBUST_SHARE_CUES)


def _grabcut(
    small: np.ndarray, prior: np.ndarray, trusted_frame: np.ndarray, probable: float
) -> np.ndarray:
    """Binary product mask from GrabCut seeded by the prior (per pixel, 0..1)."""
    return _grabcut_from_seeds(small, _seeds(prior > probable, prior, trusted_frame))


def _seeds(probable: np.ndarray, prior: np.ndarray, trusted_frame: np.ndarray) -> np.ndarray:
    """GrabCut labels: probable product where asked, sure product deep inside the most
    salient part, sure background where nothing stands out and on the trusted frame."""
    seeds = np.full(prior.shape, cv2.GC_PR_BGD, np.uint8)
    seeds[probable] = cv2.GC_PR_FGD
    sure = cv2.erode((prior > _PRIOR_SURE).astype(np.uint8), np.ones((5, 5), np.uint8))
    seeds[sure > 0] = cv2.GC_FGD
    seeds[prior < _PRIOR_SURE_BACKGROUND] = cv2.GC_BGD
    seeds[_frame_band(prior.shape, _FRAME_SEED_WIDTH) & trusted_frame] = cv2.GC_BGD
    return seeds


def _grabcut_from_seeds(small: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Binary product mask from GrabCut started from the given labels."""
    seeds = seeds.copy()
    if not np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        return np.zeros(seeds.shape, bool)
    if not np.isin(seeds, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        return np.ones(seeds.shape, bool)
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    cv2.setRNGSeed(0)  # GrabCut's k-means initialisation: same photo, same cutout
    cv2.grabCut(
        bgr,
        seeds,
        None,
        background_model,
        foreground_model,
        _GRABCUT_ITERATIONS,
        cv2.GC_INIT_WITH_MASK,
    )
    return np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _spans_frame(mask: np.ndarray, trusted_frame: np.ndarray) -> bool:
    """Whether the mask runs into background-like frame on two opposite sides.

    A treeline, a horizon or a table edge crosses the whole photo; a product seldom
    does. Contact with frame that does not look like background (an arm holding the
    product) does not count.
    """
    height, width = mask.shape
    w = max(2, round(_FRAME_SEED_WIDTH * min(height, width)))
    inside = slice(w, w + 3)
    touches = {}
    for side, strip, trust, length in (
        ("left", mask[:, inside], trusted_frame[:, :w].any(1), height),
        ("right", mask[:, -w - 3 : -w], trusted_frame[:, -w:].any(1), height),
        ("top", mask[inside, :], trusted_frame[:w, :].any(0), width),
        ("bottom", mask[-w - 3 : -w, :], trusted_frame[-w:, :].any(0), width),
    ):
        along = strip.any(1) if side in ("left", "right") else strip.any(0)
        touches[side] = np.count_nonzero(along & trust) > _SPAN_CONTACT * length
    return (touches["left"] and touches["right"]) or (touches["top"] and touches["bottom"])


def _frame_band(shape: tuple[int, ...], fraction: float) -> np.ndarray:
    height, width = shape[:2]
    w = max(2, round(fraction * min(height, width)))
    band = np.zeros((height, width), bool)
    band[:w], band[-w:], band[:, :w], band[:, -w:] = True, True, True, True
    return band


def _keep_main_objects(mask: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Keep the most salient connected part and the parts nearly as important.

    Importance is the prior summed over the part: size and salience together. A
    bystander or a patch of background survives GrabCut as a separate, less
    important blob; a second product of the same photo (a pair of shoes) weighs
    about as much as the first and stays.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    weight = np.bincount(labels.ravel(), prior.ravel(), count)[1:]
    main = int(np.argmax(weight))
    keep = (weight >= _MIN_PART_OF_MAIN * weight[main]) & (areas >= _MIN_PART_OF_IMAGE * mask.size)
    keep[main] = True
    return np.isin(labels, np.flatnonzero(keep) + 1)


def _fill_holes(mask: np.ndarray, small: np.ndarray) -> np.ndarray:
    """Fill enclosed holes unless they show the background.

    Background seen through the product (a mug's handle, between a strap and a bag)
    continues the background just outside the product there, so its colour is a
    common one in that nearest background. A hole that is not (an eye, a nose, a
    logo or a glint that GrabCut gave to a dark or bright backdrop elsewhere in the
    photo) is product, whatever its size; so is a speck.
    """
    background = (~mask).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(background, 4)
    height, width = mask.shape
    x, y, w, h = (stats[:, i] for i in range(4))
    touches_border = (x == 0) | (y == 0) | (x + w == width) | (y + h == height)
    touches_border[0] = False  # the label of the mask itself
    exterior = np.isin(labels, np.flatnonzero(touches_border))
    object_area = np.count_nonzero(mask)
    filled = mask.copy()
    lab = None
    for k in np.flatnonzero(~touches_border)[1:] if count else ():
        hole = labels == k
        if stats[k, cv2.CC_STAT_AREA] > _SPECK * object_area and exterior.any():
            if lab is None:
                lab = _lab(small)
            if _shows_background(hole, exterior, lab):
                continue
        filled[hole] = True
    return filled


def _shows_background(hole: np.ndarray, exterior: np.ndarray, lab: np.ndarray) -> bool:
    """Whether the hole's colour is a common one in the background nearest to it."""
    to_hole = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 3)
    nearest = float(to_hole[exterior].min())
    ring = exterior & (to_hole <= nearest + _BACKDROP_RING * max(hole.shape))
    colour = np.median(lab[hole], axis=0)
    distance = np.linalg.norm(lab[ring] - colour, axis=1)
    return float(np.percentile(distance, _BACKDROP_SHARE)) < _BACKDROP_DELTA_E


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _without_shadow(
    small: np.ndarray, mask: np.ndarray, shadow: np.ndarray, prior: np.ndarray
) -> np.ndarray:
    """The mask less its cast shadow, with GrabCut finding where shadow meets product.

    The walk up the columns finds the shadow where it is plainly ground; under the
    product, where the product's own dark base is as dark, GrabCut decides with a
    background model that now knows the shadow's colour and with the photo's edges.
    The cutout can only shrink, and only below the top of the shadow found.
    """
    rows = np.flatnonzero(mask.any(1))
    reach = _SHADOW_REACH * (rows[-1] - rows[0] + 1)
    # The ground line: the top of the shadow found, carried across the columns
    # between (under the product, where the walk up was blocked).
    columns = np.flatnonzero(shadow.any(0))
    tops = np.argmax(shadow[:, columns], axis=0)
    ground = np.interp(np.arange(mask.shape[1]), columns, tops)
    below = np.arange(mask.shape[0])[:, None] >= ground[None, :] - reach
    # And the neighbourhood of the shadow found, which can rise above that line
    # under a car's body.
    size = 2 * max(1, round(_SHADOW_AROUND * (rows[-1] - rows[0] + 1))) + 1
    near = below | (cv2.dilate(shadow.astype(np.uint8), np.ones((size, size), np.uint8)) > 0)
    seeds = np.where(mask, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    seeds[mask & near] = cv2.GC_PR_FGD
    seeds[shadow] = cv2.GC_BGD
    sure = cv2.erode((prior > _PRIOR_SURE).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    seeds[sure & mask & ~shadow] = cv2.GC_FGD
    if not np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        return mask & ~shadow
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(
        cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
        seeds,
        None,
        background_model,
        foreground_model,
        _SHADOW_REFINE,
        cv2.GC_INIT_WITH_MASK,
    )
    return np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _cast_shadow(small: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The part of the mask that is the shadow the product casts on the ground.

    GrabCut keeps a cast shadow with the product: it is attached, and as dark as the
    tyres or the base. A cutout must not: the scene renderer draws its own contact
    shadow. A shadow is the ground's own colour, darker (same chroma, lower
    lightness than the nearby background); it lies under the product, so it is
    found by walking up each column from the mask's bottom while pixels look like
    that; and it is a thin layer. The last test protects a grey product on a white
    table, whose every column looks like a shadow from the bottom up.
    """
    # Slightly blurred, so the ground's own texture (gravel, grain) neither breaks
    # the shadow up nor blocks the walk up a column.
    lab = cv2.GaussianBlur(
        cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab), (0, 0), 1.0
    )
    outside = ~mask
    sigma = _SHADOW_CONTEXT * max(mask.shape)
    near_background, weight = _nearby_colour(lab, outside, sigma)
    lightness = (lab[..., 0] + 5.0) / (near_background[..., 0] + 5.0)
    chroma_shift = np.linalg.norm(lab[..., 1:] - near_background[..., 1:], axis=2)
    looks_shadowed = (
        mask
        & (lightness > _SHADOW_DARKEST)
        & (lightness < _SHADOW_LIGHTEST)
        & (chroma_shift < _SHADOW_CHROMA)
        & (weight > _SHADOW_MIN_CONTEXT)
    )
    square = np.ones((3, 3), np.uint8)
    product = cv2.morphologyEx((mask & ~looks_shadowed).astype(np.uint8), cv2.MORPH_OPEN, square)
    product_below = np.flip(np.logical_or.accumulate(np.flip(product > 0, 0), 0), 0)
    under = looks_shadowed & ~product_below
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
    under = cv2.morphologyEx(under.astype(np.uint8), cv2.MORPH_OPEN, square) > 0
    # A shadow is a thin layer: a column that looks shadowed far up is a grey
    # product (or its dark base), not a shadow.
    under[:, np.count_nonzero(under, 0) > _SHADOW_THICKNESS * height] = False
    # And a wide one: what rises out of it in narrow spikes is the product's dark
    # base (the side of a tyre, a bumper's corner).
    flat = np.ones((1, max(3, round(_SHADOW_MIN_WIDTH * width))), np.uint8)
    return cv2.morphologyEx(under.astype(np.uint8), cv2.MORPH_OPEN, flat) > 0


# --- the edge ----------------------------------------------------------------------


def _matte(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Soft alpha at the photo's size from the binary mask at the analysis size.

    The mask is upsampled to the matting size and refined there with a guided filter
    guided by the photo, which pulls the edge onto the photo's own edges and gives
    it a sub-pixel falloff. Away from the edge the alpha stays exactly 0 or 1.
    """
    height, width = photo.shape[:2]
    guide_rgb = _resize_long_side(photo, MATTING_SIDE, cv2.INTER_AREA)
    gh, gw = guide_rgb.shape[:2]
    coarse = cv2.resize(mask.astype(np.float32), (gw, gh), interpolation=cv2.INTER_LINEAR)
    scale = max(gh, gw) / float(max(mask.shape))
    radius = max(2, round(_MATTING_RADIUS * scale))
    guide = guide_rgb.astype(np.float32) / 255.0
    band = _edge_band(coarse, radius)
    estimate = _colour_line_alpha(guide, coarse, band, radius)
    refined = _guided_filter(guide, estimate, radius, _MATTING_EPS)
    alpha = np.clip((refined - 0.5) * _EDGE_CONTRAST + 0.5, 0.0, 1.0)
    alpha = np.where(band, alpha, (coarse >= 0.5).astype(np.float32))
    if (gh, gw) != (height, width):
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def _colour_line_alpha(
    guide: np.ndarray, coarse: np.ndarray, band: np.ndarray, radius: int
) -> np.ndarray:
    """Alpha in the edge band from where each pixel's colour lies between the nearby
    product colour and the nearby background colour.

    The mask from the analysis size is right to a pixel or two there; the colours
    say where the edge really is: a pixel the colour of the product next to it is
    product, one the colour of the background is background, a mix is partly
    both (I = a*F + (1 - a)*B, solved for a along the line from B to F). Where
    product and background look alike there is nothing to go by, and the mask
    stands.
    """
    hard = coarse >= 0.5
    product, product_weight = _nearby_colour(guide, hard & ~band, radius)
    backdrop, backdrop_weight = _nearby_colour(guide, ~hard & ~band, radius)
    line = product - backdrop
    length = (line**2).sum(-1)
    along = ((guide - backdrop) * line).sum(-1) / np.maximum(length, 1e-6)
    trust = length / (length + _MATTING_MIN_CONTRAST**2)
    trust *= (product_weight > 1e-3) & (backdrop_weight > 1e-3)
    estimate = trust * np.clip(along, 0.0, 1.0) + (1.0 - trust) * coarse
    return np.where(band, estimate, coarse).astype(np.float32)


def _edge_band(coarse: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` of the upsampled mask's edge."""
    hard = (coarse >= 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(hard, kernel) != cv2.erode(hard, kernel)


def _guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a colour guide (edge-preserving, O(1) per pixel)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    mean_p = box(source)
    mean_ip = box(guide * source[..., None])
    cov_ip = mean_ip - mean_i * mean_p[..., None]
    var = np.empty(guide.shape[:2] + (3, 3), np.float32)
    for r in range(3):
        for c in range(r, 3):
            v = box(guide[..., r] * guide[..., c]) - mean_i[..., r] * mean_i[..., c]
            var[..., r, c] = var[..., c, r] = v
    var += eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(var, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    return (box(a) * guide).sum(-1) + box(b)


def _decontaminate_edge(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Give half-transparent edge pixels the product's colour, without the background's.

    An edge pixel's colour is a mix, I = a*F + (1 - a)*B; shown over white as is, the
    background part B is a dark or coloured halo. B and a first guess of F come from
    normalised blurs of the surely-transparent and surely-opaque pixels nearby; the
    compositing equation then gives F where a is large enough to trust it, the
    nearby product colour where it is not.
    """
    soft = (alpha > 0.0) & (alpha < _SOLID)
    if not soft.any():
        return rgb
    ys, xs = np.nonzero(soft)
    pad = 16
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, rgb.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, rgb.shape[1])
    window = rgb[y0:y1, x0:x1].astype(np.float32)
    a = alpha[y0:y1, x0:x1]
    sigma = max(2.0, max(rgb.shape[:2]) / 400.0)
    product, product_weight = _nearby_colour(window, a >= _SOLID, sigma)
    backdrop, _ = _nearby_colour(window, a <= 1.0 - _SOLID, sigma)
    a3 = a[..., None]
    unmixed = np.clip((window - (1.0 - a3) * backdrop) / np.maximum(a3, 0.05), 0, 255)
    trust = a3**2
    colour = trust * unmixed + (1.0 - trust) * product
    local_soft = soft[y0:y1, x0:x1] & (product_weight > 1e-3)
    out = rgb.copy()
    out[y0:y1, x0:x1][local_soft] = np.clip(colour[local_soft], 0, 255).astype(np.uint8)
    return out


def _nearby_colour(
    window: np.ndarray, known: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Gaussian blur of the known pixels' colour, and its weight."""
    weight = cv2.GaussianBlur(known.astype(np.float32), (0, 0), sigma)
    total = cv2.GaussianBlur(window * known[..., None], (0, 0), sigma)
    return total / np.maximum(weight, 1e-6)[..., None], weight


# --- small helpers -----------------------------------------------------------------


def _letterbox(rgb: np.ndarray, tolerance: int = 10) -> _Frame:
    """Uniform bars at the photo's edges (screenshots, letterboxed exports).

    A bar only counts when the line after it differs from the bar almost all along:
    a white studio background is uniform too near the edge, but its first
    non-uniform line is still mostly white where the product does not reach, and
    cropping it would make the product touch the frame.
    """
    pixels = rgb.astype(np.int16)

    def bar(lines: np.ndarray) -> int:
        colour = np.median(lines[0], axis=0)
        count = 0
        for line in lines:
            deviation = np.abs(line - colour).max(1)
            if (deviation > 3 * tolerance).mean() < 0.05 and deviation.mean() < tolerance:
                count += 1
            else:
                break
        if count == 0 or count > _MAX_BAR_SHARE * len(lines):
            return 0
        after = np.abs(lines[count] - colour).max(1)
        return count if (after > 3 * tolerance).mean() >= _BAR_EDGE_SHARE else 0

    columns = pixels.transpose(1, 0, 2)
    return _Frame(bar(pixels), bar(pixels[::-1]), bar(columns), bar(columns[::-1]))


def _resize_long_side(rgb: np.ndarray, side: int, interpolation: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = side / float(max(height, width))
    if scale >= 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=interpolation)


def _normalise(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    span = float(np.ptp(values)) if values.size else 0.0
    if span < 1e-12:
        return np.zeros_like(values)
    return (values - values.min()) / span


def _robust_unit(values: np.ndarray, area: np.ndarray, share: float) -> np.ndarray:
    """Scale per-superpixel values to 0..1 so that one tiny outlier does not set the top.

    A glint or a painted fingernail can score far above the rest of the product;
    scaled by the plain maximum, the product itself would then fall below the
    thresholds. The top is instead the value that all but the highest
    `share` of the standing-out area (above half the maximum) reach.
    """
    values = _normalise(values)
    if share <= 0:
        return values
    standing_out = values > 0.5
    if not standing_out.any():
        return values
    order = np.argsort(values[standing_out])
    ranked = values[standing_out][order]
    cumulative = np.cumsum(area[standing_out][order])
    top = ranked[np.searchsorted(cumulative, (1 - share) * cumulative[-1])]
    return np.clip(values / max(top, 1e-9), 0.0, 1.0)
