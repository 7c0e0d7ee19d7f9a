"""Tasks "Deliver", "Reject", "FailJob", "RecordPortrait", "Tool" and "GiveUp": settle a
shot, a portrait or a tool's image."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import SettleEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.steps import settle_shot


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=SettleEvent)
def handler(event: SettleEvent, context: LambdaContext) -> dict:
    return to_output(settle_shot.settle(get_context(), event))
