"""The credit ledger against moto: reserve, settle, release, reading, and races.

Every test ends by checking the books: the user's ledger entries sum to the account.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lightbox.adapters.ledger import (
    CreditLedger,
    EntryKind,
    Purchase,
    ReservationState,
)
from lightbox.errors import (
    AccountInDebt,
    Conflict,
    InsufficientCredits,
    InvalidInput,
    NotFound,
    TransientError,
)

USER = "user-ledger"


def buy(ledger: CreditLedger, user_id: str, credits: int, session_id: str) -> None:
    result = ledger.credit_purchase(
        Purchase(user_id=user_id, session_id=session_id, pack_id="starter", credits=credits),
        event_id=f"evt_{session_id}",
        event_type="checkout.session.completed",
    )
    assert result.applied


def kinds(ledger: CreditLedger, user_id: str) -> Counter[EntryKind]:
    return Counter(e.kind for e in ledger.entries(user_id))


# --- reading ----------------------------------------------------------------------------


def test_given_a_user_who_never_bought_when_reading_then_the_account_is_empty(ledger):
    account = ledger.balance("nobody")
    assert (account.balance, account.reserved, account.debt) == (0, 0, 0)
    assert ledger.ledger_page("nobody") == ([], None)


def test_given_many_movements_when_paging_then_newest_first_and_every_entry_once(ledger):
    # Given one purchase and six reservations (seven entries)
    buy(ledger, USER, 100, "cs_page")
    for n in range(6):
        ledger.reserve(USER, f"job-{n}", 1)

    # When reading three at a time
    seen, cursor, pages = [], None, 0
    while True:
        entries, cursor = ledger.ledger_page(USER, limit=3, cursor=cursor)
        seen.extend(entries)
        pages += 1
        if cursor is None:
            break

    # Then every entry comes once, newest first, the purchase last
    assert len(seen) == 7 and pages == 3
    assert len({(e.kind, e.cause_id) for e in seen}) == 7
    assert [e.created_at for e in seen] == sorted((e.created_at for e in seen), reverse=True)
    assert seen[-1].kind == EntryKind.PURCHASE


def test_given_a_cursor_of_another_user_when_paging_then_refused(ledger):
    buy(ledger, USER, 10, "cs_a")
    buy(ledger, USER, 10, "cs_b")
    _, cursor = ledger.ledger_page(USER, limit=1)
    assert cursor is not None
    with pytest.raises(InvalidInput):
        ledger.ledger_page("someone-else", limit=1, cursor=cursor)
    with pytest.raises(InvalidInput):
        ledger.ledger_page(USER, limit=1, cursor="not a cursor!")
    with pytest.raises(InvalidInput):
        ledger.ledger_page(USER, limit=0)


# --- reserve ------------------------------------------------------------------------------


def test_given_credits_when_reserving_then_balance_moves_to_reserved(ledger, assert_books):
    buy(ledger, USER, 200, "cs_1")

    reservation = ledger.reserve(USER, "job-1", 30)

    assert reservation.state == ReservationState.OPEN and reservation.amount == 30
    account = ledger.balance(USER)
    assert (account.balance, account.reserved, account.debt) == (170, 30, 0)
    assert kinds(ledger, USER) == {EntryKind.PURCHASE: 1, EntryKind.RESERVE: 1}
    assert_books(USER)


def test_given_too_few_credits_when_reserving_then_insufficient_and_nothing_changes(
    ledger, assert_books
):
    buy(ledger, USER, 20, "cs_1")
    before = (ledger.balance(USER), ledger.entries(USER))

    with pytest.raises(InsufficientCredits) as refused:
        ledger.reserve(USER, "job-big", 21)

    assert (refused.value.needed, refused.value.available) == (21, 20)
    assert ledger.balance(USER).version == before[0].version
    assert ledger.entries(USER) == before[1]
    assert ledger.reservation(USER, "job-big") is None
    assert_books(USER)


def test_given_no_account_when_reserving_then_insufficient_with_zero_available(ledger):
    with pytest.raises(InsufficientCredits) as refused:
        ledger.reserve("fresh-user", "job-1", 1)
    assert refused.value.available == 0


def test_given_a_reservation_when_reserving_the_same_job_again_then_a_noop(ledger, assert_books):
    buy(ledger, USER, 50, "cs_1")
    first = ledger.reserve(USER, "job-1", 10)

    second = ledger.reserve(USER, "job-1", 10)

    assert second == first
    assert ledger.balance(USER).balance == 40
    assert kinds(ledger, USER)[EntryKind.RESERVE] == 1
    with pytest.raises(Conflict):
        ledger.reserve(USER, "job-1", 11)
    assert_books(USER)


def test_given_a_job_for_nothing_when_reserving_then_refused(ledger):
    with pytest.raises(InvalidInput):
        ledger.reserve(USER, "job-0", 0)


def test_given_credits_for_five_when_twenty_reserve_concurrently_then_exactly_five_succeed(
    ledger, assert_books
):
    # Given 57 credits and twenty jobs of 10 credits each
    buy(ledger, USER, 57, "cs_1")

    # When all twenty reserve at once
    def attempt(n: int) -> str:
        try:
            ledger.reserve(USER, f"job-{n}", 10)
        except InsufficientCredits:
            return "refused"
        return "reserved"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = Counter(pool.map(attempt, range(20)))

    # Then exactly five are reserved and the balance is exact
    assert outcomes == {"reserved": 5, "refused": 15}
    account = ledger.balance(USER)
    assert (account.balance, account.reserved) == (7, 50)
    assert kinds(ledger, USER)[EntryKind.RESERVE] == 5
    assert_books(USER)


# --- settle and release --------------------------------------------------------------------


def test_given_a_reservation_when_settling_then_spent_charged_and_rest_refunded(
    ledger, assert_books
):
    buy(ledger, USER, 100, "cs_1")
    ledger.reserve(USER, "job-1", 12)

    settled = ledger.settle(USER, "job-1", spent=9, refunded=3)

    assert (settled.state, settled.spent, settled.refunded) == (ReservationState.SETTLED, 9, 3)
    account = ledger.balance(USER)
    assert (account.balance, account.reserved) == (91, 0)
    entries = {e.kind: e for e in ledger.entries(USER)}
    assert entries[EntryKind.SPEND].reserved_change == -9
    assert entries[EntryKind.REFUND].amount == 3
    assert_books(USER)


def test_given_a_settled_job_when_settling_twice_then_credits_move_once(ledger, assert_books):
    buy(ledger, USER, 100, "cs_1")
    ledger.reserve(USER, "job-1", 10)
    first = ledger.settle(USER, "job-1", spent=4, refunded=6)

    again = ledger.settle(USER, "job-1", spent=4, refunded=6)

    assert again == first
    assert ledger.balance(USER).balance == 96
    assert kinds(ledger, USER)[EntryKind.REFUND] == 1
    with pytest.raises(Conflict):
        ledger.settle(USER, "job-1", spent=5, refunded=5)
    assert_books(USER)


def test_given_one_job_when_settled_concurrently_then_credits_move_once(ledger, assert_books):
    buy(ledger, USER, 100, "cs_1")
    ledger.reserve(USER, "job-1", 10)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(
            lambda _: ledger.settle(USER, "job-1", spent=7, refunded=3), range(10)))

    assert {(r.state, r.spent, r.refunded) for r in results} == {
        (ReservationState.SETTLED, 7, 3)}
    account = ledger.balance(USER)
    assert (account.balance, account.reserved) == (93, 0)
    assert kinds(ledger, USER) == {EntryKind.PURCHASE: 1, EntryKind.RESERVE: 1,
                                   EntryKind.SPEND: 1, EntryKind.REFUND: 1}
    assert_books(USER)


def test_given_figures_that_do_not_add_up_when_settling_then_refused(ledger, assert_books):
    buy(ledger, USER, 100, "cs_1")
    ledger.reserve(USER, "job-1", 10)
    with pytest.raises(InvalidInput):
        ledger.settle(USER, "job-1", spent=7, refunded=4)
    with pytest.raises(InvalidInput):
        ledger.settle(USER, "job-1", spent=-1, refunded=11)
    with pytest.raises(NotFound):
        ledger.settle(USER, "job-unknown", spent=1, refunded=0)
    assert ledger.reservation(USER, "job-1").state == ReservationState.OPEN
    assert_books(USER)


def test_given_a_reservation_when_released_then_everything_refunded_once(ledger, assert_books):
    buy(ledger, USER, 100, "cs_1")
    ledger.reserve(USER, "job-1", 25)

    released = ledger.release(USER, "job-1")
    again = ledger.release(USER, "job-1")

    assert released == again
    assert (released.state, released.refunded) == (ReservationState.RELEASED, 25)
    assert ledger.balance(USER).balance == 100
    assert ledger.release(USER, "job-never") is None
    # A released job cannot then be charged.
    with pytest.raises(Conflict):
        ledger.settle(USER, "job-1", spent=25, refunded=0)
    assert_books(USER)


def test_given_a_settled_job_when_released_then_the_settlement_stands(ledger, assert_books):
    buy(ledger, USER, 100, "cs_1")
    ledger.reserve(USER, "job-1", 10)
    settled = ledger.settle(USER, "job-1", spent=10, refunded=0)

    assert ledger.release(USER, "job-1") == settled
    assert ledger.balance(USER).balance == 90
    assert_books(USER)


def test_given_settle_and_release_racing_when_both_run_then_one_wins_whole(ledger, assert_books):
    buy(ledger, USER, 100, "cs_1")
    ledger.reserve(USER, "job-1", 10)

    def close(n: int) -> Any:
        if n % 2:
            return ledger.release(USER, "job-1")
        try:
            return ledger.settle(USER, "job-1", spent=10, refunded=0)
        except Conflict:
            return "lost"

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(close, range(8)))

    final = ledger.reservation(USER, "job-1")
    assert final.state != ReservationState.OPEN
    assert ledger.balance(USER).balance == (90 if final.state == ReservationState.SETTLED else 100)
    assert ledger.balance(USER).reserved == 0
    assert_books(USER)


# --- debt and faults -------------------------------------------------------------------------


def test_given_debt_when_reserving_then_account_in_debt(ledger, dynamodb):
    # Given an account that owes credits (written as a takeback would leave it)
    from lightbox.adapters.ledger import Takeback

    buy(ledger, USER, 10, "cs_1")
    ledger.take_back(
        Takeback(kind=EntryKind.CHARGEBACK, payment_id="pi_x", user_id=USER, pack_id="starter",
                 credits=30, target=30),
        event_id="evt_dispute", event_type="charge.dispute.closed",
    )
    assert ledger.balance(USER).debt == 20

    with pytest.raises(AccountInDebt):
        ledger.reserve(USER, "job-1", 1)


class _Throttled:
    """A client whose first transaction is throttled, as DynamoDB does under load."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failures_left = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.failures_left:
            self.failures_left -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException",
                           "Message": "Rate of requests exceeds the allowed throughput."}},
                "TransactWriteItems",
            )
        return self._client.transact_write_items(**kwargs)


def test_given_throttling_when_reserving_then_transient_and_the_retry_reserves_once(
    ledger, dynamodb, assert_books
):
    buy(ledger, USER, 50, "cs_1")
    throttled = CreditLedger(_Throttled(dynamodb), ledger.table)

    with pytest.raises(TransientError):
        throttled.reserve(USER, "job-1", 10)
    assert ledger.reservation(USER, "job-1") is None
    assert ledger.balance(USER).balance == 50

    throttled.reserve(USER, "job-1", 10)
    throttled.reserve(USER, "job-1", 10)
    assert ledger.balance(USER).balance == 40
    assert_books(USER)
