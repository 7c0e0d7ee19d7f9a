"""A job and its credits change together: the job is written with its reservation, and a
job that ends before any prediction is failed in the same transaction that refunds it.

Against moto's DynamoDB with the template's table. Every test ends by checking the books.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from lightbox.adapters.dynamo import DynamoStore
from lightbox.adapters.ledger import CreditLedger, EntryKind, Purchase, ReservationState
from lightbox.errors import Conflict, InsufficientCredits, LightboxError
from lightbox.models import Job, JobStatus, utcnow
from lightbox.services.uploads import end_unstarted_job
from tests.integration.conftest import TABLE, AtomicRequests, FaultyClient

USER = "user-jobs"


@dataclass
class Stores:
    """What `end_unstarted_job` needs of the context: the job store and the ledger."""

    store: DynamoStore
    ledger: CreditLedger


@pytest.fixture
def ctx(dynamodb: AtomicRequests, ledger: CreditLedger) -> Stores:
    ledger.credit_purchase(
        Purchase(user_id=USER, session_id="cs_jobs", pack_id="starter", credits=50),
        event_id="evt_jobs", event_type="checkout.session.completed",
    )
    return Stores(store=DynamoStore(dynamodb, TABLE), ledger=ledger)


def a_job(job_id: str, cost: int) -> Job:
    return Job(job_id=job_id, user_id=USER, status=JobStatus.AWAITING_UPLOAD,
               scenes=["white-studio"], variants=1, presets=[], shots_total=cost,
               credits_reserved=cost, source_key=f"uploads/{USER}/{job_id}/original",
               deadline=utcnow() + timedelta(minutes=20))


def order(ctx: Stores, job: Job) -> None:
    ctx.ledger.reserve(USER, job.job_id, job.credits_reserved, along=[ctx.store.new_job(job)])


# --- ordering ---------------------------------------------------------------------------


def test_an_order_writes_the_job_and_its_reservation_together(ctx, assert_books):
    order(ctx, a_job("job-1", 12))

    assert ctx.store.get_job("job-1").status == JobStatus.AWAITING_UPLOAD
    assert ctx.ledger.reservation(USER, "job-1").amount == 12
    assert ctx.ledger.balance(USER).balance == 38
    assert_books(USER)


def test_an_order_the_balance_cannot_cover_leaves_neither_job_nor_reservation(ctx, assert_books):
    with pytest.raises(InsufficientCredits):
        order(ctx, a_job("job-big", 51))

    assert ctx.store.get_job("job-big") is None
    assert ctx.ledger.reservation(USER, "job-big") is None
    assert ctx.ledger.balance(USER).balance == 50
    assert_books(USER)


def test_a_job_that_exists_already_is_refused_and_nothing_is_reserved(ctx, assert_books):
    order(ctx, a_job("job-1", 5))
    # A second job under the same id (a planning bug) with a reservation of its own
    clash = a_job("job-1", 7)
    with pytest.raises(Conflict):
        ctx.ledger.reserve(USER, "job-1b", 7, along=[ctx.store.new_job(clash)])

    assert ctx.ledger.reservation(USER, "job-1b") is None
    assert ctx.ledger.balance(USER).balance == 45
    assert_books(USER)


# --- ending before any prediction ----------------------------------------------------------


def test_ending_an_unstarted_job_fails_it_and_refunds_it_in_one_write(ctx, assert_books):
    job = a_job("job-1", 12)
    order(ctx, job)

    assert end_unstarted_job(ctx, job, "No photo arrived.")

    ended = ctx.store.get_job("job-1")
    assert (ended.status, ended.reason) == (JobStatus.FAILED, "No photo arrived.")
    assert ended.finished_at is not None
    reservation = ctx.ledger.reservation(USER, "job-1")
    assert (reservation.state, reservation.refunded) == (ReservationState.RELEASED, 12)
    assert ctx.ledger.balance(USER).balance == 50
    assert_books(USER)


def test_ending_it_again_moves_nothing(ctx, assert_books):
    job = a_job("job-1", 12)
    order(ctx, job)
    assert end_unstarted_job(ctx, job, "No photo arrived.")

    assert not end_unstarted_job(ctx, job, "No photo arrived.")

    refunds = [e for e in ctx.ledger.entries(USER) if e.kind == EntryKind.REFUND]
    assert len(refunds) == 1
    assert ctx.ledger.balance(USER).balance == 50
    assert_books(USER)


def test_a_job_whose_photo_was_accepted_is_not_ended_and_keeps_its_credits(ctx, assert_books):
    job = a_job("job-1", 12)
    order(ctx, job)
    assert ctx.store.update_job("job-1", expect=[JobStatus.AWAITING_UPLOAD],
                                status=JobStatus.CUTTING_OUT) is not None

    assert not end_unstarted_job(ctx, job, "No photo arrived.")

    assert ctx.store.get_job("job-1").status == JobStatus.CUTTING_OUT
    assert ctx.ledger.reservation(USER, "job-1").state == ReservationState.OPEN
    assert ctx.ledger.balance(USER).balance == 38
    assert_books(USER)


def test_an_unstarted_job_without_a_reservation_is_still_ended(ctx, assert_books):
    job = a_job("job-free", 0)
    ctx.store.client.transact_write_items(TransactItems=[ctx.store.new_job(job)])

    assert end_unstarted_job(ctx, job, "No photo arrived.")

    assert ctx.store.get_job("job-free").status == JobStatus.FAILED
    assert ctx.ledger.balance(USER).balance == 50
    assert_books(USER)


@pytest.mark.parametrize("round_", range(6))
def test_the_sweeper_and_a_photo_arriving_at_once_leave_one_consistent_outcome(
    ctx, assert_books: Callable[[str], None], round_: int
):
    # Given an unstarted job, and the photo's intake racing the sweeper's expiry
    job = a_job(f"job-race-{round_}", 10)
    order(ctx, job)
    start = threading.Barrier(2)

    def accept() -> bool:
        start.wait()
        return ctx.store.update_job(job.job_id, expect=[JobStatus.AWAITING_UPLOAD],
                                    status=JobStatus.CUTTING_OUT) is not None

    def expire() -> bool:
        start.wait()
        return end_unstarted_job(ctx, job, "No photo arrived.")

    with ThreadPoolExecutor(max_workers=2) as pool:
        accepted, expired = pool.submit(accept), pool.submit(expire)
        accepted, expired = accepted.result(), expired.result()

    # Then exactly one won, and the credits follow the job
    assert accepted != expired
    status = ctx.store.get_job(job.job_id).status
    state = ctx.ledger.reservation(USER, job.job_id).state
    if accepted:
        assert (status, state) == (JobStatus.CUTTING_OUT, ReservationState.OPEN)
    else:
        assert (status, state) == (JobStatus.FAILED, ReservationState.RELEASED)
    assert_books(USER)


@pytest.mark.parametrize("fault", ["throttled", "cancelled", "lost_reply"])
def test_a_storage_fault_while_ending_a_job_never_leaves_it_ended_without_its_refund(
    ctx, dynamodb, assert_books, fault
):
    # Given an unstarted job, and storage that breaks the first transaction
    job = a_job("job-1", 12)
    order(ctx, job)
    faulty = Stores(store=ctx.store, ledger=CreditLedger(FaultyClient(dynamodb, fault), TABLE))

    # When the sweeper's first try meets the fault
    try:
        end_unstarted_job(faulty, job, "No photo arrived.")
    except (LightboxError, ClientError):
        pass  # the scheduled sweep runs again
    # Then at every moment the job and its credits agree
    status = ctx.store.get_job("job-1").status
    state = ctx.ledger.reservation(USER, "job-1").state
    assert (status, state) in [(JobStatus.AWAITING_UPLOAD, ReservationState.OPEN),
                               (JobStatus.FAILED, ReservationState.RELEASED)]
    # and the next try leaves it ended and refunded once
    end_unstarted_job(faulty, job, "No photo arrived.")
    assert ctx.store.get_job("job-1").status == JobStatus.FAILED
    assert ctx.ledger.reservation(USER, "job-1").state == ReservationState.RELEASED
    assert ctx.ledger.balance(USER).balance == 50
    assert_books(USER)
