"""The Lightbox API (and, with the web issue, its pages): `create_app()` builds it.

Runs behind Mangum in the `api` function; locally the local gateway invokes that
same handler with the same API Gateway events.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Depends, FastAPI, Query, Request
from pydantic import BaseModel

from lightbox.adapters.ledger import Account, LedgerEntry
from lightbox.catalog import Scene
from lightbox.catalog.packs import Pack, load_packs
from lightbox.catalog.presets import Preset, load_presets
from lightbox.config import get_settings
from lightbox.services import checkout as checkout_service
from lightbox.services import jobs, tools, uploads
from lightbox.services.checkout import CheckoutAnswer, CheckoutRequest
from lightbox.services.context import Context, get_context
from lightbox.web.auth import User, current_user
from lightbox.web.avatars import router as avatars_router
from lightbox.web.errors import ErrorResponse, install_error_handlers
from lightbox.web.pages import install_pages

ERROR_RESPONSES = {
    401: {"description": "Not signed in"},
    404: {"description": "Not found (or not yours)", "model": ErrorResponse},
    422: {"description": "Invalid input", "model": ErrorResponse},
}

#: What an order of a job (a shoot's or a tool's) may be answered with.
TICKET_RESPONSES = {
    **ERROR_RESPONSES,
    402: {"description": "Not enough credits (details: needed, available)",
          "model": ErrorResponse},
}

UPLOAD_EXAMPLES = {
    "three scenes": {"summary": "One shot in each of three scenes", "value": {
        "scenes": ["white-studio", "lifestyle-kitchen", "flat-lay"], "variants": 1,
        "presets": ["original"]}},
    "variants": {"summary": "Four variants on white, at two sizes", "value": {
        "scenes": ["white-studio"], "variants": 4, "presets": ["original", "amazon-main"]}},
}


TOOL_EXAMPLES = {
    "remove background": {"summary": "The product on transparency, at the photo's size",
                          "value": {"tool": "remove-background"}},
    "upscale": {"summary": "The photo four times larger",
                "value": {"tool": "upscale", "options": {"scale": 4}}},
    "fit": {"summary": "Fitted to Amazon's main image, with its compliance report",
            "value": {"tool": "fit", "options": {"preset": "amazon-main"}}},
}


class SceneView(BaseModel):
    id: str
    name: str
    kind: str
    person: bool
    price: int
    #: A small picture of the scene's backdrop (SVG), for choosing.
    thumbnail_url: str


class PresetView(BaseModel):
    """A marketplace preset as a shop chooses it: what it is for, and what it delivers."""

    id: str
    name: str
    purpose: str
    #: "2000 x 2000 px" or "2048 px on the long side".
    size: str
    white_background: bool


class LedgerPage(BaseModel):
    entries: list[LedgerEntry]
    next_cursor: str | None = None


class JobList(BaseModel):
    jobs: list[jobs.JobSummary]
    next_cursor: str | None = None


def request_context(request: Request) -> Context:
    """The clients, built once per container (or the ones a test handed to create_app)."""
    return request.app.state.context or get_context()


CtxDep = Annotated[Context, Depends(request_context)]
UserDep = Annotated[User, Depends(current_user)]


def create_app(context: Context | None = None) -> FastAPI:
    app = FastAPI(
        title="Lightbox",
        version="0.1.0",
        description="Serverless AI product photography: one phone snap in, studio shots out.",
    )
    app.state.context = context
    install_error_handlers(app)
    app.include_router(avatars_router)

    @app.get("/api/scenes", response_model=list[SceneView], tags=["scenes"])
    def list_scenes(c: CtxDep) -> list[SceneView]:
        pricing = c.pricing
        return [_scene_view(s, pricing.shot_price(s)) for s in c.scenes.values()]

    @app.get("/api/presets", response_model=list[PresetView], tags=["scenes"],
             responses=ERROR_RESPONSES)
    def list_presets(user: UserDep) -> list[PresetView]:
        """The marketplace presets a shoot can deliver each shot at, each with its purpose."""
        return [_preset_view(p) for p in load_presets().values()]

    @app.post(
        "/api/uploads",
        response_model=uploads.UploadTicket,
        status_code=201,
        tags=["jobs"],
        responses=TICKET_RESPONSES,
    )
    def create_upload(body: Annotated[uploads.UploadRequest, Body(openapi_examples=UPLOAD_EXAMPLES)],
                      user: UserDep, c: CtxDep) -> uploads.UploadTicket:
        """Reserve the job's credits and get a presigned POST for its photo."""
        return uploads.create_upload(c, user.user_id, body)

    @app.get("/api/tools", response_model=tools.ToolCatalogue, tags=["tools"],
             responses=ERROR_RESPONSES)
    def list_tools(user: UserDep, c: CtxDep) -> tools.ToolCatalogue:
        """The single-image tools, their prices and options, and the presets "fit" takes."""
        return tools.tool_catalogue(c)

    @app.post(
        "/api/tools",
        response_model=uploads.UploadTicket,
        status_code=201,
        tags=["tools"],
        responses=TICKET_RESPONSES,
    )
    def create_tool_upload(
        body: Annotated[tools.ToolRequest, Body(openapi_examples=TOOL_EXAMPLES)],
        user: UserDep, c: CtxDep,
    ) -> uploads.UploadTicket:
        """Reserve a tool's credit and get a presigned POST for its photo. The image is
        made after the upload (GET /api/jobs/{job_id} shows its link when it is done)."""
        return tools.create_tool_upload(c, user.user_id, body)

    @app.get("/api/jobs", response_model=JobList, tags=["jobs"], responses=ERROR_RESPONSES)
    def list_jobs(
        user: UserDep, c: CtxDep,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> JobList:
        found, next_cursor = jobs.list_jobs(c, user.user_id, limit=limit, cursor=cursor)
        return JobList(jobs=found, next_cursor=next_cursor)

    @app.get("/api/jobs/{job_id}", response_model=jobs.JobView, tags=["jobs"],
             responses=ERROR_RESPONSES)
    def read_job(job_id: str, user: UserDep, c: CtxDep) -> jobs.JobView:
        return jobs.job_view(c, user.user_id, job_id)

    @app.post("/api/jobs/{job_id}/zip", response_model=jobs.ShotsZip, status_code=201,
              tags=["jobs"], responses=ERROR_RESPONSES)
    def zip_job(job_id: str, user: UserDep, c: CtxDep) -> jobs.ShotsZip:
        """Every finished shot of the job in one zip: a short-lived link to download it."""
        return jobs.zip_shots(c, user.user_id, job_id)

    @app.get("/api/credits", response_model=Account, tags=["credits"], responses=ERROR_RESPONSES)
    def read_credits(user: UserDep, c: CtxDep) -> Account:
        """The signed-in user's balance, credits held by running jobs, and any debt."""
        return c.ledger.balance(user.user_id)

    @app.get("/api/credits/ledger", response_model=LedgerPage, tags=["credits"],
             responses=ERROR_RESPONSES)
    def read_ledger(
        user: UserDep, c: CtxDep,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> LedgerPage:
        """Every credit movement of the signed-in user, newest first."""
        entries, next_cursor = c.ledger.ledger_page(user.user_id, limit=limit, cursor=cursor)
        return LedgerPage(entries=entries, next_cursor=next_cursor)

    @app.get("/api/packs", response_model=list[Pack], tags=["credits"])
    def list_packs() -> list[Pack]:
        return list(load_packs().values())

    @app.post("/api/checkout", response_model=CheckoutAnswer, status_code=201, tags=["credits"],
              responses=ERROR_RESPONSES)
    def checkout(
        body: CheckoutRequest, user: UserDep, c: CtxDep, request: Request
    ) -> CheckoutAnswer:
        """Open a Stripe Checkout Session for a pack (locally: the local checkout)."""
        # Stripe returns the buyer to the app: its configured address, else this API's.
        base_url = c.settings.app_base_url or str(request.base_url)
        return checkout_service.open_checkout(c, user.user_id, body, base_url=base_url)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    install_pages(app, context.settings if context else get_settings())
    return app


def _preset_view(preset: Preset) -> PresetView:
    canvas = preset.canvas
    size = (f"{canvas.width} x {canvas.height} px" if canvas.width and canvas.height
            else f"{canvas.long_side} px on the long side")
    return PresetView(id=preset.id, name=preset.name, purpose=preset.purpose, size=size,
                      white_background=preset.white_background)


def _scene_view(scene: Scene, price: int) -> SceneView:
    return SceneView(id=scene.id, name=scene.name, kind=scene.kind, person=scene.person,
                     price=price, thumbnail_url=f"/scenes/{scene.id}.svg")
