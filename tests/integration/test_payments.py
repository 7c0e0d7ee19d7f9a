"""Stripe payments against moto: signed webhooks credited once, refunds and disputes.

Events are built the way Stripe builds them and signed here; verification goes
through `stripe.Webhook.construct_event`, so the library proves the format.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import pytest
import stripe

from lightbox.adapters.ledger import CreditLedger, EntryKind
from lightbox.adapters.stripe_gateway import (
    StripeGateway,
    checkout_session_object,
    encode_event,
    event_envelope,
    sign_payload,
)
from lightbox.catalog.packs import Pack, default_pack_id, load_packs
from lightbox.errors import (
    AccountInDebt,
    InvalidInput,
    LightboxError,
    TransientError,
)
from lightbox.services.payments import (
    WebhookResult,
    build_signed_checkout_event,
    create_checkout,
    credits_to_take_back,
    handle_stripe_webhook,
    purchase_locally,
)
from tests.integration.conftest import FaultyClient

SECRET = "whsec_test_lightbox_payments"
USER = "user-pay"
PACKS = {
    "starter": Pack(id="starter", name="Starter", credits=200, amount=500),
    "studio": Pack(id="studio", name="Studio", credits=1000, amount=2000),
}


# --- helpers --------------------------------------------------------------------------------


def session_event(
    event_type: str = "checkout.session.completed",
    *,
    user_id: str | None = USER,
    pack_id: str = "starter",
    session_id: str = "cs_test_1",
    payment_intent: str = "pi_1",
    payment_status: str = "paid",
    event_id: str | None = None,
) -> dict[str, Any]:
    session = checkout_session_object(
        user_id=user_id or "", pack_id=pack_id, amount_total=500,
        session_id=session_id, payment_intent=payment_intent, payment_status=payment_status,
    )
    if user_id is None:
        session["client_reference_id"] = None
        session["metadata"].pop("user_id")
    return event_envelope(event_type, session, event_id=event_id)


def charge_refunded_event(
    amount_refunded: int, *, payment_intent: str = "pi_1", amount: int = 500,
    metadata: dict[str, str] | None = None, event_id: str | None = None,
) -> dict[str, Any]:
    charge = {
        "id": f"ch_{payment_intent}", "object": "charge", "amount": amount,
        "amount_refunded": amount_refunded, "refunded": amount_refunded >= amount,
        "currency": "usd", "payment_intent": payment_intent, "status": "succeeded",
        "metadata": metadata or {},
    }
    return event_envelope("charge.refunded", charge, event_id=event_id)


def dispute_event(status: str, *, event_type: str = "charge.dispute.closed",
                  payment_intent: str = "pi_1") -> dict[str, Any]:
    dispute = {"id": "dp_1", "object": "dispute", "amount": 500, "currency": "usd",
               "charge": f"ch_{payment_intent}", "payment_intent": payment_intent,
               "status": status, "reason": "fraudulent"}
    return event_envelope(event_type, dispute)


def signed(event: dict[str, Any], *, secret: str = SECRET, at: int | None = None
           ) -> tuple[bytes, str]:
    body = encode_event(event)
    return body, sign_payload(body, secret, timestamp=int(time.time()) if at is None else at)


def deliver(ledger: CreditLedger, body: bytes, header: str | None,
            packs: dict[str, Pack] = PACKS) -> WebhookResult:
    return handle_stripe_webhook(body, header, secret=SECRET, ledger=ledger, packs=packs)


def send(ledger: CreditLedger, event: dict[str, Any], packs: dict[str, Pack] = PACKS
         ) -> WebhookResult:
    return deliver(ledger, *signed(event), packs=packs)


def snapshot(ledger: CreditLedger, dynamodb: Any) -> Any:
    """Everything in the table, to prove a refused delivery changed nothing."""
    items = dynamodb.scan(TableName=ledger.table)["Items"]
    return sorted(json.dumps(i, sort_keys=True) for i in items)


def state(ledger: CreditLedger, user_id: str = USER) -> tuple[int, int, int]:
    account = ledger.balance(user_id)
    return account.balance, account.reserved, account.debt


# --- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["forged_signature", "wrong_secret", "tampered_body", "stale_timestamp",
     "missing_header", "malformed_header", "not_json", "not_an_event"],
)
def test_given_a_bad_delivery_when_received_then_400_and_nothing_changes(
    case, ledger, dynamodb
):
    # Given a table with one credited purchase
    send(ledger, session_event(session_id="cs_before", payment_intent="pi_before"))
    before = snapshot(ledger, dynamodb)
    body, header = signed(session_event())
    now = int(time.time())
    if case == "forged_signature":
        header = f"t={now},v1={'ab' * 32}"
    elif case == "wrong_secret":
        body, header = signed(session_event(), secret="whsec_someone_else")
    elif case == "tampered_body":
        body = body.replace(b'"pack_id": "starter"', b'"pack_id": "studio"')
        assert b"studio" in body
    elif case == "stale_timestamp":
        body, header = signed(session_event(), at=now - 301)
    elif case == "missing_header":
        header = None
    elif case == "malformed_header":
        header = "v1=deadbeef"
    elif case == "not_json":
        body = b"this is not json"
        header = sign_payload(body, SECRET, timestamp=now)
    elif case == "not_an_event":
        body = json.dumps({"object": "event"}).encode()
        header = sign_payload(body, SECRET, timestamp=now)

    # When it is delivered
    result = deliver(ledger, body, header)

    # Then it is refused and the table is exactly as before
    assert result.status_code == 400
    assert result.body["error"]["code"] == "invalid_signature"
    assert snapshot(ledger, dynamodb) == before
    assert SECRET not in json.dumps(result.body)


def test_given_no_secret_configured_when_a_webhook_arrives_then_a_server_error(ledger):
    body, header = signed(session_event())
    with pytest.raises(LightboxError) as error:
        handle_stripe_webhook(body, header, secret="", ledger=ledger, packs=PACKS)
    assert error.value.status_code == 500


def test_given_the_local_builder_when_verified_by_stripe_then_a_paid_checkout_event():
    body, header = build_signed_checkout_event(USER, "starter", secret=SECRET)

    event = stripe.Webhook.construct_event(body, header, SECRET, tolerance=300)

    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert event["id"].startswith("evt_") and event["type"] == "checkout.session.completed"
    assert event["livemode"] is False and event["api_version"] == stripe.api_version
    session = event["data"]["object"]
    assert session["id"].startswith("cs_test_")
    assert session["payment_intent"].startswith("pi_")
    assert (session["client_reference_id"], session["metadata"]["pack_id"]) == (USER, "starter")
    assert (session["payment_status"], session["amount_total"], session["currency"]) == (
        "paid", 500, "usd")


# --- fulfilment -----------------------------------------------------------------------------


def test_given_a_paid_checkout_when_delivered_then_the_pack_is_credited(ledger, assert_books):
    result = send(ledger, session_event())

    assert result.status_code == 200
    assert result.body["outcome"] == "credited" and result.body["credits"] == 200
    assert state(ledger) == (200, 0, 0)
    payment = ledger.payment("pi_1")
    assert (payment.user_id, payment.pack_id, payment.credits) == (USER, "starter", 200)
    assert_books(USER)


def test_given_a_credited_event_when_replayed_then_200_and_nothing_changes(ledger, dynamodb):
    body, header = signed(session_event())
    assert deliver(ledger, body, header).body["outcome"] == "credited"
    before = snapshot(ledger, dynamodb)

    replay = deliver(ledger, body, header)

    assert (replay.status_code, replay.body["outcome"]) == (200, "duplicate")
    assert snapshot(ledger, dynamodb) == before


def test_given_one_event_when_delivered_50_times_concurrently_then_credited_once(
    ledger, assert_books
):
    body, header = signed(session_event())

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: deliver(ledger, body, header), range(50)))

    outcomes = Counter(r.body["outcome"] for r in results)
    assert {r.status_code for r in results} == {200}
    assert outcomes == {"credited": 1, "duplicate": 49}
    assert state(ledger) == (200, 0, 0)
    assert Counter(e.kind for e in ledger.entries(USER)) == {EntryKind.PURCHASE: 1}
    assert_books(USER)


def test_given_async_success_before_completed_when_both_arrive_then_credited_once(
    ledger, assert_books
):
    succeeded = send(ledger, session_event("checkout.session.async_payment_succeeded"))
    completed = send(ledger, session_event("checkout.session.completed"))

    assert (succeeded.body["outcome"], completed.body["outcome"]) == ("credited", "duplicate")
    assert state(ledger) == (200, 0, 0)
    assert_books(USER)


def test_given_a_delayed_payment_when_completed_then_succeeded_then_credited_once(
    ledger, assert_books
):
    # Given a bank debit: completed while unpaid, then the money arrives
    unpaid = send(ledger, session_event(payment_status="unpaid"))
    assert (unpaid.body["outcome"], state(ledger)) == ("ignored", (0, 0, 0))
    succeeded = session_event("checkout.session.async_payment_succeeded")
    paid_completed = session_event("checkout.session.completed")

    # When both success events arrive together, each twice
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda e: send(ledger, e),
                                [succeeded, paid_completed, succeeded, paid_completed]))

    # Then the session is credited once
    assert Counter(r.body["outcome"] for r in results) == {"credited": 1, "duplicate": 3}
    assert state(ledger) == (200, 0, 0)
    assert_books(USER)


@pytest.mark.parametrize(
    "event_type",
    ["checkout.session.async_payment_failed", "checkout.session.expired",
     "customer.created", "charge.dispute.created"],
)
def test_given_an_event_without_credits_when_delivered_then_200_ignored(
    event_type, ledger, dynamodb
):
    before = snapshot(ledger, dynamodb)
    if event_type == "charge.dispute.created":
        event = dispute_event("needs_response", event_type=event_type)
    else:
        event = session_event(event_type, payment_status="unpaid")

    result = send(ledger, event)

    assert (result.status_code, result.body["outcome"]) == (200, "ignored")
    assert snapshot(ledger, dynamodb) == before


def test_given_a_user_without_an_account_when_their_session_is_paid_then_the_account_is_made(
    ledger, assert_books
):
    assert ledger.balance("brand-new").version == 0

    result = send(ledger, session_event(user_id="brand-new"))

    assert result.body["outcome"] == "credited"
    account = ledger.balance("brand-new")
    assert (account.balance, account.version) == (200, 1)
    assert_books("brand-new")


def test_given_an_unknown_pack_when_paid_then_200_failed_and_nothing_credited(
    ledger, assert_books
):
    event = session_event(pack_id="mega")
    body, header = signed(event)

    result = deliver(ledger, body, header)

    assert (result.status_code, result.body["outcome"]) == (200, "failed")
    assert result.body["reason"] == "unknown_pack"
    assert state(ledger) == (0, 0, 0) and ledger.entries(USER) == []
    assert ledger.event_outcome(event["id"]) == "failed"
    # Once the catalogue has the pack, resending the event (Stripe's dashboard) applies it.
    fixed = {**PACKS, "mega": Pack(id="mega", name="Mega", credits=9000, amount=500)}
    assert deliver(ledger, body, header, packs=fixed).body["outcome"] == "credited"
    assert deliver(ledger, body, header, packs=fixed).body["outcome"] == "duplicate"
    assert state(ledger) == (9000, 0, 0)
    assert_books(USER)


def test_given_a_session_without_a_user_when_paid_then_200_failed(ledger, dynamodb):
    result = send(ledger, session_event(user_id=None))
    assert (result.status_code, result.body["outcome"], result.body["reason"]) == (
        200, "failed", "no_user")


def test_given_a_session_object_missing_fields_when_paid_then_200_failed(ledger):
    event = session_event()
    del event["data"]["object"]["payment_status"]
    result = send(ledger, event)
    assert (result.status_code, result.body["outcome"]) == (200, "failed")
    assert result.body["reason"] == "malformed_object"


# --- faults in the middle of fulfilment -------------------------------------------------------


@pytest.mark.parametrize("fault", ["throttled", "cancelled", "lost_reply"])
def test_given_a_storage_fault_mid_fulfilment_when_stripe_redelivers_then_credited_once(
    fault, ledger, dynamodb, assert_books
):
    faulty = CreditLedger(FaultyClient(dynamodb, fault), ledger.table)
    body, header = signed(session_event())

    # When the first delivery meets the fault
    try:
        first = handle_stripe_webhook(body, header, secret=SECRET, ledger=faulty, packs=PACKS)
    except TransientError:
        first = None  # the HTTP layer answers 503: Stripe will deliver again

    # And Stripe delivers again (twice, for good measure)
    again = [handle_stripe_webhook(body, header, secret=SECRET, ledger=faulty, packs=PACKS)
             for _ in range(2)]

    # Then the pack is credited exactly once
    if fault == "cancelled":
        assert first is not None and first.body["outcome"] == "credited"
    else:
        assert first is None
    outcomes = [r.body["outcome"] for r in again]
    assert outcomes == (["duplicate", "duplicate"] if fault != "throttled"
                        else ["credited", "duplicate"])
    assert state(ledger) == (200, 0, 0)
    assert_books(USER)


# --- refunds, disputes and debt ----------------------------------------------------------------


def test_given_a_full_refund_when_credits_are_unspent_then_all_taken_back(ledger, assert_books):
    send(ledger, session_event())

    result = send(ledger, charge_refunded_event(500))

    assert (result.body["outcome"], result.body["credits"], result.body["debt"]) == (
        "taken_back", 200, 0)
    assert state(ledger) == (0, 0, 0)
    assert_books(USER)


def test_given_spent_credits_when_refunded_then_debt_blocks_jobs_until_the_next_purchase(
    ledger, assert_books
):
    # Given 200 credits bought and 150 spent
    send(ledger, session_event())
    ledger.reserve(USER, "job-1", 150)
    ledger.settle(USER, "job-1", spent=150, refunded=0)

    # When the payment is refunded in full
    send(ledger, charge_refunded_event(500))

    # Then the 50 left are taken and 150 become debt, which blocks new jobs
    assert state(ledger) == (0, 0, 150)
    with pytest.raises(AccountInDebt):
        ledger.reserve(USER, "job-2", 1)
    assert_books(USER)

    # When the user buys again, the debt is repaid first
    bought = send(ledger, session_event(session_id="cs_test_2", payment_intent="pi_2"))
    assert (bought.body["outcome"], bought.body["debt_repaid"]) == ("credited", 150)
    assert state(ledger) == (50, 0, 0)
    ledger.reserve(USER, "job-2", 50)
    kinds = Counter(e.kind for e in ledger.entries(USER))
    assert kinds[EntryKind.DEBT_REPAYMENT] == 1 and kinds[EntryKind.PAYMENT_REFUNDED] == 1
    assert_books(USER)


def test_given_partial_refunds_when_delivered_in_any_order_then_proportional_and_once(
    ledger, assert_books
):
    send(ledger, session_event())
    half, all_of_it = charge_refunded_event(250), charge_refunded_event(500)

    # Half refunded: 100 of 200 credits back
    assert send(ledger, half).body["credits"] == 100
    assert state(ledger) == (100, 0, 0)
    # The rest refunded: the other 100
    assert send(ledger, all_of_it).body["credits"] == 100
    # The older event again, and a fresh event saying "half": nothing more
    assert send(ledger, half).body["outcome"] == "duplicate"
    assert send(ledger, charge_refunded_event(250)).body["outcome"] == "nothing_to_take_back"
    assert state(ledger) == (0, 0, 0)
    assert_books(USER)


def test_given_the_refund_rule_then_proportional_rounded_down_and_whole_when_full():
    assert credits_to_take_back(200, amount=500, amount_refunded=1, fully_refunded=False) == 0
    assert credits_to_take_back(200, amount=500, amount_refunded=3, fully_refunded=False) == 1
    assert credits_to_take_back(200, amount=500, amount_refunded=499, fully_refunded=False) == 199
    assert credits_to_take_back(200, amount=500, amount_refunded=500, fully_refunded=True) == 200
    assert credits_to_take_back(200, amount=500, amount_refunded=0, fully_refunded=True) == 200


def test_given_a_lost_dispute_after_a_partial_refund_then_the_rest_of_the_pack_goes(
    ledger, assert_books
):
    send(ledger, session_event())
    ledger.reserve(USER, "job-1", 80)
    send(ledger, charge_refunded_event(125))  # 50 credits back
    assert state(ledger) == (70, 80, 0)

    won = send(ledger, dispute_event("won"))
    lost = send(ledger, dispute_event("lost"))
    lost_again = send(ledger, dispute_event("lost"))

    assert won.body["outcome"] == "ignored"
    assert (lost.body["outcome"], lost.body["credits"], lost.body["debt"]) == (
        "taken_back", 70, 80)
    assert lost_again.body["outcome"] == "nothing_to_take_back"
    # The running job's reservation is untouched; its refund later lands on the balance.
    assert state(ledger) == (0, 80, 80)
    ledger.settle(USER, "job-1", spent=30, refunded=50)
    assert state(ledger) == (50, 0, 80)
    assert_books(USER)


def test_given_a_refund_before_its_purchase_when_both_arrive_then_the_books_net_out(
    ledger, assert_books
):
    # Given the refund overtakes the purchase (Stripe does not order events)
    metadata = {"user_id": USER, "pack_id": "starter"}
    early = send(ledger, charge_refunded_event(500, metadata=metadata))
    assert (early.body["outcome"], state(ledger)) == ("taken_back", (0, 0, 200))

    # When the purchase arrives
    send(ledger, session_event())

    # Then it only repays the debt: the refunded payment left no credits
    assert state(ledger) == (0, 0, 0)
    assert send(ledger, charge_refunded_event(500)).body["outcome"] == "nothing_to_take_back"
    assert_books(USER)


def test_given_a_refund_of_a_payment_lightbox_did_not_sell_then_ignored(ledger, dynamodb):
    before = snapshot(ledger, dynamodb)
    result = send(ledger, charge_refunded_event(500, payment_intent="pi_other"))
    assert (result.status_code, result.body["outcome"]) == (200, "ignored")
    assert snapshot(ledger, dynamodb) == before


def test_given_refund_and_dispute_racing_when_delivered_together_then_the_pack_goes_once(
    ledger, assert_books
):
    send(ledger, session_event())
    events = [charge_refunded_event(500), dispute_event("lost")] * 5

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda e: send(ledger, e), events))

    assert state(ledger) == (0, 0, 0)
    assert ledger.payment("pi_1").taken_back == 200
    assert_books(USER)


# --- checkout and the local purchase -----------------------------------------------------------


class RecordingStripe(stripe.HTTPClient):
    """Stripe's HTTP layer, answered locally: records requests, replies with a session."""

    name = "recording"

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status
        self.requests: list[tuple[str, str, dict[str, str], str]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append((method, url, dict(headers or {}), post_data or ""))
        if self.status != 200:
            return json.dumps({"error": {"message": "down", "type": "api_error"}}), self.status, {}
        body = {"id": "cs_test_made", "object": "checkout.session",
                "url": "https://checkout.stripe.com/c/pay/cs_test_made"}
        return json.dumps(body), 200, {}

    def close(self) -> None:
        pass


def gateway_with(http: RecordingStripe) -> StripeGateway:
    client = stripe.StripeClient("sk_test_lightbox", http_client=http, max_network_retries=0)
    return StripeGateway("sk_test_lightbox", client=client)


def test_given_a_pack_when_checking_out_then_one_time_session_maps_back_to_user_and_pack():
    http = RecordingStripe()

    link = create_checkout(USER, "studio", gateway=gateway_with(http), packs=PACKS,
                           success_url="https://shop.example/ok", cancel_url="https://shop.example/no",
                           idempotency_key="req-123")

    assert (link.session_id, link.url) == ("cs_test_made",
                                           "https://checkout.stripe.com/c/pay/cs_test_made")
    ((method, url, headers, form),) = http.requests
    assert (method, url) == ("post", "https://api.stripe.com/v1/checkout/sessions")
    assert headers["Idempotency-Key"] == "req-123"
    sent = {k: v[0] for k, v in parse_qs(form).items()}
    assert sent["mode"] == "payment"
    assert sent["client_reference_id"] == USER
    assert sent["metadata[pack_id]"] == "studio"
    assert sent["payment_intent_data[metadata][user_id]"] == USER
    assert sent["payment_intent_data[metadata][pack_id]"] == "studio"
    assert sent["line_items[0][price_data][unit_amount]"] == "2000"
    assert sent["line_items[0][price_data][currency]"] == "usd"
    assert sent["line_items[0][quantity]"] == "1"


def test_given_an_unknown_pack_when_checking_out_then_invalid_input_lists_the_packs():
    http = RecordingStripe()
    with pytest.raises(InvalidInput) as refused:
        create_checkout(USER, "mega", gateway=gateway_with(http), packs=PACKS,
                        success_url="https://a", cancel_url="https://b")
    assert refused.value.details["allowed"] == ["starter", "studio"]
    assert "starter" in refused.value.message and http.requests == []


def test_given_stripe_down_when_checking_out_then_transient():
    with pytest.raises(TransientError):
        create_checkout(USER, "starter", gateway=gateway_with(RecordingStripe(status=500)),
                        packs=PACKS, success_url="https://a", cancel_url="https://b")


def test_given_the_laptop_when_buying_locally_then_the_real_webhook_path_credits(
    ledger, assert_books
):
    result = purchase_locally(USER, "studio", secret=SECRET, ledger=ledger, packs=PACKS)

    assert (result.status_code, result.body["outcome"], result.body["credits"]) == (
        200, "credited", 1000)
    assert state(ledger) == (1000, 0, 0)
    with pytest.raises(InvalidInput):
        purchase_locally(USER, "mega", secret=SECRET, ledger=ledger, packs=PACKS)
    assert_books(USER)


def test_given_the_packaged_catalogue_then_starter_is_default_and_larger_packs_exist():
    packs = load_packs()
    assert default_pack_id() == "starter"
    starter = packs["starter"]
    assert (starter.credits, starter.amount, starter.currency) == (200, 500, "usd")
    larger = [p for p in packs.values() if p.credits > starter.credits]
    assert len(larger) >= 2
    # Bigger packs are not dearer per credit.
    by_size = sorted(packs.values(), key=lambda p: p.credits)
    per_credit = [p.amount / p.credits for p in by_size]
    assert per_credit == sorted(per_credit, reverse=True)
