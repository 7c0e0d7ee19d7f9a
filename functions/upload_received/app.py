"""S3 ObjectCreated on uploads/: check and normalise the photo, request its cutout."""

from urllib.parse import unquote_plus

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
    # Keys arrive URL-encoded in S3 events (a space as "+"); the data class decodes
    # only the first record's key (event.object_key), so each record is decoded here.
    results = [
        intake.receive_upload(ctx, unquote_plus(record.s3.get_object.key),
                              record.s3.get_object.size)
        for record in event.records
    ]
    return {"results": [r.model_dump(mode="json") for r in results]}
