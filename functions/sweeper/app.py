"""Scheduled: ask once about overdue predictions, close overdue jobs."""

from datetime import datetime

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.sweeper import sweep


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    # The schedule's own timestamp is "now": a delayed or replayed run sweeps as of
    # when it was meant to run.
    now = datetime.fromisoformat(event.time)
    return sweep(get_context(), now).model_dump(mode="json")
