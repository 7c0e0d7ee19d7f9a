"""The credit ledger: one balance per user and an entry for every credit movement.

Item layout in the one table (DESIGN.md section 3):

| item          | pk                   | sk                     | gsi1 (the user's history)          |
| ------------- | -------------------- | ---------------------- | ---------------------------------- |
| account       | USER#{user}          | ACCOUNT                |                                    |
| ledger entry  | USER#{user}          | LEDGER#{kind}#{cause}  | USER#{user} / LEDGER#{at}#{kind}#… |
| reservation   | USER#{user}          | RESERVATION#{job}      |                                    |
| payment       | STRIPE#PAYMENT#{pi}  | PAYMENT                |                                    |
| Stripe event  | STRIPE#EVENT#{evt}   | EVENT                  |                                    |

How credits are kept from being lost or created by accident:

- Every movement is ONE TransactWriteItems that changes the account's counters and
  puts the movement's ledger entry, so at every moment the entries sum to the account:
  sum(amount) == balance, sum(reserved_change) == reserved, sum(debt_change) == debt.
- An entry's key is its cause (a job id, a Checkout Session id, a payment and how much
  of it has been taken back), put only if absent: a cause moves credits once, for ever.
  A ClientRequestToken would protect a retry for ten minutes only.
- The balance never goes below zero: a reservation is conditional on the balance
  covering it; a takeback takes what the balance holds and records the rest as debt.
- Races are settled by conditions, never by locks: a transaction that lost one is
  cancelled, and the movement is tried again from a fresh read a few times before the
  caller is told to retry (TransientError).

Accounts are created by their first movement (every write ADDs all counters, so they
exist from then on); a user who never moved a credit reads as an empty account.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from lightbox.adapters.dynamo import (
    Table,
    deserialize,
    is_condition_failure,
    iso,
    serialize,
    translate_fault,
)
from lightbox.errors import (
    AccountInDebt,
    Conflict,
    InsufficientCredits,
    InvalidInput,
    NotFound,
    TransientError,
)
from lightbox.models import utcnow

#: Tries of one movement before the caller is asked to retry.
MAX_ATTEMPTS = 8
#: Stripe retries for three days and its dashboard resends events for 30; event
#: records outlive both. Crediting once does not depend on them: the purchase entry,
#: keyed by the Checkout Session, is kept for ever.
EVENT_RECORD_DAYS = 90
MAX_PAGE = 100


class EntryKind(enum.StrEnum):
    """Why credits moved. `amount` is the entry's effect on the spendable balance."""

    PURCHASE = "purchase"  # a paid Checkout Session: +credits
    DEBT_REPAYMENT = "debt_repayment"  # a purchase paying off debt first: -balance, -debt
    RESERVE = "reserve"  # a job accepted: -balance, +reserved
    SPEND = "spend"  # delivered shots: -reserved
    REFUND = "refund"  # shots not delivered, or a job that never ran: +balance, -reserved
    PAYMENT_REFUNDED = "payment_refunded"  # the shop refunded money: -balance, +debt if short
    CHARGEBACK = "chargeback"  # a dispute was lost: -balance, +debt if short


class ReservationState(enum.StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"


class Account(BaseModel):
    user_id: str
    #: Credits the user can spend now.
    balance: int = 0
    #: Credits held by jobs that have not finished.
    reserved: int = 0
    #: Credits taken back that the balance could not cover; blocks new jobs.
    debt: int = 0
    #: Movements applied so far.
    version: int = 0

    @property
    def in_debt(self) -> bool:
        return self.debt > 0


class LedgerEntry(BaseModel):
    user_id: str
    kind: EntryKind
    cause_id: str
    amount: int = 0
    reserved_change: int = 0
    debt_change: int = 0
    created_at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class Reservation(BaseModel):
    user_id: str
    job_id: str
    amount: int
    state: ReservationState = ReservationState.OPEN
    spent: int = 0
    refunded: int = 0


class PaymentRecord(BaseModel):
    """A Stripe payment (PaymentIntent) Lightbox sold credits for: where refunds map to."""

    payment_id: str
    user_id: str
    pack_id: str
    credits: int
    #: Credits already taken back from this payment (refunds and lost disputes).
    taken_back: int = 0
    session_id: str | None = None
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Purchase:
    """Credits bought through one Checkout Session."""

    user_id: str
    session_id: str
    pack_id: str
    credits: int
    #: The PaymentIntent, so a later refund or dispute finds this purchase.
    payment_id: str | None = None
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Takeback:
    """Credits to take back from one payment (refunded money or a lost dispute).

    `target` is the total taken back from the payment once this applies, not a delta:
    Stripe reports refunds cumulatively, so an event applied twice, or an older event
    arriving after a newer one, takes nothing more.
    """

    kind: EntryKind
    payment_id: str
    user_id: str
    pack_id: str
    #: The pack's credits, recorded if the purchase itself has not arrived yet.
    credits: int
    target: int


@dataclass(frozen=True)
class MovementResult:
    #: False when this cause (or this Stripe event) had already moved its credits.
    applied: bool
    balance_change: int = 0
    debt_change: int = 0


def account_key(user_id: str) -> dict[str, str]:
    return {"pk": f"USER#{user_id}", "sk": "ACCOUNT"}


def entry_key(user_id: str, kind: EntryKind, cause_id: str) -> dict[str, str]:
    return {"pk": f"USER#{user_id}", "sk": f"LEDGER#{kind}#{cause_id}"}


def reservation_key(user_id: str, job_id: str) -> dict[str, str]:
    return {"pk": f"USER#{user_id}", "sk": f"RESERVATION#{job_id}"}


def payment_key(payment_id: str) -> dict[str, str]:
    return {"pk": f"STRIPE#PAYMENT#{payment_id}", "sk": "PAYMENT"}


def event_key(event_id: str) -> dict[str, str]:
    return {"pk": f"STRIPE#EVENT#{event_id}", "sk": "EVENT"}


_ACCOUNT_NAMES = {
    "#user": "user_id",
    "#created": "created_at",
    "#updated": "updated_at",
    "#balance": "balance",
    "#reserved": "reserved",
    "#debt": "debt",
    "#version": "version",
}


class CreditLedger(Table):
    """Balances, reservations and Stripe fulfilment records in the one table."""

    # --- reading ----------------------------------------------------------------------

    def balance(self, user_id: str) -> Account:
        item = self._get(account_key(user_id))
        return Account.model_validate(item) if item else Account(user_id=user_id)

    def reservation(self, user_id: str, job_id: str) -> Reservation | None:
        item = self._get(reservation_key(user_id, job_id))
        return Reservation.model_validate(item) if item else None

    def payment(self, payment_id: str) -> PaymentRecord | None:
        item = self._get(payment_key(payment_id))
        return PaymentRecord.model_validate(item) if item else None

    def event_outcome(self, event_id: str) -> str | None:
        """What became of a Stripe event ("applied", "failed", ...), or None if unseen."""
        item = self._get(event_key(event_id))
        return str(item["outcome"]) if item else None

    def ledger_page(
        self, user_id: str, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        """A page of the user's history, newest first, and the cursor of the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.", limit=limit)
        kwargs: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :owner AND begins_with(gsi1sk, :ledger)",
            "ExpressionAttributeValues": serialize(
                {":owner": f"USER#{user_id}", ":ledger": "LEDGER#"}
            ),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, user_id)
        response = self._call("query", **kwargs)
        entries = [LedgerEntry.model_validate(deserialize(i)) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return entries, _encode_cursor(last) if last else None

    def entries(self, user_id: str) -> list[LedgerEntry]:
        """Every entry of a user, read consistently (audits and tests; order by kind)."""
        items = self._query(
            KeyConditionExpression="pk = :owner AND begins_with(sk, :ledger)",
            ExpressionAttributeValues=serialize(
                {":owner": f"USER#{user_id}", ":ledger": "LEDGER#"}
            ),
            ConsistentRead=True,
        )
        return [LedgerEntry.model_validate(deserialize(i)) for i in items]

    # --- jobs: reserve, settle, release -------------------------------------------------

    def reserve(
        self, user_id: str, job_id: str, amount: int, *, along: Sequence[dict[str, Any]] = ()
    ) -> Reservation:
        """Hold a job's credits, all or nothing.

        Raises AccountInDebt while the user owes credits and InsufficientCredits when the
        balance does not cover `amount`; either way nothing changes. Reserving again for
        the same job returns the reservation already made. `along` are other items of the
        table written in the same transaction (the job itself, from the job store's
        `new_job`), so a reservation never exists without its job; a refused item is a
        Conflict.
        """
        if amount <= 0:
            raise InvalidInput("A reservation must be for at least one credit.", amount=amount)
        reservation = Reservation(user_id=user_id, job_id=job_id, amount=amount)
        for attempt in range(MAX_ATTEMPTS):
            codes = self._transact(
                [
                    self._account_change(
                        user_id,
                        balance=-amount,
                        reserved=amount,
                        condition="#balance >= :amount AND #debt <= :zero",
                        condition_values={":amount": amount, ":zero": 0},
                    ),
                    self._put_new(_reservation_item(reservation)),
                    self._put_new(
                        self._entry_item(
                            user_id, EntryKind.RESERVE, job_id,
                            amount=-amount, reserved_change=amount,
                        )
                    ),
                    *along,
                ]
            )
            if codes is None:
                return reservation
            existing = self.reservation(user_id, job_id)
            if existing is not None:
                if existing.amount != amount:
                    raise Conflict(
                        f"Job {job_id} already reserved {existing.amount} credits, not {amount}.",
                        job_id=job_id,
                    )
                return existing
            if "ConditionalCheckFailed" in codes[3:]:
                raise Conflict(f"Job {job_id} could not be written with its reservation.",
                               job_id=job_id)
            account = self.balance(user_id)
            if account.in_debt:
                raise AccountInDebt(
                    f"Your account owes {account.debt} credits; buy credits to start new jobs.",
                    debt=account.debt,
                )
            if account.balance < amount:
                raise InsufficientCredits(needed=amount, available=account.balance)
            _back_off(attempt)  # the balance covers it now: another write got in first
        raise TransientError("The credit balance is busy; try again.")

    def settle(self, user_id: str, job_id: str, *, spent: int, refunded: int) -> Reservation:
        """Close a job's reservation: `spent` credits charged, `refunded` returned.

        Exactly once: a second (or concurrent) call with the same figures returns the
        settled reservation and moves nothing. `spent + refunded` must equal what was
        reserved (InvalidInput); a reservation already closed differently is a Conflict.
        """
        if spent < 0 or refunded < 0:
            raise InvalidInput("Credits spent and refunded cannot be negative.",
                               spent=spent, refunded=refunded)
        return self._close(user_id, job_id, ReservationState.SETTLED, spent, refunded)

    def release(self, user_id: str, job_id: str) -> Reservation | None:
        """Refund a whole reservation (the job failed before any shot, or no photo came).

        A reservation already closed is returned unchanged; None when the job never
        reserved anything.
        """
        reservation = self.reservation(user_id, job_id)
        if reservation is None:
            return None
        if reservation.state != ReservationState.OPEN:
            return reservation
        try:
            return self._close(
                user_id, job_id, ReservationState.RELEASED, 0, reservation.amount
            )
        except Conflict:
            # Settled by someone else between our read and our write: that result stands.
            return self.reservation(user_id, job_id)

    def release_with(self, user_id: str, job_id: str, change: dict[str, Any]) -> bool:
        """Refund a job's whole open reservation in one transaction with `change`.

        `change` is another item of the table with its own condition (the job turning
        failed, from the job store's `job_change`): both are written or neither, so a
        job never ends without its credits back, nor gets them back and goes on. False
        when `change`'s condition failed and nothing moved. With no open reservation
        (none was made, or it is closed already) `change` is written alone.
        """
        for attempt in range(MAX_ATTEMPTS):
            reservation = self.reservation(user_id, job_id)
            items = [change]
            if reservation is not None and reservation.state == ReservationState.OPEN:
                items += self._closing_items(reservation.model_copy(update={
                    "state": ReservationState.RELEASED, "spent": 0,
                    "refunded": reservation.amount,
                }))
            codes = self._transact(items)
            if codes is None:
                return True
            if codes[0] == "ConditionalCheckFailed":
                return False
            _back_off(attempt)  # the reservation moved under us: read it again
        raise TransientError("The credit balance is busy; try again.")

    def _close(
        self, user_id: str, job_id: str, state: ReservationState, spent: int, refunded: int
    ) -> Reservation:
        for attempt in range(MAX_ATTEMPTS):
            reservation = self.reservation(user_id, job_id)
            if reservation is None:
                raise NotFound(f"No credits were reserved for job {job_id}.", job_id=job_id)
            if reservation.state != ReservationState.OPEN:
                return _same_closing(reservation, spent, refunded)
            if spent + refunded != reservation.amount:
                raise InvalidInput(
                    f"Job {job_id} reserved {reservation.amount} credits; "
                    f"{spent} spent and {refunded} refunded do not add up to it.",
                    job_id=job_id,
                )
            closed = reservation.model_copy(
                update={"state": state, "spent": spent, "refunded": refunded}
            )
            if self._transact(self._closing_items(closed)) is None:
                return closed
            _back_off(attempt)
        raise TransientError("The credit balance is busy; try again.")

    def _closing_items(self, closed: Reservation) -> list[dict[str, Any]]:
        user_id, job_id = closed.user_id, closed.job_id
        items = [
            self._update(
                reservation_key(user_id, job_id),
                set_values={
                    "#state": ("state", str(closed.state)),
                    "#spent": ("spent", closed.spent),
                    "#refunded": ("refunded", closed.refunded),
                    "#closed": ("closed_at", iso(utcnow())),
                },
                condition="#state = :open",
                condition_values={":open": str(ReservationState.OPEN)},
            ),
            self._account_change(user_id, balance=closed.refunded, reserved=-closed.amount),
        ]
        if closed.spent:
            items.append(self._put_new(self._entry_item(
                user_id, EntryKind.SPEND, job_id, reserved_change=-closed.spent)))
        if closed.refunded:
            items.append(self._put_new(self._entry_item(
                user_id, EntryKind.REFUND, job_id,
                amount=closed.refunded, reserved_change=-closed.refunded,
                detail={"released": closed.state == ReservationState.RELEASED})))
        return items

    # --- Stripe: purchases and takebacks ------------------------------------------------

    def credit_purchase(
        self, purchase: Purchase, *, event_id: str, event_type: str
    ) -> MovementResult:
        """Credit a Checkout Session's pack once, paying off any debt first.

        The purchase entry (keyed by the session) and the event record are put in the
        same transaction as the balance change: a second event for the same session, or
        the same event again, moves nothing and returns applied=False.
        """
        for attempt in range(MAX_ATTEMPTS):
            account = self.balance(purchase.user_id)
            repay = min(account.debt, account.balance + purchase.credits)
            from_balance = max(0, repay - purchase.credits)
            condition = "(attribute_not_exists(#debt) OR #debt = :debt)"
            values: dict[str, Any] = {":debt": account.debt}
            if from_balance:
                condition += " AND #balance >= :floor"
                values[":floor"] = from_balance
            detail = {"pack_id": purchase.pack_id, "event_id": event_id,
                      "payment_id": purchase.payment_id}
            items = [
                self._put_new(self._entry_item(
                    purchase.user_id, EntryKind.PURCHASE, purchase.session_id,
                    amount=purchase.credits, detail=detail)),
                self._event_put(event_id, event_type, "applied",
                                {"user_id": purchase.user_id, "session_id": purchase.session_id}),
                self._account_change(
                    purchase.user_id, balance=purchase.credits - repay, debt=-repay,
                    condition=condition, condition_values=values,
                ),
            ]
            if repay:
                items.append(self._put_new(self._entry_item(
                    purchase.user_id, EntryKind.DEBT_REPAYMENT, purchase.session_id,
                    amount=-repay, debt_change=-repay, detail=detail)))
            if purchase.payment_id:
                items.append(self._payment_recorded(purchase))
            codes = self._transact(items)
            if codes is None:
                return MovementResult(True, purchase.credits - repay, -repay)
            if self._already_credited(purchase, event_id, codes):
                return MovementResult(False)
            _back_off(attempt)
        raise TransientError("The credit balance is busy; try again.")

    def _already_credited(self, purchase: Purchase, event_id: str, codes: list[str]) -> bool:
        """Was the transaction cancelled because the session or event was applied before?"""
        if codes[0] == "ConditionalCheckFailed" or codes[1] == "ConditionalCheckFailed":
            return True
        if "Unknown" in codes:  # no reasons given: ask the table itself
            return (
                self._get(entry_key(purchase.user_id, EntryKind.PURCHASE, purchase.session_id))
                is not None
                or self.event_outcome(event_id) == "applied"
            )
        return False

    def take_back(self, claim: Takeback, *, event_id: str, event_type: str) -> MovementResult:
        """Take credits back from a payment up to `claim.target` in total.

        The balance gives what it holds; the rest becomes debt. The payment's running
        total is advanced conditionally in the same transaction, so refunds and lost
        disputes of one payment never take back more than its pack, whatever the order
        or number of deliveries.
        """
        for attempt in range(MAX_ATTEMPTS):
            record = self.payment(claim.payment_id)
            already = record.taken_back if record else 0
            user_id = record.user_id if record else claim.user_id
            if claim.target <= already:
                return MovementResult(False)
            owed = claim.target - already
            account_item = self._get(account_key(user_id))
            account = Account.model_validate(account_item) if account_item else None
            take = min(account.balance, owed) if account else 0
            shortfall = owed - take
            if account:
                condition = "#balance = :balance AND #debt = :debt"
                values = {":balance": account.balance, ":debt": account.debt}
            else:
                condition, values = "attribute_not_exists(#balance)", {}
            items = [
                self._event_put(event_id, event_type, "applied",
                                {"user_id": user_id, "payment_id": claim.payment_id}),
                self._payment_taken_back(claim, user_id, already, exists=record is not None),
                self._account_change(user_id, balance=-take, debt=shortfall,
                                     condition=condition, condition_values=values),
                self._put_new(self._entry_item(
                    user_id, claim.kind, f"{claim.payment_id}#{claim.target}",
                    amount=-take, debt_change=shortfall,
                    detail={"event_id": event_id, "pack_id": claim.pack_id,
                            "payment_id": claim.payment_id})),
            ]
            codes = self._transact(items)
            if codes is None:
                return MovementResult(True, -take, shortfall)
            if codes[0] == "ConditionalCheckFailed" or (
                "Unknown" in codes and self.event_outcome(event_id) == "applied"
            ):
                return MovementResult(False)
            _back_off(attempt)  # the payment or the balance moved meanwhile: read again
        raise TransientError("The credit balance is busy; try again.")

    def record_event(
        self, event_id: str, event_type: str, outcome: str, detail: dict[str, Any]
    ) -> bool:
        """Note a Stripe event that moved no credits (e.g. failed to apply); False if applied.

        A failed event may be applied later (resent from Stripe's dashboard once the
        cause is fixed), so only an "applied" record blocks it.
        """
        try:
            self.client.put_item(**self._event_put(event_id, event_type, outcome, detail)["Put"])
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise translate_fault(error) from error
        return True

    def _payment_recorded(self, purchase: Purchase) -> dict[str, Any]:
        """The payment row a refund maps back by; a takeback may have created it first."""
        return self._update(
            payment_key(purchase.payment_id or ""),
            set_values={
                "#payment": ("payment_id", purchase.payment_id),
                "#session": ("session_id", purchase.session_id),
                "#amount": ("amount", purchase.amount),
                "#currency": ("currency", purchase.currency),
                "#paid": ("paid_at", iso(utcnow())),
            },
            keep_values={
                "#user": ("user_id", purchase.user_id),
                "#pack": ("pack_id", purchase.pack_id),
                "#credits": ("credits", purchase.credits),
                "#taken": ("taken_back", 0),
            },
        )

    def _payment_taken_back(
        self, claim: Takeback, user_id: str, already: int, *, exists: bool
    ) -> dict[str, Any]:
        if exists:
            condition, values = "#taken = :already", {":already": already}
        else:
            condition, values = "attribute_not_exists(pk)", {}
        return self._update(
            payment_key(claim.payment_id),
            set_values={
                "#payment": ("payment_id", claim.payment_id),
                "#taken": ("taken_back", claim.target),
            },
            keep_values={
                "#user": ("user_id", user_id),
                "#pack": ("pack_id", claim.pack_id),
                "#credits": ("credits", claim.credits),
            },
            condition=condition,
            condition_values=values,
        )

    # --- transaction items ----------------------------------------------------------------

    def _account_change(
        self,
        user_id: str,
        *,
        balance: int = 0,
        reserved: int = 0,
        debt: int = 0,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """ADD to every counter (so a new account has them all) and count the movement."""
        values = {
            ":user": user_id, ":now": iso(utcnow()), ":one": 1,
            ":dbalance": balance, ":dreserved": reserved, ":ddebt": debt,
            **(condition_values or {}),
        }
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(account_key(user_id)),
            "UpdateExpression": (
                "SET #user = :user, #updated = :now, #created = if_not_exists(#created, :now) "
                "ADD #balance :dbalance, #reserved :dreserved, #debt :ddebt, #version :one"
            ),
            "ExpressionAttributeNames": _ACCOUNT_NAMES,
            "ExpressionAttributeValues": serialize(values),
        }
        if condition:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def _update(
        self,
        key: dict[str, str],
        *,
        set_values: dict[str, tuple[str, Any]],
        keep_values: dict[str, tuple[str, Any]] | None = None,
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An Update item: `set_values` overwrite, `keep_values` only fill what is absent."""
        names: dict[str, str] = {}
        values: dict[str, Any] = dict(condition_values or {})
        clauses = []
        for i, (placeholder, (name, value)) in enumerate(set_values.items()):
            if value is None:
                continue
            names[placeholder] = name
            values[f":v{i}"] = value
            clauses.append(f"{placeholder} = :v{i}")
        for i, (placeholder, (name, value)) in enumerate((keep_values or {}).items()):
            names[placeholder] = name
            values[f":k{i}"] = value
            clauses.append(f"{placeholder} = if_not_exists({placeholder}, :k{i})")
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(key),
            "UpdateExpression": "SET " + ", ".join(clauses),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
        }
        if condition:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def _put_new(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _event_put(
        self, event_id: str, event_type: str, outcome: str, detail: dict[str, Any]
    ) -> dict[str, Any]:
        """The record of a Stripe event; it may replace a record of a failed attempt only."""
        now = utcnow()
        item = {
            **event_key(event_id),
            "event_id": event_id,
            "type": event_type,
            "outcome": outcome,
            "detail": detail,
            "recorded_at": iso(now),
            "expires_at": int(now.timestamp()) + EVENT_RECORD_DAYS * 86400,
        }
        return {
            "Put": {
                "TableName": self.table,
                "Item": serialize(item),
                "ConditionExpression": "attribute_not_exists(pk) OR #outcome <> :applied",
                "ExpressionAttributeNames": {"#outcome": "outcome"},
                "ExpressionAttributeValues": serialize({":applied": "applied"}),
            }
        }

    def _entry_item(
        self,
        user_id: str,
        kind: EntryKind,
        cause_id: str,
        *,
        amount: int = 0,
        reserved_change: int = 0,
        debt_change: int = 0,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = iso(utcnow())
        return {
            **entry_key(user_id, kind, cause_id),
            "gsi1pk": f"USER#{user_id}",
            "gsi1sk": f"LEDGER#{now}#{kind}#{cause_id}",
            "user_id": user_id,
            "kind": str(kind),
            "cause_id": cause_id,
            "amount": amount,
            "reserved_change": reserved_change,
            "debt_change": debt_change,
            "created_at": now,
            "detail": {k: v for k, v in (detail or {}).items() if v is not None},
        }

    # --- low level ------------------------------------------------------------------------

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """Run one transaction: None when it committed, else each item's cancellation code.

        Codes are "None" (the item was fine), "ConditionalCheckFailed",
        "TransactionConflict", ...; all "Unknown" when DynamoDB gave no reasons.
        Throttling and server faults raise TransientError: the caller's retry applies.
        """
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if is_condition_failure(error):
                return _cancellation_codes(error, len(items))
            raise translate_fault(error) from error
        return None

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self._call("get_item", Key=serialize(key), ConsistentRead=True)
        item = response.get("Item")
        return deserialize(item) if item else None



def _reservation_item(reservation: Reservation) -> dict[str, Any]:
    return {
        **reservation_key(reservation.user_id, reservation.job_id),
        **reservation.model_dump(mode="json"),
        "created_at": iso(utcnow()),
    }


def _same_closing(reservation: Reservation, spent: int, refunded: int) -> Reservation:
    """A closed reservation asked to close again: the same figures are a no-op."""
    if (reservation.spent, reservation.refunded) == (spent, refunded):
        return reservation
    raise Conflict(
        f"Job {reservation.job_id} was already {reservation.state} with "
        f"{reservation.spent} spent and {reservation.refunded} refunded.",
        job_id=reservation.job_id,
    )


def _cancellation_codes(error: ClientError, count: int) -> list[str]:
    reasons = error.response.get("CancellationReasons")
    if not isinstance(reasons, list) or len(reasons) != count:
        return ["Unknown"] * count
    return [str(r.get("Code") or "None") for r in reasons]


def _back_off(attempt: int, *, sleep: Callable[[float], None] = time.sleep) -> None:
    """A short, jittered pause before trying a contended write again."""
    sleep(random.uniform(0, 0.005 * (2**attempt)))


def _encode_cursor(last_key: dict[str, Any]) -> str:
    raw = json.dumps(deserialize(last_key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, user_id: str) -> dict[str, Any]:
    """The next page's start key; a cursor made for another user is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error) as error:
        raise InvalidInput("That page cursor is not valid.") from error
    if not isinstance(key, dict) or key.get("gsi1pk") != f"USER#{user_id}":
        raise InvalidInput("That page cursor is not valid.")
    return serialize(key)
