"""The local engine's background removal.

It stands in for the cloud model when there is no cloud, so it is held to what a
shop needs from a cutout: agreement with reference masks on real photos (region
and boundary), the demo's coffee cup cut out cleanly, a background band across the
frame and a cast shadow left out, a soft edge without a background halo, a shop's
own PNG cutout left alone, and no crash, no randomness and a clear error on odd
input. Rendered scenes hold it to what generalises beyond the samples: a support
surface left out, background seen through the product removed, dark and bright
details kept, scene out of focus behind the subject left out.

The floors below are the figures measured with `python bench/cutout_quality.py`
less a small margin, not targets that were never reached. The tests on the shared
sample photos are marked slow (a few seconds) and are skipped, with the reason, when
`../shared/samples` is not beside the repository.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from lightbox.errors import InvalidImage
from lightbox_local.cli import main as lightbox_cli
from lightbox_local.engine.vision import cutout as cutout_module
from lightbox_local.engine.vision.cutout import alpha_is_meaningful, remove_background
from lightbox_local.engine.vision.mask_quality import boundary_figures, iou
from tests.unit.cutout_scenes import Scene, bicycle_on_boardwalk, mug_with_logo, subject_on_bench

#: Measured IoU per sample (alpha >= 0.5 against mask >= 128) minus about 0.03.
IOU_FLOORS = {
    "carvekit-handheld-product": 0.95,
    "rembg-animal-1": 0.84,
    "rembg-animal-2": 0.93,
    "rembg-animal-3": 0.92,
    "rembg-car-1": 0.86,
    "rembg-car-2": 0.91,
    "rembg-car-3": 0.89,
}
#: Issue 11's bars: a mean IoU of at least 0.90 over every masked sample (measured
#: 0.934), none below 0.80 (lowest measured 0.868).
MEAN_IOU_FLOOR = 0.90
MIN_IOU_FLOOR = 0.80
#: Mean distance between the cutout's boundary and the reference's, both ways, in
#: pixels of the photo: measured 2.5 to 4.8 per sample for the products, 3.9 on
#: average; the animals' fur and the grass make it 4.6 to 9.7 for them, 5.1 over all.
BOUNDARY_PX_CEILING = 8.0
BOUNDARY_CHECKED = ["carvekit-handheld-product", "rembg-car-1", "rembg-car-2", "rembg-car-3"]
MEAN_BOUNDARY_PX_CEILING = 6.0

DEMO_PHOTO = (
    Path(cutout_module.__file__).resolve().parents[2] / "samples" / "skimage-coffee.png"
)


def samples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"


def _needs_samples() -> Path:
    root = samples_dir()
    if not (root / "masks").is_dir():
        pytest.skip("the shared sample photos are not beside the repository")
    return root


def _alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel("A"), np.float32) / 255.0


def _iou(alpha: np.ndarray, reference: np.ndarray) -> float:
    return iou(alpha >= 0.5, reference >= 128)


def _boundary_distance(alpha: np.ndarray, reference: np.ndarray) -> float:
    return boundary_figures(alpha >= 0.5, reference >= 128)[0]


def _product_on_backdrop(
    size: tuple[int, int] = (480, 360),
    product: tuple[int, int, int] = (200, 40, 40),
    backdrop: tuple[int, int, int] = (40, 110, 60),
) -> tuple[Image.Image, np.ndarray]:
    """A shaded, slightly blurred and noisy disc on a plain backdrop, and its true mask."""
    width, height = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(
        (width * 0.3, height * 0.25, width * 0.7, height * 0.75), fill=255
    )
    truth = np.asarray(mask) > 0
    rng = np.random.default_rng(7)
    pixels = np.empty((height, width, 3), np.float32)
    pixels[:] = backdrop
    shade = 0.85 + 0.15 * np.linspace(0, 1, width)[None, :].repeat(height, 0)
    pixels[truth] = np.asarray(product, np.float32) * shade[truth][:, None]
    # A lens never draws a one-pixel edge: the border pixels mix product and backdrop.
    pixels = cv2.GaussianBlur(pixels, (0, 0), 1.5)
    pixels += rng.normal(0, 4, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), truth


@pytest.fixture(scope="module")
def sample_cutouts() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Alpha and reference mask for every sample photo that has a mask (computed once)."""
    root = _needs_samples()
    results = {}
    for name in IOU_FLOORS:
        photo = Image.open(next((root / "photos").glob(name + ".*")))
        reference = np.asarray(Image.open(root / "masks" / f"{name}.png").convert("L"))
        cutout = remove_background(photo)
        assert cutout.mode == "RGBA" and cutout.size == photo.size
        results[name] = (_alpha(cutout), reference)
    return results


@pytest.fixture(scope="module")
def demo_cutout() -> Image.Image:
    return remove_background(Image.open(DEMO_PHOTO))


# --- agreement with reference masks ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(IOU_FLOORS))
def test_given_a_sample_photo_when_cut_out_then_it_agrees_with_the_reference_mask(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]], name: str
) -> None:
    alpha, reference = sample_cutouts[name]
    assert _iou(alpha, reference) >= IOU_FLOORS[name]


@pytest.mark.slow
def test_given_all_masked_samples_when_cut_out_then_the_mean_iou_reaches_the_bar(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    ious = [_iou(alpha, reference) for alpha, reference in sample_cutouts.values()]
    assert np.mean(ious) >= MEAN_IOU_FLOOR


@pytest.mark.slow
def test_given_all_masked_samples_when_cut_out_then_none_falls_below_the_bar(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    ious = {name: _iou(alpha, reference) for name, (alpha, reference) in sample_cutouts.items()}
    assert min(ious.values()) >= MIN_IOU_FLOOR, ious


@pytest.mark.slow
@pytest.mark.parametrize("name", BOUNDARY_CHECKED)
def test_given_a_sample_photo_when_cut_out_then_its_boundary_follows_the_reference(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]], name: str
) -> None:
    alpha, reference = sample_cutouts[name]
    assert _boundary_distance(alpha, reference) <= BOUNDARY_PX_CEILING


@pytest.mark.slow
def test_given_all_masked_samples_when_cut_out_then_the_mean_boundary_error_is_small(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    distances = [_boundary_distance(alpha, reference) for alpha, reference in sample_cutouts.values()]
    assert np.mean(distances) <= MEAN_BOUNDARY_PX_CEILING


@pytest.mark.slow
def test_given_a_person_beside_the_car_when_cut_out_then_only_the_car_is_kept(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    # The woman stands right of the car (x > 390 of 480), clear of it.
    alpha, _ = sample_cutouts["rembg-car-1"]
    assert alpha[:, 395:].max() < 0.5


@pytest.mark.slow
def test_given_a_letterboxed_photo_when_cut_out_then_the_bars_are_transparent(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    # rembg-car-1 has 45-pixel black bars above and below the picture.
    alpha, _ = sample_cutouts["rembg-car-1"]
    assert alpha[:45].max() == 0.0 and alpha[-45:].max() == 0.0


@pytest.mark.slow
def test_given_a_plane_before_a_treeline_when_cut_out_then_the_band_behind_is_transparent() -> None:
    # No reference mask: the treeline and the runway run across the whole frame
    # behind the plane, the classic trap for saliency (they look enclosed).
    root = _needs_samples()
    photo = Image.open(root / "photos" / "tb-aeroplane.jpg")

    alpha = _alpha(remove_background(photo))

    for x, y in [(40, 480), (1300, 430), (1560, 470), (200, 720), (1400, 720), (800, 150), (800, 950)]:
        assert alpha[y, x] < 0.5, (x, y)
    for x, y in [(520, 500), (613, 507), (1120, 450), (676, 667)]:  # nose, fuselage, tail, wheel
        assert alpha[y, x] > 0.5, (x, y)
    assert float((alpha >= 0.5).mean()) < 0.1


@pytest.mark.slow
def test_given_a_car_with_its_shadow_when_cut_out_then_the_shadow_is_left_out(
    sample_cutouts: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    # The reference leaves the cast shadow out; GrabCut alone keeps it (IoU 0.86).
    alpha, reference = sample_cutouts["rembg-car-2"]
    kept_outside = (alpha >= 0.5) & (reference < 128)
    assert kept_outside.mean() < 0.005


# --- the demo photo ---------------------------------------------------------------------


def test_given_the_demo_coffee_photo_when_cut_out_then_cup_and_saucer_are_opaque(
    demo_cutout: Image.Image,
) -> None:
    alpha = _alpha(demo_cutout)
    # (x, y) on the coffee, the cup's rim, the handle, the spoon and the saucer's sides.
    for x, y in [(290, 140), (190, 90), (225, 270), (360, 290), (110, 250), (450, 230), (290, 370)]:
        assert alpha[y, x] > 0.9, (x, y)


def test_given_the_demo_coffee_photo_when_cut_out_then_the_table_is_transparent(
    demo_cutout: Image.Image,
) -> None:
    alpha = _alpha(demo_cutout)
    for x, y in [(20, 20), (580, 20), (20, 390), (580, 390), (40, 200), (540, 300), (500, 60)]:
        assert alpha[y, x] < 0.1, (x, y)
    # One clean piece: cup and saucer, about 45 % of the photo, nothing else.
    assert 0.38 < float((alpha >= 0.5).mean()) < 0.55


# --- output shape and edge --------------------------------------------------------------


def test_given_an_rgb_photo_when_cut_out_then_the_result_is_rgba_of_the_same_size() -> None:
    photo, _ = _product_on_backdrop(size=(333, 251))

    result = remove_background(photo)

    assert result.mode == "RGBA"
    assert result.size == photo.size


def test_given_a_plain_product_shot_when_cut_out_then_the_product_is_found() -> None:
    photo, truth = _product_on_backdrop()

    alpha = _alpha(remove_background(photo))

    assert _iou(alpha, truth.astype(np.uint8) * 255) > 0.95


def test_given_a_product_when_cut_out_then_the_edge_is_soft_and_the_rest_is_binary() -> None:
    photo, _ = _product_on_backdrop()

    alpha = _alpha(remove_background(photo))

    partial = (alpha > 0.02) & (alpha < 0.98)
    assert partial.any(), "a matted edge has some partly transparent pixels"
    assert partial.mean() < 0.05, "only the edge is partly transparent"
    assert alpha[180, 240] == 1.0 and alpha[10, 10] == 0.0


def test_given_a_red_product_on_green_when_cut_out_then_the_edge_carries_no_green_halo() -> None:
    photo, _ = _product_on_backdrop(product=(210, 30, 30), backdrop=(30, 160, 40))

    result = np.asarray(remove_background(photo), np.float32)

    alpha = result[..., 3] / 255.0
    edge = (alpha > 0.1) & (alpha < 0.9)
    assert edge.any()
    red, green = result[..., 0][edge], result[..., 1][edge]
    # A mixed edge pixel would be half green; cleaned, it is the product's red.
    assert np.median(red - green) > 100


def _studio_shot(
    product: tuple[int, int, int], *, shadow: float = 0.55, hole: bool = False
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """A mug-like product on a light table with a soft cast shadow wider than it.

    Returns the photo, the product's true mask and the shadow's footprint beyond
    the product (where the shadow darkens the table by more than a quarter).
    """
    width, height = 800, 600
    truth_image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(truth_image)
    draw.rectangle((300, 200, 500, 470), fill=255)
    if hole:  # a see-through hole, under 2 % of the product
        draw.ellipse((385, 300, 415, 330), fill=0)
    truth = np.asarray(truth_image) > 0
    footprint = Image.new("L", (width, height), 0)
    ImageDraw.Draw(footprint).ellipse((230, 445, 590, 495), fill=255)
    darkening = np.asarray(footprint.filter(ImageFilter.GaussianBlur(12)), np.float32) / 255.0
    pixels = np.full((height, width, 3), 236.0, np.float32) * (1 - shadow * darkening[..., None])
    pixels[truth] = product
    rng = np.random.default_rng(3)
    pixels = cv2.GaussianBlur(pixels, (0, 0), 1.2) + rng.normal(0, 3, pixels.shape)
    cast = (darkening * shadow > 0.25) & ~truth
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), truth, cast


def test_given_a_product_with_a_cast_shadow_when_cut_out_then_the_shadow_is_transparent() -> None:
    photo, truth, cast = _studio_shot(product=(150, 60, 40))  # brown leather

    alpha = _alpha(remove_background(photo))

    assert cast.any()
    assert (alpha[cast] >= 0.5).mean() < 0.05, "the shadow is left out"
    assert _iou(alpha, truth.astype(np.uint8) * 255) > 0.95


def test_given_a_grey_product_on_a_white_table_when_cut_out_then_it_is_kept_whole() -> None:
    # Every column of a grey product looks like a shadow from the bottom up: the
    # shadow removal must not eat it.
    photo, truth, _ = _studio_shot(product=(120, 120, 124))

    alpha = _alpha(remove_background(photo))

    assert (alpha[truth] >= 0.5).mean() > 0.98


def test_given_a_small_hole_showing_the_backdrop_when_cut_out_then_it_stays_open() -> None:
    photo, truth, _ = _studio_shot(product=(30, 90, 170), hole=True)

    alpha = _alpha(remove_background(photo))

    assert alpha[315, 400] < 0.5, "the hole shows the table: background"
    assert (alpha[truth] >= 0.5).mean() > 0.98


# --- what generalises: support surfaces, background seen through, details ------------
#
# Rendered scenes (tests/unit/cutout_scenes.py) rebuild the ways the cutout failed on
# photos it had never seen. The bounds are far from both the figures measured and
# what the cutout did before it handled these cases (noted with each test).

#: A cutout keeps at most this share of a support surface or of background seen
#: through the product (before: 7 % to 99 % of the bench, all of the boards).
MAX_KEPT_BACKGROUND = 0.05
#: ... and at least this share of the subject's dark and bright details.
MIN_KEPT_DETAILS = 0.99


def _kept(alpha: np.ndarray, region: np.ndarray) -> float:
    return float((alpha[region] >= 0.5).mean())


def _scene_cutout(scene: Scene) -> np.ndarray:
    return _alpha(remove_background(scene.photo))


@pytest.mark.parametrize(
    "whole_bench, painted",
    [(False, None), (True, None), (False, (34, 30, 28)), (True, (34, 30, 28))],
    ids=["bench-across-the-frame", "whole-bench", "black-bench", "whole-black-bench"],
)
def test_given_a_cat_on_a_bench_when_cut_out_then_the_bench_is_left_out(
    whole_bench: bool, painted: tuple[int, int, int] | None
) -> None:
    # Before: the whole bench stayed (IoU 0.38), or the gaps between its planks did.
    scene = subject_on_bench(whole_bench=whole_bench, painted=painted)

    alpha = _scene_cutout(scene)

    assert _kept(alpha, scene.regions["support"]) < MAX_KEPT_BACKGROUND
    assert _iou(alpha, scene.truth.astype(np.uint8) * 255) > 0.9


@pytest.mark.parametrize(
    "coat, whole_bench, painted",
    [("tabby", False, (34, 30, 28)), ("siamese", False, (34, 30, 28)),
     ("siamese", True, (34, 30, 28)), ("siamese", False, None)],
    ids=["tabby-black-bench", "siamese-black-bench", "siamese-whole-black-bench", "siamese"],
)
def test_given_a_cat_with_dark_and_bright_details_when_cut_out_then_none_is_punched_out(
    coat: str, whole_bench: bool, painted: tuple[int, int, int] | None
) -> None:
    # Black eyes and nose and a dark face mask the colour of the bench, white
    # catchlights the colour of the sky between the leaves; and a head on a wider
    # body, which is no subject on a support.
    scene = subject_on_bench(coat=coat, whole_bench=whole_bench, painted=painted)

    alpha = _scene_cutout(scene)

    assert _kept(alpha, scene.regions["details"]) >= MIN_KEPT_DETAILS
    assert _kept(alpha, scene.regions["support"]) < MAX_KEPT_BACKGROUND
    # Dark paws and tail on a black bench may go; the cat may not.
    assert _iou(alpha, scene.truth.astype(np.uint8) * 255) > 0.8


def test_given_a_black_badge_on_a_mug_before_a_black_wall_when_cut_out_then_it_stays() -> None:
    scene = mug_with_logo()

    alpha = _scene_cutout(scene)

    assert _kept(alpha, scene.regions["details"]) >= MIN_KEPT_DETAILS


def test_given_a_bicycle_on_a_boardwalk_when_cut_out_then_the_boards_in_its_wheels_go() -> None:
    # Before: every board seen through the wheels and the frame stayed (IoU 0.36).
    scene = bicycle_on_boardwalk()

    alpha = _scene_cutout(scene)

    assert _kept(alpha, scene.regions["see_through"]) < 2 * MAX_KEPT_BACKGROUND
    assert _kept(alpha, scene.regions["support"]) < MAX_KEPT_BACKGROUND
    assert _kept(alpha, scene.regions["solid"]) > 0.95, "tyres, tubes, saddle and bars stay"


def test_given_a_bush_out_of_focus_behind_the_subject_when_cut_out_then_it_is_left_out() -> None:
    # As salient in colour as the cat and clear of the frame; only its blur says it is
    # scene behind the subject. Before: kept whole (IoU 0.47).
    scene = subject_on_bench(bush=True)

    alpha = _scene_cutout(scene)

    assert _kept(alpha, scene.regions["bush"]) < MAX_KEPT_BACKGROUND
    assert _iou(alpha, scene.truth.astype(np.uint8) * 255) > 0.9


def test_given_holes_in_a_cutout_when_filled_then_only_the_one_like_its_surroundings_stays() -> None:
    # A white product on a grey table before a black wall. Both holes have a colour of
    # the background around the product; only the grey one has the colour of the
    # background next to it. Before, any colour in 5 % of that ring kept a hole open.
    photo = np.full((200, 200, 3), 150, np.uint8)
    photo[:48] = 20  # the wall, inside the ring around the product
    photo[50:170, 50:170] = 245
    yy, xx = np.indices(photo.shape[:2])
    grey_hole = (yy - 150) ** 2 + (xx - 150) ** 2 <= 64
    black_hole = (yy - 110) ** 2 + (xx - 80) ** 2 <= 64
    photo[grey_hole] = 150
    photo[black_hole] = 20
    mask = np.zeros(photo.shape[:2], bool)
    mask[50:170, 50:170] = True
    mask &= ~grey_hole & ~black_hole

    filled = cutout_module._fill_holes(mask, photo)

    assert not filled[grey_hole].any(), "the table seen through the product stays background"
    assert filled[black_hole].all(), "a black detail is product, whatever the wall's colour"


#: Subjects of the development set, cut out by their reference masks and set on a
#: bench that stands inside the frame (the held-back samples are not used here).
BENCH_SUBJECTS = ["carvekit-handheld-product", "rembg-animal-1", "rembg-animal-3", "rembg-car-2"]


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCH_SUBJECTS)
def test_given_a_sample_subject_on_a_bench_when_cut_out_then_the_bench_is_left_out(
    name: str,
) -> None:
    # Before: the bench stayed with every one of them (IoU 0.25 to 0.57).
    root = _needs_samples()
    subject = Image.open(next((root / "photos").glob(name + ".*"))).convert("RGB")
    subject.putalpha(Image.open(root / "masks" / f"{name}.png").convert("L"))
    scene = subject_on_bench(subject, whole_bench=True)

    alpha = _scene_cutout(scene)

    assert _kept(alpha, scene.regions["support"]) < MAX_KEPT_BACKGROUND
    assert _iou(alpha, scene.truth.astype(np.uint8) * 255) > 0.9


# --- a shop's own cutout ----------------------------------------------------------------


def _png_cutout(mode: str) -> Image.Image:
    """A PNG cutout as a shop would upload it: a product on a transparent canvas."""
    canvas = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).rectangle((30, 20, 90, 70), fill=(10, 120, 200, 255))
    image = canvas if mode == "RGBA" else canvas.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_given_a_png_with_a_real_cutout_when_checked_then_its_alpha_is_meaningful(
    mode: str,
) -> None:
    assert alpha_is_meaningful(_png_cutout(mode))


def test_given_a_png_cutout_when_cut_out_then_its_own_alpha_is_returned_unchanged() -> None:
    upload = _png_cutout("RGBA")

    result = remove_background(upload)

    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result), np.asarray(upload.convert("RGBA")))


def test_given_a_palette_png_with_transparency_when_cut_out_then_it_is_kept_as_rgba() -> None:
    upload = _png_cutout("P")

    result = remove_background(upload)

    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result), np.asarray(upload.convert("RGBA")))


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (50, 40), (200, 10, 10)),
        Image.new("RGBA", (50, 40), (200, 10, 10, 255)),  # alpha channel, all opaque
        Image.new("RGBA", (50, 40), (200, 10, 10, 0)),  # all transparent: no cutout either
    ],
    ids=["rgb", "opaque-rgba", "empty-rgba"],
)
def test_given_an_image_without_a_real_cutout_when_checked_then_alpha_is_not_meaningful(
    image: Image.Image,
) -> None:
    assert not alpha_is_meaningful(image)


def test_given_an_opaque_rgba_photo_when_cut_out_then_the_background_is_still_removed() -> None:
    photo, truth = _product_on_backdrop()

    alpha = _alpha(remove_background(photo.convert("RGBA")))

    assert _iou(alpha, truth.astype(np.uint8) * 255) > 0.95


# --- odd input ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (30, 30), (640, 480)])
def test_given_a_plain_colour_image_when_cut_out_then_it_is_kept_whole(
    size: tuple[int, int],
) -> None:
    # Nothing stands out, so nothing is cut away: a visible failure beats an empty one.
    result = remove_background(Image.new("RGB", size, (90, 140, 200)))

    assert result.size == size and result.mode == "RGBA"
    assert np.all(np.asarray(result.getchannel("A")) == 255)


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "1"])
def test_given_an_unusual_image_mode_when_cut_out_then_an_rgba_image_comes_back(mode: str) -> None:
    photo, _ = _product_on_backdrop(size=(200, 150))
    image = photo.convert(mode) if mode != "I;16" else photo.convert("L").convert("I;16")

    result = remove_background(image)

    assert result.mode == "RGBA" and result.size == image.size


def test_given_the_same_photo_twice_when_cut_out_then_the_results_are_identical() -> None:
    photo = Image.open(DEMO_PHOTO)

    first = np.asarray(remove_background(photo))
    second = np.asarray(remove_background(photo.copy()))

    assert np.array_equal(first, second)


def test_given_a_grey_png_cutout_when_cut_out_then_its_alpha_is_kept() -> None:
    upload = _png_cutout("LA")

    result = remove_background(upload)

    assert result.mode == "RGBA"
    assert np.array_equal(np.asarray(result.getchannel("A")), np.asarray(upload.getchannel("A")))


@pytest.mark.parametrize("keep", [0.5, 0.05], ids=["half", "header-only"])
def test_given_a_truncated_photo_when_cut_out_then_a_clear_invalid_image_error(keep: float) -> None:
    photo, _ = _product_on_backdrop()
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    truncated = Image.open(io.BytesIO(data[: int(len(data) * keep)]))  # opened lazily, as uploads are

    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        remove_background(truncated)


def test_given_an_image_without_pixels_when_cut_out_then_a_clear_invalid_image_error() -> None:
    with pytest.raises(InvalidImage, match="no pixels"):
        remove_background(Image.new("RGB", (0, 0)))


# --- the command line -------------------------------------------------------------------


def test_given_a_photo_when_lightbox_cutout_runs_then_it_writes_an_rgba_png_of_its_size(
    tmp_path: Path,
) -> None:
    photo, truth = _product_on_backdrop(size=(333, 251))
    source, target = tmp_path / "photo.jpg", tmp_path / "out" / "cutout.png"
    photo.save(source, format="JPEG", quality=95)

    exit_code = lightbox_cli(["cutout", str(source), "--out", str(target)])

    assert exit_code == 0
    written = Image.open(target)
    assert written.format == "PNG" and written.mode == "RGBA" and written.size == photo.size
    assert _iou(_alpha(written), truth.astype(np.uint8) * 255) > 0.9


def test_given_a_png_cutout_when_lightbox_cutout_runs_then_its_alpha_is_written_as_is(
    tmp_path: Path,
) -> None:
    upload = _png_cutout("RGBA")
    source, target = tmp_path / "own.png", tmp_path / "cutout.png"
    upload.save(source, format="PNG")

    assert lightbox_cli(["cutout", str(source), "--out", str(target)]) == 0

    written = Image.open(target)
    assert np.array_equal(np.asarray(written.getchannel("A")), np.asarray(upload.getchannel("A")))
