"""Tasks "Upscale" and "UpscaleTool": ask the upscaler for the size a shot's presets
(or a fit's preset) need."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import ToolUpscaleEvent, UpscaleRequest, to_output
from lightbox.observability import logger, tracer
from lightbox.services import tools
from lightbox.services.context import get_context
from lightbox.services.steps import compose


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=UpscaleRequest)
def handler(event: UpscaleRequest, context: LambdaContext) -> dict:
    if isinstance(event, ToolUpscaleEvent):
        return to_output(tools.request_tool_upscale(get_context(), event.tool))
    return to_output(compose.request_upscale(get_context(), event.check))
