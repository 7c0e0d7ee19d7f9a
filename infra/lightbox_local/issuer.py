"""The local sign-in: an RS256 token issuer standing in for Cognito.

`lightbox dev` signs tokens for a user name (the CLI, the browser's local sign-in
form); the local gateway verifies them as API Gateway's JWT authorizer verifies
Cognito's (signature, issuer, audience, expiry) and hands the claims on. The key pair
is made per run and never leaves the process.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "lightbox-local"
TOKEN_SECONDS = 12 * 3600


class TokenRejected(Exception):
    pass


class LocalIssuer:
    def __init__(self, issuer_url: str = "http://127.0.0.1/local-issuer") -> None:
        self.issuer_url = issuer_url
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex[:16]

    def sign_in(self, user_id: str, *, email: str | None = None,
                lifetime: int = TOKEN_SECONDS) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "iss": self.issuer_url,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + lifetime,
            "token_use": "id",
            "cognito:username": user_id,
            "email": email or f"{user_id}@example.test",
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    def verify(self, token: str) -> dict[str, Any]:
        if not token:
            raise TokenRejected("no token")
        try:
            return jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=AUDIENCE,
                issuer=self.issuer_url,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise TokenRejected(str(error)) from error
