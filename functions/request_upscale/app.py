"""Task "Upscale": ask the upscaler for the size the job's presets need."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import UpscaleEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.steps import compose


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=UpscaleEvent)
def handler(event: UpscaleEvent, context: LambdaContext) -> dict:
    return to_output(compose.request_upscale(get_context(), event.check))
