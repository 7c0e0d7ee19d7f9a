"""Buying credits: Checkout, Stripe's webhook events, and the local purchase.

Stripe delivers at least once, in any order, and retries a non-2xx answer for days.
The rules Lightbox applies to what it delivers:

- Fulfilment: `checkout.session.completed` whose `payment_status` is "paid" (or
  "no_payment_required", a session fully paid by a discount) and
  `checkout.session.async_payment_succeeded` credit the session's pack once per
  Checkout Session. `completed` with "unpaid" (a bank debit still on its way),
  `async_payment_failed`, `expired` and every other type are answered 200 "ignored".
- Once: the purchase's ledger entry is keyed by the Checkout Session and the event's
  record by its id, both put conditionally in the transaction that moves the credits.
  A replayed event answers 200 "duplicate" and changes nothing.
- Refunds (`charge.refunded`): Stripe reports `amount_refunded` cumulatively. The
  credits taken back from a payment in total are the pack's credits x amount_refunded
  / amount, rounded down (the customer keeps a fraction of a credit), and the whole
  pack once the charge is fully refunded. Each event advances that total; an older or
  repeated event takes nothing more.
- Disputes: credits go back when `charge.dispute.closed` says "lost", not on
  `charge.dispute.created`: a dispute may be won, and taking credits on creation would
  need a second, reversing movement. A lost dispute takes the whole pack minus what
  refunds already took.
- Debt: a takeback never drives the balance below zero; what the balance cannot cover
  is debt. A user in debt cannot start jobs (AccountInDebt); the next purchase repays
  the debt first and only the rest becomes spendable.
- Users: the session's `client_reference_id` is the Lightbox user who started the
  checkout (`create_checkout` sets it for a signed-in user), and the event is signed
  by Stripe, so it is trusted: a user with no account yet gets one. Accounts are
  created by their first movement, locally and in AWS alike.
- A session naming a pack that is not in the catalogue (or no user, or an object that
  is not what its event type promises) credits nothing, is recorded as failed with an
  error log line, and is answered 200: Stripe's retries cannot fix a catalogue. Once
  it is fixed, resending the event from Stripe's dashboard applies it (a failed record
  does not block an event; only an applied one does).
- Faults (throttling, DynamoDB unavailable) raise TransientError, which the HTTP layer
  answers with 503, so Stripe delivers again; every movement is one transaction, so
  nothing was half applied.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightbox.adapters.ledger import CreditLedger, EntryKind, Purchase, Takeback
from lightbox.adapters.stripe_gateway import (
    CheckoutLink,
    StripeGateway,
    checkout_session_object,
    encode_event,
    event_envelope,
    sign_payload,
    verify_event,
)
from lightbox.catalog.packs import Pack, load_packs, require_pack
from lightbox.errors import InvalidSignature, LightboxError
from lightbox.observability import logger

SESSION_COMPLETED = "checkout.session.completed"
ASYNC_PAYMENT_SUCCEEDED = "checkout.session.async_payment_succeeded"
CHARGE_REFUNDED = "charge.refunded"
DISPUTE_CLOSED = "charge.dispute.closed"
#: payment_status values of a completed session that mean the money is there.
PAID_STATUSES = frozenset({"paid", "no_payment_required"})


# --- checkout -------------------------------------------------------------------------------


def create_checkout(
    user_id: str,
    pack_id: str,
    *,
    gateway: StripeGateway,
    packs: dict[str, Pack],
    success_url: str,
    cancel_url: str,
    idempotency_key: str | None = None,
) -> CheckoutLink:
    """Open a Stripe Checkout Session for one pack; the webhook credits it once paid.

    Pass the client's request id as `idempotency_key` so that a double-clicked Buy
    button opens one session; without it every call opens a new one.
    """
    pack = require_pack(packs, pack_id)
    link = gateway.create_checkout_session(
        user_id=user_id,
        pack_id=pack.id,
        name=pack.name,
        credits=pack.credits,
        amount=pack.amount,
        currency=pack.currency,
        success_url=success_url,
        cancel_url=cancel_url,
        idempotency_key=idempotency_key or f"checkout-{user_id}-{pack.id}-{uuid.uuid4().hex}",
    )
    logger.info("checkout opened", extra={"pack_id": pack.id, "session_id": link.session_id})
    return link


# --- the webhook ----------------------------------------------------------------------------


class WebhookResult(BaseModel):
    status_code: int
    body: dict[str, Any]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    data: dict[str, Any]

    @property
    def object(self) -> dict[str, Any]:
        return self.data["object"]


class _CheckoutSession(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    client_reference_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    payment_status: str
    payment_intent: str | dict[str, Any] | None = None
    amount_total: int | None = None
    currency: str | None = None

    @property
    def payment_id(self) -> str | None:
        intent = self.payment_intent
        return str(intent.get("id")) if isinstance(intent, dict) else intent


class _Charge(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    amount: int
    amount_refunded: int
    refunded: bool = False
    payment_intent: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class _Dispute(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    status: str
    charge: str | None = None
    payment_intent: str | None = None


def handle_stripe_webhook(
    payload: bytes,
    signature_header: str | None,
    *,
    secret: str,
    ledger: CreditLedger,
    packs: dict[str, Pack],
    tolerance: int = 300,
) -> WebhookResult:
    """Verify a Stripe webhook delivery and apply its event at most once.

    400 when the signature, its timestamp or the body is wrong (nothing changes);
    200 otherwise, with `outcome` "credited", "taken_back", "duplicate", "ignored",
    "nothing_to_take_back" or "failed". Raises TransientError when storage is
    unavailable (answer 503: Stripe delivers again).
    """
    if not secret:
        # A missing secret is Lightbox's misconfiguration, not the sender's fault: 500,
        # and Stripe keeps the event until it is fixed.
        raise LightboxError("The Stripe webhook secret is not configured.")
    try:
        event = verify_event(payload, signature_header, secret, tolerance=tolerance)
    except InvalidSignature as error:
        logger.warning("stripe webhook refused", extra={"reason": error.message})
        return WebhookResult(
            status_code=400, body={"error": {"code": error.code, "message": error.message}}
        )
    return apply_stripe_event(event, ledger=ledger, packs=packs)


def apply_stripe_event(
    event: dict[str, Any], *, ledger: CreditLedger, packs: dict[str, Pack]
) -> WebhookResult:
    """Apply an event whose authenticity is already established (verified, or trusted)."""
    parsed = _Event.model_validate(event)
    if ledger.event_outcome(parsed.id) == "applied":
        return _answer(parsed, "duplicate")
    apply = _APPLIERS.get(parsed.type)
    if apply is None:
        return _answer(parsed, "ignored")
    try:
        return apply(parsed, ledger, packs)
    except ValidationError as error:
        fields = sorted({".".join(map(str, e["loc"])) for e in error.errors()})
        return _failed(parsed, ledger, "malformed_object", fields=fields)


def _fulfil(event: _Event, ledger: CreditLedger, packs: dict[str, Pack]) -> WebhookResult:
    session = _CheckoutSession.model_validate(event.object)
    if event.type == SESSION_COMPLETED and session.payment_status not in PAID_STATUSES:
        return _answer(event, "ignored", reason="payment_pending")
    user_id = session.client_reference_id or session.metadata.get("user_id")
    if not user_id:
        return _failed(event, ledger, "no_user", session_id=session.id)
    pack_id = session.metadata.get("pack_id", "")
    pack = packs.get(pack_id)
    if pack is None:
        return _failed(event, ledger, "unknown_pack", session_id=session.id, pack_id=pack_id)
    result = ledger.credit_purchase(
        Purchase(
            user_id=user_id,
            session_id=session.id,
            pack_id=pack.id,
            credits=pack.credits,
            payment_id=session.payment_id,
            amount=session.amount_total,
            currency=session.currency,
        ),
        event_id=event.id,
        event_type=event.type,
    )
    if not result.applied:
        return _answer(event, "duplicate", session_id=session.id)
    logger.info(
        "credits bought",
        extra={"event_id": event.id, "session_id": session.id, "pack_id": pack.id,
               "credits": pack.credits, "debt_repaid": -result.debt_change},
    )
    return _answer(event, "credited", session_id=session.id, credits=pack.credits,
                   debt_repaid=-result.debt_change)


def _refund(event: _Event, ledger: CreditLedger, packs: dict[str, Pack]) -> WebhookResult:
    charge = _Charge.model_validate(event.object)
    return _take_back(
        event, ledger, packs,
        kind=EntryKind.PAYMENT_REFUNDED,
        payment_id=charge.payment_intent,
        metadata=charge.metadata,
        target_of=lambda credits: credits_to_take_back(
            credits, amount=charge.amount, amount_refunded=charge.amount_refunded,
            fully_refunded=charge.refunded,
        ),
    )


def _dispute_closed(event: _Event, ledger: CreditLedger, packs: dict[str, Pack]) -> WebhookResult:
    dispute = _Dispute.model_validate(event.object)
    if dispute.status != "lost":
        return _answer(event, "ignored", reason=f"dispute_{dispute.status}")
    return _take_back(
        event, ledger, packs,
        kind=EntryKind.CHARGEBACK,
        payment_id=dispute.payment_intent,
        metadata={},
        target_of=lambda credits: credits,
    )


def credits_to_take_back(
    pack_credits: int, *, amount: int, amount_refunded: int, fully_refunded: bool
) -> int:
    """Credits a payment owes back in total after refunds: proportional, rounded down."""
    if fully_refunded or amount <= 0 or amount_refunded >= amount:
        return pack_credits
    return pack_credits * max(0, amount_refunded) // amount


def _take_back(
    event: _Event,
    ledger: CreditLedger,
    packs: dict[str, Pack],
    *,
    kind: EntryKind,
    payment_id: str | None,
    metadata: dict[str, str],
    target_of: Callable[[int], int],
) -> WebhookResult:
    """Map a payment back to its purchase (or the charge's metadata) and take credits."""
    record = ledger.payment(payment_id) if payment_id else None
    if record is not None:
        user_id, pack_id, credits = record.user_id, record.pack_id, record.credits
    else:
        # The purchase may not have arrived yet (Stripe does not order events); the
        # metadata Checkout copied onto the payment says whose it is. A later purchase
        # then repays the debt this creates, which nets out right.
        pack = packs.get(metadata.get("pack_id", ""))
        user_id = metadata.get("user_id", "")
        if not payment_id or pack is None or not user_id:
            return _answer(event, "ignored", reason="not_a_lightbox_payment")
        pack_id, credits = pack.id, pack.credits
    result = ledger.take_back(
        Takeback(kind=kind, payment_id=payment_id, user_id=user_id, pack_id=pack_id,
                 credits=credits, target=target_of(credits)),
        event_id=event.id,
        event_type=event.type,
    )
    if not result.applied:
        seen = ledger.event_outcome(event.id) == "applied"
        return _answer(event, "duplicate" if seen else "nothing_to_take_back",
                       payment_id=payment_id)
    logger.info(
        "credits taken back",
        extra={"event_id": event.id, "payment_id": payment_id, "kind": str(kind),
               "taken": -result.balance_change, "debt": result.debt_change},
    )
    return _answer(event, "taken_back", payment_id=payment_id,
                   credits=-result.balance_change, debt=result.debt_change)


_APPLIERS: dict[str, Callable[[_Event, CreditLedger, dict[str, Pack]], WebhookResult]] = {
    SESSION_COMPLETED: _fulfil,
    ASYNC_PAYMENT_SUCCEEDED: _fulfil,
    CHARGE_REFUNDED: _refund,
    DISPUTE_CLOSED: _dispute_closed,
}


def _answer(event: _Event, outcome: str, **details: Any) -> WebhookResult:
    return WebhookResult(
        status_code=200,
        body={"event_id": event.id, "type": event.type, "outcome": outcome, **details},
    )


def _failed(event: _Event, ledger: CreditLedger, reason: str, **details: Any) -> WebhookResult:
    """An event Lightbox cannot apply: recorded, logged loudly, answered 200 (no retries)."""
    logger.error(
        "stripe event not applied",
        extra={"event_id": event.id, "type": event.type, "reason": reason, **details},
    )
    ledger.record_event(event.id, event.type, "failed", {"reason": reason, **details})
    return _answer(event, "failed", reason=reason, **details)


# --- the local purchase ---------------------------------------------------------------------


def build_signed_checkout_event(
    user_id: str,
    pack_id: str,
    *,
    secret: str,
    now: int | None = None,
    packs: dict[str, Pack] | None = None,
) -> tuple[bytes, str]:
    """(raw body, Stripe-Signature) of a paid `checkout.session.completed`, as Stripe sends.

    A pack missing from the catalogue is still built (with amount 0): the webhook, not
    this builder, decides what such an event does.
    """
    now = int(time.time()) if now is None else now
    pack = (packs if packs is not None else load_packs()).get(pack_id)
    session = checkout_session_object(
        user_id=user_id,
        pack_id=pack_id,
        amount_total=pack.amount if pack else 0,
        currency=pack.currency if pack else "usd",
        created=now,
    )
    body = encode_event(event_envelope(SESSION_COMPLETED, session, created=now))
    return body, sign_payload(body, secret, timestamp=now)


def purchase_locally(
    user_id: str,
    pack_id: str,
    *,
    secret: str,
    ledger: CreditLedger,
    packs: dict[str, Pack],
) -> WebhookResult:
    """Complete a purchase on the laptop: a signed event through the real webhook path."""
    require_pack(packs, pack_id)
    body, signature = build_signed_checkout_event(user_id, pack_id, secret=secret, packs=packs)
    return handle_stripe_webhook(body, signature, secret=secret, ledger=ledger, packs=packs)
