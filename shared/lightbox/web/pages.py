"""The web app's pages: server-rendered with Jinja2, plain JavaScript, no build step.

The pages hold no user data: they are the same for everyone and are served without
the authorizer (``GET /`` and ``GET /{proxy+}`` in template.yaml). The page's
JavaScript keeps the sign-in token and reads everything personal from ``/api/*``,
so what a user sees is decided by the API's checks alone.

Sign-in: in AWS a link to the Cognito hosted UI (authorization code flow with PKCE,
run by the page); on a laptop a form that asks the local stack for a token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from lightbox.catalog import Scene
from lightbox.catalog.packs import default_pack_id, load_packs, require_pack
from lightbox.config import EnvironmentModel, Settings
from lightbox.errors import NotFound, TransientError
from lightbox.observability import logger
from lightbox.services.context import Context, get_context
from lightbox.services.payments import build_signed_checkout_event
from lightbox.services.tools import DEFAULT_FIT_PRESET, tool_catalogue
from lightbox.web.auth import User, current_user

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")


class SignInSettings(EnvironmentModel):
    """Where the Cognito hosted UI is (the API function's environment in AWS)."""

    #: e.g. https://my-shop.auth.eu-west-1.amazoncognito.com
    cognito_domain: str = Field(default="", alias="COGNITO_DOMAIN")
    cognito_client_id: str = Field(default="", alias="COGNITO_CLIENT_ID")

    def mode(self, settings: Settings) -> str:
        """The sign-in the pages offer: the hosted UI when it is configured, else the
        local form on the local stack (the only place checkout is local too)."""
        if self.cognito_domain and self.cognito_client_id:
            return "cognito"
        return "local" if settings.checkout_mode == "local" else "unconfigured"


def _context(request: Request) -> Context:
    return request.app.state.context or get_context()


def install_pages(app: FastAPI, settings: Settings) -> None:
    """Add the pages, their static files and, on a laptop only, the local checkout.

    `app.state.not_found_page` is the page a browser gets for an address that is not
    one; the error handlers answer everyone else with the API's JSON error."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    render = PageRenderer(settings)
    app.include_router(page_router(settings, render))
    if settings.checkout_mode == "local":
        app.include_router(local_checkout_router())
    app.state.not_found_page = lambda request: render(request, "not_found.html", 404)


class PageRenderer:
    """Renders a template with what every page carries: the page's configuration (as
    JSON), the credit packs, and the security headers."""

    def __init__(self, settings: Settings) -> None:
        self.sign_in = SignInSettings.from_environment()
        self.sign_in_mode = self.sign_in.mode(settings)
        self.config = {
            "signIn": {"mode": self.sign_in_mode,
                       "domain": self.sign_in.cognito_domain.rstrip("/"),
                       "clientId": self.sign_in.cognito_client_id},
            "checkoutMode": settings.checkout_mode,
            "maxUploadBytes": settings.max_upload_bytes,
        }

    def __call__(
        self, request: Request, name: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        page = templates.TemplateResponse(
            request, name, status_code=status_code, context={
                # "<" escaped: the JSON sits in a <script> element.
                "config_json": json.dumps(self.config).replace("<", "\\u003c"),
                "packs": list(load_packs().values()),
                "default_pack": default_pack_id(),
                **values,
            },
        )
        page.headers["content-security-policy"] = content_security_policy(
            _context(request), self.sign_in.cognito_domain)
        page.headers["referrer-policy"] = "same-origin"
        page.headers["x-content-type-options"] = "nosniff"
        return page


def page_router(settings: Settings, render: PageRenderer) -> APIRouter:
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

    @router.get("/")
    def home(request: Request) -> HTMLResponse:
        return render(request, "home.html", max_upload_mb=settings.max_upload_bytes // 2**20)

    @router.get("/tools")
    def tools_page(request: Request) -> HTMLResponse:
        return render(request, "tools.html", catalogue=tool_catalogue(_context(request)),
                      default_preset=DEFAULT_FIT_PRESET,
                      max_upload_mb=settings.max_upload_bytes // 2**20)

    @router.get("/sign-in")
    def sign_in_page(request: Request) -> HTMLResponse:
        return render(request, "sign_in.html", sign_in_mode=render.sign_in_mode)

    @router.get("/jobs/{job_id}")
    def job_page(request: Request, job_id: str) -> HTMLResponse:
        return render(request, "job.html", job_id=job_id)

    @router.get("/scenes/{scene_id}.svg")
    def scene_thumbnail(request: Request, scene_id: str) -> Response:
        scene = _context(request).scenes.get(scene_id)
        if scene is None:
            raise NotFound("No such scene.")
        return Response(scene_swatch(scene), media_type="image/svg+xml",
                        headers={"cache-control": "public, max-age=86400"})

    if settings.checkout_mode == "local":
        @router.get("/checkout/local")
        def local_checkout_page(request: Request, pack: str = "") -> HTMLResponse:
            chosen = load_packs().get(pack or default_pack_id())
            if chosen is None:
                raise NotFound("No such pack.")
            return render(request, "checkout_local.html", pack=chosen)

    return router


def content_security_policy(ctx: Context, cognito_domain: str) -> str:
    """Scripts and styles from this origin only (no inline code runs); images and
    uploads also to and from the bucket; the token exchange with Cognito's domain."""
    bucket = " ".join(_bucket_origins(ctx))
    cognito = _origin(cognito_domain) if cognito_domain else ""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data: blob: {bucket}",
        f"connect-src 'self' {bucket} {cognito}".rstrip(),
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ])


def _bucket_origins(ctx: Context) -> list[str]:
    """Where presigned GETs and POSTs point (signing is local: no request is made)."""
    probe = "uploads/origin-probe"
    get_url = ctx.objects.presigned_get(probe, 60)
    post_url = ctx.objects.presigned_post(probe, max_bytes=1, expires=60)["url"]
    return sorted({_origin(get_url), _origin(post_url)})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- the local checkout ---------------------------------------------------------------


class LocalPayment(BaseModel):
    pack_id: str = Field(max_length=64)


class LocalPaymentAnswer(BaseModel):
    outcome: str
    balance: int


def local_checkout_router() -> APIRouter:
    """`POST /api/checkout/local`: the local checkout page's Pay button.

    Exists only when CHECKOUT_MODE is "local". It pays nothing: it sends the signed
    `checkout.session.completed` Stripe would send to the real webhook, over HTTP, so
    the credits arrive by the same path as in AWS.
    """
    router = APIRouter(tags=["credits"])

    @router.post("/api/checkout/local", response_model=LocalPaymentAnswer,
                 responses={401: {"description": "Not signed in"},
                            422: {"description": "No such pack"}})
    def pay_locally(body: LocalPayment, user: Annotated[User, Depends(current_user)],
                    request: Request) -> LocalPaymentAnswer:
        return deliver_local_purchase(_context(request), user.user_id, body.pack_id)

    return router


def deliver_local_purchase(ctx: Context, user_id: str, pack_id: str) -> LocalPaymentAnswer:
    pack = require_pack(load_packs(), pack_id)
    body, signature = build_signed_checkout_event(user_id, pack.id,
                                                  secret=ctx.stripe_webhook_secret())
    url = f"{ctx.settings.webhook_base_url.rstrip('/')}/webhooks/stripe"
    response = ctx.http.post(url, content=body, headers={
        "stripe-signature": signature, "content-type": "application/json"})
    if response.status_code != 200:
        logger.error("local purchase refused by the webhook",
                     extra={"status": response.status_code, "pack_id": pack.id})
        raise TransientError("The local Stripe webhook did not accept the purchase.")
    outcome = str(response.json().get("outcome", ""))
    logger.info("local purchase delivered", extra={"pack_id": pack.id, "outcome": outcome})
    return LocalPaymentAnswer(outcome=outcome, balance=ctx.ledger.balance(user_id).balance)


# --- scene thumbnails -----------------------------------------------------------------


def scene_swatch(scene: Scene) -> str:
    """A small picture of a scene's backdrop and floor, drawn from its `look`, with a
    stand-in product: enough to tell the scenes apart before spending credits."""
    look = scene.look
    backdrop = look.get("backdrop") or {}
    floor = look.get("floor") or {}
    top = backdrop.get("top") or [240, 240, 240]
    bottom = backdrop.get("bottom") or top
    horizon = 100 * min(max(float(floor.get("horizon", 1.0)), 0.0), 1.0)
    dark = sum(bottom) < 300
    return f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" width="160" height="160">
<defs><linearGradient id="b" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="{_rgb(top)}"/><stop offset="1" stop-color="{_rgb(bottom)}"/></linearGradient></defs>
<rect width="100" height="100" fill="url(#b)"/>
<rect y="{horizon:.0f}" width="100" height="{100 - horizon:.0f}" fill="{_rgb(floor.get("color") or bottom)}"/>
<ellipse cx="50" cy="79" rx="17" ry="3.5" fill="#000" opacity="{0.5 if dark else 0.18}"/>
<rect x="38" y="38" width="24" height="41" rx="4" fill="{'#d9d4cc' if dark else '#6b5b4e'}"/>
<rect x="41" y="52" width="18" height="12" rx="1" fill="{'#8c7f70' if dark else '#efe8dc'}"/>
</svg>"""


def _rgb(colour: list[int]) -> str:
    return "rgb({},{},{})".format(*(int(c) for c in colour))
