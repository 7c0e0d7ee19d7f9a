"""From an uploaded photo to its first prediction: `upload_received`'s checks.

The browser posts the photo straight to S3 with the ticket `uploads` handed out;
S3's event runs `receive_upload`, which trusts nothing about the object: owner, size
and content are checked again here (S3 enforces the POST policy in AWS, moto does
not), the photo is normalised to sRGB, and the cutout is requested (for a single-image
tool, the tool's model: `services.tools`). Anything wrong ends the job as
failed with a reason a shop owner can act on, refunds its credits and creates no
prediction.
"""

from __future__ import annotations

import io
from datetime import timedelta

from pydantic import BaseModel

from lightbox.adapters.s3 import parse_upload_key, work_prefix
from lightbox.domain.images import normalise_upload
from lightbox.errors import ImageTooLarge, InvalidImage
from lightbox.models import Job, JobKind, JobStatus, Role, utcnow
from lightbox.observability import logger
from lightbox.services import tools
from lightbox.services.context import Context
from lightbox.services.predictions import PredictionFor, start_from_object, start_prediction
from lightbox.services.uploads import end_unstarted_job

#: How long a presigned GET handed to Replicate stays valid (it fetches at once).
MODEL_INPUT_URL_SECONDS = 3600


class IntakeResult(BaseModel):
    job_id: str | None
    outcome: str
    reason: str | None = None


def receive_upload(ctx: Context, key: str, size: int | None) -> IntakeResult:
    """Check and normalise an uploaded photo, then request its cutout."""
    owner_and_job = parse_upload_key(key)
    if owner_and_job is None:
        logger.warning("object outside uploads/{user}/{job}/original ignored", extra={"key": key})
        return IntakeResult(job_id=None, outcome="ignored", reason="not an upload key")
    key_user, job_id = owner_and_job
    job = ctx.store.get_job(job_id)
    if job is None:
        logger.warning("upload for an unknown job ignored", extra={"job_id": job_id})
        return IntakeResult(job_id=job_id, outcome="ignored", reason="unknown job")
    if job.image_key and _model_not_requested(job):
        # A retry after a failure between accepting the photo and requesting its model.
        return _start_work(ctx, job, job.image_key)
    if job.status != JobStatus.AWAITING_UPLOAD:
        # S3 delivers events at least once; the first delivery did the work.
        return IntakeResult(job_id=job_id, outcome="duplicate")
    if job.user_id != key_user:
        return fail_intake(ctx, job, "The photo was uploaded under another user's folder.")

    try:
        data = _read_upload(ctx, key, size)
        normalised = normalise_upload(
            data,
            max_bytes=ctx.settings.max_upload_bytes,
            max_pixels=ctx.settings.max_upload_pixels,
        )
    except (InvalidImage, ImageTooLarge) as error:
        return fail_intake(ctx, job, error.message)
    problem = tools.photo_problem(job.tool, normalised.image.size) if job.tool else None
    if problem:
        return fail_intake(ctx, job, problem)

    photo_key = f"{work_prefix(job.user_id, job_id)}/photo.png"
    ctx.objects.put(photo_key, normalised.to_png_bytes(), "image/png")
    now = utcnow()
    claimed = ctx.store.update_job(
        job_id,
        expect=[JobStatus.AWAITING_UPLOAD],
        status=JobStatus.PROCESSING if job.kind == JobKind.TOOL else JobStatus.CUTTING_OUT,
        image_key=photo_key,
        deadline=now + timedelta(seconds=ctx.settings.job_deadline_seconds),
    )
    if claimed is None:
        return IntakeResult(job_id=job_id, outcome="duplicate")
    return _start_work(ctx, claimed, photo_key, own_cutout=normalised.has_alpha)


def _model_not_requested(job: Job) -> bool:
    """The photo was accepted but its first prediction never asked for."""
    if job.kind == JobKind.TOOL:
        return job.status == JobStatus.PROCESSING and job.tool_prediction_id is None
    return job.status == JobStatus.CUTTING_OUT and job.cutout_prediction_id is None


def _start_work(
    ctx: Context, job: Job, photo_key: str, *, own_cutout: bool | None = None
) -> IntakeResult:
    if own_cutout is None:
        own_cutout = _has_alpha(ctx, photo_key)
    if job.kind == JobKind.TOOL:
        prediction_id = tools.start_tool(ctx, job, photo_key, has_alpha=own_cutout)
        return IntakeResult(job_id=job.job_id, outcome="tool requested", reason=prediction_id)
    if own_cutout:
        # The shop uploaded a cutout already: its alpha is used as is, and no
        # background-removal prediction is paid for.
        start_from_own_cutout(ctx, job, photo_key)
        return IntakeResult(job_id=job.job_id, outcome="own cutout")
    prediction_id = request_cutout(ctx, job, photo_key)
    return IntakeResult(job_id=job.job_id, outcome="cutout requested", reason=prediction_id)


def _has_alpha(ctx: Context, photo_key: str) -> bool:
    from PIL import Image

    with Image.open(io.BytesIO(ctx.objects.get(photo_key))) as image:
        return image.mode == "RGBA"


def _read_upload(ctx: Context, key: str, size: int | None) -> bytes:
    limit = ctx.settings.max_upload_bytes
    if size is not None and size > limit:
        raise ImageTooLarge(_too_large_message(size, limit))
    data = ctx.objects.get(key, max_bytes=limit)
    if len(data) > limit:
        raise ImageTooLarge(_too_large_message(len(data), limit))
    return data


def _too_large_message(size: int, limit: int) -> str:
    return f"The file is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB."


def fail_intake(ctx: Context, job: Job, reason: str) -> IntakeResult:
    """End a job before any prediction: failed, with its reason, credits released."""
    end_unstarted_job(ctx, job, reason)
    logger.info("upload refused", extra={"job_id": job.job_id, "reason": reason})
    return IntakeResult(job_id=job.job_id, outcome="failed", reason=reason)


def request_cutout(ctx: Context, job: Job, photo_key: str) -> str | None:
    spec = ctx.models.cutout
    image_url = ctx.objects.presigned_get(photo_key, MODEL_INPUT_URL_SECONDS)
    # The cutout is one prediction a paid job cannot do without: counted, never refused.
    # A duplicate S3 event's prediction loses the bind and is cancelled.
    prediction_id = start_prediction(
        ctx, spec, {spec.image_input or "image": image_url},
        PredictionFor(role=Role.CUTOUT, job_id=job.job_id, user_id=job.user_id),
        lambda created: ctx.store.bind_cutout(job.job_id, created), admission="counted",
    )
    logger.info("cutout requested", extra={"job_id": job.job_id, "prediction_id": prediction_id})
    return prediction_id


def start_from_own_cutout(ctx: Context, job: Job, photo_key: str) -> str | None:
    """Feed an uploaded cutout into the same state machine, as if a model had made it."""
    return start_from_object(
        ctx, f"own-cutout-{job.job_id}", photo_key,
        PredictionFor(role=Role.CUTOUT, job_id=job.job_id, user_id=job.user_id),
        lambda prediction_id: ctx.store.bind_cutout(job.job_id, prediction_id),
    )
