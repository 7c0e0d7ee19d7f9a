"""Task "Check": product fidelity, faces and size of a composed shot."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import ImageEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services import finish
from lightbox.services.context import get_context


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=ImageEvent)
def handler(event: ImageEvent, context: LambdaContext) -> dict:
    return to_output(finish.check_shot(get_context(), event.image))
