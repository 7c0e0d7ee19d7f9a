"""Avatars end to end: the catalogue batch, the wizard, "with model" jobs, privacy.

Portraits run through the same prediction → webhook → "finish image" execution as
every other model (Fetch, then RecordPortrait), on the local stack.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from lightbox.adapters.avatar_store import AvatarStore
from lightbox.adapters.ledger import EntryKind
from lightbox.catalog import load_models, load_scenes
from lightbox.domain.avatars import CATALOGUE_OWNER, load_avatar_catalogue
from lightbox.domain.references import side_by_side_reference
from lightbox.models import AvatarStatus, JobStatus, PortraitStatus, ShotStatus
from lightbox.services import avatars
from lightbox.services.context import get_context
from lightbox_local.cli import main as lightbox_cli
from lightbox_local.engine.server import Fault
from lightbox_local.stack import LocalStack
from tests.flow.conftest import COFFEE, Shop, signed_in

pytestmark = [pytest.mark.flow, pytest.mark.slow]

WITH_MODEL = ["with-model-holding", "with-model-wearing", "with-model-beside"]
CHOICES = {"age_range": "25-34", "gender_presentation": "feminine", "skin_tone": "medium",
           "hair": "long-black", "build": "average", "style": "casual", "setting": "studio"}
_others = itertools.count(1)


# --- helpers ----------------------------------------------------------------------------


def _store() -> AvatarStore:
    ctx = get_context()
    return AvatarStore(ctx.dynamodb, ctx.settings.table_name)


def _portrait_predictions(stack: LocalStack) -> list:
    return [r for r in list(stack.engine.predictions.values()) if r.role == "portrait"]


def _catalogue_made(stack: LocalStack, ids: list[str], timeout: float = 120.0) -> dict:
    def made() -> bool:
        portraits = _store().catalogue_portraits()
        return all(i in portraits and portraits[i].status.terminal for i in ids)

    assert stack.wait_for(made, timeout), f"catalogue portraits {ids} were not all made"
    return _store().catalogue_portraits()


def _avatar_settled(stack: LocalStack, avatar_id: str, timeout: float = 120.0):
    def settled() -> bool:
        avatar = _store().get_avatar(avatar_id)
        return avatar is not None and avatar.status != AvatarStatus.GENERATING

    assert stack.wait_for(settled, timeout), f"avatar {avatar_id} never left generating"
    avatar = _store().get_avatar(avatar_id)
    assert avatar is not None
    return avatar


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _key_of(url: str) -> str:
    """The S3 key a presigned (path-style) URL points at."""
    return unquote(urlsplit(url).path).split("/", 2)[2]


@pytest.fixture
def other_shop(stack: LocalStack) -> Iterator[Shop]:
    with signed_in(stack, f"avatar-other-{next(_others)}") as signed:
        yield signed


@pytest.fixture
def kept_avatar(paying_shop: Shop) -> Callable[..., dict]:
    """kept_avatar(candidates=1): a custom avatar of paying_shop, one candidate kept."""

    def make(candidates: int = 1) -> dict:
        created = paying_shop.http.post(f"{paying_shop.stack.url}/api/avatars",
                                        json={**CHOICES, "candidates": candidates})
        assert created.status_code == 201, created.text
        avatar_id = created.json()["avatar_id"]
        assert _avatar_settled(paying_shop.stack, avatar_id).status == AvatarStatus.CHOOSING
        kept = paying_shop.http.post(f"{paying_shop.stack.url}/api/avatars/{avatar_id}/keep",
                                     json={"candidate": 1})
        assert kept.status_code == 200, kept.text
        return kept.json()

    return make


# --- the catalogue batch --------------------------------------------------------------------


def test_the_catalogue_batch_asks_once_for_each_portrait(stack: LocalStack) -> None:
    # Given the whole catalogue, and the portraits already made (none, unless an earlier
    # test made some)
    ctx = get_context()
    book = load_avatar_catalogue().by_id()
    made_before = {i for i, p in _store().catalogue_portraits().items()
                   if p.status == PortraitStatus.READY}
    asked_before = len(_portrait_predictions(stack))
    # When the operator runs the batch, and at once runs it again
    first = avatars.generate_catalogue(ctx)
    again = avatars.generate_catalogue(ctx)
    # Then the first run asks for every portrait not made yet, once, and the second for none
    assert len(book) >= 100
    assert set(first.requested) == set(book) - made_before and not first.failed
    assert set(first.already_made) == made_before
    assert again.requested == [] and set(again.in_flight) | set(again.already_made) == set(book)
    assert len(_portrait_predictions(stack)) == asked_before + len(first.requested)
    # and each portrait lands at the catalogue's key, a 3:4 JPEG
    made = _catalogue_made(stack, list(book), timeout=300)
    assert all(made[i].status == PortraitStatus.READY and made[i].key == book[i].portrait_key
               for i in book)
    portrait = _image(ctx.objects.get(book["c010"].portrait_key))
    assert portrait.format == "JPEG" and portrait.size == (768, 1024)
    # When the batch runs once more, after they are made
    later = avatars.generate_catalogue(ctx)
    # Then it creates no prediction at all, and no shop paid for any of it
    assert later.requested == [] and set(later.already_made) == set(book)
    assert len(_portrait_predictions(stack)) == asked_before + len(first.requested)
    assert ctx.ledger.entries(CATALOGUE_OWNER) == []
    # and the requests were Flux 1.1 Pro Ultra in raw mode, each avatar's prompt and seed
    asked = {r.input["seed"]: r for r in _portrait_predictions(stack)[asked_before:]}
    assert set(asked) == {book[i].seed for i in first.requested}
    for avatar_id in first.requested:
        record = asked[book[avatar_id].seed]
        assert record.model == load_models().portrait.model
        assert record.input["raw"] is True and record.input["prompt"] == book[avatar_id].prompt


def test_the_picker_filters_the_catalogue_by_attribute(paying_shop: Shop) -> None:
    # Given catalogue avatars with and without portraits
    ctx, stack = get_context(), paying_shop.stack
    avatars.generate_catalogue(ctx, only=["c003", "c008"])
    _catalogue_made(stack, ["c003", "c008"])
    url = f"{stack.url}/api/avatars"
    # When the picker asks for the options, then for some values of two attributes
    options = paying_shop.http.get(f"{url}/options").json()
    wanted = {"gender_presentation": ["feminine", "androgynous"], "skin_tone": ["fair", "olive"]}
    found = paying_shop.http.get(url, params={**wanted, "usable": "true"}).json()["avatars"]
    # Then the options are the catalogue's attributes, with the portrait price
    assert list(options["attributes"]) == list(load_avatar_catalogue().attributes)
    assert options["portrait_price"] == ctx.pricing.portrait
    # and every avatar found matches every filter (any of its values), with a portrait link
    expected = {a.id for a in load_avatar_catalogue().avatars
                if a.attributes.gender_presentation in wanted["gender_presentation"]
                and a.attributes.skin_tone in wanted["skin_tone"]}
    made = {i for i, p in _store().catalogue_portraits().items() if p.key}
    assert {a["avatar_id"] for a in found} == expected & made
    assert found and all(a["usable"] and a["portrait_url"] for a in found)


def test_regenerating_a_catalogue_portrait_makes_it_again_once(stack: LocalStack) -> None:
    # Given a catalogue portrait that is made
    ctx = get_context()
    avatars.generate_catalogue(ctx, only=["c014"])
    first = _catalogue_made(stack, ["c014"])["c014"]
    asked_before = len(_portrait_predictions(stack))
    # When the operator regenerates it, and again while that portrait is being made
    stack.engine.configure(latency=0.5)
    once = avatars.generate_catalogue(ctx, only=["c014"], regenerate=True)
    twice = avatars.generate_catalogue(ctx, only=["c014"], regenerate=True)
    # Then one new prediction is made, as its next generation, at the same key
    assert once.requested == ["c014"]
    assert twice.requested == [] and twice.in_flight == ["c014"]
    assert len(_portrait_predictions(stack)) == asked_before + 1

    def remade() -> bool:
        portrait = _store().get_portrait("c014")
        return portrait is not None and portrait.generation == 2 and portrait.status.terminal

    assert stack.wait_for(remade, 60)
    again = _store().get_portrait("c014")
    assert again is not None and again.status == PortraitStatus.READY
    assert again.key == first.key and again.prediction_id != first.prediction_id


# --- the wizard -------------------------------------------------------------------------


def test_the_wizard_refuses_unknown_choices_with_the_allowed_ones(paying_shop: Shop) -> None:
    # Given a shop with credits
    url = f"{paying_shop.stack.url}/api/avatars"
    # When it asks for an avatar with a skin tone that does not exist and no hair
    choices = {k: v for k, v in CHOICES.items() if k != "hair"}
    answer = paying_shop.http.post(url, json={**choices, "skin_tone": "green"})
    # Then the answer is 422, naming each problem with the values allowed
    assert answer.status_code == 422
    problems = {p["field"]: p for p in answer.json()["error"]["details"]["problems"]}
    assert set(problems) == {"skin_tone", "hair"}
    assert problems["skin_tone"]["value"] == "green"
    assert "medium" in problems["skin_tone"]["allowed"]
    assert problems["hair"]["problem"] == "missing" and "long-black" in problems["hair"]["allowed"]
    # and an unknown filter value in the picker is refused the same way
    listed = paying_shop.http.get(url, params={"build": "giant"})
    assert listed.status_code == 422
    assert "athletic" in listed.json()["error"]["details"]["problems"][0]["allowed"]
    # and nothing was reserved
    assert paying_shop.balance()["reserved"] == 0 and paying_shop.balance()["balance"] == 200


def test_the_wizard_makes_candidates_and_keeps_the_chosen_one(paying_shop: Shop) -> None:
    # Given a shop with 200 credits
    stack, url = paying_shop.stack, f"{paying_shop.stack.url}/api/avatars"
    asked_before = len(_portrait_predictions(stack))
    # When it asks the wizard for three candidates
    created = paying_shop.http.post(url, json={**CHOICES, "name": "Ada", "candidates": 3})
    # Then their credits are reserved before anything is made
    assert created.status_code == 201, created.text
    avatar_id = created.json()["avatar_id"]
    assert created.json()["cost"] == 3
    reserved = [e for e in get_context().ledger.entries(paying_shop.user)
                if e.cause_id == avatar_id and e.kind == EntryKind.RESERVE]
    assert [(e.amount, e.reserved_change) for e in reserved] == [(-3, 3)]
    # and three raw-mode portraits of the same prompt, each with its own seed, are made
    avatar = _avatar_settled(stack, avatar_id)
    assert avatar.status == AvatarStatus.CHOOSING
    asked = [r for r in _portrait_predictions(stack)[asked_before:]
             if r.input["prompt"] == avatar.prompt]
    assert len(asked) == 3 and len({r.input["seed"] for r in asked}) == 3
    assert all(r.input["raw"] is True for r in asked)
    view = paying_shop.http.get(f"{url}/{avatar_id}").json()
    assert view["status"] == "choosing" and not view["usable"]
    assert [c["status"] for c in view["candidates"]] == ["ready"] * 3
    keys = [_key_of(c["portrait_url"]) for c in view["candidates"]]
    assert all(k.startswith(f"avatars/users/{paying_shop.user}/{avatar_id}/") for k in keys)
    assert _image(httpx.get(view["candidates"][1]["portrait_url"]).content).size == (768, 1024)
    # and until one is kept, no job can use the avatar
    early = paying_shop.http.post(f"{stack.url}/api/uploads", json={
        "scenes": ["with-model-holding"], "avatar_id": avatar_id})
    assert early.status_code == 409
    # When it keeps the second candidate
    kept = paying_shop.http.post(f"{url}/{avatar_id}/keep", json={"candidate": 2})
    # Then that portrait is the avatar's, and the avatar is usable and listed as the shop's
    assert kept.status_code == 200
    assert kept.json()["usable"] is True and kept.json()["portrait_key"] == keys[1]
    mine = paying_shop.http.get(url, params={"source": "mine"}).json()["avatars"]
    assert [a["avatar_id"] for a in mine] == [avatar_id] and mine[0]["name"] == "Ada"
    # and the three portraits were paid for, once
    account = paying_shop.balance()
    assert account["balance"] == 197 and account["reserved"] == 0
    kinds = {e.kind: e for e in get_context().ledger.entries(paying_shop.user)
             if e.cause_id == avatar_id}
    assert set(kinds) == {EntryKind.RESERVE, EntryKind.SPEND}


def test_a_candidate_the_model_fails_is_refunded(paying_shop: Shop) -> None:
    # Given a model that fails the next portrait
    stack = paying_shop.stack
    stack.engine.add_fault(Fault(kind="fail", model="portrait", count=1))
    # When the shop asks for two candidates
    created = paying_shop.http.post(f"{stack.url}/api/avatars", json={**CHOICES,
                                                                      "candidates": 2})
    assert created.status_code == 201
    avatar = _avatar_settled(stack, created.json()["avatar_id"])
    # Then one is made and one failed; only the made one is paid for
    statuses = sorted(p.status for p in _store().get_candidates(avatar.avatar_id))
    assert statuses == [PortraitStatus.FAILED, PortraitStatus.READY]
    assert avatar.status == AvatarStatus.CHOOSING
    # (credits are settled before the avatar leaves "generating")
    account = paying_shop.balance()
    assert account["balance"] == 199 and account["reserved"] == 0


def test_a_custom_avatar_is_private_to_its_owner(
    paying_shop: Shop, other_shop: Shop, kept_avatar: Callable[..., dict]
) -> None:
    # Given a shop's own avatar
    avatar = kept_avatar()
    url = f"{other_shop.stack.url}/api/avatars"
    # When another shop looks for it
    # Then it is not found, nor listed, nor keepable
    assert other_shop.http.get(f"{url}/{avatar['avatar_id']}").status_code == 404
    assert other_shop.http.post(f"{url}/{avatar['avatar_id']}/keep",
                                json={"candidate": 1}).status_code == 404
    listed = other_shop.http.get(url).json()["avatars"]
    assert avatar["avatar_id"] not in {a["avatar_id"] for a in listed}
    assert all(a["kind"] == "catalogue" for a in listed)


# --- "with model" jobs ----------------------------------------------------------------------


def test_a_with_model_job_references_the_avatar_portrait_in_every_shot(
    paying_shop: Shop, coffee: bytes
) -> None:
    # Given a catalogue avatar whose portrait is made
    ctx, stack = get_context(), paying_shop.stack
    avatars.generate_catalogue(ctx, only=["c002"])
    portrait_key = _catalogue_made(stack, ["c002"])["c002"].key
    # When the shop orders the three "with model" scenes and a studio shot with it
    ordered = paying_shop.http.post(f"{stack.url}/api/uploads", json={
        "scenes": [*WITH_MODEL, "white-studio"], "avatar_id": "c002"})
    assert ordered.status_code == 201, ordered.text
    ticket = ordered.json()
    assert ticket["cost"] == 3 * 2 + 1
    assert paying_shop.upload(ticket, coffee).status_code == 201
    job = paying_shop.wait_for_job(ticket["job_id"], timeout=240)
    # Then every shot is delivered, each "with model" shot with exactly one face
    assert job.status == JobStatus.DONE, job.reason
    assert job.avatar_id == "c002" and job.avatar_portrait_key == portrait_key
    # and the job's view names the person and links the portrait the shots reference
    shown = paying_shop.http.get(f"{stack.url}/api/jobs/{job.job_id}").json()["avatar"]
    assert shown["avatar_id"] == "c002"
    assert shown["name"] == load_avatar_catalogue().by_id()["c002"].name
    assert httpx.get(shown["portrait_url"]).content == ctx.objects.get(portrait_key)
    shots = {s.scene_id: s for s in ctx.store.get_shots(job.job_id)}
    assert all(s.status == ShotStatus.DELIVERED for s in shots.values())
    for scene_id in WITH_MODEL:
        assert shots[scene_id].checks[-1].measures["faces"] == 1
    assert shots["white-studio"].checks[-1].measures["faces"] == 0
    # and every "with model" request referenced the avatar's portrait (beside the product)
    reference = _image(ctx.objects.get(job.person_reference_key))
    expected = side_by_side_reference(_image(ctx.objects.get(portrait_key)),
                                      _image(ctx.objects.get(job.cutout_key)))
    assert np.array_equal(np.asarray(reference), np.asarray(expected))
    spec = load_models().compose_with_model
    for scene_id in WITH_MODEL:
        record = stack.engine.get(shots[scene_id].prediction_id)
        assert record.model == spec.model
        assert _key_of(record.input[spec.image_input]) == job.person_reference_key
        assert record.input["prompt"].startswith(spec.reference_note)
        assert load_scenes()[scene_id].prompt in record.input["prompt"]
        assert record.input["aspect_ratio"] == "4:5"
    studio = stack.engine.get(shots["white-studio"].prediction_id)
    assert _key_of(studio.input["input_image"]) == job.cutout_key
    # and the shop paid the "with model" price for each
    assert paying_shop.balance()["balance"] == 200 - 7


def test_a_job_with_another_shops_avatar_is_refused_and_nothing_is_reserved(
    paying_shop: Shop, other_shop: Shop, kept_avatar: Callable[..., dict]
) -> None:
    # Given a shop's own avatar, and another shop with credits
    avatar = kept_avatar()
    assert other_shop.buy().status_code == 200
    url = f"{other_shop.stack.url}/api/uploads"
    # When the other shop orders "with model" shots with that avatar
    answer = other_shop.http.post(url, json={"scenes": WITH_MODEL,
                                             "avatar_id": avatar["avatar_id"]})
    # Then it is refused as if the avatar did not exist
    assert answer.status_code == 404
    # and without an avatar, or with one that does not exist, it is refused too
    assert other_shop.http.post(url, json={"scenes": WITH_MODEL}).status_code == 422
    unknown = other_shop.http.post(url, json={"scenes": WITH_MODEL, "avatar_id": "c999"})
    assert unknown.status_code == 404
    # and nothing was reserved: the only credit movement is the purchase
    account = other_shop.balance()
    assert account["balance"] == 200 and account["reserved"] == 0
    kinds = [e.kind for e in get_context().ledger.entries(other_shop.user)]
    assert kinds == [EntryKind.PURCHASE]
    assert get_context().store.list_jobs(other_shop.user)[0] == []


def test_a_portrait_whose_webhook_is_lost_is_finished_by_the_sweeper(paying_shop: Shop) -> None:
    # Given a portrait whose webhook never comes
    stack = paying_shop.stack
    stack.engine.add_fault(Fault(kind="lose_webhook", model="portrait", count=1))
    created = paying_shop.http.post(f"{stack.url}/api/avatars",
                                    json={**CHOICES, "candidates": 1})
    assert created.status_code == 201
    avatar_id = created.json()["avatar_id"]

    def finished_unheard() -> bool:
        candidates = _store().get_candidates(avatar_id)
        record = stack.engine.get(candidates[0].prediction_id or "") if candidates else None
        return record is not None and record.status == "succeeded"

    assert stack.engine.wait_for(lambda _: finished_unheard(), timeout=60)
    assert _store().get_avatar(avatar_id).status == AvatarStatus.GENERATING
    # When the sweeper runs after the prediction's deadline
    later = datetime.now(UTC) + timedelta(
        seconds=get_context().settings.prediction_deadline_seconds + 1)
    report = stack.run_sweeper(later)
    # Then it asked once, and the same state machine recorded the portrait and its credit
    assert report["predictions_settled"] >= 1
    assert _avatar_settled(stack, avatar_id).status == AvatarStatus.CHOOSING
    assert paying_shop.balance()["balance"] == 199


def test_the_cli_shoots_with_model_scenes_with_an_avatar(
    paying_shop: Shop, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a catalogue avatar whose portrait is made
    ctx, stack = get_context(), paying_shop.stack
    avatars.generate_catalogue(ctx, only=["c002"])
    _catalogue_made(stack, ["c002"])
    # When the shop shoots a with-model scene from the command line with that avatar
    code = lightbox_cli(["shoot", str(COFFEE), "--user", paying_shop.user,
                         "--api", stack.url, "--scenes", "with-model-holding",
                         "--avatar", "c002", "--out", str(tmp_path)])
    # Then the shot is made with that avatar
    assert code == 0, capsys.readouterr()
    job_id = capsys.readouterr().out.split("Job ", 1)[1].split(":", 1)[0]
    job = ctx.store.get_job(job_id)
    assert job.avatar_id == "c002"
    assert [s.scene_id for s in ctx.store.get_shots(job_id)] == ["with-model-holding"]
