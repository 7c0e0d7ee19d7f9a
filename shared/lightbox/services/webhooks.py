"""Replicate's webhook: verify, record the outcome once, start the image's execution.

Deliveries are at least once and unordered. A delivery is answered:
- 400 when its signature, timestamp or headers do not verify (nothing changes);
- 404 when the prediction is not (yet) known: Lightbox records a prediction right
  after creating it, so a webhook can overtake the record; Replicate retries
  non-2xx deliveries for a while, and the sweeper is the backstop;
- 200 otherwise, including duplicates and predictions already finished, which
  change nothing: the outcome is recorded conditionally, and the execution is named
  after the prediction, so starting it again starts nothing new.
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from lightbox.adapters.replicate_gateway import parse_prediction, verify_webhook
from lightbox.errors import InvalidSignature
from lightbox.models import TERMINAL_PREDICTION_STATUSES, PredictionOutcome
from lightbox.observability import logger
from lightbox.services.context import Context


class WebhookAnswer(BaseModel):
    status_code: int
    body: dict[str, str]


def handle_replicate_webhook(ctx: Context, headers: dict[str, str], body: str) -> WebhookAnswer:
    try:
        verify_webhook(
            headers,
            body,
            secret=ctx.replicate_webhook_secret(),
            tolerance_seconds=ctx.settings.webhook_tolerance_seconds,
        )
    except InvalidSignature as error:
        logger.warning("replicate webhook refused", extra={"reason": error.message})
        return WebhookAnswer(status_code=400, body={"error": "invalid signature"})
    try:
        payload = json.loads(body)
        prediction_id = str(payload["id"])
    except (ValueError, KeyError, TypeError):
        return WebhookAnswer(status_code=400, body={"error": "body is not a prediction"})

    outcome = parse_prediction(payload)
    if outcome.status not in TERMINAL_PREDICTION_STATUSES:
        return WebhookAnswer(status_code=200, body={"result": "not finished; ignored"})
    return settle_prediction(ctx, prediction_id, outcome)


def settle_prediction(
    ctx: Context, prediction_id: str, outcome: PredictionOutcome
) -> WebhookAnswer:
    """Record a finished prediction and hand it to the state machine (webhook and sweeper)."""
    prediction, newly = ctx.store.record_outcome(prediction_id, outcome)
    if prediction is None:
        logger.info("webhook for an unknown prediction", extra={"prediction_id": prediction_id})
        return WebhookAnswer(status_code=404, body={"error": "unknown prediction"})
    if prediction.outcome is None:
        # Not recorded (a write that keeps losing a race): the sender retries, and the
        # sweeper asks in the end; nothing starts without an outcome to finish.
        return WebhookAnswer(status_code=503, body={"error": "try again"})
    started = ctx.workflow.start(prediction_id)
    logger.info(
        "prediction settled",
        extra={"prediction_id": prediction_id, "status": outcome.status,
               "role": str(prediction.role), "first_delivery": newly, "started": started},
    )
    return WebhookAnswer(
        status_code=200,
        body={"result": "recorded" if newly else "duplicate", "prediction_id": prediction_id},
    )
