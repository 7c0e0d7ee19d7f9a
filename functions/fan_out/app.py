"""Task "FanOut": one compose prediction per shot, within the shared budget."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import ImageEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.steps import fan_out


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=ImageEvent)
def handler(event: ImageEvent, context: LambdaContext) -> dict:
    return to_output(fan_out.fan_out(get_context(), event.image))
