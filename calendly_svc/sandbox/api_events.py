"""API v2 endpoints for scheduled events and their invitees."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from datetime import datetime

from aiohttp import web

from .api import query_org, query_user, resource
from .errors import forbidden, invalid_argument, not_found
from .middleware import caller
from .models import EventKey, ScheduledEvent, User, parse_iso
from .pagination import (
    KeysetQuery,
    collection,
    decode_key_token,
    encode_key_token,
    keyset_page,
    offset_page,
    parse_count,
    token_ttl,
)
from .render import event_json, invitee_json
from .state import SANDBOX_STATE, SandboxState

EventFilter = Callable[[ScheduledEvent], bool]
# Calendly's 403 messages (its 2023 spec lists them per operation)
ANOTHER_USERS_EVENTS = (
    "Please also specify organization when requesting events for a user within your organization."
)
EVENT_HIDDEN = "You are not allowed to view this event"


def parse_time(query: Mapping[str, str], name: str) -> datetime | None:
    """An optional ISO-8601 query parameter."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return parse_iso(raw)
    except ValueError as exc:
        raise invalid_argument(name, "must be an ISO-8601 date-time") from exc


def parse_status(query: Mapping[str, str]) -> str | None:
    """An optional status filter: active or canceled."""
    status = query.get("status")
    if status is not None and status not in ("active", "canceled"):
        raise invalid_argument("status", "must be active or canceled")
    return status


def parse_direction(query: Mapping[str, str], field: str) -> bool:
    """True for ascending; sort accepts only `{field}:asc|desc`."""
    raw = query.get("sort", f"{field}:asc")
    if raw not in (f"{field}:asc", f"{field}:desc"):
        raise invalid_argument("sort", f"must be {field}:asc or {field}:desc")
    return raw.endswith(":asc")


def can_read_event(state: SandboxState, me: User, event: ScheduledEvent) -> bool:
    """Its hosts (event_memberships) and the organization's admins/owners may read it."""
    return me.uuid in event.members or state.is_admin(me.uuid, event.org_uuid)


def _event_scope(
    state: SandboxState, me: User, query: Mapping[str, str]
) -> tuple[list[EventKey], EventFilter | None]:
    """The start-time index to walk plus an optional extra filter, enforcing access rules."""
    user, org = query_user(state, query), query_org(state, query)
    if org is None:
        if user is None:
            raise invalid_argument("user", "one of user or organization is required")
        if user.uuid != me.uuid:
            raise forbidden(ANOTHER_USERS_EVENTS)
        return state.events_by_host.get(user.uuid, []), None
    if not state.is_admin(me.uuid, org.uuid):
        raise forbidden()
    if user is None:
        return state.events_by_org.get(org.uuid, []), None
    org_uuid = org.uuid
    return state.events_by_host.get(user.uuid, []), lambda e: e.org_uuid == org_uuid


def _event_filter(
    state: SandboxState, query: Mapping[str, str], scope_filter: EventFilter | None
) -> Callable[[EventKey], bool]:
    """Predicate over index keys combining scope, status and invitee_email."""
    status = parse_status(query)
    email = query.get("invitee_email", "").lower()

    def match(key: EventKey) -> bool:
        event = state.events[key[1]]
        if status is not None and event.status != status:
            return False
        if scope_filter is not None and not scope_filter(event):
            return False
        return not email or any(
            state.invitees[uuid].email.lower() == email for uuid in event.invitee_uuids
        )

    return match


async def list_events(request: web.Request) -> web.StreamResponse:
    """GET /scheduled_events, keyset-paginated over the start-time index."""
    state, me, query = request.app[SANDBOX_STATE], caller(request), request.query
    keys, scope_filter = _event_scope(state, me, query)
    match = _event_filter(state, query, scope_filter)
    ascending = parse_direction(query, "start_time")
    count = parse_count(query)
    lo, hi = _bounds(keys, parse_time(query, "min_start_time"), parse_time(query, "max_start_time"))
    token = query.get("page_token")
    cursor, backwards = decode_key_token(token, token_ttl(request)) if token else (None, False)
    page = keyset_page(KeysetQuery(keys, lo, hi, ascending, match), cursor, backwards, count)
    items = [event_json(state, state.events[key[1]]) for key in page.keys]
    next_token = encode_key_token(page.keys[-1], False) if page.has_next else None
    prev_token = encode_key_token(page.keys[0], True) if page.has_prev else None
    return collection(request, items, next_token, prev_token)


def _bounds(keys: list[EventKey], low: datetime | None, high: datetime | None) -> tuple[int, int]:
    """Index window for min_start_time (inclusive) and max_start_time (exclusive)."""
    lo = bisect_left(keys, (low, "")) if low is not None else 0
    hi = bisect_left(keys, (high, "")) if high is not None else len(keys)
    return lo, max(lo, hi)


def readable_event(request: web.Request) -> ScheduledEvent:
    """The event named by the path, 404 when unknown, 403 when not readable."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    event = state.events.get(request.match_info["uuid"])
    if event is None:
        raise not_found("Scheduled event not found")
    if not can_read_event(state, me, event):
        raise forbidden(EVENT_HIDDEN)
    return event


async def get_event(request: web.Request) -> web.StreamResponse:
    """GET /scheduled_events/{uuid}."""
    event = readable_event(request)
    return resource(event_json(request.app[SANDBOX_STATE], event))


async def list_invitees(request: web.Request) -> web.StreamResponse:
    """GET /scheduled_events/{uuid}/invitees?status&sort&email."""
    state, query = request.app[SANDBOX_STATE], request.query
    event = readable_event(request)
    status, email = parse_status(query), query.get("email", "").lower()
    ascending = parse_direction(query, "created_at")
    # Booking order is created_at order, ties included.
    items = [
        invitee
        for invitee in state.event_invitees(event)
        if (status is None or invitee.status == status)
        and (not email or invitee.email.lower() == email)
    ]
    if not ascending:
        items.reverse()
    return offset_page(request, items, lambda invitee: invitee_json(state, invitee))


async def get_invitee(request: web.Request) -> web.StreamResponse:
    """GET /scheduled_events/{uuid}/invitees/{invitee_uuid}."""
    state = request.app[SANDBOX_STATE]
    event = readable_event(request)
    invitee = state.invitees.get(request.match_info["invitee_uuid"])
    if invitee is None or invitee.event_uuid != event.uuid:
        raise not_found("Invitee not found")
    return resource(invitee_json(state, invitee))


def add_routes(app: web.Application) -> None:
    """Register scheduled event and invitee routes."""
    app.router.add_get("/scheduled_events", list_events)
    app.router.add_get("/scheduled_events/{uuid}", get_event)
    app.router.add_get("/scheduled_events/{uuid}/invitees", list_invitees)
    app.router.add_get("/scheduled_events/{uuid}/invitees/{invitee_uuid}", get_invitee)
