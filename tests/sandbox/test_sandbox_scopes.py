"""OAuth scopes: granted as requested, unknown ones refused, every API route checks its scope."""

from __future__ import annotations

import pytest
from sandbox_helpers import REDIRECT_URI, Receiver, Sandbox, at
from yarl import URL

from calendly_svc.sandbox import SandboxConfig
from calendly_svc.sandbox.app import create_sandbox_app
from calendly_svc.sandbox.middleware import area_of
from calendly_svc.sandbox.scopes import ROUTE_SCOPES

NOT_A_UUID = "00000000-0000-0000-0000-000000000000"


def _path(template: str) -> str:
    """A concrete path for a route template (ids need not exist: the scope check comes first)."""
    return template.replace("{uuid}", NOT_A_UUID).replace("{invitee_uuid}", NOT_A_UUID)


def test_every_api_route_names_its_scope() -> None:
    app = create_sandbox_app(SandboxConfig())
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and area_of(route.resource.canonical) == "api"
    }
    assert sorted(routes - set(ROUTE_SCOPES)) == []


async def test_unknown_scope_redirects_with_invalid_scope(sandbox: Sandbox) -> None:
    query = {
        "client_id": "sandbox-client",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "state": "s-1",
        "scope": "users:read invitees:read",
    }
    reply = await sandbox.request("GET", "/oauth/authorize", params=query)
    location = URL(reply.headers["Location"])
    assert (reply.status, location.with_query(None)) == (302, URL(REDIRECT_URI))
    expected = {
        "error": "invalid_scope",
        "error_description": "Unknown scope: invitees:read",
        "state": "s-1",
    }
    assert expected == dict(location.query)


@pytest.mark.parametrize(("method", "template"), sorted(ROUTE_SCOPES))
async def test_token_without_scopes_is_denied_everywhere(
    sandbox: Sandbox, method: str, template: str
) -> None:
    token = (await sandbox.connect(scope=""))["access_token"]
    reply = await sandbox.api(token, _path(template), method, json={})
    required = ROUTE_SCOPES[(method, template)]
    expected = {
        "title": "Permission Denied",
        "message": f"Insufficient scope: {required} is required.",
        "details": [
            {"parameter": "scope", "message": f"This request requires the {required} scope."}
        ],
    }
    assert (403, expected) == (reply.status, reply.body)


async def test_grant_is_exactly_what_was_asked_and_survives_refresh(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect(scope="users:read webhooks:write")
    assert tokens["scope"] == "users:read webhooks:write"
    refreshed = await sandbox.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (refreshed.status, refreshed.body["scope"]) == (200, "users:read webhooks:write")
    token = refreshed.body["access_token"]
    hooks = f"/webhook_subscriptions?organization={tokens['organization']}&scope=organization"
    statuses = [
        (await sandbox.api(token, path)).status
        for path in ("/users/me", hooks, "/event_types", "/scheduled_events")
    ]
    # webhooks:write includes webhooks:read; the other two domains were not granted
    expected = [200, 200, 403, 403]
    assert expected == statuses


async def test_deliveries_need_the_event_familys_read_scope(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    full = await sandbox.connect()
    narrow = await sandbox.connect(scope="webhooks:write")
    me = (await sandbox.api(full["access_token"], "/users/me")).body["resource"]
    created = []
    for token, url in ((full["access_token"], receiver.url + "?full"),
                       (narrow["access_token"], receiver.url + "?narrow")):  # fmt: skip
        body = {"url": url, "events": ["invitee.created"], "scope": "user",
                "organization": me["current_organization"], "user": me["uri"]}  # fmt: skip
        reply = await sandbox.api(token, "/webhook_subscriptions", "POST", json=body)
        assert reply.status == 201, reply
        created.append(reply.body["resource"]["uri"])
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    assert [(created[0], 200)] == [(d["subscription"], d["status"]) for d in booked["deliveries"]]
    assert len(receiver.received) == 1


async def test_legacy_grant_has_full_access_and_names_no_scope(sandbox: Sandbox) -> None:
    await sandbox.control("POST", "/faults", {"legacy_grants": True})
    tokens = await sandbox.connect(scope="")
    refreshed = await sandbox.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    token = refreshed.body["access_token"]
    statuses = [(await sandbox.api(token, path)).status for path in ("/users/me", "/event_types")]
    assert ("scope" in tokens, "scope" in refreshed.body) == (False, False)
    assert statuses == [200, 400]  # /event_types is allowed: only its missing filter is refused
