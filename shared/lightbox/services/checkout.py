"""Buying credits from the API: Stripe Checkout in AWS, the local checkout on a laptop."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from lightbox.adapters.secrets import resolve_secret
from lightbox.adapters.stripe_gateway import StripeGateway
from lightbox.catalog.packs import load_packs, require_pack
from lightbox.services.context import Context
from lightbox.services.payments import create_checkout


class CheckoutRequest(BaseModel):
    pack_id: str = Field(default="starter", max_length=64)
    #: The client's id for this click: a double-clicked Buy opens one session.
    request_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class CheckoutAnswer(BaseModel):
    url: str
    mode: Literal["stripe", "local"]
    pack_id: str


def open_checkout(
    ctx: Context, user_id: str, request: CheckoutRequest, *, base_url: str
) -> CheckoutAnswer:
    """A checkout for one pack; `base_url` is the web app's address (for the way back)."""
    packs = load_packs()
    pack = require_pack(packs, request.pack_id)
    base = base_url.rstrip("/")
    if ctx.settings.checkout_mode == "local":
        # No Stripe on a laptop: the local checkout page completes the purchase by
        # sending the signed webhook Stripe would send.
        return CheckoutAnswer(url=f"{base}/checkout/local?pack={pack.id}", mode="local",
                              pack_id=pack.id)
    api_key = resolve_secret(ctx.settings.stripe_api_key, ctx.settings.stripe_api_key_param)
    link = create_checkout(
        user_id,
        pack.id,
        gateway=StripeGateway(api_key),
        packs=packs,
        success_url=f"{base}/?checkout=done",
        cancel_url=f"{base}/?checkout=cancelled",
        idempotency_key=f"checkout-{user_id}-{request.request_id or uuid.uuid4().hex}",
    )
    return CheckoutAnswer(url=link.url, mode="stripe", pack_id=pack.id)
