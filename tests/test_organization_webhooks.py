"""The organization's routing forms subscription outlives its holder: disconnects hand it over
to another active admin integration, and periodic syncs recreate one that Calendly lost."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import Api, Sandbox
from tests.helpers import eventually, settled

ADMIN2 = "admin2@example.com"


async def _org_hooks(control: Sandbox) -> list[dict[str, Any]]:
    """The sandbox's organization-scope subscriptions."""
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    return [hook for hook in hooks if hook["scope"] == "organization"]


async def _two_admins(api: Api, control: Sandbox) -> tuple[dict[str, Any], dict[str, Any]]:
    """The default sandbox user (owner, user 1) and a second admin (user 2), both connected."""
    await control.call("POST", "/_sandbox/users", {"email": ADMIN2, "name": "A2", "role": "admin"})
    return await api.connect(1), await api.connect(2, ADMIN2)


async def _submitted_and_read(api: Api, control: Sandbox, user: int) -> tuple[str, list[str]]:
    """A routing form submission made in the sandbox, and the submissions `user` reads."""
    made = await control.call(
        "POST",
        "/_sandbox/routing_form_submissions",
        {"questions_and_answers": [{"question": "Team?", "answer": "Sales"}]},
    )
    await settled(api, user)
    status, body = await api.call("GET", "/routing-form-submissions", user)
    assert status == 200, body
    return made["resource"]["uri"], [item["calendly_uri"] for item in body["items"]]


def _org_url(integration: dict[str, Any]) -> str:
    """The organization subscription's callback URL when this integration holds it."""
    return f"{integration['webhook_url']}&scope=organization"


async def _needs_reauth(api: Api, control: Sandbox, user: int, email: str) -> None:
    """Calendly revokes the user's grant; the next call marks the integration needs_reauth."""
    await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {"user": email})
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {"user": email})
    status, body = await api.call("POST", "/event-types/refresh", user)
    assert (status, body["error"]["code"]) == (409, "needs_reauth")


async def test_disconnecting_the_holder_hands_the_subscription_over(
    api: Api, control: Sandbox
) -> None:
    first, second = await _two_admins(api, control)
    before = await _org_hooks(control)
    disconnected, _ = await api.call("DELETE", "/integration", 1)
    after = await _org_hooks(control)
    made, read = await _submitted_and_read(api, control, 2)
    _, status = await api.call("GET", "/status", 2)
    assert [h["callback_url"] for h in before] == [_org_url(first)]
    assert disconnected == 204
    assert [(h["callback_url"], h["state"]) for h in after] == [(_org_url(second), "active")]
    assert read == [made]
    assert status["routing_forms_webhook"] == "active"


async def test_disconnecting_a_holder_that_needs_reauth_hands_it_over(
    api: Api, control: Sandbox
) -> None:
    _, second = await _two_admins(api, control)
    await _needs_reauth(api, control, 1, "sandbox@example.com")
    disconnected, _ = await api.call("DELETE", "/integration", 1)
    after = await _org_hooks(control)
    made, read = await _submitted_and_read(api, control, 2)
    assert disconnected == 204
    # the old subscription is deleted with the new holder's token (the old one has none)
    assert [(h["callback_url"], h["state"]) for h in after] == [(_org_url(second), "active")]
    assert read == [made]


async def test_disconnecting_the_last_admin_releases_it(api: Api, control: Sandbox) -> None:
    await api.connect(1)
    disconnected, _ = await api.call("DELETE", "/integration", 1)
    hooks = await _org_hooks(control)
    reconnected = await api.connect(1)
    assert (disconnected, hooks) == (204, [])
    # released, so the next admin to connect creates it again
    assert [h["callback_url"] for h in await _org_hooks(control)] == [_org_url(reconnected)]


async def _periodic_notes(api: Api, user: int) -> list[str] | None:
    """The notes of the user's first finished periodic sync."""
    _, logs = await api.call("GET", "/sync-logs", user)
    done = [e for e in logs["items"] if e["trigger"] == "periodic" and e["status"] != "running"]
    return done[0]["notes"] if done else None


async def _due(database_url: str, user: int) -> None:
    """Make the user's periodic sync due now."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET next_sync_at = now() WHERE user_id = $1", user)
    await conn.close()


async def test_periodic_check_recreates_a_subscription_calendly_disabled(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(sync_schedule_check_seconds=0.2, sync_interval_seconds=3600)
    first = await api.connect(1)
    [hook] = await _org_hooks(control)
    await control.call(
        "POST", f"/_sandbox/webhook_subscriptions/{hook['uri'].rsplit('/', 1)[1]}/disable"
    )
    await _due(database_url, 1)
    notes = await eventually(lambda: _periodic_notes(api, 1), within=20)
    after = await _org_hooks(control)
    made, read = await _submitted_and_read(api, control, 1)
    assert notes == [
        f"organization webhook subscription disabled: recreated for integration {first['id']}"
    ]
    assert [(h["callback_url"], h["state"]) for h in after] == [(_org_url(first), "active")]
    assert after[0]["uri"] != hook["uri"]
    assert read == [made]


async def test_periodic_check_moves_it_off_a_holder_that_needs_reauth(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(sync_schedule_check_seconds=0.2, sync_interval_seconds=3600)
    _, second = await _two_admins(api, control)
    await _needs_reauth(api, control, 1, "sandbox@example.com")
    await _due(database_url, 2)
    notes = await eventually(lambda: _periodic_notes(api, 2), within=20)
    after = await _org_hooks(control)
    made, read = await _submitted_and_read(api, control, 2)
    assert notes == [
        "organization webhook subscription held by a needs_reauth integration: "
        f"recreated for integration {second['id']}"
    ]
    assert [(h["callback_url"], h["state"]) for h in after] == [(_org_url(second), "active")]
    assert read == [made]


async def test_periodic_check_recreates_one_nobody_holds(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(sync_schedule_check_seconds=0.2, sync_interval_seconds=3600)
    _, second = await _two_admins(api, control)
    # as a disconnect left it before issue 15: deleted at Calendly and the record 'deleted',
    # while the other admin's status still says active
    [hook] = await _org_hooks(control)
    await control.call(
        "POST", f"/_sandbox/webhook_subscriptions/{hook['uri'].rsplit('/', 1)[1]}/disable"
    )
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        "UPDATE organization_webhooks SET state = 'deleted', webhook_uri = NULL, webhook_url = NULL"
    )
    await conn.close()
    await _due(database_url, 2)
    notes = await eventually(lambda: _periodic_notes(api, 2), within=20)
    active = [h for h in await _org_hooks(control) if h["state"] == "active"]
    made, read = await _submitted_and_read(api, control, 2)
    assert notes == [
        f"organization webhook subscription deleted: created for integration {second['id']}"
    ]
    assert [h["callback_url"] for h in active] == [_org_url(second)]
    assert read == [made]
