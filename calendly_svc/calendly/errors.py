"""What can go wrong talking to Calendly, by HTTP status and by kind."""

from __future__ import annotations

from typing import Any

from calendly_svc.calendly.scopes import allows


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


class CalendlyMissingScope(CalendlyPermissionDenied):
    """403 because the grant lacks an OAuth scope: permanent until the user re-authorizes."""

    def __init__(self, scopes: list[str], message: str, details: Any = None) -> None:
        super().__init__(403, message, "Permission Denied", details)
        self.scopes = scopes


class CalendlyNotFound(CalendlyError):
    """404."""


class CalendlyConflict(CalendlyError):
    """409: e.g. a webhook subscription with this URL already exists."""


class CalendlyUnavailable(CalendlyError):
    """429, 5xx, timeouts or connection failures that outlasted the retries."""


class CalendlyBadRequest(CalendlyError):
    """400: Calendly refused the parameters (message and details kept)."""


class CalendlyRateLimited(CalendlyUnavailable):
    """429 on an unsafe call: raised at once, never waited out (nothing was applied)."""

    def __init__(self, message: str, retry_after: float, details: Any = None) -> None:
        super().__init__(429, message, "Too Many Requests", details)
        self.retry_after = retry_after


class CalendlyOutcomeUnknown(CalendlyError):
    """A non-idempotent call was sent but no answer came (timeout, dropped connection, 5xx
    after sending): it may or may not have been applied."""


class NeedsReauth(Exception):
    """The integration has no usable tokens until the user reconnects."""


_BY_STATUS: dict[int, type[CalendlyError]] = {
    400: CalendlyBadRequest,
    401: CalendlyAuthError,
    403: CalendlyPermissionDenied,
    404: CalendlyNotFound,
    409: CalendlyConflict,
}


def missing_scope_error(
    body: Any, required: str | None, granted: list[str] | None
) -> CalendlyMissingScope | None:
    """A 403 that names required scopes, or that needs one the grant is known to lack."""
    body = body if isinstance(body, dict) else {}
    named = body.get("required_scopes")
    if isinstance(named, list) and named:
        scopes = [str(scope) for scope in named]
    elif required is not None and granted is not None and not allows(granted, required):
        scopes = [required]
    else:
        return None
    message = f"the Calendly grant lacks the scope(s) {' '.join(scopes)}"
    return CalendlyMissingScope(scopes, message, body.get("details"))


def error_from_response(status: int, body: Any) -> CalendlyError:
    """Map an error response to its exception, keeping Calendly's message."""
    body = body if isinstance(body, dict) else {}
    message = body.get("message") or body.get("error_description") or body.get("error")
    cls = _BY_STATUS.get(status, CalendlyUnavailable if status >= 500 else CalendlyError)
    return cls(status, str(message or f"HTTP {status}"), body.get("title"), body.get("details"))
