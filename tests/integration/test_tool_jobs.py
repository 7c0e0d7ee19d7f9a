"""A tool job's steps against moto's DynamoDB and S3: the order (its credit reserved with
the job), intake starting the tool's model, Fetch, the Tool task, UpscaleTool, the
sweeper's failure and Finish. Replicate and Step Functions are fakes that record what
they were asked; the model's "output" is an object in the bucket (Fetch reads s3://).

Every test ends with the books: the credit reserved is spent or refunded, once.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from PIL import Image

from lightbox.adapters.ledger import CreditLedger, EntryKind, Purchase
from lightbox.catalog import ModelSpec
from lightbox.config import Settings
from lightbox.events import ImageState
from lightbox.models import TOOL_OUTPUT_ID, JobStatus, PredictionOutcome
from lightbox.services.context import Context
from lightbox.services.intake import receive_upload
from lightbox.services.steps.fetch import fetch_output
from lightbox.services.steps.finish import finish_job
from lightbox.services.steps.settle import fail_job
from lightbox.services.steps.tool import run_tool
from lightbox.services.tools import ToolRequest, create_tool_upload, request_tool_upscale
from tests.integration.conftest import REGION, TABLE, AtomicRequests

USER, BUCKET = "user-tools", "lightbox-tools-test"


class FakeReplicate:
    """Replicate as the steps use it: predictions created (and cancelled) on request."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str, dict[str, Any]]] = []
        self._ids = itertools.count(1)

    def create_prediction(self, spec: ModelSpec, inputs: dict[str, Any], *, webhook: str) -> str:
        prediction_id = f"pred-{next(self._ids)}"
        self.created.append((prediction_id, spec.model, inputs))
        return prediction_id

    def cancel_prediction(self, prediction_id: str) -> None:
        raise AssertionError(f"{prediction_id} should not have been cancelled")


class FakeWorkflow:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, prediction_id: str) -> bool:
        self.started.append(prediction_id)
        return True


@pytest.fixture
def ctx(dynamodb: AtomicRequests, ledger: CreditLedger) -> Context:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    context = Context(settings=Settings(TABLE_NAME=TABLE, BUCKET_NAME=BUCKET,
                                        WEBHOOK_BASE_URL="https://api.example"),
                      dynamodb=dynamodb, s3=s3, stepfunctions=None)
    # The clients the steps would make for Replicate and Step Functions: fakes.
    context.__dict__.update(replicate=FakeReplicate(), workflow=FakeWorkflow(), ledger=ledger)
    ledger.credit_purchase(
        Purchase(user_id=USER, session_id="cs_tools", pack_id="starter", credits=10),
        event_id="evt_tools", event_type="checkout.session.completed")
    return context


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def a_photo(size: tuple[int, int], product: tuple[int, int, int, int]) -> Image.Image:
    """A grey backdrop with a red product in the box."""
    photo = Image.new("RGB", size, (200, 200, 200))
    photo.paste((180, 30, 30), product)
    return photo


def a_cutout(size: tuple[int, int], product: tuple[int, int, int, int]) -> Image.Image:
    cutout = Image.new("RGBA", size, (0, 0, 0, 0))
    cutout.paste((180, 30, 30, 255), product)
    return cutout


def order_and_upload(ctx: Context, tool: str, photo: bytes, **options: Any) -> str:
    """The API's order, then the photo as the browser posts it, then intake."""
    ticket = create_tool_upload(ctx, USER, ToolRequest.model_validate(
        {"tool": tool, "options": options}))
    ctx.objects.put(f"uploads/{USER}/{ticket.job_id}/original", photo, "image/png")
    receive_upload(ctx, f"uploads/{USER}/{ticket.job_id}/original", len(photo))
    return ticket.job_id


def model_answers(ctx: Context, prediction_id: str, output: Image.Image | None) -> ImageState:
    """The prediction finishes (its webhook), and Fetch copies its output."""
    key = f"model-outputs/{prediction_id}.png"
    if output is not None:
        ctx.objects.put(key, png(output), "image/png")
        outcome = PredictionOutcome(status="succeeded", output=f"s3://{key}")
    else:
        outcome = PredictionOutcome(status="failed", error="CUDA out of memory")
    ctx.store.record_outcome(prediction_id, outcome)
    return fetch_output(ctx, prediction_id)


def books(ctx: Context, job_id: str) -> list[EntryKind]:
    return sorted(e.kind for e in ctx.ledger.entries(USER) if e.cause_id == job_id)


def output_image(ctx: Context, job_id: str) -> Image.Image:
    job = ctx.store.get_job(job_id)
    assert job is not None and job.tool_output is not None
    image = Image.open(io.BytesIO(ctx.objects.get(job.tool_output.key)))
    image.load()
    return image


def test_remove_background_keeps_the_photos_size_when_the_model_answers_smaller(
    ctx: Context, assert_books: Callable[[str], None]
) -> None:
    # Given a 800x600 photo ordered for "remove background" (1 credit held)
    photo = a_photo((800, 600), (300, 200, 500, 500))
    job_id = order_and_upload(ctx, "remove-background", png(photo))
    assert ctx.ledger.balance(USER).reserved == 1
    (prediction_id, model, _), = ctx.replicate.created
    assert model == "bria/remove-background"
    # When the model answers with a cutout at half the size
    state = model_answers(ctx, prediction_id, a_cutout((400, 300), (150, 100, 250, 250)))
    assert (state.role, state.outcome) == ("tool", "succeeded")
    result = run_tool(ctx, state)
    # Then the job's one output is a PNG at the photo's size, the photo's pixels under
    # the model's alpha, and the job is complete
    assert result.job_complete and result.upscale == 1.0
    image = output_image(ctx, job_id)
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (800, 600))
    assert image.getpixel((400, 350)) == (180, 30, 30, 255)
    assert image.getpixel((10, 10))[3] == 0
    # and Finish spends the credit, once, however often it runs
    assert finish_job(ctx, job_id, "exec-1").status == JobStatus.DONE
    assert finish_job(ctx, job_id, "exec-1").finished is False
    assert books(ctx, job_id) == [EntryKind.RESERVE, EntryKind.SPEND]
    assert ctx.ledger.balance(USER).balance == 9
    assert_books(USER)


def test_a_retried_tool_step_settles_its_output_once(ctx: Context, assert_books) -> None:
    job_id = order_and_upload(ctx, "upscale", png(a_photo((300, 200), (100, 50, 200, 150))),
                              scale=2)
    (prediction_id, model, inputs), = ctx.replicate.created
    assert (model, inputs["scale"]) == ("nightmareai/real-esrgan", 2)
    state = model_answers(ctx, prediction_id, a_photo((600, 400), (200, 100, 400, 300)))
    # When the Tool task runs twice (a retry after a lost answer)
    first, again = run_tool(ctx, state), run_tool(ctx, state)
    # Then the output was counted off once and both runs say the job is complete
    assert first.job_complete and again.job_complete
    job = ctx.store.get_job(job_id)
    assert job.delivered == {TOOL_OUTPUT_ID} and not job.rejected
    assert output_image(ctx, job_id).size == (600, 400)
    finish_job(ctx, job_id, "exec-1")
    assert books(ctx, job_id) == [EntryKind.RESERVE, EntryKind.SPEND]
    assert_books(USER)


def test_a_failed_tool_prediction_is_refunded(ctx: Context, assert_books) -> None:
    job_id = order_and_upload(ctx, "remove-background", png(a_photo((300, 200), (1, 1, 9, 9))))
    (prediction_id, _, _), = ctx.replicate.created
    # When the model fails
    state = model_answers(ctx, prediction_id, None)
    assert state.outcome == "failed"
    assert run_tool(ctx, state).job_complete
    # Then the job fails with the model's reason and the credit comes back
    assert finish_job(ctx, job_id, "exec-1").status == JobStatus.FAILED
    job = ctx.store.get_job(job_id)
    assert job.reason == "The background could not be removed: CUDA out of memory."
    assert job.tool_output is None and job.rejected == {TOOL_OUTPUT_ID}
    assert books(ctx, job_id) == [EntryKind.REFUND, EntryKind.RESERVE]
    assert ctx.ledger.balance(USER).balance == 10
    assert_books(USER)


def test_when_the_sweeper_fails_a_tool_job_first_a_late_image_changes_nothing(
    ctx: Context, assert_books
) -> None:
    photo = a_photo((300, 200), (50, 50, 150, 150))
    job_id = order_and_upload(ctx, "remove-background", png(photo))
    (prediction_id, _, _), = ctx.replicate.created
    # Given the job ran past its deadline: the sweeper fails it
    assert fail_job(ctx, job_id, "The job ran past its deadline.").job_complete
    # When the model's image arrives after all
    state = model_answers(ctx, prediction_id, a_cutout((300, 200), (50, 50, 150, 150)))
    assert state.outcome == "stale"  # Fetch sees a job that settled
    run_tool(ctx, state.model_copy(update={"outcome": "succeeded"}))
    # Then the job stays failed, with nothing delivered, and is refunded once
    finish_job(ctx, job_id, "sweeper")
    job = ctx.store.get_job(job_id)
    assert (job.status, job.delivered, job.tool_output) == (JobStatus.FAILED, set(), None)
    assert books(ctx, job_id) == [EntryKind.REFUND, EntryKind.RESERVE]
    assert_books(USER)


def test_a_fit_too_small_for_its_preset_is_upscaled_then_fitted(
    ctx: Context, assert_books: Callable[[str], None]
) -> None:
    # Given a 600x400 photo whose product is 380 px tall, fitted for Amazon (its 2000 px
    # canvas, 90 % filled, needs a 4.7x enlargement: 4x by the upscaler, the rest by fit)
    product = (200, 10, 400, 390)
    job_id = order_and_upload(ctx, "fit", png(a_photo((600, 400), product)),
                              preset="amazon-main")
    (cutout_id, _, _), = ctx.replicate.created
    state = model_answers(ctx, cutout_id, a_cutout((600, 400), product))
    # When the Tool task sees the cutout
    asked = run_tool(ctx, state)
    # Then it asks for the upscaler, at most 4x, and leaves it the cutout on white
    assert not asked.job_complete and asked.upscale == 4.0
    job = ctx.store.get_job(job_id)
    upscale_input = Image.open(io.BytesIO(ctx.objects.get(
        f"work/{USER}/{job_id}/tool/upscale-input.png")))
    assert upscale_input.mode == "RGB" and upscale_input.getpixel((5, 5)) == (255, 255, 255)
    # When UpscaleTool asks (twice: a retry), one upscale prediction is bound
    request_tool_upscale(ctx, asked)
    request_tool_upscale(ctx, asked)
    upscale_id, model, inputs = ctx.replicate.created[1]
    assert (model, inputs["scale"]) == ("nightmareai/real-esrgan", 4.0)
    assert ctx.store.get_job(job_id).tool_prediction_id == upscale_id
    # and the upscaler answers without alpha (as Real-ESRGAN may)
    upscaled = upscale_input.resize((2400, 1600), Image.Resampling.LANCZOS)
    state = model_answers(ctx, upscale_id, upscaled)
    assert state.attempt == 2
    # Then the Tool task fits it: Amazon's canvas, pure white, its compliance report
    assert run_tool(ctx, state).job_complete
    job = ctx.store.get_job(job_id)
    image = output_image(ctx, job_id)
    assert (image.format, image.size) == ("JPEG", (2000, 2000))
    assert job.tool_output.compliance["passed"] is True
    assert job.tool_output.models == ["bria/remove-background", "nightmareai/real-esrgan"]
    assert finish_job(ctx, job_id, "exec-2").status == JobStatus.DONE
    assert books(ctx, job_id) == [EntryKind.RESERVE, EntryKind.SPEND]
    assert_books(USER)


def test_a_product_too_small_even_for_the_upscaler_is_refused_and_refunded(
    ctx: Context, assert_books
) -> None:
    product = (290, 190, 310, 210)  # 20 px: a 90x enlargement for Amazon
    job_id = order_and_upload(ctx, "fit", png(a_photo((600, 400), product)),
                              preset="amazon-main")
    (cutout_id, _, _), = ctx.replicate.created
    result = run_tool(ctx, model_answers(ctx, cutout_id, a_cutout((600, 400), product)))
    assert result.job_complete and result.upscale == 1.0
    assert len(ctx.replicate.created) == 1  # no upscale was paid for
    finish_job(ctx, job_id, "exec-1")
    job = ctx.store.get_job(job_id)
    assert job.status == JobStatus.FAILED
    assert job.reason.startswith("The product is too small in this photo for Amazon")
    assert books(ctx, job_id) == [EntryKind.REFUND, EntryKind.RESERVE]
    assert_books(USER)


def test_an_uploaded_cutout_goes_to_the_tool_with_no_prediction(ctx: Context, assert_books):
    cutout = a_cutout((1600, 1600), (400, 200, 1200, 1400))
    job_id = order_and_upload(ctx, "fit", png(cutout), preset="ebay")
    assert ctx.replicate.created == []
    (prediction_id,) = ctx.workflow.started
    state = fetch_output(ctx, prediction_id)
    assert run_tool(ctx, state).job_complete
    job = ctx.store.get_job(job_id)
    assert job.tool_output.models == [] and job.tool_output.compliance["passed"] is True
    finish_job(ctx, job_id, "exec-1")
    assert books(ctx, job_id) == [EntryKind.RESERVE, EntryKind.SPEND]
    assert_books(USER)
