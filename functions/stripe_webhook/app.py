"""POST /webhooks/stripe: a Checkout Session was paid, or money went back."""

import base64
import json

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.catalog.packs import load_packs
from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.payments import handle_stripe_webhook


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=APIGatewayProxyEventV2)
def handler(event: APIGatewayProxyEventV2, context: LambdaContext) -> dict:
    ctx = get_context()
    # The signature covers the raw bytes exactly as Stripe sent them.
    body = event.body or ""
    payload = base64.b64decode(body) if event.is_base64_encoded else body.encode()
    result = handle_stripe_webhook(
        payload,
        event.headers.get("stripe-signature"),
        secret=ctx.stripe_webhook_secret(),
        ledger=ctx.ledger,
        packs=load_packs(),
    )
    return {
        "statusCode": result.status_code,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(result.body),
    }
