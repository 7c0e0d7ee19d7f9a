"""Task "FanOut": one compose prediction per shot still waiting, within the shared budget.

The first turn of a job also prepares the references the model sees (the product on
white; for scenes with a person, the portrait beside it): the only image work here.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from lightbox.adapters.s3 import work_prefix
from lightbox.domain import references as reference_images
from lightbox.errors import NotFound
from lightbox.events import FanOutResult, ImageState
from lightbox.models import Job, JobStatus, Role, Shot, ShotStatus
from lightbox.observability import logger
from lightbox.services.context import Context
from lightbox.services.steps.compose import References, compose_request, start_for_shot


def fan_out(ctx: Context, state: ImageState) -> FanOutResult:
    """Create one compose prediction per shot still waiting, within the shared budget.

    Called again by the state machine (after a free Wait) while shots remain, so a
    200-shot job takes its turns with everyone else's jobs.
    """
    job = ctx.store.get_job(state.job_id)
    if job is None or job.status.terminal:
        return FanOutResult(job_id=state.job_id, created=0, remaining=0)
    if job.status == JobStatus.CUTTING_OUT:
        reference_key = _prepare_reference(ctx, job, state.key)
        job = ctx.store.update_job(
            job.job_id,
            expect=[JobStatus.CUTTING_OUT],
            status=JobStatus.COMPOSING,
            cutout_key=reference_key,
            person_reference_key=_prepare_person_reference(ctx, job, reference_key),
        ) or ctx.store.get_job(job.job_id)
        if job is None:
            raise NotFound(f"Job {state.job_id} does not exist.")
    if job.cutout_key is None:
        raise NotFound(f"Job {job.job_id} has no cutout.")
    waiting = [s for s in ctx.store.get_shots(job.job_id) if s.prediction_id is None
               and s.status == ShotStatus.QUEUED]
    if not waiting:
        return FanOutResult(job_id=job.job_id, created=0, remaining=0)
    turn = waiting[: ctx.settings.fan_out_chunk]
    grant = ctx.budget.take(len(turn))
    admitted = turn[: grant.granted]
    references = References(ctx, job)
    created = 0
    if admitted:
        workers = min(ctx.settings.fan_out_concurrency, len(admitted))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            started = list(pool.map(lambda shot: _start(ctx, job, shot, references), admitted))
        created = sum(1 for prediction_id in started if prediction_id)
        ctx.budget.give_back(len(admitted) - created)
    remaining = len(waiting) - created
    wait = 0 if grant.granted == len(turn) else max(1, round(grant.retry_after))
    logger.info("fan-out turn", extra={"job_id": job.job_id, "shots_started": created,
                                       "remaining": remaining})
    return FanOutResult(job_id=job.job_id, created=created, remaining=remaining,
                        wait_seconds=wait)


def _start(ctx: Context, job: Job, shot: Shot, references: References) -> str | None:
    spec, inputs = compose_request(ctx, shot, shot.attempt, references)
    return start_for_shot(ctx, job, shot, spec, inputs, role=Role.SHOT, attempt=shot.attempt,
                          expect_prediction=None, admission="admitted")


def _prepare_reference(ctx: Context, job: Job, cutout_key: str | None) -> str:
    """The model's reference image: the product on white, with its alpha kept.

    A model that ignores alpha sees the product on a clean white backdrop; one that
    reads alpha (and the local engine) gets the exact cutout. Trimmed to the product
    with a margin and squared, so scenes frame the product, not the old photo.
    """
    if cutout_key is None:
        raise NotFound(f"Job {job.job_id} has no cutout output.")
    cutout = Image.open(io.BytesIO(ctx.objects.get(cutout_key)))
    cutout.load()
    reference = reference_images.reference_from_cutout(cutout)
    key = f"{work_prefix(job.user_id, job.job_id)}/cutout.png"
    ctx.objects.put(key, reference_images.png_bytes(reference), "image/png")
    return key


def _prepare_person_reference(ctx: Context, job: Job, product_key: str) -> str | None:
    """For a single-image composing model: the avatar's portrait and the product side by
    side, made once per job (None when the job has no scene with a person, or the
    model takes each reference in its own input)."""
    if not any(ctx.scenes[s].person for s in job.scenes):
        return None
    if ctx.models.compose_with_model.combine != "side_by_side":
        return None
    if job.avatar_portrait_key is None:
        raise NotFound(f"Job {job.job_id} has scenes with a person but no avatar portrait.")
    portrait = Image.open(io.BytesIO(ctx.objects.get(job.avatar_portrait_key)))
    product = Image.open(io.BytesIO(ctx.objects.get(product_key)))
    reference = reference_images.side_by_side_reference(portrait, product)
    key = f"{work_prefix(job.user_id, job.job_id)}/person-reference.png"
    ctx.objects.put(key, reference_images.png_bytes(reference), "image/png")
    return key
