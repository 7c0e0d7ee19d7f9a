"""Settling shots that will not be delivered, and counting every shot off its job.

A shot ends delivered (`steps.deliver`) or rejected (here); either way it is counted
off the job once, and the last one to be counted off says the job is complete. A tool
job's one output is settled the same way (`steps.tool` when it is made, `fail_tool`
when it cannot be). No image code: the sweeper uses these too.
"""

from __future__ import annotations

from lightbox.errors import NotFound
from lightbox.events import ImageState, SettleResult
from lightbox.models import Job, JobKind, Role, Shot, ShotStatus
from lightbox.observability import logger
from lightbox.services import avatars
from lightbox.services.context import Context
from lightbox.services.steps.compose import job_and_shot


def reject_shot(ctx: Context, job_id: str, shot_id: str, reason: str) -> SettleResult:
    job, shot = job_and_shot(ctx, job_id, shot_id)
    if shot.status == ShotStatus.DELIVERED:
        return count_off(ctx, job, shot, delivered=True)
    ctx.store.update_shot(
        job_id, shot_id,
        condition="#status <> :delivered",
        condition_values={"#status": "status", ":delivered": str(ShotStatus.DELIVERED)},
        status=ShotStatus.REJECTED, reason=reason,
    )
    logger.info("shot rejected", extra={"job_id": job_id, "shot_id": shot_id, "reason": reason})
    return count_off(ctx, job, shot, delivered=False)


def count_off(ctx: Context, job: Job, shot: Shot, *, delivered: bool) -> SettleResult:
    updated = ctx.store.count_off_shot(job.job_id, shot.shot_id, delivered=delivered)
    return SettleResult(job_id=job.job_id, shot_id=shot.shot_id,
                        job_complete=updated.settled >= updated.shots_total)


def fail_job(ctx: Context, job_id: str, reason: str) -> SettleResult:
    """No shot can be made (the cutout failed, the job ran out of time): every unsettled
    shot is rejected."""
    job = ctx.store.get_job(job_id)
    if job is None:
        raise NotFound(f"Job {job_id} does not exist.")
    if job.kind == JobKind.TOOL:
        return fail_tool(ctx, job_id, reason)
    ctx.store.update_job(job_id, reason=reason)
    complete = job.settled >= job.shots_total
    for shot in ctx.store.get_shots(job_id):
        if not shot.status.terminal:
            complete = reject_shot(ctx, job_id, shot.shot_id, reason).job_complete
    return SettleResult(job_id=job_id, job_complete=complete or job.shots_total == 0)


def fail_image(
    ctx: Context, state: ImageState, error: str, cause: str | None = None
) -> SettleResult:
    """An unexpected failure of one image's steps: reject it rather than leave it hanging."""
    logger.error("image step failed", extra={"prediction_id": state.prediction_id,
                                             "error": error, "cause": (cause or "")[:1000]})
    if state.role == Role.CUTOUT:
        return fail_job(ctx, state.job_id, "The product could not be cut out of the photo.")
    if state.role == Role.PORTRAIT:
        avatars.portrait_failed(ctx, state.prediction_id, error)
        return SettleResult(job_id=state.job_id, job_complete=False)
    if state.role == Role.TOOL:
        return fail_tool(ctx, state.job_id, "Lightbox could not make this image.")
    if state.shot_id:
        return reject_shot(ctx, state.job_id, state.shot_id,
                           "Lightbox could not finish this shot.")
    return SettleResult(job_id=state.job_id, job_complete=False)


def fail_tool(ctx: Context, job_id: str, reason: str) -> SettleResult:
    """A tool job's image cannot be made: its one output is counted off as rejected,
    with the reason (unless it was settled already), and the job is complete."""
    job = ctx.store.settle_tool_output(job_id, delivered=False, reason=sentence(reason))
    if job is None:
        job = ctx.store.get_job(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} does not exist.")
    else:
        logger.info("tool failed", extra={"job_id": job_id, "reason": reason})
    return SettleResult(job_id=job_id, job_complete=job.settled >= job.shots_total)


def sentence(text: str) -> str:
    """A reason as a sentence: capitalised, with its full stop."""
    text = text.strip()
    text = text[0].upper() + text[1:] if text else text
    return text if text.endswith(".") else f"{text}."
