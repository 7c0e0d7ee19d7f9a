"""Who is calling: the claims API Gateway's JWT authorizer verified.

In AWS the HTTP API's JWT authorizer (Cognito) checks the token before the function
runs and passes its claims in the event. Locally, the local gateway verifies tokens
from the local issuer the same way and puts the claims in the same place. The API
reads them from there in both cases, and never decodes a token itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel

from lightbox.errors import Unauthorized


class User(BaseModel):
    user_id: str
    email: str | None = None


def claims_from_event(event: dict[str, Any] | None) -> dict[str, Any] | None:
    if not event:
        return None
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return claims if isinstance(claims, dict) else None


def current_user(request: Request) -> User:
    claims = claims_from_event(request.scope.get("aws.event"))
    if not claims or not claims.get("sub"):
        raise Unauthorized("Sign in first.")
    return User(user_id=str(claims["sub"]), email=claims.get("email"))
