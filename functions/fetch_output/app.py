"""Task "Fetch": copy a finished prediction's output into S3."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import FetchEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.steps import fetch


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=FetchEvent)
def handler(event: FetchEvent, context: LambdaContext) -> dict:
    return to_output(fetch.fetch_output(get_context(), event.prediction_id))
