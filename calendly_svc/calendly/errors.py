"""What can go wrong talking to Calendly, by HTTP status and by kind."""

from __future__ import annotations

from typing import Any


class CalendlyError(Exception):
    """Calendly answered with an error (or never answered)."""

    def __init__(
        self, status: int | None, message: str, title: str | None = None, details: Any = None
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.title = title
        self.details = details


class CalendlyAuthError(CalendlyError):
    """The grant or token is no longer valid: the user must reconnect (no retry)."""


class CalendlyPermissionDenied(CalendlyError):
    """403: the token may not do this (plan, role or scope)."""


class CalendlyNotFound(CalendlyError):
    """404."""


class CalendlyConflict(CalendlyError):
    """409: e.g. a webhook subscription with this URL already exists."""


class CalendlyUnavailable(CalendlyError):
    """429, 5xx, timeouts or connection failures that outlasted the retries."""


class NeedsReauth(Exception):
    """The integration has no usable tokens until the user reconnects."""


_BY_STATUS: dict[int, type[CalendlyError]] = {
    401: CalendlyAuthError,
    403: CalendlyPermissionDenied,
    404: CalendlyNotFound,
    409: CalendlyConflict,
}


def error_from_response(status: int, body: Any) -> CalendlyError:
    """Map an error response to its exception, keeping Calendly's message."""
    body = body if isinstance(body, dict) else {}
    message = body.get("message") or body.get("error_description") or body.get("error")
    cls = _BY_STATUS.get(status, CalendlyUnavailable if status >= 500 else CalendlyError)
    return cls(status, str(message or f"HTTP {status}"), body.get("title"), body.get("details"))
