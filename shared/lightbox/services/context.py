"""The clients a Lightbox function needs, built once per process (per Lambda container).

Handlers call `get_context()`; tests build a `Context` from their own clients. The
Replicate client is made on first use, because its token comes from SSM and only the
functions that call Replicate should fetch it (or import it: it costs a cold start
about 0.1 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from lightbox.adapters.dynamo import DynamoStore
from lightbox.adapters.rate_budget import RateBudget
from lightbox.adapters.s3 import ObjectStore
from lightbox.adapters.secrets import resolve_secret
from lightbox.adapters.stepfunctions import ImageWorkflow
from lightbox.catalog import ModelCatalog, Scene, load_models, load_scenes
from lightbox.config import Settings, get_settings
from lightbox.domain.pricing import Pricing, load_pricing

if TYPE_CHECKING:
    import httpx

    from lightbox.adapters.replicate_gateway import ReplicateGateway

_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    max_pool_connections=50,
)


def boto_client(service: str, settings: Settings) -> Any:
    config = _BOTO_CONFIG
    if service == "s3":
        # Presigned POSTs need SigV4; path-style keeps local endpoints (an IP) working.
        config = config.merge(
            Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if settings.aws_endpoint_url else "auto"},
            )
        )
    return boto3.client(service, region_name=settings.aws_region, config=config)


@dataclass
class Context:
    settings: Settings
    dynamodb: Any
    s3: Any
    stepfunctions: Any

    @cached_property
    def store(self) -> DynamoStore:
        return DynamoStore(self.dynamodb, self.settings.table_name)

    @cached_property
    def objects(self) -> ObjectStore:
        return ObjectStore(self.s3, self.settings.bucket_name)

    @cached_property
    def workflow(self) -> ImageWorkflow:
        return ImageWorkflow(self.stepfunctions, self.settings.state_machine_arn)

    @cached_property
    def budget(self) -> RateBudget:
        return RateBudget(
            self.dynamodb, self.settings.table_name,
            per_minute=self.settings.replicate_rate_per_minute,
        )

    @cached_property
    def ledger(self) -> Any:
        from lightbox.adapters.ledger import CreditLedger

        return CreditLedger(self.dynamodb, self.settings.table_name)

    @cached_property
    def replicate(self) -> ReplicateGateway:
        from lightbox.adapters.replicate_gateway import ReplicateGateway

        token = resolve_secret(
            self.settings.replicate_api_token, self.settings.replicate_api_token_param
        )
        return ReplicateGateway(token, base_url=self.settings.replicate_base_url)

    @cached_property
    def http(self) -> httpx.Client:
        """For fetching model outputs from Replicate's delivery host."""
        import httpx

        return httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), follow_redirects=True)

    def replicate_webhook_secret(self) -> str:
        return resolve_secret(
            self.settings.replicate_webhook_secret,
            self.settings.replicate_webhook_secret_param,
        )

    def stripe_webhook_secret(self) -> str:
        return resolve_secret(
            self.settings.stripe_webhook_secret,
            self.settings.stripe_webhook_secret_param,
        )

    def webhook_url(self) -> str:
        return f"{self.settings.webhook_base_url.rstrip('/')}/webhooks/replicate"

    @property
    def scenes(self) -> dict[str, Scene]:
        return load_scenes()

    @property
    def models(self) -> ModelCatalog:
        return load_models()

    @property
    def pricing(self) -> Pricing:
        return load_pricing()


def build_context(settings: Settings | None = None) -> Context:
    settings = settings or get_settings()
    return Context(
        settings=settings,
        dynamodb=boto_client("dynamodb", settings),
        s3=boto_client("s3", settings),
        stepfunctions=boto_client("stepfunctions", settings),
    )


@lru_cache(maxsize=1)
def get_context() -> Context:
    return build_context()
