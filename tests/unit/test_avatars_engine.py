"""The local engine's avatar stand-ins: the placeholder portrait, and the "with model"
composition that the real shot check then judges (product unchanged, one face)."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lightbox.catalog import load_models, load_scenes
from lightbox.domain import avatars, references
from lightbox.domain.fidelity import CheckThresholds, check_shot_bytes
from lightbox.errors import InvalidInput
from lightbox_local.engine import models as stand_ins
from lightbox_local.engine.vision.portrait import render_portrait
from lightbox_local.engine.vision.with_model import PersonLook, render_with_person

WITH_MODEL = [s for s in load_scenes().values() if s.person]
SIZE = (819, 1024)


@lru_cache(maxsize=1)
def _product() -> Image.Image:
    """A textured product on transparency (features for the check to find)."""
    rng = np.random.default_rng(5)
    art = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).resize((240, 180))
    product = Image.new("RGBA", (320, 420), (255, 255, 255, 0))
    draw = ImageDraw.Draw(product)
    draw.rounded_rectangle((30, 20, 290, 400), radius=40, fill=(196, 64, 48, 255))
    product.paste(art.convert("RGBA"), (40, 120))
    draw.rectangle((60, 40, 260, 90), fill=(245, 240, 230, 255))
    return product


@lru_cache(maxsize=4)
def _portrait(avatar_id: str) -> Image.Image:
    """A catalogue avatar's placeholder portrait, as the engine returns it (a JPEG)."""
    avatar = avatars.load_avatar_catalogue().by_id()[avatar_id]
    image = render_portrait(avatar.prompt, seed=avatar.seed, size=(768, 1024))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=93)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_the_engine_serves_the_with_model_compose_model() -> None:
    roles = stand_ins.roles_from_catalogue()
    assert roles[load_models().compose_with_model.model] == "compose"
    assert roles[load_models().portrait.model] == "portrait"


def test_a_placeholder_portrait_has_the_shape_the_portrait_model_was_asked_for() -> None:
    spec = load_models().portrait
    avatar = avatars.load_avatar_catalogue().avatars[0]
    inputs = {**spec.input, **avatars.portrait_inputs(avatar.prompt, avatar.seed)}
    data, content_type = stand_ins.run("portrait", inputs, fetch=lambda url: b"")
    image = Image.open(io.BytesIO(data))
    assert content_type == "image/jpeg" and image.format == "JPEG"
    assert image.size == (768, 1024)  # 3:4
    again, _ = stand_ins.run("portrait", inputs, fetch=lambda url: b"")
    assert again == data  # same prompt and seed, same person


@pytest.mark.parametrize("scene", WITH_MODEL, ids=lambda s: s.id)
def test_the_product_is_set_unchanged_in_front_of_the_person(scene) -> None:
    product = _product()
    shot = render_with_person(_portrait("c002"), product, scene.look, seed=3, size=SIZE)
    assert shot.size == SIZE and shot.mode == "RGB"
    look = PersonLook.from_look(scene.look)
    # Find the product by its exact colour: it is placed where the scene says, at its height
    red = np.all(np.asarray(shot, int) == (196, 64, 48), axis=-1)
    rows, cols = np.nonzero(red)
    assert abs((cols.min() + cols.max()) / 2 / SIZE[0] - look.x) < 0.1
    assert abs((rows.max() - rows.min()) / SIZE[1] - look.height) < 0.02
    # and the same inputs draw the same picture
    again = render_with_person(_portrait("c002"), product, scene.look, seed=3, size=SIZE)
    assert again.tobytes() == shot.tobytes()


@pytest.mark.parametrize("scene", WITH_MODEL, ids=lambda s: s.id)
def test_a_with_model_shot_from_the_engine_passes_the_shot_check_with_one_face(scene) -> None:
    # Given the reference Lightbox sends: the avatar's portrait beside the product
    spec = load_models().compose_with_model
    reference = references.png_bytes(references.side_by_side_reference(_portrait("c002"), _product()))
    inputs = {**spec.input, **avatars.with_model_inputs(
        spec, scene.full_prompt(), 11, reference_url="https://bucket.example.test/reference")}
    # When the engine composes the scene
    data, _ = stand_ins.run("compose", inputs, fetch=lambda url: reference)
    # Then the shot check, expecting a person, finds the product unchanged and one face
    base = CheckThresholds.load()
    limits = base.model_copy(update={"min_product_scale": base.person_min_product_scale})
    verdict = check_shot_bytes(data, _product(), expect_person=True, min_long_side=512,
                               aspect_ratio=spec.aspect_ratio(), thresholds=limits)
    assert verdict.passed, verdict.reasons
    assert verdict.measures["faces"] == 1
    # and the same shot in a scene without a person would be refused for that face
    alone = check_shot_bytes(data, _product(), expect_person=False, thresholds=limits)
    assert any("face found" in reason for reason in alone.reasons)


def test_a_bad_person_placement_is_refused() -> None:
    with pytest.raises(InvalidInput):
        PersonLook.from_look({"person": {"placement": "juggle"}})
    with pytest.raises(InvalidInput):
        PersonLook.from_look({"person": {"placement": "hold", "height": 0.95}})
