"""Domain errors; the HTTP edge maps each to a status and a JSON error body."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error with a stable snake_case code, an HTTP status and optional details."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: Any = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class BadRequest(ServiceError):
    """The request is malformed (400)."""

    status = 400
    code = "bad_request"


class Unauthorized(ServiceError):
    """Missing or wrong credentials (401)."""

    status = 401
    code = "unauthorized"


class NotFound(ServiceError):
    """The resource does not exist for this caller (404)."""

    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """The request conflicts with the current state (409)."""

    status = 409
    code = "conflict"


class Unprocessable(ServiceError):
    """Well-formed but invalid fields (422)."""

    status = 422
    code = "validation_error"


class UpstreamError(ServiceError):
    """Calendly failed or refused (502)."""

    status = 502
    code = "calendly_error"


class Unavailable(ServiceError):
    """A dependency is down; retry later (503)."""

    status = 503
    code = "service_unavailable"


def not_connected() -> NotFound:
    """The caller has no live Calendly integration."""
    return NotFound("no Calendly account is connected", code="not_connected")
