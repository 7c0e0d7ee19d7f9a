"""Stripe, through the official library: Checkout Sessions out, verified events in.

Checkout is one-time (`mode="payment"`) with the price written inline from the pack
(`price_data`), so the pack catalogue is the only place prices live: nothing has to be
created in the Stripe dashboard first. The Lightbox user travels as
`client_reference_id`; user and pack also travel in the session's metadata and, via
`payment_intent_data.metadata`, on the PaymentIntent and its Charge, so a refund or
dispute (which arrive as Charge and Dispute objects) maps back even if the purchase
was never recorded.

Webhooks are verified by `stripe.Webhook.construct_event` only; the builders at the
bottom make events the way Stripe makes them (the local purchase, tests), signed
independently here so that the library's verification proves the format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import stripe

from lightbox.errors import Conflict, InvalidSignature, LightboxError, TransientError


@dataclass(frozen=True)
class CheckoutLink:
    session_id: str
    #: Where the browser goes to pay.
    url: str


class StripeGateway:
    """The Stripe calls Lightbox makes (one: creating Checkout Sessions)."""

    def __init__(
        self,
        api_key: str,
        *,
        client: stripe.StripeClient | None = None,
        max_network_retries: int = 2,
    ) -> None:
        # StripeClient makes no network retries unless told to; retries reuse the
        # request's idempotency key, so they cannot open a second session.
        self.client = client or stripe.StripeClient(
            api_key, max_network_retries=max_network_retries
        )

    def create_checkout_session(
        self,
        *,
        user_id: str,
        pack_id: str,
        name: str,
        credits: int,
        amount: int,
        currency: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutLink:
        """Open a one-time Checkout Session for one pack; `amount` in minor units."""
        metadata = {"user_id": user_id, "pack_id": pack_id, "credits": str(credits)}
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": amount,
                        "product_data": {"name": name, "metadata": {"pack_id": pack_id}},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": user_id,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _translate(error) from error
        return CheckoutLink(session_id=session.id, url=str(session.url))


def _translate(error: stripe.StripeError) -> LightboxError:
    """Stripe's failures as Lightbox errors; only the error's class and code are kept."""
    status = error.http_status or 0
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)) or status >= 500:
        return TransientError(f"Stripe did not answer ({type(error).__name__}); try again.")
    if isinstance(error, stripe.IdempotencyError):
        return Conflict("This checkout was already started with other details.")
    return LightboxError(
        f"Stripe refused the checkout ({error.code or type(error).__name__}).",
        status=status,
    )


def verify_event(
    payload: bytes | str, signature_header: str | None, secret: str, *, tolerance: int = 300
) -> dict[str, Any]:
    """The event in a webhook body, if Stripe signed exactly this body recently.

    Raises InvalidSignature for a missing or malformed header, a signature made with
    another secret or over another body, a timestamp older than `tolerance` seconds,
    and a body that is not a Stripe event (a signed non-JSON body cannot be Stripe's).
    """
    try:
        stripe.Webhook.construct_event(payload, signature_header, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError as error:
        raise InvalidSignature(_signature_failure(error)) from error
    except ValueError as error:  # not UTF-8, not JSON, or a thin v2 notification
        raise InvalidSignature("The webhook body is not a Stripe event.") from error
    event = json.loads(payload)
    if (
        not isinstance(event, dict)
        or event.get("object") != "event"
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise InvalidSignature("The webhook body is not a Stripe event.")
    return event


def _signature_failure(error: stripe.SignatureVerificationError) -> str:
    """Why verification failed, in words that carry no header, body or secret."""
    text = str(error.user_message or error)
    if "tolerance" in text:
        return "The Stripe-Signature timestamp is too old."
    if "No Stripe-Signature" in text or "Unable to extract" in text:
        return "The Stripe-Signature header is missing or malformed."
    return "The Stripe-Signature does not match the body."


# --- Stripe-shaped events, for the local purchase and tests ---------------------------------


def new_object_id(prefix: str) -> str:
    """An id shaped like Stripe's (`evt_...`, `cs_test_...`, `pi_...`)."""
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'a').replace('_', 'b')}"


def checkout_session_object(
    *,
    user_id: str,
    pack_id: str,
    amount_total: int,
    currency: str = "usd",
    session_id: str | None = None,
    payment_intent: str | None = None,
    payment_status: str = "paid",
    created: int | None = None,
) -> dict[str, Any]:
    """A completed test-mode Checkout Session as Stripe sends it in an event."""
    created = int(time.time()) if created is None else created
    metadata = {"user_id": user_id, "pack_id": pack_id}
    return {
        "id": session_id or new_object_id("cs_test"),
        "object": "checkout.session",
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "client_reference_id": user_id,
        "created": created,
        "currency": currency,
        "customer": None,
        "expires_at": created + 86400,
        "livemode": False,
        "metadata": metadata,
        "mode": "payment",
        "payment_intent": payment_intent or new_object_id("pi"),
        "payment_status": payment_status,
        "status": "complete",
        "url": None,
    }


def event_envelope(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """An event around an object, as Stripe delivers it to a webhook endpoint."""
    return {
        "id": event_id or new_object_id("evt"),
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()) if created is None else created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, indent=2).encode("utf-8")


def sign_payload(payload: bytes, secret: str, *, timestamp: int) -> str:
    """The Stripe-Signature header Stripe would send: HMAC-SHA256 of "{t}.{body}"."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
