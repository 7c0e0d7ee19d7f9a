"""Avatars as data and pure rules: the catalogue, the wizard's choices, prompts, seeds,
and the reference a single-image model gets for "with model" shots."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pydantic import ValidationError

from lightbox.catalog import WithModelSpec, load_models, load_scenes, read_yaml
from lightbox.domain import avatars, references
from lightbox.domain.avatars import ATTRIBUTES, AvatarCatalogue
from lightbox.domain.pricing import load_pricing
from lightbox.errors import InvalidInput

BOOK = avatars.load_avatar_catalogue()
CHOICES = {"age_range": "65-plus", "gender_presentation": "androgynous", "skin_tone": "olive",
           "hair": "silver-bob", "build": "slim", "style": "elegant", "setting": "cafe"}


# --- the catalogue --------------------------------------------------------------------------


def test_the_catalogue_holds_at_least_a_hundred_distinct_avatars() -> None:
    assert len(BOOK.avatars) >= 100
    assert len({a.id for a in BOOK.avatars}) == len(BOOK.avatars)
    assert len({a.seed for a in BOOK.avatars}) == len(BOOK.avatars)
    assert len({a.prompt for a in BOOK.avatars}) == len(BOOK.avatars)


def test_every_value_a_shop_can_filter_by_has_avatars() -> None:
    # A filter that can never match would show a shop an empty picker.
    for name in ATTRIBUTES:
        used = {getattr(a.attributes, name) for a in BOOK.avatars}
        assert used == set(BOOK.allowed()[name]), name


def test_each_catalogue_avatar_has_its_portrait_key_and_a_photographic_prompt() -> None:
    for avatar in BOOK.avatars:
        assert avatar.portrait_key == f"avatars/catalog/{avatar.id}.jpg"
        assert avatar.prompt.startswith("Candid photo portrait of ")
        assert "One person only" in avatar.prompt
        skin = BOOK.option("skin_tone", avatar.attributes.skin_tone).prompt
        assert f"with {skin} skin" in avatar.prompt


@pytest.mark.parametrize("breakage", ["duplicate id", "shared seed", "unknown value",
                                      "other key", "missing attribute"])
def test_a_broken_catalogue_does_not_load(breakage: str) -> None:
    data = copy.deepcopy(read_yaml("avatars.yaml"))
    first, second = data["avatars"][0], data["avatars"][1]
    if breakage == "duplicate id":
        second["id"] = first["id"]
        second["portrait_key"] = first["portrait_key"]
    elif breakage == "shared seed":
        second["seed"] = first["seed"]
    elif breakage == "unknown value":
        first["attributes"]["hair"] = "mohawk"
    elif breakage == "other key":
        first["portrait_key"] = "shots/someone/c001.jpg"
    else:
        del data["attributes"]["setting"]
    with pytest.raises(ValidationError):
        AvatarCatalogue.model_validate(data)


def test_portraits_are_priced_in_the_pricing_data() -> None:
    pricing = load_pricing()
    assert pricing.portrait >= 1
    with_model = next(s for s in load_scenes().values() if s.kind == "with_model")
    assert pricing.shot_price(with_model) == pricing.shot["with_model"]


def test_the_with_model_scenes_ask_for_a_person() -> None:
    scenes = {s.id: s for s in load_scenes().values() if s.kind == "with_model"}
    assert {"with-model-holding", "with-model-wearing", "with-model-beside"} <= set(scenes)
    assert all(s.person for s in scenes.values())
    assert not any(s.person for s in load_scenes().values() if s.kind != "with_model")


# --- the wizard's choices -------------------------------------------------------------------


def test_known_choices_become_attributes() -> None:
    chosen = avatars.validate_choices(CHOICES, BOOK)
    assert chosen.model_dump() == CHOICES


def test_unknown_and_missing_choices_are_refused_with_what_is_allowed() -> None:
    choices = {**CHOICES, "skin_tone": "green", "eyes": "blue"}
    del choices["build"]
    with pytest.raises(InvalidInput) as refused:
        avatars.validate_choices(choices, BOOK)
    assert refused.value.status_code == 422
    problems = {p["field"]: p for p in refused.value.details["problems"]}
    assert set(problems) == {"skin_tone", "build", "eyes"}
    assert problems["skin_tone"]["value"] == "green"
    assert problems["skin_tone"]["allowed"] == BOOK.allowed()["skin_tone"]
    assert problems["build"]["problem"] == "missing"
    assert problems["eyes"]["allowed"] == list(ATTRIBUTES)
    assert refused.value.details["allowed"] == BOOK.allowed()


def test_filters_match_any_of_their_values_and_refuse_unknown_ones() -> None:
    wanted = avatars.validate_filters({"gender_presentation": ["feminine", "androgynous"],
                                       "setting": []}, BOOK)
    assert wanted == {"gender_presentation": {"feminine", "androgynous"}}
    found = [a for a in BOOK.avatars if avatars.matches(a.attributes, wanted)]
    assert found and all(a.attributes.gender_presentation != "masculine" for a in found)
    with pytest.raises(InvalidInput) as refused:
        avatars.validate_filters({"build": ["giant"]}, BOOK)
    assert refused.value.details["problems"][0]["allowed"] == BOOK.allowed()["build"]


def test_the_prompt_says_each_choice_in_plain_words() -> None:
    prompt = avatars.build_prompt(avatars.validate_choices(CHOICES, BOOK), BOOK)
    assert prompt.startswith("Candid photo portrait of an androgynous person in their late "
                             "sixties, with olive skin and silver hair in a short bob")
    assert "slim build" in prompt and "an elegant silk shirt" in prompt
    assert "in a cosy café" in prompt and "no retouching" in prompt
    coloured = avatars.build_prompt(avatars.validate_choices(CHOICES, BOOK), BOOK,
                                    colour="navy", details="Freckles")
    assert "an elegant navy silk shirt" in coloured and "Freckles." in coloured


def test_candidates_get_distinct_seeds_that_a_retry_plans_again() -> None:
    seeds = avatars.candidate_seeds("a20261124t120000-0123456789abcdef", 4)
    assert len(set(seeds)) == 4
    assert seeds == avatars.candidate_seeds("a20261124t120000-0123456789abcdef", 4)
    assert seeds[:2] == avatars.candidate_seeds("a20261124t120000-0123456789abcdef", 2)
    assert seeds != avatars.candidate_seeds("a20261124t120000-fedcba9876543210", 4)
    for count in (0, avatars.MAX_CANDIDATES + 1):
        with pytest.raises(InvalidInput):
            avatars.candidate_seeds("a1", count)


def test_ids_tell_catalogue_avatars_from_custom_ones() -> None:
    assert avatars.is_catalogue_id("c001")
    custom = avatars.new_avatar_id()
    assert custom.startswith("a") and not avatars.is_catalogue_id(custom)
    assert not avatars.is_catalogue_id("c1") and not avatars.is_catalogue_id("cabc")


def test_custom_portraits_live_under_their_owners_prefix() -> None:
    key = avatars.candidate_key("shop-1", "a2026", 2, "jpg")
    assert key == "avatars/users/shop-1/a2026/candidate-02.jpg"


# --- references for "with model" shots --------------------------------------------------------


def _portrait() -> Image.Image:
    image = Image.new("RGB", (300, 400), (210, 214, 220))
    ImageDraw.Draw(image).ellipse((100, 80, 200, 210), fill=(200, 150, 120))
    return image


def _product() -> Image.Image:
    image = Image.new("RGBA", (200, 120), (255, 255, 255, 0))
    ImageDraw.Draw(image).rectangle((20, 10, 180, 110), fill=(30, 90, 160, 255))
    return image


def test_the_side_by_side_reference_holds_the_portrait_left_and_the_product_right() -> None:
    reference = references.side_by_side_reference(_portrait(), _product(), side=400)
    assert reference.size == (800, 400) and reference.mode == "RGBA"
    pixels = np.asarray(reference)
    assert tuple(pixels[200, 200]) == (200, 150, 120, 255)  # the face, left half
    assert tuple(pixels[200, 600]) == (30, 90, 160, 255)  # the product, right half
    assert pixels[5, 5, 3] == 0 and pixels[5, 795, 3] == 0  # elsewhere: transparent white
    person, product = references.split_side_by_side(reference)
    assert person.size == (300, 400)
    assert np.abs(np.asarray(person, int) - np.asarray(_portrait(), int)).max() <= 2
    assert product.mode == "RGBA" and abs(product.width / product.height - 160 / 100) < 0.05


def test_with_model_inputs_follow_the_configured_combination() -> None:
    side = load_models().compose_with_model
    assert side.combine == "side_by_side"
    inputs = avatars.with_model_inputs(side, "Hold it.", 7, reference_url="https://r")
    assert inputs == {"prompt": f"{side.reference_note} Hold it.", "seed": 7,
                      "input_image": "https://r"}
    multi = WithModelSpec(model="o/m", combine="inputs", reference_inputs=("a", "b"))
    assert avatars.with_model_inputs(multi, "Hold it.", 7, person_url="https://p",
                                     product_url="https://q") == {
        "prompt": "Hold it.", "seed": 7, "a": "https://p", "b": "https://q"}
    with pytest.raises(InvalidInput):
        avatars.with_model_inputs(side, "Hold it.", 7, person_url="https://p")
    with pytest.raises(InvalidInput):
        avatars.with_model_inputs(multi, "Hold it.", 7, reference_url="https://r")
