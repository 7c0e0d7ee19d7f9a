"""What a job cost: Replicate's prices per model (data with a date) and the AWS estimate."""

from __future__ import annotations

import pytest

from lightbox.catalog.costs import load_aws_prices, load_model_prices
from lightbox.catalog.packs import usd_per_credit
from lightbox.domain.costs import PredictionUse, job_costs


def test_official_models_cost_per_output_and_community_models_per_second() -> None:
    prices = load_model_prices()
    assert prices.cost("black-forest-labs/flux-kontext-max") == pytest.approx(0.08)
    assert prices.cost("black-forest-labs/flux-kontext-max", predict_time=30.0) == pytest.approx(0.08)
    # Real-ESRGAN bills its GPU seconds; without a reported time, its typical time
    assert prices.cost("nightmareai/real-esrgan", predict_time=10.0) == pytest.approx(0.00225)
    assert prices.cost("nightmareai/real-esrgan") == pytest.approx(0.000225 * 4.0)
    # an uploaded cutout is no prediction: nothing to pay
    assert prices.cost("upload") == 0.0
    assert prices.as_of


def test_a_job_sums_its_predictions_and_shows_the_margin() -> None:
    uses = [PredictionUse("bria/remove-background")] + [
        PredictionUse("black-forest-labs/flux-kontext-max")] * 3 + [
        PredictionUse("nightmareai/real-esrgan", predict_time=2.0)]
    aws = load_aws_prices()
    costs = job_costs(uses, credits_charged=6, usd_per_credit=usd_per_credit(),
                      models=load_model_prices(), aws=aws)
    assert costs.replicate_usd == pytest.approx(0.018 + 3 * 0.08 + 0.00045)
    assert costs.aws_usd == pytest.approx(aws.estimate.per_job_usd
                                          + 5 * aws.estimate.per_prediction_usd)
    assert costs.predictions["black-forest-labs/flux-kontext-max"] == 3
    assert costs.credits_value_usd == pytest.approx(6 * 0.025)
    assert costs.margin_usd == pytest.approx(
        costs.credits_value_usd - costs.replicate_usd - costs.aws_usd)
