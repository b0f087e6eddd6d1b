"""Control API (/_sandbox/...): users, event types, faults, OAuth tricks, stats, subscriptions."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .errors import ControlError
from .models import EventType, User, utcnow
from .render import event_type_json, subscription_json, user_json
from .schemas import (
    Delivering,
    EventTypePatch,
    FaultsPatch,
    NewEventType,
    NewUser,
    UserFilter,
    read_body,
)
from .state import SANDBOX_STATE, SandboxState, Stats
from .webhooks import deliver


def missing(what: str) -> ControlError:
    """A 404 control error."""
    return ControlError(404, f"{what} not found")


def find_user(state: SandboxState, ref: str) -> User:
    """A user by URI or e-mail, else 404."""
    user = state.find_user(ref)
    if user is None:
        raise missing("user")
    return user


async def create_user(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/users: a member of the default org (or owner of a new one)."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, NewUser)
    if body.email.lower() in state.user_by_email:
        raise ControlError(409, "a user with this email already exists")
    if body.new_organization:
        org_uuid = state.add_organization(f"{body.name}'s Organization").uuid
    else:
        org_uuid = state.default_org.uuid
    role = body.role or ("owner" if body.new_organization else "user")
    user = state.add_user(body.email, body.name, org_uuid, role)
    return web.json_response({"resource": user_json(state, user)})


async def list_users(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/users: every user with role and organization."""
    state = request.app[SANDBOX_STATE]
    items = []
    for user in state.users.values():
        item = user_json(state, user)
        item["role"] = state.membership_of_user[user.uuid].role
        items.append(item)
    return web.json_response({"collection": items})


async def emit_event_type(state: SandboxState, event: str, event_type: EventType) -> list[Any]:
    """Deliver an event_type.* webhook for event_type's owner (a team's: for every host)."""
    owner = state.users[event_type.owner_uuid]
    payload = event_type_json(state, event_type)
    return await deliver(state, event, payload, event_type.hosts, owner.org_uuid)


def team_hosts(state: SandboxState, body: NewEventType) -> list[User]:
    """The hosts of a team event type (empty for a user's own), all of one organization."""
    if (body.pooling_type is None) != (not body.hosts):
        raise ControlError(400, "a team event type needs both pooling_type and hosts")
    if body.pooling_type is not None and body.user is not None:
        raise ControlError(400, "a team event type has hosts, not a user")
    hosts = [find_user(state, email) for email in body.hosts]
    if len({host.org_uuid for host in hosts}) > 1:
        raise ControlError(400, "every host must belong to the same organization")
    return hosts


async def create_event_type(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/event_types: a user's own, or a team's (round robin or collective)."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, NewEventType)
    hosts = team_hosts(state, body)
    if not hosts and body.user is None:
        raise ControlError(400, "user is required (or pooling_type and hosts)")
    owner = hosts[0] if hosts else find_user(state, str(body.user))
    event_type = state.add_event_type(
        owner,
        body.name,
        body.duration,
        kind=body.kind,
        invitee_limit=body.invitee_limit,
        slug=body.slug,
        active=body.active,
    )
    if body.pooling_type is not None:
        team = body.team_name or f"{body.name} Team"
        state.make_team_type(event_type, body.pooling_type, hosts, team)
    deliveries = (
        await emit_event_type(state, "event_type.created", event_type) if body.deliver else []
    )
    return _event_type_response(state, event_type, deliveries)


def _event_type_response(
    state: SandboxState, event_type: EventType, deliveries: list[Any]
) -> web.Response:
    """`{"resource": EventType, "deliveries": [...]}`."""
    body = {"resource": event_type_json(state, event_type), "deliveries": deliveries}
    return web.json_response(body)


def live_event_type(request: web.Request) -> EventType:
    """The not-deleted event type named by the path."""
    event_type = request.app[SANDBOX_STATE].event_types.get(request.match_info["uuid"])
    if event_type is None:
        raise missing("event type")
    if event_type.deleted_at is not None:
        raise ControlError(400, "event type is deleted")
    return event_type


async def list_event_types(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/event_types: every event type, deleted ones included."""
    state = request.app[SANDBOX_STATE]
    items = [event_type_json(state, et) for et in state.event_types.values()]
    return web.json_response({"collection": items})


async def update_event_type(request: web.Request) -> web.StreamResponse:
    """PATCH /_sandbox/event_types/{uuid}."""
    state = request.app[SANDBOX_STATE]
    event_type = live_event_type(request)
    body = await read_body(request, EventTypePatch)
    for field in ("name", "duration", "active"):
        value = getattr(body, field)
        if value is not None:
            setattr(event_type, field, value)
    event_type.updated_at = utcnow()
    deliveries = (
        await emit_event_type(state, "event_type.updated", event_type) if body.deliver else []
    )
    return _event_type_response(state, event_type, deliveries)


async def delete_event_type(request: web.Request) -> web.StreamResponse:
    """DELETE /_sandbox/event_types/{uuid}: sets deleted_at and deactivates."""
    state = request.app[SANDBOX_STATE]
    event_type = live_event_type(request)
    body = await read_body(request, Delivering)
    now = utcnow()
    event_type.deleted_at, event_type.updated_at, event_type.active = now, now, False
    deliveries = (
        await emit_event_type(state, "event_type.deleted", event_type) if body.deliver else []
    )
    return _event_type_response(state, event_type, deliveries)


async def get_faults(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/faults."""
    return web.json_response(asdict(request.app[SANDBOX_STATE].faults))


async def set_faults(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/faults: merge; changing a rate limit restarts every window."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, FaultsPatch)
    changes = body.model_dump(exclude_none=True)
    for field, value in changes.items():
        setattr(state.faults, field, value)
    if changes.keys() & {
        "rate_limit_per_minute",
        "rate_limit_window_seconds",
        "token_requests_per_minute",
    }:
        state.rate_limiter.clear()
    return web.json_response(asdict(state.faults))


async def clear_faults(request: web.Request) -> web.StreamResponse:
    """DELETE /_sandbox/faults: back to the configured limits, windows restarted."""
    state = request.app[SANDBOX_STATE]
    state.faults = state.default_faults()
    state.rate_limiter.clear()
    return web.json_response(asdict(state.faults))


async def _filtered_user(request: web.Request) -> str | None:
    """Uuid of the optional `user` of an OAuth control body."""
    body = await read_body(request, UserFilter)
    if body.user is None:
        return None
    return find_user(request.app[SANDBOX_STATE], body.user).uuid


async def expire_access_tokens(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/oauth/expire_access_tokens {"user"?}."""
    state = request.app[SANDBOX_STATE]
    user_uuid = await _filtered_user(request)
    now, expired = time.time(), 0
    for token in state.access_tokens.values():
        if (user_uuid is None or token.user_uuid == user_uuid) and token.expires_at > now:
            token.expires_at = now - 1
            expired += 1
    return web.json_response({"expired": expired})


async def revoke_refresh_tokens(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/oauth/revoke_refresh_tokens {"user"?}."""
    state = request.app[SANDBOX_STATE]
    user_uuid = await _filtered_user(request)
    revoked = 0
    for token in state.refresh_tokens.values():
        if (user_uuid is None or token.user_uuid == user_uuid) and not token.revoked:
            token.revoked = True
            revoked += 1
    return web.json_response({"revoked": revoked})


async def disable_subscription(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/webhook_subscriptions/{uuid}/disable."""
    state = request.app[SANDBOX_STATE]
    sub = state.subscriptions.get(request.match_info["uuid"])
    if sub is None:
        raise missing("webhook subscription")
    now = utcnow()
    sub.state, sub.updated_at = "disabled", now
    sub.retry_started_at = sub.retry_started_at or now
    return web.json_response({"resource": subscription_json(state, sub)})


async def enable_subscription(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/webhook_subscriptions/{uuid}/enable: test-only; Calendly has no way to
    re-enable a disabled subscription (it must be deleted and created again, FACTS §8)."""
    state = request.app[SANDBOX_STATE]
    sub = state.subscriptions.get(request.match_info["uuid"])
    if sub is None:
        raise missing("webhook subscription")
    sub.state, sub.updated_at, sub.retry_started_at = "active", utcnow(), None
    return web.json_response({"resource": subscription_json(state, sub)})


async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/webhook_subscriptions: all subscriptions plus delivery counters."""
    state = request.app[SANDBOX_STATE]
    items = []
    for sub in state.subscriptions.values():
        item = subscription_json(state, sub)
        item.update(
            deliveries_ok=sub.deliveries_ok,
            deliveries_failed=sub.deliveries_failed,
            has_signing_key=sub.signing_key is not None,
        )
        items.append(item)
    return web.json_response({"collection": items})


async def get_stats(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/stats."""
    return web.json_response(request.app[SANDBOX_STATE].stats.to_json())


async def reset_stats(request: web.Request) -> web.StreamResponse:
    """DELETE /_sandbox/stats."""
    state = request.app[SANDBOX_STATE]
    state.stats = Stats()
    return web.json_response(state.stats.to_json())


def add_routes(app: web.Application) -> None:
    """Register the control routes except bookings."""
    router = app.router
    router.add_post("/_sandbox/users", create_user)
    router.add_get("/_sandbox/users", list_users)
    router.add_post("/_sandbox/event_types", create_event_type)
    router.add_get("/_sandbox/event_types", list_event_types)
    router.add_patch("/_sandbox/event_types/{uuid}", update_event_type)
    router.add_delete("/_sandbox/event_types/{uuid}", delete_event_type)
    router.add_get("/_sandbox/faults", get_faults)
    router.add_post("/_sandbox/faults", set_faults)
    router.add_delete("/_sandbox/faults", clear_faults)
    router.add_post("/_sandbox/oauth/expire_access_tokens", expire_access_tokens)
    router.add_post("/_sandbox/oauth/revoke_refresh_tokens", revoke_refresh_tokens)
    router.add_post("/_sandbox/webhook_subscriptions/{uuid}/disable", disable_subscription)
    router.add_post("/_sandbox/webhook_subscriptions/{uuid}/enable", enable_subscription)
    router.add_get("/_sandbox/webhook_subscriptions", list_subscriptions)
    router.add_get("/_sandbox/stats", get_stats)
    router.add_delete("/_sandbox/stats", reset_stats)
