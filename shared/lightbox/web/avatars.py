"""The avatars API: the picker's catalogue and filters, the custom-avatar wizard.

    GET  /api/avatars/options            attributes and their values, portrait price
    GET  /api/avatars                    catalogue avatars and the user's own, filtered
    POST /api/avatars                    the wizard: ask for candidate portraits
    GET  /api/avatars/{avatar_id}        one avatar (the user's own, or the catalogue's)
    POST /api/avatars/{avatar_id}/keep   keep one candidate as the avatar's portrait

A job uses an avatar through POST /api/uploads {"avatar_id": ...} with scenes that
have a person. Handlers are thin: every rule is in lightbox.services.avatars.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from lightbox.services import avatars
from lightbox.services.avatars import AvatarOptions, AvatarRequest, AvatarView, KeepRequest
from lightbox.services.context import Context, get_context
from lightbox.web.auth import User, current_user
from lightbox.web.errors import ErrorResponse

router = APIRouter(prefix="/api/avatars", tags=["avatars"])

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"description": "Not signed in"},
    404: {"description": "Not found (or not yours)", "model": ErrorResponse},
    422: {"description": "Invalid input; details list the allowed values",
          "model": ErrorResponse},
}


def _context(request: Request) -> Context:
    return request.app.state.context or get_context()


CtxDep = Annotated[Context, Depends(_context)]
UserDep = Annotated[User, Depends(current_user)]
Values = Annotated[list[str] | None, Query(max_length=20)]


class AvatarList(BaseModel):
    avatars: list[AvatarView]


@router.get("/options", response_model=AvatarOptions, responses=ERRORS)
def avatar_options(user: UserDep, c: CtxDep) -> AvatarOptions:
    """The attributes a shop chooses by, each with its values (ids and labels)."""
    return avatars.options(c)


@router.get("", response_model=AvatarList, responses=ERRORS)
def list_avatars(
    user: UserDep,
    c: CtxDep,
    age_range: Values = None,
    gender_presentation: Values = None,
    skin_tone: Values = None,
    hair: Values = None,
    build: Values = None,
    style: Values = None,
    setting: Values = None,
    source: Literal["all", "catalogue", "mine"] = "all",
    usable: bool = False,
) -> AvatarList:
    """Catalogue avatars and the user's own; an attribute given more than once matches any
    of its values. `usable=true` keeps only avatars a job can use now."""
    filters = {
        "age_range": age_range, "gender_presentation": gender_presentation,
        "skin_tone": skin_tone, "hair": hair, "build": build, "style": style,
        "setting": setting,
    }
    chosen = {name: values for name, values in filters.items() if values}
    return AvatarList(avatars=avatars.list_avatars(c, user.user_id, filters=chosen,
                                                   source=source, usable_only=usable))


@router.post("", response_model=AvatarView, status_code=201,
             responses={**ERRORS,
                        402: {"description": "Not enough credits", "model": ErrorResponse},
                        429: {"description": "Busy; try again shortly", "model": ErrorResponse}})
def create_avatar(body: AvatarRequest, user: UserDep, c: CtxDep) -> AvatarView:
    """Reserve the candidates' credits and ask for candidate portraits (raw mode, one seed
    each); poll GET /api/avatars/{id} until its status is `choosing`."""
    return avatars.create_avatar(c, user.user_id, body)


@router.get("/{avatar_id}", response_model=AvatarView, responses=ERRORS)
def read_avatar(avatar_id: str, user: UserDep, c: CtxDep) -> AvatarView:
    return avatars.avatar_view(c, user.user_id, avatar_id)


@router.post("/{avatar_id}/keep", response_model=AvatarView,
             responses={**ERRORS,
                        409: {"description": "No portrait to keep yet", "model": ErrorResponse}})
def keep_candidate(avatar_id: str, body: KeepRequest, user: UserDep, c: CtxDep) -> AvatarView:
    """Make one generated candidate the avatar's portrait; the avatar is then usable."""
    return avatars.keep_candidate(c, user.user_id, avatar_id, body.candidate)
