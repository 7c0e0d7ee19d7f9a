"""Prices, as data: Replicate's per model (`model_prices.yaml`) and AWS's list prices
with Lightbox's per-job estimate (`aws_prices.yaml`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from lightbox.catalog import read_yaml


class _Prices(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LambdaPrices(_Prices):
    per_gb_second_arm64: float
    per_million_requests: float


class StepFunctionsPrices(_Prices):
    per_thousand_state_transitions: float


class DynamoPrices(_Prices):
    per_million_write_request_units: float
    per_million_read_request_units: float


class S3Prices(_Prices):
    per_thousand_put_requests: float
    per_thousand_get_requests: float


class ApiGatewayPrices(_Prices):
    per_million_requests: float


class AwsEstimate(_Prices):
    """Lightbox's AWS cost per job and per prediction, measured by bench/fan_out.py."""

    per_job_usd: float
    per_prediction_usd: float


class AwsPrices(_Prices):
    as_of: str
    region: str
    currency: str
    # "lambda" is a keyword; the file's key is matched by alias.
    lambda_: LambdaPrices
    step_functions: StepFunctionsPrices
    dynamodb: DynamoPrices
    s3: S3Prices
    api_gateway: ApiGatewayPrices
    estimate: AwsEstimate

    def lambda_cost(self, invocations: int, gb_seconds: float) -> float:
        return (invocations * self.lambda_.per_million_requests / 1e6
                + gb_seconds * self.lambda_.per_gb_second_arm64)

    def transitions_cost(self, transitions: int) -> float:
        return transitions * self.step_functions.per_thousand_state_transitions / 1e3

    def dynamodb_cost(self, write_units: float, read_units: float) -> float:
        return (write_units * self.dynamodb.per_million_write_request_units / 1e6
                + read_units * self.dynamodb.per_million_read_request_units / 1e6)

    def s3_cost(self, puts: int, gets: int) -> float:
        return (puts * self.s3.per_thousand_put_requests / 1e3
                + gets * self.s3.per_thousand_get_requests / 1e3)

    def api_cost(self, requests: int) -> float:
        return requests * self.api_gateway.per_million_requests / 1e6


@lru_cache(maxsize=1)
def load_aws_prices() -> AwsPrices:
    data = dict(read_yaml("aws_prices.yaml"))
    data["lambda_"] = data.pop("lambda")
    return AwsPrices.model_validate(data)


class ModelPrice(_Prices):
    """Per output image (official models) or per second of hardware (community ones)."""

    per_output: float | None = None
    per_second: float | None = None
    #: Seconds assumed when a prediction reports no predict_time.
    typical_seconds: float = 0.0

    def cost(self, predict_time: float | None) -> float:
        if self.per_output is not None:
            return self.per_output
        seconds = predict_time if predict_time is not None else self.typical_seconds
        return (self.per_second or 0.0) * seconds


class ModelPrices(_Prices):
    as_of: str
    currency: str
    models: dict[str, ModelPrice]

    def cost(self, model: str, predict_time: float | None = None) -> float:
        """What one prediction of `model` costs; 0 for a model with no listed price."""
        price = self.models.get(model)
        return price.cost(predict_time) if price else 0.0


@lru_cache(maxsize=1)
def load_model_prices() -> ModelPrices:
    return ModelPrices.model_validate(read_yaml("model_prices.yaml"))
