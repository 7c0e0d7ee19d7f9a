"""Lightbox's exceptions.

One small hierarchy. State machine tasks raise these by name so that `Retry` and
`Catch` in the ASL can match them (Step Functions sees the class name as the error
name); the HTTP layer maps them to status codes in exactly one place
(`lightbox.web.errors`). Nothing matches on message text.
"""

from __future__ import annotations


class LightboxError(Exception):
    """Base of every error Lightbox raises on purpose."""

    #: HTTP status the API answers with when this error reaches it.
    status_code = 500
    #: Stable, machine-readable code for clients.
    code = "internal_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# --- bad input: the caller can fix it -------------------------------------------------


class InvalidInput(LightboxError):
    status_code = 422
    code = "invalid_input"


class NotFound(LightboxError):
    status_code = 404
    code = "not_found"


class Forbidden(LightboxError):
    """Never shown as such to a user: the API answers 404 for other users' things."""

    status_code = 404
    code = "not_found"


class Unauthorized(LightboxError):
    status_code = 401
    code = "unauthorized"


class InvalidImage(InvalidInput):
    """The upload is not an image we can read (corrupt, truncated, empty, wrong type)."""

    status_code = 415
    code = "invalid_image"


class ImageTooLarge(InvalidInput):
    """Too many bytes, or too many pixels (a decompression bomb)."""

    status_code = 413
    code = "image_too_large"


class InsufficientCredits(LightboxError):
    status_code = 402
    code = "insufficient_credits"

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(
            f"This needs {needed} credits and you have {available}.",
            needed=needed,
            available=available,
        )
        self.needed = needed
        self.available = available


class AccountInDebt(LightboxError):
    status_code = 402
    code = "account_in_debt"


class InvalidSignature(LightboxError):
    """A webhook whose signature, timestamp or headers do not verify."""

    status_code = 400
    code = "invalid_signature"


class Conflict(LightboxError):
    status_code = 409
    code = "conflict"


# --- faults: trying again later may help ------------------------------------------------


class TransientError(LightboxError):
    """A dependency failed in a way that a retry can fix (throttling, 5xx, timeouts)."""

    status_code = 503
    code = "temporarily_unavailable"


class RateBudgetExhausted(TransientError):
    """The shared Replicate budget has no room right now; retry after a pause."""

    code = "rate_limited"
    status_code = 429


class ModelError(LightboxError):
    """A model call was refused in a way a retry will not fix (bad input, 4xx)."""

    status_code = 502
    code = "model_error"
