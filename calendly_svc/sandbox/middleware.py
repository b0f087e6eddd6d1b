"""Request pipeline: latency faults, stats, injected failures, auth and rate limits."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from .errors import ApiError, ControlError, OAuthError, SandboxError, calendly_error
from .models import User
from .ratelimit import Decision
from .scopes import check_route
from .state import SANDBOX_STATE, SandboxState

CALLER: web.RequestKey[User] = web.RequestKey("calendly_sandbox_caller", User)
# The scopes of the caller's grant (None: a legacy grant with full access).
GRANT: web.RequestKey[tuple[str, ...] | None] = web.RequestKey("calendly_sandbox_grant")


def caller(request: web.Request) -> User:
    """The authenticated Calendly user of an API request."""
    return request[CALLER]


def area_of(path: str) -> str:
    """Which surface a path belongs to: control, oauth or api."""
    if path == "/_sandbox" or path.startswith("/_sandbox/"):
        return "control"
    if path.startswith("/oauth/"):
        return "oauth"
    return "api"


def route_template(request: web.Request) -> str:
    """The matched route's template, e.g. /scheduled_events/{uuid}/invitees."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "<unmatched>"


def bearer_token(request: web.Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


@web.middleware
async def sandbox_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Dispatch to the control, OAuth or API pipeline."""
    state = request.app[SANDBOX_STATE]
    area = area_of(request.path)
    if area == "control":
        return await _guarded(request, handler)
    if state.faults.latency_ms > 0:
        await asyncio.sleep(state.faults.latency_ms / 1000)
    state.stats.record(request.method, route_template(request))
    if area == "oauth":
        return await _guarded(request, handler)
    return await _api_call(request, handler, state)


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a control or OAuth handler, rendering errors (404/405 included) as JSON."""
    try:
        return await handler(request)
    except SandboxError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if area_of(request.path) == "control":
            return ControlError(exc.status, exc.reason).response()
        return OAuthError(exc.status, "invalid_request", exc.reason).response()


async def _api_call(
    request: web.Request, handler: Handler, state: SandboxState
) -> web.StreamResponse:
    """Fail injection, rate limiting and authentication around an API handler."""
    token = bearer_token(request)
    access = state.access_tokens.get(token) if token else None
    bucket = access.user_uuid if access else f"anonymous:{request.remote}"
    if state.faults.fail_next > 0 and state.faults.fail_target in ("api", "all"):
        return _injected_failure(state, bucket)
    decision = state.rate_limiter.hit(
        bucket, state.faults.rate_limit_per_minute, state.faults.rate_limit_window_seconds
    )
    if not decision.allowed:
        state.stats.rate_limited += 1
        response: web.StreamResponse = calendly_error(429)
    else:
        response = await _authenticated(request, handler, state, token)
    # a handler's own limit (the Scheduling API's per-plan one) keeps its headers
    for name, value in decision.headers().items():
        response.headers.setdefault(name, value)
    return response


async def _authenticated(
    request: web.Request, handler: Handler, state: SandboxState, token: str | None
) -> web.StreamResponse:
    """Resolve the caller and run the handler, mapping errors to Calendly bodies."""
    try:
        request[CALLER] = authenticate(state, token)
        request[GRANT] = state.access_tokens[str(token)].scopes
        check_route(request[GRANT], request.method, route_template(request))
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status >= 400:
            return calendly_error(exc.status)
        raise


def authenticate(state: SandboxState, token: str | None) -> User:
    """The user owning a valid access token; 401 for missing, unknown, expired, revoked."""
    access = state.access_tokens.get(token) if token else None
    if access is None:
        raise ApiError(401, "The access token is invalid")
    if access.revoked:
        raise ApiError(401, "The access token is revoked")
    if access.expires_at <= time.time():
        raise ApiError(401, "The access token is expired")
    return state.users[access.user_uuid]


def _injected_failure(state: SandboxState, bucket: str) -> web.Response:
    """Answer one request with the configured failure status (fail_next)."""
    faults = state.faults
    faults.fail_next -= 1
    response = calendly_error(faults.fail_status)
    if faults.fail_status == 429:
        state.stats.rate_limited += 1
        decision = Decision(False, faults.rate_limit_per_minute, 0, 1)
    else:
        decision = state.rate_limiter.peek(
            bucket, faults.rate_limit_per_minute, faults.rate_limit_window_seconds
        )
    response.headers.update(decision.headers())
    return response
