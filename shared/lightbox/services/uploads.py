"""From "I want these shots" to an upload ticket: the API's side of a new job.

The API plans the job, reserves its credits (the job is written in the same
transaction) and hands out a presigned POST bound to the user and the job. The
browser posts the photo straight to S3; `intake` takes it from there.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from lightbox.adapters.s3 import upload_key
from lightbox.catalog.presets import load_presets
from lightbox.domain import planning
from lightbox.errors import InvalidInput
from lightbox.models import Job, JobStatus, Shot, utcnow
from lightbox.observability import logger
from lightbox.services.avatars import JobAvatar, avatar_for_job
from lightbox.services.context import Context


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
    job = awaiting_upload(
        ctx, user_id, job_id,
        scenes=request.scenes,
        variants=request.variants,
        presets=request.presets,
        shots_total=len(planned),
        credits_reserved=cost,
        avatar_id=avatar.avatar_id if avatar else None,
        avatar_portrait_key=avatar.portrait_key if avatar else None,
    )
    shots = [
        Shot(job_id=job_id, shot_id=p.shot_id, index=p.index, scene_id=p.scene_id,
             variant=p.variant, seed=p.seed, cost=p.cost)
        for p in planned
    ]
    ticket = reserve_and_ticket(ctx, job, shots)
    logger.info("upload ticket issued", extra={"job_id": job_id, "shots": len(planned)})
    return ticket


def awaiting_upload(ctx: Context, user_id: str, job_id: str, **fields: Any) -> Job:
    """A new job waiting for its photo: its upload key, and a deadline just past the
    upload link's (the sweeper refunds a photo that never came)."""
    now = utcnow()
    return Job(
        job_id=job_id,
        user_id=user_id,
        status=JobStatus.AWAITING_UPLOAD,
        source_key=upload_key(user_id, job_id),
        created_at=now,
        deadline=now + timedelta(seconds=ctx.settings.upload_url_expiry_seconds + 300),
        **fields,
    )


def reserve_and_ticket(ctx: Context, job: Job, shots: list[Shot] | None = None) -> UploadTicket:
    """Reserve the job's credits with the job itself, then hand out its photo's POST."""
    settings = ctx.settings
    # The reservation and the job are one transaction: a refusal (402) leaves nothing
    # behind, and credits are never held for a job that does not exist. A crash before
    # the shots are written leaves a job nobody has a ticket for; the sweeper ends it at
    # its deadline and refunds it.
    ctx.ledger.reserve(job.user_id, job.job_id, job.credits_reserved,
                       along=[ctx.store.new_job(job)])
    if shots:
        ctx.store.put_shots(shots)
    post = ctx.objects.presigned_post(
        job.source_key,
        max_bytes=settings.max_upload_bytes,
        expires=settings.upload_url_expiry_seconds,
    )
    return UploadTicket(
        job_id=job.job_id,
        url=post["url"],
        fields=post["fields"],
        max_bytes=settings.max_upload_bytes,
        expires_in=settings.upload_url_expiry_seconds,
        shots=job.shots_total,
        cost=job.credits_reserved,
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
    allowed = set(load_presets())
    unknown = [p for p in presets if p not in allowed]
    if unknown:
        raise InvalidInput(f"Unknown preset(s): {', '.join(unknown)}.", allowed=sorted(allowed))


def end_unstarted_job(ctx: Context, job: Job, reason: str) -> bool:
    """Fail a job still waiting for its photo and refund its credits, in one write.

    False when the job had moved on (a photo was accepted first): nothing changed.
    """
    change = ctx.store.job_change(job.job_id, expect=[JobStatus.AWAITING_UPLOAD],
                                  status=JobStatus.FAILED, reason=reason)
    return ctx.ledger.release_with(job.user_id, job.job_id, change)
