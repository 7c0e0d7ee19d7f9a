"""Task "Finish": close a job whose shots are all settled (exactly once)."""

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.events import FinishEvent, to_output
from lightbox.observability import logger, tracer
from lightbox.services.context import get_context
from lightbox.services.steps import finish


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=FinishEvent)
def handler(event: FinishEvent, context: LambdaContext) -> dict:
    return to_output(finish.finish_job(get_context(), event.job_id, event.finisher))
