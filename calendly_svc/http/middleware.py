"""Request ids, service authentication, and the one JSON error body."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from calendly_svc.calendly.errors import (
    CalendlyAuthError,
    CalendlyError,
    CalendlyMissingScope,
    NeedsReauth,
)
from calendly_svc.errors import ServiceError
from calendly_svc.http.responses import Error, ErrorDetail
from calendly_svc.keys import METRICS, REQUEST_ID, SETTINGS, USER_ID
from calendly_svc.metrics import Timer

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1/calendly/"
# Calendly and the user's browser call these; they authenticate by signature or by state.
PUBLIC_PATHS = frozenset({API_PREFIX + "webhook", API_PREFIX + "oauth/callback"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# routes whose successful requests are not logged one by one (Calendly's deliveries)
QUIET_ROUTES = frozenset({API_PREFIX + "webhook"})

# Unique constraints the edge turns into 409s with a meaningful code.
CONSTRAINT_CONFLICTS: dict[str, tuple[str, str]] = {
    "integrations_calendly_user_uri_key": (
        "calendly_account_in_use",
        "this Calendly account is already connected to another user",
    ),
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error body every failure uses (built unvalidated: reporting an error must not fail)."""
    detail = ErrorDetail.model_construct(code=code, message=message, details=details)
    return Error.model_construct(error=detail).model_dump(mode="json")


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    """A JSON error response."""
    return web.json_response(error_body(code, message, details), status=status)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Echo or mint X-Request-Id, bind it to the log context, log the request once."""
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(16)
    request[REQUEST_ID] = request_id
    structlog.contextvars.bind_contextvars(request_id=request_id)
    timer = Timer()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:  # redirects leave as exceptions
        status = exc.status
        exc.headers["X-Request-Id"] = request_id
        raise
    finally:
        _observe(request, status, timer.elapsed())
        structlog.contextvars.unbind_contextvars("request_id")


def _observe(request: web.Request, status: int, seconds: float) -> None:
    """The HTTP metrics for a finished request, and one log line unless it is a delivery
    stored (the webhook log and the metrics count those; a line each costs ~20 µs)."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].observe_http(request.method, route, status, seconds)
    if status < 400 and route in QUIET_ROUTES:
        return
    log.info("http_request", method=request.method, path=request.path, status=status,
             ms=round(seconds * 1000, 1))  # fmt: skip


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _http_exception(exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (unknown route, wrong method, body too large) as JSON."""
    code = _HTTP_CODES.get(exc.status, re.sub(r"\W+", "_", exc.reason.lower()).strip("_"))
    response = error_response(exc.status, code, exc.reason)
    if exc.status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


# What asyncpg raises while Postgres is unreachable, shutting down or starting up.
DATABASE_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,
    asyncpg.InternalClientError,
)


@dataclass(frozen=True, slots=True)
class Failure:
    """How an exception leaves the service."""

    status: int
    code: str
    message: str
    details: Any = None


def classify(exc: Exception) -> Failure | None:
    """Domain and driver errors to status and code; None for the unexpected."""
    if isinstance(exc, ServiceError):
        return Failure(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, NeedsReauth | CalendlyAuthError):
        message = "the Calendly connection must be re-authorized by the user"
        return Failure(409, "needs_reauth", message, {"reason": str(exc)})
    if isinstance(exc, CalendlyMissingScope):
        message = "the Calendly grant lacks a scope this needs; the user must reconnect to grant it"
        return Failure(409, "missing_scope", message, {"required_scopes": exc.scopes})
    if isinstance(exc, CalendlyError):
        return Failure(502, "calendly_error", exc.message, {"status": exc.status})
    if isinstance(exc, asyncpg.UniqueViolationError):
        code, message = CONSTRAINT_CONFLICTS.get(
            exc.constraint_name or "", ("conflict", "the resource already exists")
        )
        return Failure(409, code, message)
    if isinstance(exc, DATABASE_DOWN):
        return Failure(503, "service_unavailable", "a dependency is unavailable")
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as {"error": {code, message, details}}."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_exception(exc)
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            log.exception("unhandled_error", path=request.path)
            return error_response(500, "internal_error", "internal server error")
        if failure.status >= 500:
            log.warning("request_failed", path=request.path, error=type(exc).__name__)
        return error_response(failure.status, failure.code, failure.message, failure.details)


def _token_ok(presented: str, allowed: list[str]) -> bool:
    """Constant-time comparison against every configured token."""
    # header bytes that are not UTF-8 arrive as surrogate escapes: compare them as bytes
    given = presented.encode("utf-8", "surrogateescape")
    matches = [hmac.compare_digest(given, token.encode()) for token in allowed]
    return any(matches)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token + X-User-Id on every /api/v1/calendly route but the public ones."""
    if not request.path.startswith(API_PREFIX) or request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _token_ok(
        presented, request.app[SETTINGS].service_api_tokens
    ):
        return error_response(401, "unauthorized", "a valid bearer token is required")
    raw_user = request.headers.get("X-User-Id", "")
    if (
        not raw_user.isascii()
        or not raw_user.isdigit()
        or len(raw_user) > 19
        or not 0 < int(raw_user) < 2**63
    ):
        details = [{"field": "X-User-Id", "message": "a positive integer header is required"}]
        return error_response(
            400, "invalid_user_id", "X-User-Id must be a positive integer", details
        )
    request[USER_ID] = int(raw_user)
    structlog.contextvars.bind_contextvars(user_id=request[USER_ID])
    try:
        return await handler(request)
    finally:
        structlog.contextvars.unbind_contextvars("user_id")
