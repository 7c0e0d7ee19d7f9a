"""A prediction's outcome is recorded once, even when its webhook races its record."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lightbox.adapters.dynamo import DynamoStore
from lightbox.models import Prediction, PredictionOutcome, Role, utcnow

from .conftest import TABLE


@pytest.fixture
def store(dynamodb) -> DynamoStore:
    return DynamoStore(dynamodb, TABLE)


def pending(prediction_id: str = "p-1") -> Prediction:
    now = utcnow()
    return Prediction(prediction_id=prediction_id, role=Role.SHOT, job_id="j-1", user_id="u-1",
                      shot_id="s-1", attempt=1, model="owner/compose", created_at=now,
                      deadline=now + timedelta(minutes=10))


FAILED = PredictionOutcome(status="failed", error="The model failed.")


def test_given_a_pending_prediction_when_its_outcome_arrives_twice_then_recorded_once(store):
    store.put_prediction(pending())
    first, newly = store.record_outcome("p-1", FAILED)
    again, newly_again = store.record_outcome("p-1", PredictionOutcome(status="succeeded"))
    assert newly and not newly_again
    assert first.outcome == FAILED and again.outcome == FAILED


def test_given_an_unknown_prediction_when_its_outcome_arrives_then_nothing_is_written(store):
    assert store.record_outcome("p-unknown", FAILED) == (None, False)
    assert store.get_prediction("p-unknown") is None


def test_given_the_record_lands_between_write_and_read_then_the_outcome_still_lands(
    store, monkeypatch
):
    # Given the webhook's first write runs before the prediction is recorded, and the
    # record lands just after it (a model that fails at once)
    update = store._update
    calls = []

    def racing_update(*args, **kwargs):
        result = update(*args, **kwargs)
        if not calls:
            store.put_prediction(pending())
        calls.append(result)
        return result

    monkeypatch.setattr(store, "_update", racing_update)
    # When the outcome is recorded
    prediction, newly = store.record_outcome("p-1", FAILED)
    # Then it is recorded, once, on the prediction
    assert newly and prediction.outcome == FAILED
    assert store.get_prediction("p-1").state == "completed"
    assert len(calls) == 2
