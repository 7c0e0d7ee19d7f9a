"""The local engine's scene renderer, upscaler and portrait placeholder.

The renderer is the free offline tier, so these tests hold it to what a shop
needs from a product photo: the product's own colours kept, a pure white
studio whose shadow stays clear of the frame edges, a shadow that follows the
product's base, a reflection only where the scene asks for one, and pixels
that depend on the seed and nothing else.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFilter
from skimage.color import deltaE_ciede2000, rgb2lab

import lightbox.catalog
from lightbox.errors import InvalidImage, InvalidInput
from lightbox_local.engine.vision.portrait import render_portrait
from lightbox_local.engine.vision.render import SceneLook, compose_scene, render_scene
from lightbox_local.engine.vision.upscale import upscale

SCENES_YAML = Path(lightbox.catalog.__file__).resolve().parent / "scenes.yaml"
SIZE = (640, 640)


def samples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"


def _scene_looks() -> dict[str, SceneLook]:
    """The scenes the scene renderer draws (those with a person go to the "with model"
    stand-in, tests/unit/test_avatars_engine.py)."""
    scenes = yaml.safe_load(SCENES_YAML.read_text(encoding="utf-8"))
    return {scene["id"]: SceneLook.from_dict(scene["look"]) for scene in scenes
            if not scene.get("person")}


LOOKS = _scene_looks()


@pytest.fixture(scope="module")
def car_cutout() -> Image.Image:
    """A real product photo with its reference mask as alpha: soft, imperfect edges."""
    photo = Image.open(samples_dir() / "photos" / "rembg-car-1.jpg").convert("RGB")
    mask = Image.open(samples_dir() / "masks" / "rembg-car-1.png").convert("L")
    photo.putalpha(mask)
    return photo


def _synthetic_cutout(shape: str, *, size: tuple[int, int] = (400, 500)) -> Image.Image:
    """An RGBA product on a transparent canvas with a wide empty margin.

    "bottle": a flat-bottomed upright shape. "arch": two legs with a gap between
    them, whose shadow must follow the legs rather than fill a generic ellipse.
    """
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if shape == "bottle":
        draw.rounded_rectangle((150, 120, 250, 440), radius=30, fill=(30, 110, 170, 255))
        draw.rectangle((185, 80, 215, 130), fill=(200, 60, 40, 255))
    elif shape == "arch":
        draw.rectangle((80, 150, 320, 230), fill=(150, 90, 50, 255))
        draw.rectangle((80, 150, 120, 440), fill=(150, 90, 50, 255))
        draw.rectangle((280, 150, 320, 440), fill=(150, 90, 50, 255))
    else:  # pragma: no cover - test helper misuse
        raise ValueError(shape)
    # Soften the edge a little, as a real cutout's would be.
    alpha = image.getchannel("A").filter(_gaussian(1.2))
    image.putalpha(alpha)
    return image


def _gaussian(radius: float) -> ImageFilter.GaussianBlur:
    return ImageFilter.GaussianBlur(radius)


def _product_delta_e(
    cutout: Image.Image, look: SceneLook, seed: int, size: tuple[int, int]
) -> float:
    """Mean CIEDE2000 between the product in the render and the cutout resized independently."""
    result = compose_scene(cutout, look, seed=seed, size=size)
    x0, y0, x1, y1 = result.product_box
    bbox = cutout.getchannel("A").point(lambda v: 255 if v > 8 else 0).getbbox()
    reference = (
        np.asarray(cutout.crop(bbox).resize((x1 - x0, y1 - y0), Image.LANCZOS), np.float32) / 255
    )
    solid = (reference[..., 3] > 0.98).astype(np.uint8)
    inner = cv2.erode(solid, np.ones((5, 5), np.uint8)) > 0
    rendered = np.asarray(result.image, np.float32)[y0:y1, x0:x1] / 255
    difference = deltaE_ciede2000(rgb2lab(rendered[inner]), rgb2lab(reference[..., :3][inner]))
    return float(difference.mean())


# --- render_scene: shape of the answer ------------------------------------------------------


@pytest.mark.parametrize("scene_id", sorted(LOOKS))
def test_given_any_scene_when_rendered_then_rgb_of_the_requested_size(
    scene_id: str, car_cutout: Image.Image
):
    # Given a non-square size, When rendering, Then the size and mode are exactly as asked.
    image = render_scene(car_cutout, LOOKS[scene_id], seed=3, size=(480, 360))
    assert image.mode == "RGB"
    assert image.size == (480, 360)


@pytest.mark.parametrize("scene_id", sorted(LOOKS))
def test_given_any_scene_when_rendered_then_product_colours_are_kept(
    scene_id: str, car_cutout: Image.Image
):
    # Given the car cutout, When placed in the scene, Then its pixels change less than
    # a just-noticeable difference on average (only a light share of the grade reaches it).
    assert _product_delta_e(car_cutout, LOOKS[scene_id], seed=11, size=SIZE) < 2.0


def test_given_a_cutout_with_wide_margins_when_rendered_then_it_is_cropped_and_filled(
    car_cutout: Image.Image,
):
    # Given a product with lots of empty canvas round it, When rendered white-studio,
    # Then its larger relative side fills `fill` of the frame (the seed adds 0-3 %).
    look = LOOKS["white-studio"]
    padded = Image.new("RGBA", (car_cutout.width * 3, car_cutout.height * 3), (0, 0, 0, 0))
    padded.paste(car_cutout, (car_cutout.width, car_cutout.height))
    x0, y0, x1, y1 = compose_scene(padded, look, seed=5, size=SIZE).product_box
    share = max((x1 - x0) / SIZE[0], (y1 - y0) / SIZE[1])
    assert look.fill - 0.01 <= share <= look.fill * 1.03 + 0.01


def test_given_a_flat_lay_when_rendered_then_the_product_is_centred(car_cutout: Image.Image):
    x0, y0, x1, y1 = compose_scene(car_cutout, LOOKS["flat-lay"], seed=2, size=SIZE).product_box
    assert abs((x0 + x1) / 2 - SIZE[0] / 2) < 0.04 * SIZE[0]
    assert abs((y0 + y1) / 2 - SIZE[1] / 2) < 0.04 * SIZE[1]


def test_given_a_floor_scene_when_rendered_then_the_product_stands_below_the_horizon(
    car_cutout: Image.Image,
):
    look = LOOKS["lifestyle-kitchen"]
    _, _, _, base = compose_scene(car_cutout, look, seed=2, size=SIZE).product_box
    assert base > look.floor.horizon * SIZE[1] + 0.1 * SIZE[1]
    assert base < SIZE[1]


# --- white studio: what Amazon's main image asks for ------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_given_white_studio_when_rendered_then_background_is_pure_white_to_the_edges(
    seed: int, car_cutout: Image.Image
):
    # Given the widest product the sample set has (it fills 85 % of the width),
    # When rendered on white, Then a border strip is pure 255 all round...
    pixels = np.asarray(
        render_scene(car_cutout, LOOKS["white-studio"], seed=seed, size=SIZE)
    ).astype(int)
    strip = max(3, SIZE[0] // 50)
    border = np.ones(pixels.shape[:2], bool)
    border[strip:-strip, strip:-strip] = False
    assert (pixels[border] == 255).all()
    for corner in (pixels[:40, :40], pixels[:40, -40:], pixels[-40:, :40], pixels[-40:, -40:]):
        assert (corner == 255).all()


def test_given_white_studio_when_rendered_then_only_the_shadow_near_the_product_is_not_white():
    # Given an upright bottle, When rendered on white, Then some pixels outside the product
    # are shadow (darker than 255), all of them near the product's base.
    cutout = _synthetic_cutout("bottle")
    result = compose_scene(cutout, LOOKS["white-studio"], seed=4, size=SIZE)
    pixels = np.asarray(result.image).astype(int)
    x0, y0, x1, y1 = result.product_box
    product = np.zeros(pixels.shape[:2], bool)
    product[y0:y1, x0:x1] = result.product_alpha > 0.02
    shadow = (pixels < 255).any(axis=2) & ~product
    ys, xs = np.nonzero(shadow)
    assert ys.size > 200
    assert ys.max() < y1 + 0.15 * SIZE[1]
    assert xs.min() > x0 - 0.2 * SIZE[0] and xs.max() < x1 + 0.2 * SIZE[0]
    assert pixels[y1 + 2, (x0 + x1) // 2].max() < 235


def test_given_a_flat_bottomed_product_when_rendered_then_shadow_is_darker_under_than_beside():
    cutout = _synthetic_cutout("bottle")
    for scene_id in ("white-studio", "grey-studio", "marble-counter"):
        result = compose_scene(cutout, LOOKS[scene_id], seed=1, size=SIZE)
        grey = np.asarray(result.image.convert("L")).astype(float)
        x0, _, x1, base = result.product_box
        width = x1 - x0
        under = grey[base + 2 : base + 6, x0 + width // 3 : x1 - width // 3].mean()
        beside = grey[base + 2 : base + 6, x1 + width : x1 + 2 * width].mean()
        assert under < beside - 8, scene_id


def test_given_a_product_on_two_legs_when_rendered_then_shadow_follows_the_legs():
    # Given an arch (two legs, a gap between them), When rendered, Then the contact
    # shadow just below the base is darker under the legs than under the gap: it is
    # derived from the cutout's bottom edge, not a generic ellipse.
    cutout = _synthetic_cutout("arch")
    result = compose_scene(cutout, LOOKS["white-studio"], seed=1, size=SIZE)
    grey = np.asarray(result.image.convert("L")).astype(float)
    x0, _, x1, base = result.product_box
    width = x1 - x0
    leg = grey[base + 1 : base + 4, x0 + 2 : x0 + width // 8].mean()
    gap = grey[base + 1 : base + 4, x0 + width * 7 // 16 : x0 + width * 9 // 16].mean()
    assert leg < gap - 10


def test_given_a_scene_with_and_without_reflection_when_rendered_then_it_appears_only_when_asked():
    cutout = _synthetic_cutout("bottle")
    glossy = LOOKS["black-studio"]
    assert glossy.reflection > 0
    matte = replace(glossy, reflection=0.0)
    with_reflection = compose_scene(cutout, glossy, seed=6, size=SIZE)
    without = compose_scene(cutout, matte, seed=6, size=SIZE)
    a = np.asarray(with_reflection.image).astype(int)
    b = np.asarray(without.image).astype(int)
    x0, y0, x1, base = with_reflection.product_box
    # Above the product's lower part nothing changes (the floor seen between its rounded
    # bottom corners does reflect); below its base, the mirror image shows.
    above = y0 + int(0.85 * (base - y0))
    assert np.abs(a[:above] - b[:above]).max() <= 1
    below = np.abs(a[base + 2 : base + 40, x0:x1] - b[base + 2 : base + 40, x0:x1]).mean()
    assert below > 5
    # Without reflection, the floor under the product is as dark as the floor beside it.
    under = b[base + 20 : base + 40, x0:x1].mean()
    beside = b[base + 20 : base + 40, x1 + 20 : x1 + 60].mean()
    assert abs(under - beside) < 6


def test_given_a_cutout_with_a_coloured_fringe_when_rendered_then_no_halo_remains():
    # Given a grey product whose transparent pixels still hold bright green (an
    # unclean cutout) and whose edge is soft, When rendered on white, Then the edge
    # pixels carry no green cast.
    size = (300, 300)
    alpha = Image.new("L", size, 0)
    ImageDraw.Draw(alpha).ellipse((60, 60, 240, 240), fill=255)
    alpha = alpha.filter(_gaussian(3))
    cutout = Image.new("RGB", size, (0, 255, 0))
    a = np.asarray(alpha, np.float32)[..., None] / 255
    grey = np.array([128, 128, 128], np.float32)
    # The soft edge was captured against the green: C = a*F + (1-a)*B.
    captured = a * grey + (1 - a) * np.array([0, 255, 0], np.float32)
    cutout = Image.fromarray(captured.astype(np.uint8), "RGB")
    cutout.putalpha(alpha)
    pixels = np.asarray(render_scene(cutout, LOOKS["white-studio"], seed=0, size=SIZE)).astype(int)
    green_cast = pixels[..., 1] - (pixels[..., 0] + pixels[..., 2]) / 2
    assert green_cast.max() < 8


# --- determinism --------------------------------------------------------------------------


def test_given_the_same_inputs_and_seed_when_rendered_twice_then_pixels_are_identical(
    car_cutout: Image.Image,
):
    for scene_id in ("white-studio", "marble-counter", "flat-lay", "podium", "festive-holiday"):
        first = render_scene(car_cutout, LOOKS[scene_id], seed=42, size=(320, 320))
        second = render_scene(car_cutout, LOOKS[scene_id], seed=42, size=(320, 320))
        assert first.tobytes() == second.tobytes(), scene_id


def test_given_different_seeds_when_rendered_then_variants_differ_slightly(car_cutout: Image.Image):
    look = LOOKS["lifestyle-kitchen"]
    first = compose_scene(car_cutout, look, seed=1, size=SIZE)
    second = compose_scene(car_cutout, look, seed=2, size=SIZE)
    assert first.image.tobytes() != second.image.tobytes()
    # ...but only by a few percent of the frame.
    moved = np.abs(np.subtract(first.product_box, second.product_box)).max()
    assert moved < 0.08 * SIZE[0]


# --- the look as data ---------------------------------------------------------------------


def test_given_the_catalogue_when_parsed_then_every_scene_has_a_valid_look():
    assert len(LOOKS) == 16
    assert LOOKS["white-studio"].floor.horizon == 1.0
    assert LOOKS["flat-lay"].floor.horizon == 0.0


def test_given_an_unknown_texture_when_parsed_then_invalid_input():
    with pytest.raises(InvalidInput):
        SceneLook.from_dict({"floor": {"color": [1, 2, 3], "texture": "lava", "horizon": 0.5}})


def test_given_a_fully_transparent_cutout_when_rendered_then_invalid_image():
    with pytest.raises(InvalidImage):
        render_scene(Image.new("RGBA", (50, 50)), LOOKS["white-studio"], seed=0, size=(100, 100))


# --- upscale ------------------------------------------------------------------------------


def _edge_scene(size: int) -> Image.Image:
    """A disc and a slanted edge: curved and diagonal boundaries that expose staircasing."""
    image = Image.new("L", (size, size), 40)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.2, size * 0.2, size * 0.8, size * 0.8), fill=220)
    draw.polygon([(0, 0), (size * 0.6, 0), (size * 0.2, size), (0, size)], fill=120)
    return image


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_given_an_image_when_upscaled_then_size_and_mode_follow(mode: str):
    image = Image.new(mode, (120, 80), (10, 20, 30, 255) if mode == "RGBA" else (10, 20, 30))
    result = upscale(image, scale=2)
    assert result.size == (240, 160)
    assert result.mode == mode
    assert upscale(image, scale=1.5).size == (180, 120)


def test_given_hard_edges_when_upscaled_then_closer_to_truth_than_bicubic_or_nearest():
    # Given a sharp scene and a low-resolution copy of it, When the copy is enlarged,
    # Then the result is closer to the truth than bicubic (too soft, rings) and than
    # nearest (staircases), and never leaves the source's value range (no halos).
    truth = np.asarray(_edge_scene(1024).resize((512, 512), Image.BOX), np.float32)
    small = _edge_scene(1024).resize((256, 256), Image.BOX)
    ours = np.asarray(upscale(small.convert("RGB"), scale=2).convert("L"), np.float32)
    bicubic = np.asarray(small.resize((512, 512), Image.BICUBIC), np.float32)
    nearest = np.asarray(small.resize((512, 512), Image.NEAREST), np.float32)
    error = float(np.abs(ours - truth).mean())
    assert error < float(np.abs(bicubic - truth).mean())
    assert error < float(np.abs(nearest - truth).mean())
    assert ours.min() >= 40 - 1 and ours.max() <= 220 + 1


def test_given_a_step_edge_when_upscaled_then_it_stays_steeper_than_bicubic():
    row = np.array([40] * 16 + [220] * 16, np.uint8)
    step = Image.fromarray(np.tile(row, (8, 1)))

    def rise_width(profile: np.ndarray) -> float:
        """Distance, in output pixels, from 10 % to 90 % of the step (sub-pixel)."""
        positions = np.arange(profile.size, dtype=np.float32)
        rising = slice(int(np.argmax(profile > 41)), int(np.argmax(profile > 219)) + 1)
        levels, where = profile[rising], positions[rising]
        return float(
            np.interp(40 + 0.9 * 180, levels, where) - np.interp(40 + 0.1 * 180, levels, where)
        )

    ours = np.asarray(upscale(step.convert("RGB"), scale=4).convert("L"), np.float32)[16]
    bicubic = np.asarray(step.resize((128, 32), Image.BICUBIC), np.float32)[16]
    assert rise_width(ours) < 0.9 * rise_width(bicubic)


def test_given_rgba_with_hidden_colour_when_upscaled_then_edges_do_not_pick_it_up():
    # Given transparent pixels that hold pure red, When upscaled, Then the soft edge of
    # the grey disc shows no red: resampling is premultiplied.
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:] = (255, 0, 0)
    alpha = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(alpha).ellipse((16, 16, 48, 48), fill=255)
    inside = np.asarray(alpha) > 0
    rgb[inside] = (128, 128, 128)
    image = Image.fromarray(rgb, "RGB")
    image.putalpha(alpha)
    result = np.asarray(upscale(image, scale=3)).astype(int)
    visible = result[..., 3] > 20
    assert (result[visible][:, 0] - result[visible][:, 1]).max() < 6


def test_given_a_bad_scale_when_upscaled_then_invalid_input():
    with pytest.raises(InvalidInput):
        upscale(Image.new("RGB", (8, 8)), scale=0)


# --- portrait placeholder ---------------------------------------------------------------


def test_given_a_prompt_when_a_portrait_is_drawn_then_size_and_mode_follow():
    image = render_portrait("a woman with long red hair", seed=1, size=(300, 400))
    assert image.size == (300, 400)
    assert image.mode == "RGB"


def test_given_the_same_prompt_and_seed_when_drawn_twice_then_identical_and_seeds_differ():
    prompt = "a smiling man with a beard and glasses, dark skin, navy jacket"
    first = render_portrait(prompt, seed=9, size=(200, 200))
    assert first.tobytes() == render_portrait(prompt, seed=9, size=(200, 200)).tobytes()
    assert (
        first.tobytes()
        != render_portrait("a woman with blonde hair", seed=9, size=(200, 200)).tobytes()
    )


def test_given_a_portrait_when_drawn_then_it_is_a_figure_not_a_blank_image():
    pixels = np.asarray(render_portrait("portrait of a person", seed=3, size=(256, 256))).astype(
        int
    )
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    # The figure sits in the middle: the centre differs from the backdrop's corner.
    assert np.abs(pixels[128, 128] - pixels[5, 5]).sum() > 30


def test_given_colour_words_when_drawn_then_they_show():
    # "red hair" draws red-brown hair above the face; "green sweater" draws green clothing.
    pixels = np.asarray(
        render_portrait("woman, long red hair, green sweater, fair skin", seed=0, size=(256, 256))
    ).astype(int)
    top_half, bottom = pixels[:128], pixels[-30:]
    red = (top_half[..., 0] > top_half[..., 1] + 60) & (top_half[..., 0] > top_half[..., 2] + 80)
    green = (bottom[..., 1] > bottom[..., 0] + 30) & (bottom[..., 1] > bottom[..., 2] + 20)
    assert red.mean() > 0.03
    assert green.mean() > 0.2
