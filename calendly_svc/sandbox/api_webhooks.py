"""API v2 webhook subscription endpoints: create, list, get, delete."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .api import parse_sort, query_org, query_user, require_member, resource
from .errors import ApiError, forbidden, invalid_argument, not_found
from .middleware import GRANT, caller
from .models import Organization, User, WebhookSubscription, new_id, utcnow
from .pagination import offset_page
from .render import subscription_json
from .state import SANDBOX_STATE, SandboxState

WEBHOOK_EVENTS = frozenset(
    {
        "invitee.created",
        "invitee.canceled",
        "invitee_no_show.created",
        "invitee_no_show.deleted",
        "routing_form_submission.created",
        "event_type.created",
        "event_type.updated",
        "event_type.deleted",
    }
)
ORGANIZATION_ONLY_EVENTS = frozenset({"routing_form_submission.created"})
SCOPES = ("organization", "user", "group")


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, else 400."""
    try:
        body = json.loads(await request.text())
    except ValueError as exc:
        raise ApiError(400, "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _str_field(body: Mapping[str, Any], name: str) -> str:
    """A required non-empty string field of the body."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise invalid_argument(name, "is required")
    return value


def _parse_url(body: Mapping[str, Any]) -> str:
    """The callback URL: required, absolute http(s)."""
    url = _str_field(body, "url")
    if not url.startswith(("http://", "https://")):
        raise invalid_argument("url", "must be a valid http(s) URL")
    return url


def _parse_events(body: Mapping[str, Any], scope: str) -> tuple[str, ...]:
    """The subscribed events: non-empty, known, allowed for the scope."""
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise invalid_argument("events", "is required")
    unknown = [e for e in events if e not in WEBHOOK_EVENTS]
    if unknown:
        raise invalid_argument("events", f"unknown events: {unknown}")
    if scope != "organization" and ORGANIZATION_ONLY_EVENTS & set(events):
        raise invalid_argument(
            "events", "routing_form_submission.created requires organization scope"
        )
    return tuple(dict.fromkeys(events))


def _parse_scope(params: Mapping[str, Any]) -> str:
    """The required scope: organization, user or group."""
    scope = _str_field(params, "scope")
    if scope not in SCOPES:
        raise invalid_argument("scope", "must be one of organization, user, group")
    return scope


def _check_scope_access(
    state: SandboxState, me: User, org: Organization, scope: str, user: User | None
) -> None:
    """Members may manage user-scope hooks for themselves; everything else needs admin."""
    require_member(state, me, org.uuid)
    if state.is_admin(me.uuid, org.uuid):
        return
    if scope != "user" or user is None or user.uuid != me.uuid:
        raise forbidden("You do not have permission")


def _scope_target(
    state: SandboxState, params: Mapping[str, str], org: Organization, scope: str
) -> tuple[User | None, str | None]:
    """The user (scope=user) or group (scope=group) a subscription targets."""
    if scope == "user":
        user = query_user(state, params)
        if user is None:
            raise invalid_argument("user", "is required when scope is user")
        if user.org_uuid != org.uuid:
            raise invalid_argument("user", "is not a member of the organization")
        return user, None
    if scope == "group":
        group = params.get("group")
        if not group:
            raise invalid_argument("group", "is required when scope is group")
        return None, group
    return None, None


async def create_subscription(request: web.Request) -> web.StreamResponse:
    """POST /webhook_subscriptions -> 201 {"resource": WebhookSubscription}."""
    state = request.app[SANDBOX_STATE]
    sub = _new_subscription(state, caller(request), await _json_body(request))
    sub.grant_scopes = request[GRANT]
    for other in state.subscriptions.values():
        if other.org_uuid == sub.org_uuid and other.callback_url == sub.callback_url:
            raise ApiError(409, "Hook with this url already exists")
    state.subscriptions[sub.uuid] = sub
    return resource(subscription_json(state, sub), status=201)


def _new_subscription(state: SandboxState, me: User, body: dict[str, Any]) -> WebhookSubscription:
    """Validate a create body (400/403/404) into an unsaved subscription."""
    url = _parse_url(body)
    org = _required_org(state, body)
    scope = _parse_scope(body)
    events = _parse_events(body, scope)
    params = {key: value for key, value in body.items() if isinstance(value, str)}
    user, group = _scope_target(state, params, org, scope)
    _check_scope_access(state, me, org, scope, user)
    signing_key = body.get("signing_key")
    if signing_key is not None and not isinstance(signing_key, str):
        raise invalid_argument("signing_key", "must be a string")
    now = utcnow()
    return WebhookSubscription(
        uuid=new_id(),
        callback_url=url,
        events=events,
        scope=scope,
        org_uuid=org.uuid,
        user_uuid=user.uuid if user else None,
        group=group,
        creator_uuid=me.uuid,
        signing_key=signing_key or None,
        created_at=now,
        updated_at=now,
    )


def _required_org(state: SandboxState, params: Mapping[str, Any]) -> Organization:
    """The required `organization` URI, 404 when unknown."""
    if not isinstance(params.get("organization"), str) or not params["organization"]:
        raise invalid_argument("organization", "is required")
    org = query_org(state, {"organization": params["organization"]})
    assert org is not None
    return org


async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    """GET /webhook_subscriptions?organization&scope(&user|&group)&sort."""
    state, me, query = request.app[SANDBOX_STATE], caller(request), request.query
    org = _required_org(state, query)
    scope = _parse_scope(query)
    user, group = _scope_target(state, query, org, scope)
    _check_scope_access(state, me, org, scope, user)
    (_field, descending), *_ = parse_sort(query.get("sort"), ("created_at",), "created_at:asc")
    items = [
        sub
        for sub in state.subscriptions.values()
        if sub.org_uuid == org.uuid
        and sub.scope == scope
        and (user is None or sub.user_uuid == user.uuid)
        and (group is None or sub.group == group)
    ]
    items.sort(key=lambda sub: (sub.created_at, sub.uuid), reverse=descending)
    return offset_page(request, items, lambda sub: subscription_json(state, sub))


def _visible_subscription(request: web.Request) -> WebhookSubscription:
    """The path's subscription: 404 unknown; 403 unless creator, its user or an org admin."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    sub = state.subscriptions.get(request.match_info["uuid"])
    if sub is None:
        raise not_found("Webhook subscription not found")
    allowed = me.uuid in (sub.creator_uuid, sub.user_uuid) or state.is_admin(me.uuid, sub.org_uuid)
    if not allowed:
        raise forbidden()
    return sub


async def get_subscription(request: web.Request) -> web.StreamResponse:
    """GET /webhook_subscriptions/{uuid}."""
    sub = _visible_subscription(request)
    return resource(subscription_json(request.app[SANDBOX_STATE], sub))


async def delete_subscription(request: web.Request) -> web.StreamResponse:
    """DELETE /webhook_subscriptions/{uuid} -> 204."""
    sub = _visible_subscription(request)
    request.app[SANDBOX_STATE].subscriptions.pop(sub.uuid, None)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """Register the webhook subscription routes."""
    app.router.add_post("/webhook_subscriptions", create_subscription)
    app.router.add_get("/webhook_subscriptions", list_subscriptions)
    app.router.add_get("/webhook_subscriptions/{uuid}", get_subscription)
    app.router.add_delete("/webhook_subscriptions/{uuid}", delete_subscription)
