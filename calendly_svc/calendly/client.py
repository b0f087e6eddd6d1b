"""The only code that talks to the Calendly API: auth, rate limits, retries, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import structlog
from yarl import URL

from calendly_svc.calendly.errors import (
    CalendlyError,
    CalendlyOutcomeUnknown,
    CalendlyRateLimited,
    CalendlyUnavailable,
    error_from_response,
    missing_scope_error,
)
from calendly_svc.calendly.ratelimit import RateLimiters
from calendly_svc.calendly.scopes import required_scope
from calendly_svc.calendly.tokens import TokenSource
from calendly_svc.jitter import jittered
from calendly_svc.metrics import Metrics, endpoint_of
from calendly_svc.store.storable import storable_json

log = structlog.get_logger(__name__)
MAX_PAGE = 100
# Calendly allows 31 days per available-times call since 2026-07-09; 7 (the old limit) still works
AVAILABLE_TIMES_SPAN = timedelta(days=7)


@dataclass(slots=True)
class CallStats:
    """API calls and rate-limit waits made in one context (e.g. one sync)."""

    calls: int = 0
    rate_limited_waits: int = 0


# Set by a caller that wants its own counts; tasks it spawns share the same object.
current_stats: ContextVar[CallStats | None] = ContextVar("calendly_call_stats", default=None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often to retry transient failures."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_rate_limit_waits: int = 20
    max_reset_wait: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter for the given attempt (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return jittered(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class _Response:
    """What one HTTP exchange produced."""

    status: int
    headers: Mapping[str, str]
    body: Any


def _reset_seconds(headers: Mapping[str, str], cap: float) -> float:
    """X-RateLimit-Reset is seconds until the window reopens (not an epoch)."""
    try:
        value = float(headers.get("X-RateLimit-Reset", "60"))
    except ValueError:
        value = 60.0
    return min(max(value, 0.0), cap)


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds until Calendly takes the call again: X-RateLimit-Reset, else Retry-After, else 60."""
    for name in ("X-RateLimit-Reset", "Retry-After"):
        try:
            return max(float(headers[name]), 0.0)
        except (KeyError, ValueError):
            continue
    return 60.0


def _outcome_unknown(method: str, url: str, cause: str, status: int | None = None) -> CalendlyError:
    """An unsafe call that may have been applied: it is never re-sent blind."""
    endpoint = endpoint_of(url)
    log.warning("calendly_outcome_unknown", method=method, endpoint=endpoint, cause=cause)
    message = f"{method} {endpoint}: no answer from Calendly ({cause}); it may have been applied"
    return CalendlyOutcomeUnknown(status, message)


def _unsafe_refusal(method: str, url: str, resp: _Response) -> CalendlyError:
    """A 429 (refused, nothing applied) or 5xx (outcome unknown) answering an unsafe call."""
    if resp.status == 429:
        error = error_from_response(429, resp.body)
        return CalendlyRateLimited(error.message, _retry_after(resp.headers), error.details)
    return _outcome_unknown(method, url, f"HTTP {resp.status}", resp.status)


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    """Scheme, host and port (the scheme's default when none is written)."""
    return url.scheme.lower(), (url.host or "").lower() or None, url.port


def resource_id(uri: str) -> str:
    """The last path segment of a Calendly URI, quoted for use in a path."""
    segment = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
    if not segment:
        raise CalendlyError(None, f"no resource id in {uri!r}")
    return quote(segment, safe="")


class CalendlyClient:
    """Calendly API v2 over one shared aiohttp session."""

    def __init__(
        self, session: aiohttp.ClientSession, api_base_url: str, limiters: RateLimiters,
        retry: RetryPolicy | None = None, timeout: float = 30.0, metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        self.session = session
        self.api_base_url = api_base_url
        self._origin = _origin(URL(api_base_url))
        self._limits = limiters
        self._retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.calls = 0
        self.rate_limited_waits = 0
        self._metrics = metrics

    def _url(self, path_or_url: str) -> str:
        """An absolute API URL: a path must start with one "/", and the resolved URL must have
        the API's origin (scheme, host, port) and no userinfo, so the token goes nowhere else."""
        is_path = path_or_url.startswith("/") and not path_or_url.startswith("//")
        url = self.api_base_url + path_or_url if is_path else path_or_url
        try:
            resolved = URL(url)
            same = resolved.is_absolute() and _origin(resolved) == self._origin
        except ValueError:
            same = False
        if not same or resolved.raw_user is not None or resolved.raw_password is not None:
            raise CalendlyError(None, f"refusing to send a token to {path_or_url[:200]!r}")
        return url

    async def _send(
        self, method: str, url: str, token: str, params: Mapping[str, Any] | None,
        json: Any,
    ) -> _Response:  # fmt: skip
        """One HTTP exchange; the body is parsed JSON (None when empty)."""
        headers = {"Authorization": f"Bearer {token}"}
        self.calls += 1
        if (stats := current_stats.get()) is not None:
            stats.calls += 1
        async with self.session.request(
            method, url, params=params, json=json, headers=headers, timeout=self._timeout
        ) as resp:
            raw = await resp.read()
            body: Any = None
            if raw:
                try:
                    body = storable_json(raw, await resp.json(content_type=None))
                except ValueError:
                    body = {"message": raw[:200].decode(errors="replace")}
            return _Response(resp.status, resp.headers, body)

    def _count(self, url: str, status: int | str) -> None:
        """Count a call by endpoint template and outcome."""
        if self._metrics is not None:
            self._metrics.calendly_call(url, status)

    def _observe(self, user: str, headers: Mapping[str, str]) -> None:
        """Follow the limit Calendly reports; close the gate when nothing remains."""
        limit = headers.get("X-RateLimit-Limit", "")
        if limit.isdigit():
            self._limits.observe_limit(user, int(limit))
        if headers.get("X-RateLimit-Remaining") == "0":
            self._limits.block(user, _reset_seconds(headers, self._retry.max_reset_wait))

    async def request(
        self, source: TokenSource, method: str, path_or_url: str, *,
        params: Mapping[str, Any] | None = None, json: Any = None, unsafe: bool = False,
    ) -> Any:  # fmt: skip
        """Send one API call with auth, limits and retries; returns the parsed body.
        `unsafe` (a non-idempotent call) is never re-sent once it may have reached Calendly."""
        url = self._url(path_or_url)
        token = await source.token()
        refreshed, failures, waits = False, 0, 0
        while True:
            await self._limits.acquire(source.user)
            try:
                resp = await self._send(method, url, token, params, json)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._count(url, type(exc).__name__)
                if unsafe and not isinstance(exc, aiohttp.ClientConnectorError):
                    raise _outcome_unknown(method, url, f"{type(exc).__name__}") from exc
                failures += 1
                await self._pause_or_raise(failures, f"{type(exc).__name__} calling Calendly")
                continue
            if not (unsafe and resp.status == 429):
                self._observe(source.user, resp.headers)
            self._count(url, resp.status)
            if resp.status < 400:
                return resp.body
            if resp.status == 401:
                if refreshed:
                    await source.invalidate("Calendly rejected a freshly refreshed token")
                token, refreshed = await source.token(rejected=token), True
            elif unsafe and (resp.status == 429 or resp.status >= 500):
                raise _unsafe_refusal(method, url, resp)
            elif resp.status == 429:
                waits += 1
                await self._wait_for_reset(source.user, resp, waits)
            elif resp.status >= 500:
                failures += 1
                await self._pause_or_raise(failures, error_from_response(resp.status, resp.body))
            elif resp.status == 403:
                raise self._forbidden(source, method, url, resp.body)
            else:
                raise error_from_response(resp.status, resp.body)

    @staticmethod
    def _forbidden(source: TokenSource, method: str, url: str, body: Any) -> CalendlyError:
        """A missing scope (never retried) or another refusal (role, plan, state)."""
        required = required_scope(method, url)
        error = missing_scope_error(body, required, source.scopes)
        if error is None:
            return error_from_response(403, body)
        log.warning("calendly_missing_scope", endpoint=endpoint_of(url), scopes=error.scopes)
        return error

    async def _pause_or_raise(self, failures: int, error: CalendlyError | str) -> None:
        """Back off before the next try, or give up once the retries are spent."""
        if failures > self._retry.max_retries:
            if isinstance(error, CalendlyError):
                raise error
            raise CalendlyUnavailable(None, error)
        delay = self._retry.backoff(failures)
        log.info("calendly_retry", attempt=failures, delay=round(delay, 3), error=str(error))
        await asyncio.sleep(delay)

    async def _wait_for_reset(self, user: str, resp: _Response, waits: int) -> None:
        """Honour a 429: everyone calling as this user waits out X-RateLimit-Reset."""
        if waits > self._retry.max_rate_limit_waits:
            raise CalendlyUnavailable(429, "rate limited by Calendly too many times")
        delay = _reset_seconds(resp.headers, self._retry.max_reset_wait)
        self.rate_limited_waits += 1
        if self._metrics is not None:
            self._metrics.calendly_rate_limit_waits.inc()
        if (stats := current_stats.get()) is not None:
            stats.rate_limited_waits += 1
        log.info("calendly_rate_limited", wait_seconds=delay)
        self._limits.block(user, delay)

    async def paginate(
        self, source: TokenSource, path: str, params: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a collection, following pagination.next_page."""
        url: str | None = path
        query: Mapping[str, Any] | None = {**params, "count": MAX_PAGE}
        while url:
            page = await self.request(source, "GET", url, params=query)
            for item in page.get("collection", []):
                yield item
            url, query = (page.get("pagination") or {}).get("next_page"), None

    # --- endpoints ----------------------------------------------------------------------------

    async def get_me(self, source: TokenSource) -> dict[str, Any]:
        """The connected user (GET /users/me)."""
        body = await self.request(source, "GET", "/users/me")
        resource: dict[str, Any] = body["resource"]
        return resource

    async def get_event_type(self, source: TokenSource, uri: str) -> dict[str, Any]:
        """One event type, read by the uuid of its URI (GET /event_types/{uuid})."""
        body = await self.request(source, "GET", f"/event_types/{resource_id(uri)}")
        resource: dict[str, Any] = body["resource"]
        return resource

    async def get_scheduled_event(self, source: TokenSource, uri: str) -> dict[str, Any]:
        """One scheduled event, read by the uuid of its URI (GET /scheduled_events/{uuid})."""
        body = await self.request(source, "GET", f"/scheduled_events/{resource_id(uri)}")
        resource: dict[str, Any] = body["resource"]
        return resource

    def event_types(self, source: TokenSource, user_uri: str) -> AsyncIterator[dict[str, Any]]:
        """Every event type of the user, active or not."""
        return self.paginate(source, "/event_types", {"user": user_uri})

    async def create_webhook(self, source: TokenSource, body: dict[str, Any]) -> dict[str, Any]:
        """POST /webhook_subscriptions; raises CalendlyConflict for a URL in use."""
        created = await self.request(source, "POST", "/webhook_subscriptions", json=body)
        resource: dict[str, Any] = created["resource"]
        return resource

    async def delete_webhook(self, source: TokenSource, uri: str) -> None:
        """DELETE a subscription by its URI (204)."""
        await self.request(source, "DELETE", uri)

    def webhooks(
        self, source: TokenSource, params: dict[str, str]
    ) -> AsyncIterator[dict[str, Any]]:
        """Subscriptions matching organization/scope/user."""
        return self.paginate(source, "/webhook_subscriptions", params)

    async def get_webhook(self, source: TokenSource, uri: str) -> dict[str, Any]:
        """One subscription (404 when Calendly deleted it)."""
        body = await self.request(source, "GET", uri)
        resource: dict[str, Any] = body["resource"]
        return resource

    def scheduled_events(
        self, source: TokenSource, user_uri: str, start: str, end: str
    ) -> AsyncIterator[dict[str, Any]]:
        """The user's events (active and canceled) starting inside the window, by start time."""
        params = {"user": user_uri, "min_start_time": start, "max_start_time": end,
                  "sort": "start_time:asc"}  # fmt: skip
        return self.paginate(source, "/scheduled_events", params)

    async def get_invitee(self, source: TokenSource, uri: str) -> dict[str, Any]:
        """One invitee by its URI (GET /scheduled_events/{uuid}/invitees/{uuid})."""
        body = await self.request(source, "GET", uri)
        resource: dict[str, Any] = body["resource"]
        return resource

    async def get_event(self, source: TokenSource, uri: str) -> dict[str, Any]:
        """One scheduled event by its URI (GET /scheduled_events/{uuid})."""
        body = await self.request(source, "GET", uri)
        resource: dict[str, Any] = body["resource"]
        return resource

    async def get_invitee_and_event(
        self, source: TokenSource, uri: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One invitee by its URI and the scheduled event it names (two reads)."""
        invitee = await self.get_invitee(source, uri)
        if not isinstance(event_uri := invitee.get("event"), str):
            raise CalendlyError(None, "the invitee names no scheduled event")
        return invitee, await self.get_event(source, event_uri)

    def invitees(self, source: TokenSource, event_uri: str) -> AsyncIterator[dict[str, Any]]:
        """Every invitee (active and canceled) of one event."""
        return self.paginate(source, f"{event_uri}/invitees", {})

    # --- acting on Calendly (FACTS §13): every POST and DELETE here is unsafe ----------------

    async def _create(self, source: TokenSource, path: str, body: Any) -> dict[str, Any]:
        """POST an unsafe create and return its `resource`."""
        created = await self.request(source, "POST", path, json=body, unsafe=True)
        resource: dict[str, Any] = created["resource"]
        return resource

    async def cancel_event(
        self, source: TokenSource, event_uri: str, reason: str | None
    ) -> dict[str, Any]:
        """Cancel a scheduled event for every invitee; returns the Cancellation resource."""
        body = {"reason": reason} if reason is not None else {}
        path = f"/scheduled_events/{resource_id(event_uri)}/cancellation"
        return await self._create(source, path, body)

    async def create_no_show(self, source: TokenSource, invitee_uri: str) -> dict[str, Any]:
        """Mark an invitee as a no-show; returns the InviteeNoShow resource."""
        return await self._create(source, "/invitee_no_shows", {"invitee": invitee_uri})

    async def delete_no_show(self, source: TokenSource, no_show_uri: str) -> None:
        """Unmark a no-show (DELETE /invitee_no_shows/{uuid}, 204)."""
        path = f"/invitee_no_shows/{resource_id(no_show_uri)}"
        await self.request(source, "DELETE", path, unsafe=True)

    async def get_no_show(self, source: TokenSource, no_show_uri: str) -> dict[str, Any]:
        """One InviteeNoShow (GET /invitee_no_shows/{uuid})."""
        body = await self.request(source, "GET", f"/invitee_no_shows/{resource_id(no_show_uri)}")
        resource: dict[str, Any] = body["resource"]
        return resource

    async def available_times(
        self, source: TokenSource, event_type_uri: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """Available times in [start, end), one call per AVAILABLE_TIMES_SPAN, ordered by start
        time without duplicates."""
        found: dict[str, dict[str, Any]] = {}
        for low, high in _windows(start, end, AVAILABLE_TIMES_SPAN):
            params = {"event_type": event_type_uri, "start_time": _utc_text(low),
                      "end_time": _utc_text(high)}  # fmt: skip
            body = await self.request(source, "GET", "/event_type_available_times", params=params)
            for item in body.get("collection", []):
                found.setdefault(str(item.get("start_time")), item)
        return [found[key] for key in sorted(found)]

    async def create_invitee(self, source: TokenSource, body: dict[str, Any]) -> dict[str, Any]:
        """Book through the Scheduling API (POST /invitees); returns the Invitee resource."""
        return await self._create(source, "/invitees", body)

    async def create_scheduling_link(
        self, source: TokenSource, event_type_uri: str
    ) -> dict[str, Any]:
        """A single-use booking link: {booking_url, owner, owner_type}."""
        body = {"max_event_count": 1, "owner": event_type_uri, "owner_type": "EventType"}
        return await self._create(source, "/scheduling_links", body)


def _windows(start: datetime, end: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most span."""
    windows = []
    low = start
    while low < end:
        high = min(low + span, end)
        windows.append((low, high))
        low = high
    return windows


def _utc_text(moment: datetime) -> str:
    """An aware (or naive UTC) datetime as Calendly's UTC text."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
