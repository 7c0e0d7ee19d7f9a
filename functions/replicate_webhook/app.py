"""POST /webhooks/replicate: a prediction finished."""

import json

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.webhooks import handle_replicate_webhook


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=APIGatewayProxyEventV2)
def handler(event: APIGatewayProxyEventV2, context: LambdaContext) -> dict:
    answer = handle_replicate_webhook(get_context(), dict(event.headers), event.decoded_body or "")
    return {
        "statusCode": answer.status_code,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(answer.body),
    }
