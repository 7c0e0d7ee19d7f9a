"""events/ holds a sample event for every trigger, and each one is what its handler reads.

The samples are for `sam local invoke -e events/NAME.json` and for reading: they
must stay in step with the typed events and the webhook schemes, or they mislead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEventV2,
    EventBridgeEvent,
    S3Event,
)
from pydantic import TypeAdapter

from lightbox.adapters.replicate_gateway import parse_prediction, verify_webhook
from lightbox.adapters.stripe_gateway import verify_event
from lightbox.errors import InvalidSignature
from lightbox.events import (
    FetchEvent,
    FinishEvent,
    ImageEvent,
    SettleEvent,
    ToolEvent,
    ToolUpscaleEvent,
    UpscaleRequest,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
#: The Replicate sample is signed with this secret (base64 of "lightbox-sample-secret").
REPLICATE_SAMPLE_SECRET = "whsec_bGlnaHRib3gtc2FtcGxlLXNlY3JldA=="
STRIPE_SAMPLE_SECRET = "whsec_lightbox_local_development_only"
FOREVER = 10**10

SAMPLES = {
    "upload_received": "s3_upload.json",
    "sweeper": "sweeper_schedule.json",
    "api": "api_get_job.json",
    "replicate_webhook": "replicate_webhook.json",
    "stripe_webhook": "stripe_webhook.json",
    "fetch_output": "fetch_output.json",
    "fan_out": "fan_out.json",
    "check_shot": "check_shot.json",
    "regenerate_shot": "regenerate_shot.json",
    "request_upscale": "request_upscale.json",
    "settle_shot": "settle_shot.json",
    "finish_job": "finish_job.json",
}
TYPED = {
    "fetch_output": FetchEvent, "fan_out": ImageEvent, "check_shot": ImageEvent,
    "regenerate_shot": ImageEvent, "request_upscale": UpscaleRequest,
    "settle_shot": SettleEvent, "finish_job": FinishEvent,
}
#: A function that serves more than one state has a sample for each other state too.
MORE_SAMPLES = {
    "tool_image.json": ("settle_shot", ToolEvent),
    "request_tool_upscale.json": ("request_upscale", ToolUpscaleEvent),
}


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_every_function_has_a_sample_event() -> None:
    functions = {path.name for path in (ROOT / "functions").iterdir() if path.is_dir()}
    assert functions == set(SAMPLES)
    assert {name for name in SAMPLES.values()} <= {p.name for p in EVENTS.glob("*.json")}


@pytest.mark.parametrize("function", sorted(TYPED))
def test_state_machine_samples_parse_into_their_task_models(function: str) -> None:
    TypeAdapter(TYPED[function]).validate_python(load(SAMPLES[function]))


@pytest.mark.parametrize("sample", sorted(MORE_SAMPLES))
def test_the_samples_of_other_states_parse_as_those_states(sample: str) -> None:
    function, state = MORE_SAMPLES[sample]
    assert isinstance(TypeAdapter(TYPED[function]).validate_python(load(sample)), state)


def test_the_upload_sample_is_an_s3_event_under_uploads() -> None:
    record = next(S3Event(load("s3_upload.json")).records)
    assert record.s3.get_object.key.startswith("uploads/")


def test_the_schedule_sample_is_an_eventbridge_scheduled_event() -> None:
    event = EventBridgeEvent(load("sweeper_schedule.json"))
    assert event.detail_type == "Scheduled Event"
    assert event.time


def test_the_api_sample_carries_jwt_claims_where_the_api_reads_them() -> None:
    from lightbox.web.auth import claims_from_event

    event = load("api_get_job.json")
    assert APIGatewayProxyEventV2(event).raw_path.startswith("/api/jobs/")
    assert claims_from_event(event)["sub"] == "shop-owner-1"


def test_the_replicate_sample_is_signed_the_way_replicate_signs() -> None:
    event = APIGatewayProxyEventV2(load("replicate_webhook.json"))
    body = event.decoded_body
    verify_webhook(dict(event.headers), body, secret=REPLICATE_SAMPLE_SECRET,
                   tolerance_seconds=FOREVER)
    assert parse_prediction(json.loads(body)).status == "succeeded"
    # ...and, captured long ago, it is refused as a replay under the real tolerance.
    with pytest.raises(InvalidSignature):
        verify_webhook(dict(event.headers), body, secret=REPLICATE_SAMPLE_SECRET,
                       tolerance_seconds=300)


def test_the_stripe_sample_is_signed_the_way_stripe_signs() -> None:
    event = APIGatewayProxyEventV2(load("stripe_webhook.json"))
    payload = event.decoded_body
    signature = event.headers["stripe-signature"]
    checkout = verify_event(payload, signature, STRIPE_SAMPLE_SECRET, tolerance=FOREVER)
    assert checkout["type"] == "checkout.session.completed"
    assert checkout["data"]["object"]["metadata"]["pack_id"] == "starter"
    with pytest.raises(InvalidSignature):
        verify_event(payload, signature, STRIPE_SAMPLE_SECRET, tolerance=300)
