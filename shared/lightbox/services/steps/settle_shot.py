"""The SettleShot function: the states Deliver, Reject, FailJob, RecordPortrait, Tool and GiveUp.

Each state says what it wants by its event's `action` (a discriminated union in
`lightbox.events`); this module hands each to its step.
"""

from __future__ import annotations

from lightbox.errors import NotFound
from lightbox.events import (
    DeliverEvent,
    FailJobEvent,
    GiveUpEvent,
    ImageState,
    PortraitEvent,
    RejectEvent,
    SettleEvent,
    SettleResult,
    ToolEvent,
    ToolResult,
)
from lightbox.services import avatars
from lightbox.services.context import Context
from lightbox.services.steps.deliver import deliver_shot
from lightbox.services.steps.settle import fail_image, fail_job, reject_shot, sentence
from lightbox.services.steps.tool import run_tool


def settle(ctx: Context, event: SettleEvent) -> SettleResult | ToolResult:
    match event:
        case DeliverEvent():
            return deliver_shot(ctx, event.job_id, event.shot_id)
        case RejectEvent():
            reason = event.error or "; ".join(event.reasons) or "The shot did not pass its checks."
            return reject_shot(ctx, event.job_id, event.shot_id, sentence(reason))
        case FailJobEvent():
            reason = event.error or "the product could not be cut out"
            return fail_job(ctx, event.job_id, f"The cutout failed: {reason}.")
        case PortraitEvent():
            recorded = avatars.record_portrait(ctx, event.prediction_id, key=event.key,
                                               error=event.error)
            return SettleResult(job_id=recorded.avatar_id, job_complete=False)
        case ToolEvent():
            return run_tool(ctx, event.image)
        case GiveUpEvent():
            prediction = ctx.store.get_prediction(event.prediction_id)
            if prediction is None:
                raise NotFound(f"Prediction {event.prediction_id} does not exist.")
            failure = event.failure
            return fail_image(ctx, ImageState.of(prediction, "failed"),
                              failure.Error if failure else "unknown",
                              failure.Cause if failure else None)
