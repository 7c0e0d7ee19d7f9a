"""S3 ObjectCreated on uploads/: check and normalise the photo, request its cutout."""

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lightbox.observability import logger, tracer
from lightbox.services import intake
from lightbox.services.context import get_context


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict:
    ctx = get_context()
    # The S3Event data class URL-decodes keys (a "+" or "%20" in a key arrives encoded).
    results = [
        intake.receive_upload(ctx, record.s3.get_object.key, record.s3.get_object.size)
        for record in event.records
    ]
    return {"results": [r.model_dump(mode="json") for r in results]}
