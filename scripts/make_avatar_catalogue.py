"""Write shared/lightbox/catalog/avatars.yaml: the attribute options and the ready-made avatars.

The YAML is the data; this script is how its first version was made, kept so the
catalogue can be rebuilt with more avatars or new options. Hand edits to the YAML
(a better prompt, a renamed avatar) are fine, but rerunning this overwrites them.
Ids and seeds are stable: avatar N is always cNNN with the seed derived from its id,
so regenerating a portrait after a rebuild draws the same person if its prompt did
not change.

    .venv/bin/python scripts/make_avatar_catalogue.py [--count 120]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import yaml

from lightbox.domain.avatars import (
    ATTRIBUTES,
    CATALOGUE_PREFIX,
    AttributeOption,
    AvatarAttributes,
    AvatarCatalogue,
    build_prompt,
)
from lightbox.domain.planning import derive_seed

OUT = Path(__file__).resolve().parents[1] / "shared" / "lightbox" / "catalog" / "avatars.yaml"

OPTIONS: dict[str, list[dict[str, str]]] = {
    "age_range": [
        {"id": "18-24", "label": "18–24", "prompt": "in {possessive} early twenties"},
        {"id": "25-34", "label": "25–34", "prompt": "in {possessive} late twenties"},
        {"id": "35-44", "label": "35–44", "prompt": "around forty"},
        {"id": "45-54", "label": "45–54", "prompt": "in {possessive} late forties"},
        {"id": "55-64", "label": "55–64", "prompt": "in {possessive} late fifties"},
        {"id": "65-plus", "label": "65+", "prompt": "in {possessive} late sixties"},
    ],
    "gender_presentation": [
        {"id": "feminine", "label": "Feminine", "prompt": "woman", "noun": "woman",
         "possessive": "her"},
        {"id": "masculine", "label": "Masculine", "prompt": "man", "noun": "man",
         "possessive": "his"},
        {"id": "androgynous", "label": "Androgynous", "prompt": "androgynous person",
         "noun": "androgynous person", "possessive": "their"},
    ],
    "skin_tone": [
        {"id": tone, "label": tone.capitalize(), "prompt": tone}
        for tone in ("fair", "light", "medium", "olive", "tan", "brown", "dark", "deep")
    ],
    "hair": [
        {"id": "short-black", "label": "Short black", "prompt": "short black hair"},
        {"id": "short-brown", "label": "Short brown", "prompt": "short brown hair"},
        {"id": "short-blonde", "label": "Short blonde", "prompt": "short blonde hair"},
        {"id": "short-grey", "label": "Short grey", "prompt": "short grey hair"},
        {"id": "long-black", "label": "Long black", "prompt": "long straight black hair"},
        {"id": "long-brown", "label": "Long brown", "prompt": "long brown hair"},
        {"id": "long-blonde", "label": "Long blonde", "prompt": "long blonde hair"},
        {"id": "long-red", "label": "Long red", "prompt": "long red hair"},
        {"id": "curly-black", "label": "Curly black", "prompt": "curly black hair"},
        {"id": "curly-brown", "label": "Curly brown", "prompt": "curly brown hair"},
        {"id": "braids", "label": "Braids", "prompt": "black hair in long braids"},
        {"id": "bun", "label": "Bun", "prompt": "dark hair tied in a bun"},
        {"id": "silver-bob", "label": "Silver bob", "prompt": "silver hair in a short bob"},
        {"id": "bald", "label": "Shaved head", "prompt": "a shaved head"},
    ],
    "build": [
        {"id": "slim", "label": "Slim", "prompt": "slim build"},
        {"id": "average", "label": "Average", "prompt": "average build"},
        {"id": "athletic", "label": "Athletic", "prompt": "athletic build"},
        {"id": "curvy", "label": "Curvy", "prompt": "curvy figure"},
        {"id": "plus-size", "label": "Plus-size", "prompt": "plus-size figure"},
        {"id": "broad", "label": "Broad", "prompt": "broad, sturdy build"},
    ],
    "style": [
        {"id": "casual", "label": "Casual", "prompt": "a plain {colour}t-shirt and jeans"},
        {"id": "smart-casual", "label": "Smart casual",
         "prompt": "a chunky {colour}knit sweater over a collared shirt"},
        {"id": "business", "label": "Business", "prompt": "a tailored {colour}blazer"},
        {"id": "streetwear", "label": "Streetwear", "prompt": "an oversized {colour}hoodie"},
        {"id": "sporty", "label": "Sporty", "prompt": "a fitted {colour}zip-up sports top"},
        {"id": "elegant", "label": "Elegant", "prompt": "an elegant {colour}silk shirt"},
        {"id": "bohemian", "label": "Bohemian",
         "prompt": "a loose {colour}linen shirt and layered jewellery"},
        {"id": "outdoor", "label": "Outdoor",
         "prompt": "a light {colour}waterproof outdoor jacket"},
    ],
    "setting": [
        {"id": "studio", "label": "Studio",
         "prompt": "photographed in a studio against a plain light backdrop"},
        {"id": "home", "label": "Home", "prompt": "at home in a bright living room"},
        {"id": "street", "label": "City street", "prompt": "on a city street"},
        {"id": "park", "label": "Park", "prompt": "outdoors in a green park"},
        {"id": "office", "label": "Office", "prompt": "in a modern office"},
        {"id": "cafe", "label": "Café", "prompt": "in a cosy café"},
        {"id": "beach", "label": "Beach", "prompt": "on a sunny beach"},
    ],
}

def _names(text: str) -> list[str]:
    return text.split()


NAMES = {
    "feminine": _names("""Amara Sofia Mei Priya Olivia Fatima Ingrid Lucia Aiko Zanele Chloe Leila
        Hana Isabela Nadia Grace Yara Elena Keiko Adaeze Maya Rosa Anika Freya Layla
        Camila Ji-woo Thandiwe Emma Noor Valentina Sakura Imani Clara Esra Lina Marisol
        Ava Kavya Zoe Ayasha Bianca Dalia Greta Ife Mira Naledi Rania"""),
    "masculine": _names("""Kwame Mateo Hiroshi Arjun Liam Omar Lars Diego Kenji Sipho Lucas Karim
        Min-jun Rafael Ivan Daniel Tariq Marco Takeshi Chidi Noah Pablo Rohan Erik Yusuf
        Andrés Wei Themba Samuel Hassan Luca Haruto Malik Felix Emre Ali Joaquín Ben
        Vikram Theo Kai Bruno Darius Gustav Obi Nikhil Tomás Zaid"""),
    "androgynous": _names("""Alex Sam Robin Jordan Charlie Noa Ari Sasha Quinn Rowan Avery Jules
        Remy Sky Eden River Taylor Morgan Jesse Riley Emery Indigo Sage Lumi"""),
}
COLOURS = ["navy", "white", "black", "grey", "olive", "burgundy", "mustard", "cream",
           "denim", "teal", "camel", "sage", "charcoal", "lavender", "red", "green"]
DETAILS = {
    "masculine": ["A short, neat beard.", "Light stubble.", "Round glasses.", "", "", ""],
    "feminine": ["Freckles.", "Round glasses.", "Small gold earrings.", "", "", ""],
    "androgynous": ["Round glasses.", "Freckles.", "A small nose ring.", "", ""],
}
GENDER_PATTERN = ["feminine", "masculine", "feminine", "masculine", "androgynous"]


def _balanced(values: list[str], count: int, rng: random.Random) -> list[str]:
    """Every value about equally often, in a shuffled order."""
    repeated = (values * (count // len(values) + 1))[:count]
    rng.shuffle(repeated)
    return repeated


def build(count: int) -> dict:
    rng = random.Random(20261124)
    options = {name: [AttributeOption.model_validate(o) for o in OPTIONS[name]]
               for name in ATTRIBUTES}
    catalogue = AvatarCatalogue(attributes=options, avatars=[])
    ids = {name: [o["id"] for o in OPTIONS[name]] for name in ATTRIBUTES}
    columns = {name: _balanced(ids[name], count, rng)
               for name in ATTRIBUTES if name != "gender_presentation"}
    names = {g: list(n) for g, n in NAMES.items()}
    for pool in names.values():
        rng.shuffle(pool)
    avatars = []
    for i in range(count):
        gender = GENDER_PATTERN[i % len(GENDER_PATTERN)]
        choice = {name: columns[name][i] for name in columns}
        choice["gender_presentation"] = gender
        if choice["age_range"] in ("55-64", "65-plus") and rng.random() < 0.6:
            choice["hair"] = rng.choice(["short-grey", "silver-bob", "bald"])
        attributes = AvatarAttributes.model_validate(choice)
        avatar_id = f"c{i + 1:03d}"
        prompt = build_prompt(attributes, catalogue, colour=rng.choice(COLOURS),
                              details=rng.choice(DETAILS[gender]))
        avatars.append({
            "id": avatar_id,
            "name": names[gender].pop(),
            "attributes": attributes.model_dump(),
            "prompt": prompt,
            "seed": derive_seed("avatar-catalogue", avatar_id),
            "portrait_key": f"{CATALOGUE_PREFIX}{avatar_id}.jpg",
        })
    data = {"attributes": OPTIONS, "avatars": avatars}
    AvatarCatalogue.model_validate(data)  # refuse to write a catalogue that does not load
    return data


HEADER = """\
# Avatars: the ready-made people a shop can pick for "with model" shots, and the
# attributes a shop chooses by (the picker's filters and the custom-avatar wizard).
# Data, not code (lightbox.domain.avatars reads it); first written by
# scripts/make_avatar_catalogue.py, edit freely.
#
# attributes    per attribute, the values a shop can choose: a stable id (what the
#               API takes), a label (what a page shows) and the words the value adds
#               to a portrait prompt ({possessive} and {colour} are filled in)
# avatars       id          stable: jobs and pages refer to it
#               name        what a page shows
#               attributes  one value id per attribute (what the picker filters on)
#               prompt      the portrait prompt, sent to Flux 1.1 Pro Ultra in raw mode
#               seed        fixed, so regenerating draws the same person
#               portrait_key  where its portrait is once `lightbox avatars generate`
#                           made it (the table records whether it has been)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=120)
    args = parser.parse_args()
    data = build(args.count)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    OUT.write_text(HEADER + text, encoding="utf-8")
    print(f"wrote {len(data['avatars'])} avatars to {OUT}")


if __name__ == "__main__":
    main()
