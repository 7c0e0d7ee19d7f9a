"""Tasks "Deliver", "Reject", "FailJob" and "GiveUp": settle a shot and count it off."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import SettleEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services import finish
from lightbox.services.context import get_context


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=SettleEvent)
def handler(event: SettleEvent, context: LambdaContext) -> dict:
    return to_output(finish.settle(get_context(), event))
