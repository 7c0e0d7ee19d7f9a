"""The Replicate requests for avatar portraits and "with model" shots, as sent on the wire.

Each request is built by the code that builds it in production (the model catalogue,
lightbox.domain.avatars, the finish step's compose request) and sent through the
production gateway (the official client) into an httpx MockTransport, which keeps
the HTTP body. The bodies are then held against the inputs each model accepts, as
documented on its model page (../shared/reference/replicate.md, read 2026-11-24):
no unknown input, raw mode on, an aspect ratio and output format the model knows, the
seed asked for, a safety tolerance in range (Kontext allows at most 2 with an input
image).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import replicate

from lightbox.adapters.replicate_gateway import ReplicateGateway
from lightbox.catalog import ModelSpec, WithModelSpec, load_models, load_scenes
from lightbox.domain import avatars, planning
from lightbox.models import Job, JobStatus, Shot
from lightbox.services.steps import compose

WEBHOOK = "https://api.example.test/webhooks/replicate"


@dataclass(frozen=True)
class AcceptedInputs:
    """What a model's page documents as its inputs."""

    keys: frozenset[str]
    aspect_ratios: frozenset[str]
    output_formats: frozenset[str]
    safety_tolerance: tuple[int, int]
    #: The highest safety tolerance when an input image is given (Kontext).
    safety_with_image: int | None = None
    image_inputs: frozenset[str] = field(default_factory=frozenset)


FLUX_ULTRA = AcceptedInputs(
    keys=frozenset({"prompt", "raw", "aspect_ratio", "image_prompt", "image_prompt_strength",
                    "seed", "output_format", "safety_tolerance"}),
    aspect_ratios=frozenset({"21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3",
                             "9:16", "9:21"}),
    output_formats=frozenset({"jpg", "png"}),
    safety_tolerance=(1, 6),
)
FLUX_KONTEXT = AcceptedInputs(
    keys=frozenset({"prompt", "input_image", "aspect_ratio", "seed", "output_format",
                    "safety_tolerance", "prompt_upsampling"}),
    aspect_ratios=frozenset({"match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4", "3:2",
                             "2:3", "4:5", "5:4", "21:9", "9:21", "2:1", "1:2"}),
    output_formats=frozenset({"jpg", "png"}),
    safety_tolerance=(0, 6),
    safety_with_image=2,
    image_inputs=frozenset({"input_image"}),
)
#: The multi-image Kontext variant (its name and inputs are unverified, see models.yaml):
#: Kontext's inputs with two images instead of one.
FLUX_KONTEXT_MULTI = AcceptedInputs(
    keys=(FLUX_KONTEXT.keys - {"input_image", "prompt_upsampling"})
    | {"input_image_1", "input_image_2"},
    aspect_ratios=FLUX_KONTEXT.aspect_ratios,
    output_formats=FLUX_KONTEXT.output_formats,
    safety_tolerance=FLUX_KONTEXT.safety_tolerance,
    safety_with_image=2,
    image_inputs=frozenset({"input_image_1", "input_image_2"}),
)


class Wire:
    """An httpx transport that keeps every request and answers like Replicate's create."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        return httpx.Response(201, json={
            "id": f"p{len(self.requests)}", "model": "m", "version": "v", "status": "starting",
            "input": body.get("input"), "output": None, "logs": "", "error": None,
            "metrics": {}, "created_at": "2026-11-24T12:00:00Z", "started_at": None,
            "completed_at": None, "urls": {},
        })

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content)

    def path(self, index: int = -1) -> str:
        return self.requests[index].url.path


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def gateway(wire: Wire) -> ReplicateGateway:
    gateway = ReplicateGateway("r8_test_token", base_url="https://api.replicate.test")
    gateway.client = replicate.Client(api_token="r8_test_token",
                                      base_url="https://api.replicate.test",
                                      transport=httpx.MockTransport(wire))
    return gateway


def assert_accepted(body: dict[str, Any], accepted: AcceptedInputs) -> dict[str, Any]:
    """The request is a create with a webhook, and every input is one the model takes."""
    assert body["webhook"] == WEBHOOK and body["webhook_events_filter"] == ["completed"]
    assert "version" not in body  # an official model, run by name
    inputs = body["input"]
    assert set(inputs) <= accepted.keys, set(inputs) - accepted.keys
    assert inputs["aspect_ratio"] in accepted.aspect_ratios
    assert inputs["output_format"] in accepted.output_formats
    assert isinstance(inputs["seed"], int) and 0 <= inputs["seed"] < 2**31
    low, high = accepted.safety_tolerance
    if accepted.image_inputs & set(inputs) and accepted.safety_with_image is not None:
        high = accepted.safety_with_image
    assert isinstance(inputs["safety_tolerance"], int) and low <= inputs["safety_tolerance"] <= high
    assert isinstance(inputs["prompt"], str) and inputs["prompt"].strip()
    return inputs


# --- portraits --------------------------------------------------------------------------------


def test_a_catalogue_portrait_request_is_flux_ultra_in_raw_mode(
    gateway: ReplicateGateway, wire: Wire
) -> None:
    # Given a catalogue avatar and the configured portrait model
    avatar = avatars.load_avatar_catalogue().avatars[0]
    spec = load_models().portrait
    # When its portrait is asked for, as the batch asks
    gateway.create_prediction(spec, avatars.portrait_inputs(avatar.prompt, avatar.seed),
                              webhook=WEBHOOK)
    # Then Flux 1.1 Pro Ultra is run by name with inputs it accepts
    assert wire.path() == "/v1/models/black-forest-labs/flux-1.1-pro-ultra/predictions"
    inputs = assert_accepted(wire.body(), FLUX_ULTRA)
    # in raw mode, portrait-shaped, as a JPEG, with the avatar's fixed seed and prompt
    assert inputs["raw"] is True
    assert inputs["aspect_ratio"] == "3:4"
    assert inputs["output_format"] == "jpg"
    assert inputs["seed"] == avatar.seed
    assert inputs["prompt"] == avatar.prompt
    assert inputs["safety_tolerance"] == 2


def test_wizard_candidates_differ_only_by_seed(gateway: ReplicateGateway, wire: Wire) -> None:
    # Given the wizard's prompt for a shop's choices and its candidates' seeds
    book = avatars.load_avatar_catalogue()
    choices = avatars.validate_choices(
        {"age_range": "35-44", "gender_presentation": "masculine", "skin_tone": "deep",
         "hair": "bald", "build": "broad", "style": "business", "setting": "office"}, book)
    prompt = avatars.build_prompt(choices, book)
    seeds = avatars.candidate_seeds("a20261124t120000-0123456789abcdef", 3)
    spec = load_models().portrait
    # When each candidate is asked for
    for seed in seeds:
        gateway.create_prediction(spec, avatars.portrait_inputs(prompt, seed),
                                  webhook=WEBHOOK)
    # Then the three bodies are accepted, raw, and the same but for the seed
    bodies = [assert_accepted(wire.body(i), FLUX_ULTRA) for i in range(3)]
    assert all(b["raw"] is True for b in bodies)
    assert [b["seed"] for b in bodies] == seeds and len(set(seeds)) == 3
    assert all({k: v for k, v in b.items() if k != "seed"}
               == {k: v for k, v in bodies[0].items() if k != "seed"} for b in bodies)


# --- "with model" shots -----------------------------------------------------------------------


class FakeObjects:
    """Presigned GETs without AWS: the key is kept readable in the URL."""

    def presigned_get(self, key: str, expires: int, **_: Any) -> str:
        return f"https://bucket.example.test/{key}?X-Amz-Expires={expires}"


def _job(**overrides: Any) -> Job:
    values: dict[str, Any] = {
        "job_id": "j20261124t120000-0123456789abcdef", "user_id": "shop-1",
        "status": JobStatus.COMPOSING, "scenes": ["with-model-holding", "white-studio"],
        "variants": 1, "presets": ["original"], "shots_total": 2,
        "source_key": "uploads/shop-1/j/original", "cutout_key": "work/shop-1/j/cutout.png",
        "avatar_id": "c002", "avatar_portrait_key": "avatars/catalog/c002.jpg",
        "person_reference_key": "work/shop-1/j/person-reference.png",
        "deadline": "2026-11-24T13:00:00Z",
    }
    values.update(overrides)
    return Job.model_validate(values)


def _shot(scene_id: str) -> Shot:
    return Shot(job_id="j", shot_id="001", index=1, scene_id=scene_id, variant=1,
                seed=planning.derive_seed("j", 1))


def _context(with_model: WithModelSpec | None = None) -> Any:
    models = load_models()
    if with_model is not None:
        models = models.model_copy(update={"compose_with_model": with_model})
    return SimpleNamespace(scenes=load_scenes(), models=models, objects=FakeObjects())


def _compose(gateway: ReplicateGateway, ctx: Any, job: Job, scene_id: str,
             attempt: int = 1) -> ModelSpec:
    spec, inputs = compose.compose_request(ctx, _shot(scene_id), attempt,
                                            compose.References(ctx, job))
    gateway.create_prediction(spec, inputs, webhook=WEBHOOK)
    return spec


@pytest.mark.parametrize("scene_id", ["with-model-holding", "with-model-wearing",
                                      "with-model-beside"])
def test_a_with_model_shot_gives_kontext_the_portrait_beside_the_product(
    gateway: ReplicateGateway, wire: Wire, scene_id: str
) -> None:
    # Given a job with a catalogue avatar, and the configured side-by-side composition
    job = _job()
    # When a "with model" shot is composed
    _compose(gateway, _context(), job, scene_id)
    # Then Flux Kontext is run by name with inputs it accepts
    assert wire.path() == "/v1/models/black-forest-labs/flux-kontext-max/predictions"
    inputs = assert_accepted(wire.body(), FLUX_KONTEXT)
    # and its one image is the job's reference of the portrait beside the product
    assert inputs["input_image"].startswith(f"https://bucket.example.test/{job.person_reference_key}?")
    # at 4:5 (never "match_input_image": the reference is 2:1), as PNG, safety at most 2
    assert inputs["aspect_ratio"] == "4:5"
    assert inputs["output_format"] == "png" and inputs["safety_tolerance"] <= 2
    assert inputs["prompt_upsampling"] is False
    # with the planned seed, and the prompt saying which reference is which, then the scene
    assert inputs["seed"] == _shot(scene_id).seed
    note = load_models().compose_with_model.reference_note
    scene = load_scenes()[scene_id]
    assert inputs["prompt"] == f"{note} {scene.full_prompt()}"


def test_a_regenerated_with_model_shot_keeps_its_references_and_changes_its_seed(
    gateway: ReplicateGateway, wire: Wire
) -> None:
    job = _job()
    _compose(gateway, _context(), job, "with-model-holding", attempt=1)
    _compose(gateway, _context(), job, "with-model-holding", attempt=2)
    first, second = wire.body(0)["input"], wire.body(1)["input"]
    assert second["seed"] == planning.attempt_seed(first["seed"], 2) != first["seed"]
    assert {k: v for k, v in first.items() if k != "seed"} == \
        {k: v for k, v in second.items() if k != "seed"}


def test_a_multi_image_model_gets_the_portrait_and_the_product_in_their_own_inputs(
    gateway: ReplicateGateway, wire: Wire
) -> None:
    # Given a configuration that combines references as separate inputs
    spec = WithModelSpec(
        model="flux-kontext-apps/multi-image-kontext-max", combine="inputs",
        reference_inputs=("input_image_1", "input_image_2"),
        reference_note="The first image shows a person, the second a product.",
        input={"aspect_ratio": "4:5", "output_format": "png", "safety_tolerance": 2},
    )
    job = _job(person_reference_key=None)
    # When a "with model" shot is composed
    _compose(gateway, _context(spec), job, "with-model-wearing")
    # Then the configured model gets the portrait first and the product second
    assert wire.path() == "/v1/models/flux-kontext-apps/multi-image-kontext-max/predictions"
    inputs = assert_accepted(wire.body(), FLUX_KONTEXT_MULTI)
    assert inputs["input_image_1"].startswith(
        f"https://bucket.example.test/{job.avatar_portrait_key}?")
    assert inputs["input_image_2"].startswith(f"https://bucket.example.test/{job.cutout_key}?")
    assert inputs["prompt"].startswith("The first image shows a person, the second a product. ")


def test_a_scene_without_a_person_still_gets_the_product_alone(
    gateway: ReplicateGateway, wire: Wire
) -> None:
    # Given the same job's studio scene
    _compose(gateway, _context(), _job(), "white-studio")
    # Then it is an ordinary composition of the cutout, with no portrait
    inputs = assert_accepted(wire.body(), FLUX_KONTEXT)
    assert inputs["input_image"].startswith("https://bucket.example.test/work/shop-1/j/cutout.png?")
    assert "reference sheet" not in inputs["prompt"]
