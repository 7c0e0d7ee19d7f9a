"""Configuration: one typed settings model, read from the environment at cold start.

Secrets never travel in environment variables in AWS: the environment names the SSM
parameter (``*_PARAM``), and `lightbox.adapters.secrets` fetches and caches its value.
Locally the value itself may be given (``REPLICATE_API_TOKEN``), which wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class EnvironmentModel(BaseModel):
    """Settings read from environment variables: each field's alias names its variable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls.model_validate(dict(os.environ if environ is None else environ))


class Settings(EnvironmentModel):
    """Everything a Lightbox function reads from its environment."""

    table_name: str = Field(default="lightbox", alias="TABLE_NAME")
    bucket_name: str = Field(default="lightbox-uploads", alias="BUCKET_NAME")
    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")
    #: Public base URL of the HTTP API; Replicate posts webhooks to
    #: ``{webhook_base_url}/webhooks/replicate``.
    webhook_base_url: str = Field(default="", alias="WEBHOOK_BASE_URL")

    replicate_api_token: str = Field(default="", alias="REPLICATE_API_TOKEN", repr=False)
    replicate_api_token_param: str = Field(default="", alias="REPLICATE_API_TOKEN_PARAM")
    replicate_webhook_secret: str = Field(default="", alias="REPLICATE_WEBHOOK_SECRET", repr=False)
    replicate_webhook_secret_param: str = Field(
        default="", alias="REPLICATE_WEBHOOK_SECRET_PARAM"
    )
    #: None means the client's default (https://api.replicate.com); the local
    #: engine is reached by pointing this at it.
    replicate_base_url: str | None = Field(default=None, alias="REPLICATE_BASE_URL")
    #: Seconds a webhook's timestamp may be off before it is refused as stale.
    webhook_tolerance_seconds: int = Field(default=300, alias="WEBHOOK_TOLERANCE_SECONDS")
    #: How long Lightbox waits for a prediction's webhook before the sweeper asks.
    prediction_deadline_seconds: int = Field(default=600, alias="PREDICTION_DEADLINE_SECONDS")
    #: Every accepted upload ends in a terminal state within this many seconds.
    job_deadline_seconds: int = Field(default=3600, alias="JOB_DEADLINE_SECONDS")
    #: Predictions Lightbox may create per minute across all users (Replicate's
    #: account limit, minus headroom).
    replicate_rate_per_minute: int = Field(default=500, alias="REPLICATE_RATE_PER_MINUTE")
    #: Parallel prediction creates inside one fan-out call: each is an HTTPS call of a
    #: few hundred milliseconds, so a chunk of 100 starts in under a second.
    fan_out_concurrency: int = Field(default=64, alias="FAN_OUT_CONCURRENCY")
    #: Most shots one fan-out call admits before yielding to other jobs.
    fan_out_chunk: int = Field(default=100, alias="FAN_OUT_CHUNK")

    #: A composed shot smaller than this on its long side fails its check (before
    #: upscaling; Flux Kontext returns about 1 megapixel).
    min_shot_long_side: int = Field(default=512, alias="MIN_SHOT_LONG_SIDE")
    max_upload_bytes: int = Field(default=25 * 2**20, alias="MAX_UPLOAD_BYTES")
    max_upload_pixels: int = Field(default=50_000_000, alias="MAX_UPLOAD_PIXELS")
    max_shots_per_job: int = Field(default=200, alias="MAX_SHOTS_PER_JOB")
    upload_url_expiry_seconds: int = Field(default=900, alias="UPLOAD_URL_EXPIRY_SECONDS")
    download_url_expiry_seconds: int = Field(default=900, alias="DOWNLOAD_URL_EXPIRY_SECONDS")

    stripe_api_key: str = Field(default="", alias="STRIPE_API_KEY", repr=False)
    stripe_api_key_param: str = Field(default="", alias="STRIPE_API_KEY_PARAM")
    stripe_webhook_secret: str = Field(default="", alias="STRIPE_WEBHOOK_SECRET", repr=False)
    stripe_webhook_secret_param: str = Field(default="", alias="STRIPE_WEBHOOK_SECRET_PARAM")
    #: "stripe" sends buyers to Stripe Checkout; "local" completes the purchase
    #: on the laptop with a signed webhook, the way `stripe trigger` does.
    checkout_mode: str = Field(default="stripe", alias="CHECKOUT_MODE")
    app_base_url: str = Field(default="", alias="APP_BASE_URL")

    #: Where the catalogue data lives; empty means the packaged files.
    catalog_dir: str = Field(default="", alias="LIGHTBOX_CATALOG_DIR")

    aws_endpoint_url: str | None = Field(default=None, alias="AWS_ENDPOINT_URL")
    aws_region: str = Field(default="us-east-1", alias="AWS_REGION")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, validated once (at cold start)."""
    return Settings.from_environment()
