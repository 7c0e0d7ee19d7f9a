"""What a job cost to make: Replicate's charge for its predictions and Lightbox's AWS
estimate, beside the credits it charged the shop's user, so the owner sees the margin.

Pure code: the predictions a job made (model, and predict time where Replicate
reports one) and the prices (data, with their date) in, the figures out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from lightbox.catalog.costs import AwsPrices, ModelPrices
from lightbox.models import JobCosts


@dataclass(frozen=True)
class PredictionUse:
    """One prediction made for a job."""

    model: str
    predict_time: float | None = None


def job_costs(
    uses: Iterable[PredictionUse],
    *,
    credits_charged: int,
    usd_per_credit: float,
    models: ModelPrices,
    aws: AwsPrices,
) -> JobCosts:
    uses = list(uses)
    replicate = sum(models.cost(use.model, use.predict_time) for use in uses)
    return JobCosts(
        replicate_usd=round(replicate, 6),
        aws_usd=round(aws.estimate.per_job_usd + aws.estimate.per_prediction_usd * len(uses), 6),
        credits_charged=credits_charged,
        credits_value_usd=round(credits_charged * usd_per_credit, 6),
        predictions=dict(Counter(use.model for use in uses)),
        prices_as_of=min(models.as_of, aws.as_of),
    )
