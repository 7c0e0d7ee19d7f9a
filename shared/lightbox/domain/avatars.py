"""Avatars: the people who hold, wear or stand beside a shop's product.

An avatar is a portrait plus the words it was made from. Ready-made avatars live in
the catalogue (``catalog/avatars.yaml``, data, not code); a shop can also describe its
own through the same attributes, and Lightbox builds the portrait prompt from them.
Portraits are made with Flux 1.1 Pro Ultra in raw mode (less polished, more natural),
and the portrait is given to the composing model as a reference with the product, so
the same person appears across every "with model" shot.

Pure code: choices in, prompts, seeds and request inputs out (the reference images
they point at are made in `lightbox.domain.references`). No I/O beyond reading the
catalogue file; nothing here knows about Lambda or AWS.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lightbox.catalog import WithModelSpec, read_yaml
from lightbox.domain.planning import derive_seed
from lightbox.errors import InvalidInput

#: The order a shop chooses attributes in, and the fields of every avatar.
ATTRIBUTES: tuple[str, ...] = (
    "age_range",
    "gender_presentation",
    "skin_tone",
    "hair",
    "build",
    "style",
    "setting",
)
#: Who catalogue portraits belong to in prediction records: not a user id (user ids
#: are Cognito subs, or letters, digits, '-' and '_' locally), so it never collides.
CATALOGUE_OWNER = "lightbox:catalogue"
CATALOGUE_PREFIX = "avatars/catalog/"
#: A wizard makes at most this many candidate portraits per request.
MAX_CANDIDATES = 4


# --- the catalogue's data ---------------------------------------------------------------


class AttributeOption(BaseModel):
    """One value a shop can choose for an attribute, and the words it adds to a prompt."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    label: str
    prompt: str
    #: gender_presentation only: the noun and possessive the prompt uses.
    noun: str | None = None
    possessive: str | None = None


class AvatarAttributes(BaseModel):
    """A complete choice of every attribute (ids of AttributeOption)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    age_range: str
    gender_presentation: str
    skin_tone: str
    hair: str
    build: str
    style: str
    setting: str


class CatalogueAvatar(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^c[0-9]{3}$")
    name: str = Field(min_length=1, max_length=40)
    attributes: AvatarAttributes
    prompt: str = Field(min_length=20)
    seed: int = Field(ge=0, le=2**31 - 1)
    #: Where its portrait is (once generated): shared by every shop, read-only to them.
    portrait_key: str


class AvatarCatalogue(BaseModel):
    model_config = ConfigDict(frozen=True)

    attributes: dict[str, list[AttributeOption]]
    avatars: list[CatalogueAvatar]

    @model_validator(mode="after")
    def _consistent(self) -> AvatarCatalogue:
        if tuple(self.attributes) != ATTRIBUTES:
            raise ValueError(f"attributes must be, in order: {', '.join(ATTRIBUTES)}")
        for name, options in self.attributes.items():
            ids = [o.id for o in options]
            if not ids or len(set(ids)) != len(ids):
                raise ValueError(f"attribute {name} needs distinct option ids")
        for option in self.attributes["gender_presentation"]:
            if not option.noun or not option.possessive:
                raise ValueError(f"gender_presentation {option.id} needs a noun and possessive")
        seen_ids: set[str] = set()
        seen_seeds: set[int] = set()
        for avatar in self.avatars:
            if avatar.id in seen_ids:
                raise ValueError(f"avatar id {avatar.id} is used twice")
            if avatar.seed in seen_seeds:
                raise ValueError(f"avatar {avatar.id} repeats another avatar's seed")
            seen_ids.add(avatar.id)
            seen_seeds.add(avatar.seed)
            if avatar.portrait_key != f"{CATALOGUE_PREFIX}{avatar.id}.jpg":
                raise ValueError(f"avatar {avatar.id}: portrait_key must be "
                                 f"{CATALOGUE_PREFIX}{avatar.id}.jpg")
            problems = attribute_problems(avatar.attributes.model_dump(), self.attributes)
            if problems:
                raise ValueError(f"avatar {avatar.id}: {problems}")
        return self

    def allowed(self) -> dict[str, list[str]]:
        return {name: [o.id for o in options] for name, options in self.attributes.items()}

    def option(self, attribute: str, value: str) -> AttributeOption:
        for candidate in self.attributes[attribute]:
            if candidate.id == value:
                return candidate
        raise InvalidInput(f"Unknown {attribute} {value!r}.", field=attribute,
                           allowed=[o.id for o in self.attributes[attribute]])

    def by_id(self) -> dict[str, CatalogueAvatar]:
        return {a.id: a for a in self.avatars}


@lru_cache(maxsize=1)
def load_avatar_catalogue() -> AvatarCatalogue:
    return AvatarCatalogue.model_validate(read_yaml("avatars.yaml"))


def is_catalogue_id(avatar_id: str) -> bool:
    return len(avatar_id) == 4 and avatar_id[0] == "c" and avatar_id[1:].isdigit()


# --- choosing -------------------------------------------------------------------------------


def attribute_problems(
    choices: Mapping[str, Any], options: Mapping[str, list[AttributeOption]]
) -> list[dict[str, Any]]:
    """Every missing, unknown or unexpected attribute, each with the values allowed."""
    problems: list[dict[str, Any]] = []
    for name in ATTRIBUTES:
        allowed = [o.id for o in options[name]]
        value = choices.get(name)
        if value is None:
            problems.append({"field": name, "problem": "missing", "allowed": allowed})
        elif value not in allowed:
            problems.append({"field": name, "problem": "unknown value", "value": str(value),
                             "allowed": allowed})
    for name in choices:
        if name not in ATTRIBUTES:
            problems.append({"field": str(name), "problem": "not an avatar attribute",
                             "allowed": list(ATTRIBUTES)})
    return problems


def validate_choices(choices: Mapping[str, Any], catalogue: AvatarCatalogue) -> AvatarAttributes:
    """A shop's choices as AvatarAttributes; InvalidInput (422) lists what is allowed."""
    problems = attribute_problems(choices, catalogue.attributes)
    if problems:
        fields = ", ".join(p["field"] for p in problems)
        raise InvalidInput(f"Choose a known value for: {fields}.", problems=problems,
                           allowed=catalogue.allowed())
    return AvatarAttributes.model_validate(dict(choices))


def validate_filters(
    filters: Mapping[str, Iterable[str]], catalogue: AvatarCatalogue
) -> dict[str, set[str]]:
    """Picker filters (attribute → accepted values); unknown ones are a 422, like choices."""
    allowed = catalogue.allowed()
    problems = []
    clean: dict[str, set[str]] = {}
    for name, values in filters.items():
        values = [v for v in values if v]
        if not values:
            continue
        if name not in allowed:
            problems.append({"field": name, "problem": "not an avatar attribute",
                             "allowed": list(ATTRIBUTES)})
            continue
        unknown = [v for v in values if v not in allowed[name]]
        if unknown:
            problems.append({"field": name, "problem": "unknown value", "value": unknown[0],
                             "allowed": allowed[name]})
        clean[name] = set(values)
    if problems:
        fields = ", ".join(p["field"] for p in problems)
        raise InvalidInput(f"Filter by known values of: {fields}.", problems=problems,
                           allowed=allowed)
    return clean


def matches(attributes: AvatarAttributes, filters: Mapping[str, set[str]]) -> bool:
    values = attributes.model_dump()
    return all(values[name] in accepted for name, accepted in filters.items())


# --- the portrait ---------------------------------------------------------------------------


def build_prompt(
    attributes: AvatarAttributes,
    catalogue: AvatarCatalogue,
    *,
    colour: str | None = None,
    details: str | None = None,
) -> str:
    """The portrait prompt: plain, photographic words, since raw mode rewards realism.

    Flux takes no negative prompt; what must not show is said in the prompt itself.
    """
    option = catalogue.option
    gender = option("gender_presentation", attributes.gender_presentation)
    age = option("age_range", attributes.age_range).prompt.format(
        possessive=gender.possessive)
    skin = option("skin_tone", attributes.skin_tone).prompt
    hair = option("hair", attributes.hair).prompt
    build = option("build", attributes.build).prompt
    style = option("style", attributes.style).prompt.format(
        colour=f"{colour} " if colour else "")
    setting = option("setting", attributes.setting).prompt
    extra = f" {details.strip().rstrip('.')}." if details and details.strip() else ""
    noun = gender.noun or "person"
    article = "an" if noun[0] in "aeiou" else "a"
    return (
        f"Candid photo portrait of {article} {noun} {age}, with {skin} skin and {hair}, "
        f"{build}, wearing {style}, {setting}.{extra} Head and shoulders, looking at the "
        "camera with a relaxed, natural expression. Natural light, realistic skin texture "
        "with pores and small imperfections, no retouching, no make-up look, shot on a "
        "50mm lens. One person only, no text, no watermark."
    )


def new_avatar_id(now: datetime | None = None) -> str:
    """Time-ordered and unguessable, like job ids: ``a20261124t120501-<16 hex>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dt%H%M%S")
    return f"a{stamp}-{secrets.token_hex(8)}"


def candidate_seeds(avatar_id: str, count: int) -> list[int]:
    """One distinct seed per candidate, derived from the avatar id (a retry plans the same)."""
    if not 1 <= count <= MAX_CANDIDATES:
        raise InvalidInput(f"Ask for 1 to {MAX_CANDIDATES} candidate portraits.", count=count)
    seeds: list[int] = []
    n = 0
    while len(seeds) < count:
        n += 1
        seed = derive_seed(avatar_id, "candidate", n)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def candidate_label(candidate: int) -> str:
    """The shot_id slot a portrait prediction records its candidate number in."""
    return f"{candidate:02d}"


def portrait_inputs(prompt: str, seed: int) -> dict[str, Any]:
    """What Lightbox adds to the portrait model's configured inputs (models.yaml: raw
    mode, aspect ratio, output format, safety tolerance): the prompt and the seed."""
    return {"prompt": prompt, "seed": seed}


def candidate_key(owner_id: str, avatar_id: str, candidate: int, extension: str) -> str:
    """A custom avatar's portraits are private: under the owner's own prefix."""
    return f"avatars/users/{owner_id}/{avatar_id}/candidate-{candidate_label(candidate)}.{extension}"


# --- "with model" shots ---------------------------------------------------------------------


def with_model_prompt(spec: WithModelSpec, scene_prompt: str) -> str:
    note = spec.reference_note.strip()
    return f"{note} {scene_prompt}" if note else scene_prompt


def with_model_inputs(
    spec: WithModelSpec,
    prompt: str,
    seed: int,
    *,
    person_url: str | None = None,
    product_url: str | None = None,
    reference_url: str | None = None,
) -> dict[str, Any]:
    """A "with model" compose request: the scene prompt, the seed and the references."""
    inputs: dict[str, Any] = {"prompt": with_model_prompt(spec, prompt), "seed": seed}
    if spec.combine == "side_by_side":
        if not reference_url:
            raise InvalidInput("A side-by-side composition needs its reference image.")
        inputs[spec.image_input or "input_image"] = reference_url
    else:
        if not person_url or not product_url:
            raise InvalidInput("A composition with a person needs the portrait and the product.")
        person_input, product_input = spec.reference_inputs
        inputs[person_input] = person_url
        inputs[product_input] = product_url
    return inputs
