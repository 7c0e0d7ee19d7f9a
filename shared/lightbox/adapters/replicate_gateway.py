"""Replicate, through the official client, for every call Lightbox makes.

Predictions are always created with a webhook and ``webhook_events_filter=["completed"]``:
nothing in Lightbox waits for a model. Official models (Flux) are run by name, community
models (Real-ESRGAN) by a pinned version; both come from the model catalogue.
"""

from __future__ import annotations

from typing import Any

import httpx
import replicate
from replicate.exceptions import ReplicateError
from replicate.webhook import Webhooks, WebhookSigningSecret, WebhookValidationError

from lightbox.catalog import ModelSpec
from lightbox.errors import InvalidSignature, ModelError, RateBudgetExhausted, TransientError
from lightbox.models import PredictionOutcome


class ReplicateGateway:
    def __init__(self, api_token: str, *, base_url: str | None = None) -> None:
        self.client = replicate.Client(
            api_token=api_token,
            base_url=base_url,
            timeout=httpx.Timeout(30.0, connect=5.0),
        )

    def create_prediction(
        self, spec: ModelSpec, inputs: dict[str, Any], *, webhook: str
    ) -> str:
        """Start a prediction; returns its id. Its result comes by webhook."""
        payload = {**spec.input, **inputs}
        try:
            if spec.version:
                prediction = self.client.predictions.create(
                    version=spec.version,
                    input=payload,
                    webhook=webhook,
                    webhook_events_filter=["completed"],
                )
            else:
                prediction = self.client.models.predictions.create(
                    model=spec.model,
                    input=payload,
                    webhook=webhook,
                    webhook_events_filter=["completed"],
                )
        except ReplicateError as error:
            raise _translate(error, spec.model) from error
        except httpx.TransportError as error:
            raise TransientError(f"Replicate did not answer ({type(error).__name__}).") from error
        return prediction.id

    def get_prediction(self, prediction_id: str) -> PredictionOutcome:
        try:
            response = self.client._request("GET", f"/v1/predictions/{prediction_id}")
        except ReplicateError as error:
            raise _translate(error, prediction_id) from error
        except httpx.TransportError as error:
            raise TransientError(f"Replicate did not answer ({type(error).__name__}).") from error
        return parse_prediction(response.json())

    def cancel_prediction(self, prediction_id: str) -> None:
        try:
            self.client.predictions.cancel(prediction_id)
        except ReplicateError as error:
            if error.status not in (404, 409, 422):
                raise _translate(error, prediction_id) from error
        except httpx.TransportError as error:
            raise TransientError(f"Replicate did not answer ({type(error).__name__}).") from error


def parse_prediction(body: dict[str, Any]) -> PredictionOutcome:
    """Read a prediction as plain JSON: the client's own model rejects newer statuses."""
    metrics = body.get("metrics") or {}
    return PredictionOutcome(
        status=str(body.get("status", "")),
        output=body.get("output"),
        error=None if body.get("error") is None else str(body.get("error")),
        predict_time=metrics.get("predict_time"),
    )


def verify_webhook(
    headers: dict[str, str], body: str, *, secret: str, tolerance_seconds: int
) -> None:
    """Check a webhook's signature and timestamp with the client's own validator.

    The validator skips the timestamp check unless given a tolerance, so one is always
    passed: a captured delivery cannot be replayed after `tolerance_seconds`.
    """
    try:
        Webhooks.validate(
            headers=headers,
            body=body,
            secret=WebhookSigningSecret(key=secret),
            tolerance=tolerance_seconds,
        )
    except (WebhookValidationError, ValueError) as error:
        raise InvalidSignature(f"Webhook refused: {error}") from error


def _translate(error: ReplicateError, what: str) -> Exception:
    status = error.status or 0
    if status == 429:
        return RateBudgetExhausted(f"Replicate is rate limiting ({what}).")
    if status >= 500 or status == 0:
        return TransientError(f"Replicate failed with {status} ({what}).")
    return ModelError(f"Replicate refused the request for {what}: {error.detail or error}")
