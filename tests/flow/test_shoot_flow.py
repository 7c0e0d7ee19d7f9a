"""One photo in, studio shots out: the whole event flow on the local stack."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image

from lightbox.models import JobStatus, ShotStatus
from lightbox.services.context import get_context
from tests.flow.conftest import Shop

pytestmark = [pytest.mark.flow, pytest.mark.slow]


def _image(url: str) -> Image.Image:
    image = Image.open(io.BytesIO(httpx.get(url).raise_for_status().content))
    image.load()
    return image


def test_a_photo_becomes_studio_shots_of_marketplace_size(paying_shop: Shop, coffee: bytes) -> None:
    # Given a shop with credits and the demo photo
    scenes = ["white-studio", "lifestyle-kitchen", "flat-lay"]
    # When it orders three scenes and uploads the photo straight to the bucket
    job_id = paying_shop.shoot(coffee, scenes, presets=["original", "amazon-main"])
    job = paying_shop.wait_for_job(job_id)
    # Then every shot is delivered, at least 1600 px on its long side, at each preset
    assert job.status == JobStatus.DONE, job.reason
    view = paying_shop.job(job_id)
    assert [s["phase"] for s in view["shots"]] == ["done"] * 3
    for shot in view["shots"]:
        assert set(shot["outputs"]) == {"original", "amazon-main"}
        original = _image(shot["outputs"]["original"])
        assert max(original.size) >= 1600
    white = next(s for s in view["shots"] if s["scene_id"] == "white-studio")
    assert white["compliance"]["amazon-main"] is True
    # and the job's manifest records every shot's provenance, next to a contact sheet
    manifest = httpx.get(view["manifest_url"]).json()
    assert [s["status"] for s in manifest["shots"]] == ["delivered"] * 3
    assert all(s["digital_source_type"] == "trainedAlgorithmicMedia" for s in manifest["shots"])
    assert _image(view["contact_sheet_url"]).width > 0
    # and the credits reserved for it are spent, once
    assert paying_shop.balance()["balance"] == 200 - 3
    assert paying_shop.balance()["reserved"] == 0


def test_duplicated_webhooks_change_nothing(paying_shop: Shop, coffee: bytes) -> None:
    # Given an engine that delivers every webhook twice
    paying_shop.stack.engine.configure(duplicate_rate=1.0)
    # When a job runs
    job = paying_shop.wait_for_job(paying_shop.shoot(coffee, ["white-studio", "grey-studio"]))
    # Then each shot is counted once and charged once
    assert job.status == JobStatus.DONE
    assert len(job.delivered) == 2 and not job.rejected
    assert paying_shop.balance()["balance"] == 200 - 2
    assert paying_shop.stack.engine.stats["webhooks_sent"] >= 2 * 4


def test_a_failed_prediction_is_composed_again(paying_shop: Shop, coffee: bytes) -> None:
    from lightbox_local.engine.server import Fault

    # Given the next compose prediction fails
    paying_shop.stack.engine.add_fault(Fault(kind="fail", model="compose", count=1))
    # When a one-shot job runs
    job = paying_shop.wait_for_job(paying_shop.shoot(coffee, ["white-studio"]))
    # Then the shot is made again with a new seed and delivered
    assert job.status == JobStatus.DONE
    (shot,) = get_context().store.get_shots(job.job_id)
    assert shot.status == ShotStatus.DELIVERED and shot.attempt == 2


def test_a_check_that_fails_twice_then_passes_delivers_the_third_try(
    paying_shop: Shop, coffee: bytes
) -> None:
    from lightbox_local.engine.server import Fault

    # Given the composing model changes the product's colour twice
    paying_shop.stack.engine.add_fault(Fault(kind="recolor", model="compose", count=2))
    # When a one-shot job runs
    job = paying_shop.wait_for_job(paying_shop.shoot(coffee, ["white-studio"]))
    # Then the check failed twice, and the third composition was delivered
    assert job.status == JobStatus.DONE
    (shot,) = get_context().store.get_shots(job.job_id)
    assert [c.passed for c in shot.checks] == [False, False, True]
    assert shot.attempt == 3
    assert any("colour" in reason for reason in shot.checks[0].reasons)


def test_a_shot_that_never_passes_is_rejected_and_refunded(paying_shop: Shop, coffee: bytes) -> None:
    from lightbox_local.engine.server import Fault

    # Given every composition of the next three changes the product's colour
    paying_shop.stack.engine.add_fault(Fault(kind="recolor", model="compose", count=3))
    job = paying_shop.wait_for_job(paying_shop.shoot(coffee, ["white-studio"]))
    # Then the shot is rejected with the check's reason, the job failed, nothing charged
    assert job.status == JobStatus.FAILED
    view = paying_shop.job(job.job_id)
    assert view["shots"][0]["phase"] == "failed"
    assert "colour" in view["shots"][0]["reason"]
    assert paying_shop.balance()["balance"] == 200


def test_a_lost_webhook_is_recovered_by_the_sweeper(paying_shop: Shop, coffee: bytes) -> None:
    from lightbox_local.engine.server import Fault

    stack = paying_shop.stack
    # Given the compose prediction's webhook never comes
    stack.engine.add_fault(Fault(kind="lose_webhook", model="compose", count=1))
    job_id = paying_shop.shoot(coffee, ["white-studio"])
    store = get_context().store

    def prediction_finished_unheard() -> bool:
        shot = store.get_shots(job_id)[0]
        if not shot.prediction_id:
            return False
        record = stack.engine.get(shot.prediction_id)
        return record is not None and record.status == "succeeded"

    assert stack.engine.wait_for(lambda _: prediction_finished_unheard(), timeout=60)
    assert not store.get_job(job_id).status.terminal
    # When the sweeper runs after the prediction's deadline
    later = datetime.now(UTC) + timedelta(seconds=get_context().settings
                                          .prediction_deadline_seconds + 1)
    report = stack.run_sweeper(later)
    # Then it asked once, and the same state machine finished the shot
    assert report["predictions_settled"] >= 1
    job = paying_shop.wait_for_job(job_id)
    assert job.status == JobStatus.DONE


def test_a_prediction_that_never_finishes_is_failed_by_the_sweeper_and_retried(
    paying_shop: Shop, coffee: bytes
) -> None:
    from lightbox_local.engine.server import Fault

    stack = paying_shop.stack
    stack.engine.add_fault(Fault(kind="hang", model="compose", count=1))
    job_id = paying_shop.shoot(coffee, ["white-studio"])
    store = get_context().store
    assert stack.wait_for(lambda: bool(store.get_shots(job_id)[0].prediction_id), 60)
    later = datetime.now(UTC) + timedelta(
        seconds=get_context().settings.prediction_deadline_seconds + 1)
    report = stack.run_sweeper(later)
    assert report["predictions_timed_out"] >= 1
    job = paying_shop.wait_for_job(job_id)
    assert job.status == JobStatus.DONE
    (shot,) = store.get_shots(job_id)
    assert shot.attempt == 2


def test_an_uploaded_cutout_is_used_as_is(paying_shop: Shop) -> None:
    # Given a PNG whose alpha already separates the product
    image = Image.new("RGBA", (600, 600), (0, 0, 0, 0))
    image.paste(Image.new("RGBA", (300, 400), (180, 40, 40, 255)), (150, 100))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    created_before = paying_shop.stack.engine.stats["created"]
    # When it is shot in one scene
    job = paying_shop.wait_for_job(paying_shop.shoot(buffer.getvalue(), ["white-studio"]))
    # Then no background-removal prediction was paid for: only the compose and upscale
    assert job.status == JobStatus.DONE
    assert job.cutout_prediction_id and job.cutout_prediction_id.startswith("own-cutout-")
    created = paying_shop.stack.engine.stats["created"] - created_before
    assert created == 2


def test_the_manifest_is_plain_json_with_the_models_used(paying_shop: Shop, coffee: bytes) -> None:
    job = paying_shop.wait_for_job(paying_shop.shoot(coffee, ["podium"]))
    view = paying_shop.job(job.job_id)
    manifest = json.loads(httpx.get(view["manifest_url"]).content)
    shot = manifest["shots"][0]
    assert shot["provenance"]["models"]["compose"] == "black-forest-labs/flux-kontext-max"
    assert shot["provenance"]["inputs"]["seed"] == get_context().store.get_shots(job.job_id)[0].seed


def test_a_finished_job_says_what_it_cost_beside_what_it_charged(
    paying_shop: Shop, coffee: bytes
) -> None:
    # Given a one-shot job that was delivered
    job = paying_shop.wait_for_job(paying_shop.shoot(coffee, ["podium"]))
    view = paying_shop.job(job.job_id)
    assert view["status"] == "done"
    # Then the job view and the manifest carry its costs: the cutout and one compose
    # prediction at their listed prices, the AWS estimate, and the credits charged
    costs = view["costs"]
    manifest = json.loads(httpx.get(view["manifest_url"]).content)
    assert manifest["costs"] == costs
    (shot,) = get_context().store.get_shots(job.job_id)
    expected = {"bria/remove-background": 1, "black-forest-labs/flux-kontext-max": shot.attempt}
    upscale = 0.0
    if shot.upscale_prediction_id:  # the preset needed more pixels: one upscale, by the second
        expected["nightmareai/real-esrgan"] = 1
        assert shot.upscale_seconds is not None
        upscale = 0.000225 * shot.upscale_seconds
    assert costs["predictions"] == expected
    assert costs["replicate_usd"] == pytest.approx(0.018 + 0.08 * shot.attempt + upscale,
                                                   abs=1e-6)
    assert 0 < costs["aws_usd"] < 0.01
    assert costs["credits_charged"] == view["cost"]
    assert costs["credits_value_usd"] == pytest.approx(view["cost"] * 5.00 / 200)
