"""Every error the API answers has one JSON shape:

    {"error": {"code": "insufficient_credits", "message": "...", "details": {...}}}

This is the one place where Lightbox's exceptions become HTTP statuses.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from lightbox.errors import LightboxError
from lightbox.observability import logger


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. insufficient_credits.")
    message: str = Field(description="What went wrong, in words a shop owner can act on.")
    details: dict = Field(default_factory=dict,
                          description="e.g. needed and available credits for a 402.")


class ErrorResponse(BaseModel):
    """The body of every error the API answers (the OpenAPI schema names it)."""

    error: ErrorDetail


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LightboxError)
    async def lightbox_error(request: Request, error: LightboxError) -> JSONResponse:
        if error.status_code >= 500:
            logger.exception("request failed", extra={"path": request.url.path})
        return JSONResponse(
            status_code=error.status_code,
            content=error_body(error.code, error.message, _jsonable(error.details)),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "problem": e.get("msg")}
            for e in error.errors()
        ]
        return JSONResponse(
            status_code=422,
            content=error_body("invalid_input", "The request is not valid.", {"problems": problems}),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        not_found_page = getattr(request.app.state, "not_found_page", None)
        if error.status_code == 404 and not_found_page and _a_browser_page(request):
            return not_found_page(request)
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            error.status_code, "http_error")
        return JSONResponse(status_code=error.status_code,
                            content=error_body(code, str(error.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error", extra={"path": request.url.path})
        return JSONResponse(status_code=500,
                            content=error_body("internal_error", "Something went wrong on our side."))


def _a_browser_page(request: Request) -> bool:
    """A browser navigating to a page: a GET that asks for HTML, outside the API."""
    path = request.url.path
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and not path.startswith(("/api/", "/webhooks/", "/static/"))
    )


def _jsonable(details: dict) -> dict:
    return {k: v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else str(v)
            for k, v in details.items()}
