"""API v2 endpoints for users, organization memberships and event types."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .errors import forbidden, invalid_argument, not_found
from .middleware import caller
from .models import EventType, Membership, Organization, User
from .pagination import offset_page
from .render import event_type_json, membership_json, user_json
from .state import SANDBOX_STATE, SandboxState, uri_id

EVENT_TYPE_SORT_FIELDS = ("name", "position", "created_at", "updated_at")


def resource(body: dict[str, Any], status: int = 200) -> web.Response:
    """A `{"resource": ...}` response."""
    return web.json_response({"resource": body}, status=status)


def query_user(state: SandboxState, query: Mapping[str, str], name: str = "user") -> User | None:
    """The user named by a URI query parameter; 404 when unknown, None when absent."""
    ref = query.get(name)
    if ref is None:
        return None
    uuid = uri_id(ref, "users")
    if uuid is None:
        raise invalid_argument(name, "must be a user URI")
    user = state.users.get(uuid)
    if user is None:
        raise not_found("User not found")
    return user


def query_org(state: SandboxState, query: Mapping[str, str]) -> Organization | None:
    """The organization named by the `organization` parameter; 404 when unknown."""
    ref = query.get("organization")
    if ref is None:
        return None
    uuid = uri_id(ref, "organizations")
    if uuid is None:
        raise invalid_argument("organization", "must be an organization URI")
    org = state.orgs.get(uuid)
    if org is None:
        raise not_found("Organization not found")
    return org


def parse_bool(query: Mapping[str, str], name: str) -> bool | None:
    """An optional true/false query parameter."""
    raw = query.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise invalid_argument(name, "must be true or false")
    return raw.lower() == "true"


def parse_sort(raw: str | None, fields: tuple[str, ...], default: str) -> list[tuple[str, bool]]:
    """A `field:dir,...` sort spec as (field, descending) pairs."""
    pairs = []
    for part in (raw or default).split(","):
        field, _, direction = part.strip().partition(":")
        if field not in fields or direction not in ("asc", "desc"):
            raise invalid_argument("sort", f"must be a list of field:asc|desc with {fields}")
        pairs.append((field, direction == "desc"))
    return pairs


def require_member(state: SandboxState, me: User, org_uuid: str) -> None:
    """403 unless me belongs to the organization."""
    if state.role_of(me.uuid, org_uuid) is None:
        raise forbidden()


async def get_me(request: web.Request) -> web.StreamResponse:
    """GET /users/me."""
    return resource(user_json(request.app[SANDBOX_STATE], caller(request)))


async def get_user(request: web.Request) -> web.StreamResponse:
    """GET /users/{uuid}: readable by members of the same organization."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    user = state.users.get(request.match_info["uuid"])
    if user is None:
        raise not_found("User not found")
    require_member(state, me, user.org_uuid)
    return resource(user_json(state, user))


async def list_memberships(request: web.Request) -> web.StreamResponse:
    """GET /organization_memberships?user=|organization=&email."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    matches = _membership_filter(state, me, request.query)
    items = sorted(
        (m for m in state.memberships.values() if matches(m)),
        key=lambda m: (m.created_at, m.uuid),
    )
    return offset_page(request, items, lambda m: membership_json(state, m))


def _membership_filter(
    state: SandboxState, me: User, query: Mapping[str, str]
) -> Callable[[Membership], bool]:
    """Predicate for the memberships a caller asked for (and may see)."""
    user, org = query_user(state, query), query_org(state, query)
    if user is None and org is None:
        raise invalid_argument("organization", "one of user or organization is required")
    if user is not None:
        require_member(state, me, user.org_uuid)
    if org is not None:
        require_member(state, me, org.uuid)
    email = query.get("email", "").lower()

    def matches(membership: Membership) -> bool:
        if user is not None and membership.user_uuid != user.uuid:
            return False
        if org is not None and membership.org_uuid != org.uuid:
            return False
        return not email or state.users[membership.user_uuid].email.lower() == email

    return matches


async def list_event_types(request: web.Request) -> web.StreamResponse:
    """GET /event_types?user=|organization=&active&sort (deleted ones are not listed); a
    user's listing holds the team types they host too (Calendly: "personal, team, and
    organization event types associated with the user")."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    owners = _event_type_owners(state, me, request.query)
    active = parse_bool(request.query, "active")
    sort = parse_sort(request.query.get("sort"), EVENT_TYPE_SORT_FIELDS, "name:asc")
    items = [
        et
        for et in state.event_types.values()
        if not owners.isdisjoint(et.hosts)
        and et.deleted_at is None
        and (active is None or et.active == active)
    ]
    for field, descending in reversed(sort):
        items.sort(key=_event_type_sort_key(field), reverse=descending)
    return offset_page(request, items, lambda et: event_type_json(state, et))


def _event_type_sort_key(field: str) -> Callable[[EventType], Any]:
    """Sort key for one event type field (position is always 0 here)."""
    if field == "name":
        return lambda et: et.name.lower()
    if field == "position":
        return lambda et: 0
    return lambda et: getattr(et, field)


def _event_type_owners(state: SandboxState, me: User, query: Mapping[str, str]) -> set[str]:
    """Uuids of the users whose event types the query covers."""
    user, org = query_user(state, query), query_org(state, query)
    if user is None and org is None:
        raise invalid_argument("user", "one of user or organization is required")
    if org is not None:
        require_member(state, me, org.uuid)
        owners = {m.user_uuid for m in state.memberships.values() if m.org_uuid == org.uuid}
        return owners & {user.uuid} if user is not None else owners
    assert user is not None
    require_member(state, me, user.org_uuid)
    return {user.uuid}


async def get_event_type(request: web.Request) -> web.StreamResponse:
    """GET /event_types/{uuid}: readable by members of the owner's organization."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    event_type = state.event_types.get(request.match_info["uuid"])
    if event_type is None:
        raise not_found("Event type not found")
    require_member(state, me, state.users[event_type.owner_uuid].org_uuid)
    return resource(event_type_json(state, event_type))


def add_routes(app: web.Application) -> None:
    """Register user, membership and event type routes."""
    app.router.add_get("/users/me", get_me)
    app.router.add_get("/users/{uuid}", get_user)
    app.router.add_get("/organization_memberships", list_memberships)
    app.router.add_get("/event_types", list_event_types)
    app.router.add_get("/event_types/{uuid}", get_event_type)
