"""Credits under random sequences of everything that moves them (hypothesis, stateful).

A state machine buys packs (both fulfilment events, in either order), reserves,
settles and releases jobs, refunds payments partly or fully, loses disputes, and
replays any earlier delivery, all through the real webhook path and the real ledger
on moto. A plain model says what each step must do; after every step the table must
agree with it, and the books must hold:

- no balance, reservation or debt is ever negative;
- the ledger entries sum to the balance, the reserved credits and the debt;
- every Checkout Session is credited at most once (exactly once when paid);
- every reservation, once closed, ended as spend plus refund equal to what it held.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from lightbox.adapters.ledger import CreditLedger, EntryKind, ReservationState
from lightbox.adapters.stripe_gateway import (
    checkout_session_object,
    encode_event,
    event_envelope,
    sign_payload,
)
from lightbox.catalog.packs import Pack
from lightbox.errors import AccountInDebt, Conflict, InsufficientCredits
from lightbox.services.payments import (
    WebhookResult,
    credits_to_take_back,
    handle_stripe_webhook,
)
from lightbox_local.template import create_table

SECRET = "whsec_test_properties"
USERS = ("ada", "bo")
PACKS = {
    "starter": Pack(id="starter", name="Starter", credits=200, amount=500),
    "tiny": Pack(id="tiny", name="Tiny", credits=7, amount=300),
}
SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_tables = itertools.count()


@dataclass
class ModelAccount:
    balance: int = 0
    reserved: int = 0
    debt: int = 0


@dataclass
class ModelSession:
    session_id: str
    payment_id: str
    user_id: str
    pack: Pack
    credited: bool = False
    refunded_cents: int = 0
    taken_back: int = 0


@dataclass
class ModelJob:
    job_id: str
    user_id: str
    amount: int
    state: ReservationState = ReservationState.OPEN
    spent: int = 0


class CreditMachine(RuleBasedStateMachine):
    sessions = Bundle("sessions")
    jobs = Bundle("jobs")

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.table = f"credits-{next(_tables)}"
        create_table(client, self.table)
        self.ledger = CreditLedger(client, self.table)
        self.accounts = {u: ModelAccount() for u in USERS}
        self.all_sessions: list[ModelSession] = []
        self.all_jobs: list[ModelJob] = []
        #: Every body delivered so far, with its header, for replaying.
        self.sent: list[tuple[bytes, str, Callable[[WebhookResult], None]]] = []
        self.ids = itertools.count()

    def teardown(self) -> None:
        self.client.delete_table(TableName=self.table)

    # --- delivering -----------------------------------------------------------------------

    def deliver(
        self, event: dict[str, Any], on_replay: Callable[[WebhookResult], None] | None = None
    ) -> WebhookResult:
        """Deliver an event; `on_replay` checks a later redelivery (default: it changes nothing)."""
        body = encode_event(event)
        header = sign_payload(body, SECRET, timestamp=int(time.time()))
        self.sent.append((body, header, on_replay or _changes_nothing))
        return self.send(body, header)

    def send(self, body: bytes, header: str) -> WebhookResult:
        result = handle_stripe_webhook(body, header, secret=SECRET, ledger=self.ledger,
                                       packs=PACKS)
        assert result.status_code == 200, result.body
        return result

    # --- purchases --------------------------------------------------------------------------

    @rule(target=sessions, user=st.sampled_from(USERS), pack_id=st.sampled_from(sorted(PACKS)))
    def open_checkout(self, user: str, pack_id: str) -> ModelSession:
        """A customer pays; the events about it have not been delivered yet."""
        n = next(self.ids)
        session = ModelSession(f"cs_test_{n}", f"pi_{n}", user, PACKS[pack_id])
        self.all_sessions.append(session)
        return session

    @rule(session=sessions, event_type=st.sampled_from(
        ["checkout.session.completed", "checkout.session.async_payment_succeeded"]))
    def fulfilment_event(self, session: ModelSession, event_type: str) -> None:
        obj = checkout_session_object(
            user_id=session.user_id, pack_id=session.pack.id, amount_total=session.pack.amount,
            session_id=session.session_id, payment_intent=session.payment_id,
        )
        result = self.deliver(event_envelope(event_type, obj))
        if session.credited:
            assert result.body["outcome"] == "duplicate"
            return
        assert result.body["outcome"] == "credited"
        session.credited = True
        account = self.accounts[session.user_id]
        repay = min(account.debt, account.balance + session.pack.credits)
        account.balance += session.pack.credits - repay
        account.debt -= repay

    # --- money going back -------------------------------------------------------------------

    @rule(session=sessions, cents=st.integers(1, 600))
    def refund(self, session: ModelSession, cents: int) -> None:
        amount = session.pack.amount
        session.refunded_cents = min(amount, session.refunded_cents + cents)
        charge = {
            "id": f"ch_{session.payment_id}", "object": "charge", "amount": amount,
            "amount_refunded": session.refunded_cents,
            "refunded": session.refunded_cents >= amount,
            "payment_intent": session.payment_id, "currency": "usd",
            "metadata": {"user_id": session.user_id, "pack_id": session.pack.id},
        }
        result = self.deliver(event_envelope("charge.refunded", charge))
        target = credits_to_take_back(session.pack.credits, amount=amount,
                                      amount_refunded=session.refunded_cents,
                                      fully_refunded=session.refunded_cents >= amount)
        self.expect_takeback(session, target, result)

    @rule(session=sessions)
    def lose_dispute(self, session: ModelSession) -> None:
        dispute = {"id": f"dp_{session.payment_id}", "object": "dispute", "status": "lost",
                   "charge": f"ch_{session.payment_id}", "payment_intent": session.payment_id}

        def expect(result: WebhookResult) -> None:
            if not (session.credited or session.taken_back):
                # A dispute carries no metadata: a payment Lightbox has no record of gave
                # no credits, so there are none to take (see lightbox.services.payments).
                assert result.body["outcome"] == "ignored"
                return
            # Delivered again once the purchase is known, it takes the pack back.
            self.expect_takeback(session, session.pack.credits, result)

        expect(self.deliver(event_envelope("charge.dispute.closed", dispute), expect))

    def expect_takeback(self, session: ModelSession, target: int, result: WebhookResult) -> None:
        owed = target - session.taken_back
        if owed <= 0:  # "duplicate" when this very event already took them
            assert result.body["outcome"] in {"nothing_to_take_back", "duplicate"}
            return
        account = self.accounts[session.user_id]
        take = min(account.balance, owed)
        account.balance -= take
        account.debt += owed - take
        session.taken_back = target
        assert (result.body["outcome"], result.body["credits"], result.body["debt"]) == (
            "taken_back", take, owed - take)

    @rule(pick=st.integers(0, 10**6))
    def replay_an_earlier_delivery(self, pick: int) -> None:
        if not self.sent:
            return
        body, header, expect = self.sent[pick % len(self.sent)]
        expect(self.send(body, header))

    # --- jobs -------------------------------------------------------------------------------

    @rule(target=jobs, user=st.sampled_from(USERS), amount=st.integers(1, 150))
    def reserve(self, user: str, amount: int) -> Any:
        job = ModelJob(f"job-{next(self.ids)}", user, amount)
        account = self.accounts[user]
        try:
            self.ledger.reserve(user, job.job_id, amount)
        except AccountInDebt:
            assert account.debt > 0
            return multiple()
        except InsufficientCredits as refused:
            assert account.debt == 0 and account.balance < amount
            assert refused.available == account.balance
            return multiple()
        assert account.debt == 0 and account.balance >= amount
        account.balance -= amount
        account.reserved += amount
        self.all_jobs.append(job)
        return job

    @rule(job=jobs, share=st.integers(0, 100))
    def settle(self, job: ModelJob, share: int) -> None:
        spent = job.amount * share // 100
        if job.state != ReservationState.OPEN:
            same = job.state == ReservationState.SETTLED and spent == job.spent
            same = same or (job.state == ReservationState.RELEASED and spent == 0)
            try:
                self.ledger.settle(job.user_id, job.job_id, spent=spent,
                                   refunded=job.amount - spent)
            except Conflict:
                assert not same
            else:
                assert same
            return
        self.ledger.settle(job.user_id, job.job_id, spent=spent, refunded=job.amount - spent)
        job.state, job.spent = ReservationState.SETTLED, spent
        account = self.accounts[job.user_id]
        account.balance += job.amount - spent
        account.reserved -= job.amount

    @rule(job=jobs)
    def release(self, job: ModelJob) -> None:
        result = self.ledger.release(job.user_id, job.job_id)
        if job.state == ReservationState.OPEN:
            job.state = ReservationState.RELEASED
            account = self.accounts[job.user_id]
            account.balance += job.amount
            account.reserved -= job.amount
        assert result is not None and result.state == job.state

    # --- what must always hold ----------------------------------------------------------------

    @invariant()
    def the_books_hold(self) -> None:
        """One read of each user's account and entries per step, every property checked."""
        for user in USERS:
            account = self.ledger.balance(user)
            entries = self.ledger.entries(user)
            self.check_account(user, account, entries)
            self.check_sessions_credited_once(user, entries)
            self.check_reservations_closed_whole(user, entries)

    def check_account(self, user: str, account: Any, entries: list[Any]) -> None:
        model = self.accounts[user]
        assert (account.balance, account.reserved, account.debt) == (
            model.balance, model.reserved, model.debt)
        assert account.balance >= 0 and account.reserved >= 0 and account.debt >= 0
        assert sum(e.amount for e in entries) == account.balance
        assert sum(e.reserved_change for e in entries) == account.reserved
        assert sum(e.debt_change for e in entries) == account.debt

    def check_sessions_credited_once(self, user: str, entries: list[Any]) -> None:
        purchases = [e.cause_id for e in entries if e.kind == EntryKind.PURCHASE]
        assert len(purchases) == len(set(purchases))
        credited = {s.session_id for s in self.all_sessions if s.user_id == user and s.credited}
        assert set(purchases) == credited

    def check_reservations_closed_whole(self, user: str, entries: list[Any]) -> None:
        released: dict[tuple[EntryKind, str], int] = {}
        for e in entries:
            released[(e.kind, e.cause_id)] = released.get((e.kind, e.cause_id), 0) - e.reserved_change
        for job in (j for j in self.all_jobs if j.user_id == user):
            spent = released.get((EntryKind.SPEND, job.job_id), 0)
            refunded = released.get((EntryKind.REFUND, job.job_id), 0)
            if job.state == ReservationState.OPEN:
                assert (spent, refunded) == (0, 0)
            else:
                assert (spent, spent + refunded) == (job.spent, job.amount)


def _changes_nothing(result: WebhookResult) -> None:
    assert result.body["outcome"] in {"duplicate", "nothing_to_take_back"}, result.body


@pytest.mark.slow
def test_credits_hold_under_random_sequences_of_payments_and_jobs(dynamodb):
    run_state_machine_as_test(lambda: CreditMachine(dynamodb), settings=SETTINGS)
