"""Task "Check": product fidelity, faces and size of a composed shot."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import ImageEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.steps import check


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=ImageEvent)
def handler(event: ImageEvent, context: LambdaContext) -> dict:
    return to_output(check.check_shot(get_context(), event.image))
