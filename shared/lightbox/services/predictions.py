"""Starting a prediction on Replicate: the one sequence every caller follows.

1. Admission: a token from the shared rate budget (`admission`), unless the caller
   took tokens for a whole batch first.
2. Create the prediction, with Lightbox's webhook.
3. Record it as pending before anything else: its webhook can arrive at once, and it
   must find the record (and the sweeper must find it if the webhook never comes).
4. Bind it to what it is for (the job's cutout, a shot, a portrait) with the caller's
   conditional write. If something else was bound first (a duplicate step), cancel
   it: its record stays unbound, and its webhook then finds it stale.

Used by intake (the cutout, a tool's model), the fan-out and regeneration (shots), the
upscale, and avatars (portraits). An image Lightbox has already (an uploaded cutout)
enters the same way, as a prediction that finished at once (`start_from_object`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lightbox.catalog import ModelSpec
from lightbox.models import Prediction, PredictionOutcome, Role, utcnow
from lightbox.services.context import Context

#: "take_one": take a token or raise RateBudgetExhausted (the state machine retries);
#: "admitted": the caller took the tokens (a batch); "counted": take one but never
#: wait for it (the cutout, a single prediction a paid job cannot do without).
Admission = Literal["take_one", "admitted", "counted"]


@dataclass(frozen=True)
class PredictionFor:
    """What a prediction is for: the webhook and the sweeper find their way back by it."""

    role: Role
    job_id: str
    user_id: str
    shot_id: str | None = None
    attempt: int = 1


def start_prediction(
    ctx: Context,
    spec: ModelSpec,
    inputs: dict[str, Any],
    purpose: PredictionFor,
    bind: Callable[[str], bool],
    *,
    admission: Admission = "take_one",
) -> str | None:
    """Create, record and bind one prediction; its id, or None when `bind` lost."""
    if admission == "take_one":
        ctx.budget.take_one()
    elif admission == "counted":
        ctx.budget.take(1)
    prediction_id = ctx.replicate.create_prediction(spec, inputs, webhook=ctx.webhook_url())
    ctx.store.put_prediction(Prediction.pending(
        prediction_id, purpose.role, within_seconds=ctx.settings.prediction_deadline_seconds,
        job_id=purpose.job_id, user_id=purpose.user_id, shot_id=purpose.shot_id,
        attempt=purpose.attempt, model=spec.model,
    ))
    if not bind(prediction_id):
        ctx.replicate.cancel_prediction(prediction_id)
        return None
    return prediction_id


def start_from_object(
    ctx: Context, prediction_id: str, key: str, purpose: PredictionFor,
    bind: Callable[[str], bool],
) -> str | None:
    """Feed an object in the bucket into the state machine as if a model had made it:
    a prediction recorded as succeeded, bound like any other, then its execution."""
    now = utcnow()
    ctx.store.put_prediction(Prediction(
        prediction_id=prediction_id, role=purpose.role, job_id=purpose.job_id,
        user_id=purpose.user_id, shot_id=purpose.shot_id, attempt=purpose.attempt,
        model="upload", created_at=now, deadline=now, state="completed",
        outcome=PredictionOutcome(status="succeeded", output=f"s3://{key}"),
    ))
    if not bind(prediction_id):
        return None
    ctx.workflow.start(prediction_id)
    return prediction_id
