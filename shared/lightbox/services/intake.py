"""From "I want these shots" to a cutout prediction: the API's upload ticket and
`upload_received`'s checks.

The API plans the job, reserves its credits and hands out a presigned POST bound to
the user and the job. The browser posts the photo straight to S3; S3's event runs
`receive_upload`, which trusts nothing about the object: owner, size and content are
checked again here (S3 enforces the POST policy in AWS, moto does not), the photo is
normalised to sRGB, and the cutout is requested. Anything wrong ends the job as
failed with a reason a shop owner can act on, refunds its credits and creates no
prediction.
"""

from __future__ import annotations

import io
from datetime import timedelta

from pydantic import BaseModel, Field

from lightbox.adapters.s3 import parse_upload_key, upload_key, work_prefix
from lightbox.domain import planning
from lightbox.domain.images import normalise_upload
from lightbox.errors import ImageTooLarge, InvalidImage, InvalidInput
from lightbox.models import Job, JobStatus, Prediction, PredictionOutcome, Role, Shot, utcnow
from lightbox.observability import logger
from lightbox.services.avatars import JobAvatar, avatar_for_job
from lightbox.services.context import Context

#: How long a presigned GET handed to Replicate stays valid (it fetches at once).
MODEL_INPUT_URL_SECONDS = 3600


class UploadRequest(BaseModel):
    scenes: list[str] = Field(min_length=1, max_length=200)
    variants: int = Field(default=1, ge=1, le=200)
    presets: list[str] = Field(default_factory=lambda: ["original"], max_length=10)
    #: Needed by scenes with a person: a catalogue avatar or one of the user's own.
    avatar_id: str | None = Field(default=None, max_length=64)


class UploadTicket(BaseModel):
    job_id: str
    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_in: int
    shots: int
    cost: int


def create_upload(ctx: Context, user_id: str, request: UploadRequest) -> UploadTicket:
    """Plan the job, reserve its credits, and hand out the presigned POST for its photo."""
    settings = ctx.settings
    _check_presets(request.presets)
    job_id = planning.new_job_id()
    pricing = ctx.pricing
    planned = planning.plan_shots(
        job_id,
        request.scenes,
        request.variants,
        ctx.scenes,
        max_shots=settings.max_shots_per_job,
        price_of=pricing.shot_price,
    )
    cost = sum(p.cost for p in planned)
    # Before anything is reserved: someone else's avatar (404), one without a
    # portrait yet (409), or scenes with a person and no avatar (422) stop here.
    avatar = _avatar_for(ctx, user_id, request)
    now = utcnow()
    job = Job(
        job_id=job_id,
        user_id=user_id,
        status=JobStatus.AWAITING_UPLOAD,
        scenes=request.scenes,
        variants=request.variants,
        presets=request.presets,
        shots_total=len(planned),
        credits_reserved=cost,
        avatar_id=avatar.avatar_id if avatar else None,
        avatar_portrait_key=avatar.portrait_key if avatar else None,
        source_key=upload_key(user_id, job_id),
        created_at=now,
        deadline=now + timedelta(seconds=settings.upload_url_expiry_seconds + 300),
    )
    # The reservation and the job are one transaction: a refusal (402) leaves nothing
    # behind, and credits are never held for a job that does not exist. A crash before
    # the shots are written leaves a job nobody has a ticket for; the sweeper ends it at
    # its deadline and refunds it.
    ctx.ledger.reserve(user_id, job_id, cost, along=[ctx.store.new_job(job)])
    ctx.store.put_shots(
        [
            Shot(job_id=job_id, shot_id=p.shot_id, index=p.index, scene_id=p.scene_id,
                 variant=p.variant, seed=p.seed, cost=p.cost)
            for p in planned
        ]
    )
    post = ctx.objects.presigned_post(
        job.source_key,
        max_bytes=settings.max_upload_bytes,
        expires=settings.upload_url_expiry_seconds,
    )
    logger.info("upload ticket issued", extra={"job_id": job_id, "shots": len(planned)})
    return UploadTicket(
        job_id=job_id,
        url=post["url"],
        fields=post["fields"],
        max_bytes=settings.max_upload_bytes,
        expires_in=settings.upload_url_expiry_seconds,
        shots=len(planned),
        cost=cost,
    )


def _avatar_for(ctx: Context, user_id: str, request: UploadRequest) -> JobAvatar | None:
    """The avatar whose portrait the job's "with model" scenes reference, if it has any."""
    with_person = [s for s in request.scenes if ctx.scenes[s].person]
    if with_person and not request.avatar_id:
        raise InvalidInput(
            f"Choose an avatar for the scene(s) with a person: {', '.join(with_person)}.",
            scenes=with_person,
        )
    if not request.avatar_id:
        return None
    return avatar_for_job(ctx, user_id, request.avatar_id)


def _check_presets(presets: list[str]) -> None:
    from lightbox.services.delivery import known_presets

    allowed = known_presets()
    unknown = [p for p in presets if p not in allowed]
    if unknown:
        raise InvalidInput(f"Unknown preset(s): {', '.join(unknown)}.", allowed=sorted(allowed))


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
    if job.status == JobStatus.CUTTING_OUT and job.cutout_prediction_id is None and job.image_key:
        # A retry after a failure between accepting the photo and requesting its cutout.
        return _start_cutout(ctx, job, job.image_key)
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

    photo_key = f"{work_prefix(job.user_id, job_id)}/photo.png"
    ctx.objects.put(photo_key, normalised.to_png_bytes(), "image/png")
    now = utcnow()
    claimed = ctx.store.update_job(
        job_id,
        expect=[JobStatus.AWAITING_UPLOAD],
        status=JobStatus.CUTTING_OUT,
        image_key=photo_key,
        deadline=now + timedelta(seconds=ctx.settings.job_deadline_seconds),
    )
    if claimed is None:
        return IntakeResult(job_id=job_id, outcome="duplicate")
    return _start_cutout(ctx, claimed, photo_key, own_cutout=normalised.has_alpha)


def _start_cutout(ctx: Context, job: Job, photo_key: str, *, own_cutout: bool | None = None) -> IntakeResult:
    if own_cutout is None:
        own_cutout = _has_alpha(ctx, photo_key)
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


def end_unstarted_job(ctx: Context, job: Job, reason: str) -> bool:
    """Fail a job still waiting for its photo and refund its credits, in one write.

    False when the job had moved on (a photo was accepted first): nothing changed.
    """
    change = ctx.store.job_change(job.job_id, expect=[JobStatus.AWAITING_UPLOAD],
                                  status=JobStatus.FAILED, reason=reason)
    return ctx.ledger.release_with(job.user_id, job.job_id, change)


def request_cutout(ctx: Context, job: Job, photo_key: str) -> str:
    spec = ctx.models.cutout
    image_url = ctx.objects.presigned_get(photo_key, MODEL_INPUT_URL_SECONDS)
    ctx.budget.take(1)  # the cutout is one prediction; admission is never refused for it
    prediction_id = ctx.replicate.create_prediction(
        spec, {spec.image_input or "image": image_url}, webhook=ctx.webhook_url()
    )
    ctx.store.put_prediction(Prediction.pending(
        prediction_id, Role.CUTOUT, within_seconds=ctx.settings.prediction_deadline_seconds,
        job_id=job.job_id, user_id=job.user_id, model=spec.model,
    ))
    if not ctx.store.bind_cutout(job.job_id, prediction_id):
        ctx.replicate.cancel_prediction(prediction_id)  # a duplicate event got there first
    logger.info("cutout requested", extra={"job_id": job.job_id, "prediction_id": prediction_id})
    return prediction_id


def start_from_own_cutout(ctx: Context, job: Job, photo_key: str) -> str:
    """Feed an uploaded cutout into the same state machine, as if a model had made it."""
    prediction_id = f"own-cutout-{job.job_id}"
    now = utcnow()
    ctx.store.put_prediction(
        Prediction(
            prediction_id=prediction_id,
            role=Role.CUTOUT,
            job_id=job.job_id,
            user_id=job.user_id,
            model="upload",
            created_at=now,
            deadline=now,
            state="completed",
            outcome=PredictionOutcome(status="succeeded", output=f"s3://{photo_key}"),
        )
    )
    ctx.store.bind_cutout(job.job_id, prediction_id)
    ctx.workflow.start(prediction_id)
    return prediction_id
