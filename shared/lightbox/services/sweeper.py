"""The sweeper: nothing is left waiting for a webhook that will never come.

Runs on a schedule. Replicate retries its final webhook only for about a minute, so
an endpoint outage can lose one. Every prediction past its deadline is asked for
once: if it finished, it goes through the same state machine as a webhook would
send it; if it is still running, it is cancelled and recorded as failed, which the
state machine turns into a regeneration or a rejection. Jobs past their own
deadline are closed: an upload that never came releases its credits; a job with
unsettled shots has them rejected and is finished.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from lightbox.errors import LightboxError
from lightbox.models import (
    TERMINAL_PREDICTION_STATUSES,
    JobStatus,
    PredictionOutcome,
)
from lightbox.observability import logger
from lightbox.services.context import Context
from lightbox.services.steps.finish import finish_job
from lightbox.services.steps.settle import fail_job
from lightbox.services.uploads import end_unstarted_job
from lightbox.services.webhooks import settle_prediction


class SweepReport(BaseModel):
    predictions_settled: int = 0
    predictions_timed_out: int = 0
    jobs_closed: int = 0
    errors: int = 0


def sweep(ctx: Context, now: datetime) -> SweepReport:
    report = SweepReport()
    for kind, item_id in list(ctx.store.overdue(now)):
        try:
            if kind == "PRED":
                _sweep_prediction(ctx, item_id, report)
            elif kind == "JOB":
                _sweep_job(ctx, item_id, report)
        except LightboxError as error:
            # One stuck item must not stop the sweep; the next run tries again.
            report.errors += 1
            logger.warning("sweep of one item failed",
                           extra={"kind": kind, "id": item_id, "error": error.message})
    logger.info("sweep done", extra=report.model_dump())
    return report


def _sweep_prediction(ctx: Context, prediction_id: str, report: SweepReport) -> None:
    prediction = ctx.store.get_prediction(prediction_id)
    if prediction is None or prediction.state != "pending":
        return
    outcome = ctx.replicate.get_prediction(prediction_id)
    if outcome.status in TERMINAL_PREDICTION_STATUSES:
        settle_prediction(ctx, prediction_id, outcome)
        report.predictions_settled += 1
        return
    ctx.replicate.cancel_prediction(prediction_id)
    settle_prediction(
        ctx,
        prediction_id,
        PredictionOutcome(status="failed", error="The model gave no result in time."),
    )
    report.predictions_timed_out += 1


def _sweep_job(ctx: Context, job_id: str, report: SweepReport) -> None:
    job = ctx.store.get_job(job_id)
    if job is None or job.status.terminal:
        return
    if job.status == JobStatus.AWAITING_UPLOAD:
        reason = "No photo arrived before the upload link expired; credits were refunded."
        if end_unstarted_job(ctx, job, reason):
            report.jobs_closed += 1
        return
    settled = fail_job(ctx, job_id, "The job ran past its deadline.")
    if settled.job_complete:
        # Finish as whoever claimed the job already, so a half-done finish completes.
        current = ctx.store.get_job(job_id)
        finisher = (current.finisher if current else None) or "sweeper"
        finish_job(ctx, job_id, finisher=finisher)
    report.jobs_closed += 1
