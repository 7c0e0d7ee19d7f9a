"""Logger, tracer and metrics: one place, so every module logs the same way.

Powertools' Logger writes structured JSON; the service name comes from
``POWERTOOLS_SERVICE_NAME``. Secrets never reach a log line: settings hide them from
their repr, and no code logs a token, a signature or a webhook secret.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="lightbox")
# X-Ray traces the AWS calls; patching only botocore keeps the Tracer from importing
# every other library it knows how to patch (httpx among them) at every cold start.
tracer = Tracer(service="lightbox", patch_modules=("botocore",))
metrics = Metrics(namespace="Lightbox", service="lightbox")
