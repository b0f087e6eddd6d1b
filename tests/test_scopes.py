"""OAuth scopes: requested on authorize, stored per grant, shown in status, and each feature
without its scope degrades visibly instead of failing."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from calendly_svc.calendly.errors import CalendlyMissingScope
from calendly_svc.calendly.scopes import ENDPOINT_SCOPES, NEEDED_SCOPES
from calendly_svc.keys import DEPS
from calendly_svc.sandbox.scopes import CATALOG, EVENT_FAMILY_SCOPES, ROUTE_SCOPES
from calendly_svc.store import queries
from tests.conftest import Api, Sandbox
from tests.helpers import (
    appointments,
    book,
    default_event_type,
    eventually,
    shared_calendly_dir,
)
from tests.test_sync import sync_now

WEBHOOK_ROUTES = ("/webhook_subscriptions", "/webhook_subscriptions/{uuid}")
NO_WEBHOOKS = [s for s in NEEDED_SCOPES if s not in ("webhooks:write", "routing_forms:read")]


def test_every_scope_used_is_in_calendlys_catalog() -> None:
    shared = shared_calendly_dir()
    if shared is None:
        pytest.skip("Calendly reference folder absent (set CALENDLY_SHARED_DIR)")
    facts = (shared / "FACTS.md").read_text()
    catalog_section = facts[facts.index("### 13.1") : facts.index("### 13.2")]
    documented = set(re.findall(r"`([a-z_]+:(?:read|write))`", catalog_section))
    used = {*NEEDED_SCOPES, *ENDPOINT_SCOPES.values(), *ROUTE_SCOPES.values(),
            *EVENT_FAMILY_SCOPES.values()}  # fmt: skip
    assert used <= CATALOG
    assert documented >= CATALOG
    # FACTS §2.4: a docs example names it, the catalog does not
    assert "invitees:read" not in CATALOG


async def _auth_url(api: Api) -> str:
    """The authorize URL the service hands out."""
    status, body = await api.call("GET", "/auth-url")
    assert status == 200, body
    return str(body["auth_url"])


async def _webhook_calls(control: Sandbox) -> int:
    """Calls of any method to the webhook subscription routes."""
    stats = await control.call("GET", "/_sandbox/stats")
    return sum(r["count"] for r in stats["requests"] if r["path"] in WEBHOOK_ROUTES)


async def test_auth_url_requests_the_needed_scopes(api: Api) -> None:
    url = await _auth_url(api)
    expected = " ".join(NEEDED_SCOPES)
    assert parse_qs(urlsplit(url).query)["scope"] == [expected]
    # the space is percent-encoded (FACTS §13.2)
    assert "scope=users%3Aread%20event_types%3Aread%20" in url


async def test_calendly_scopes_setting_overrides_the_list(start_service: Any) -> None:
    api = await start_service(calendly_scopes="users:read, scheduled_events:read webhooks:write")
    url = await _auth_url(api)
    expected = ["users:read scheduled_events:read webhooks:write"]
    assert parse_qs(urlsplit(url).query)["scope"] == expected


async def test_full_grant_is_stored_and_shown(api: Api) -> None:
    integration = await api.connect()
    _, status = await api.call("GET", "/status")
    expected = (list(NEEDED_SCOPES), [])
    assert (integration["granted_scopes"], integration["missing_scopes"]) == expected
    assert (status["granted_scopes"], status["missing_scopes"]) == expected


async def test_narrow_grant_connects_without_webhooks_and_syncs(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(calendly_scopes=NO_WEBHOOKS)
    integration = await api.connect()
    _, status = await api.call("GET", "/status")
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    event_type = await default_event_type(control)
    booked = await book(control, event_type, "2026-12-20T10:00:00Z", deliver=False)
    entry = await sync_now(api)
    imported = [a["calendly_invitee_uri"] for a in await appointments(api)]
    assert status["connected"] is True
    assert (status["granted_scopes"], status["missing_scopes"]) == (
        NO_WEBHOOKS,
        ["webhooks:write", "routing_forms:read"],
    )
    assert (status["webhook_active"], status["routing_forms_webhook"]) == (False, "not_permitted")
    assert (integration["webhook_uri"], integration["webhook_error"]) == (
        None,
        "not permitted: webhooks:write not granted",
    )
    assert hooks == []
    assert await _webhook_calls(control) == 0
    assert entry["status"] == "succeeded"
    assert imported == [booked["invitees"][0]["uri"]]


async def test_periodic_sync_without_webhooks_write_skips_the_subscription(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(
        calendly_scopes=NO_WEBHOOKS, sync_schedule_check_seconds=0.2, sync_interval_seconds=3600
    )
    await api.connect()
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET next_sync_at = now()")
    await conn.close()
    log = await eventually(lambda: _periodic_log(api), within=20)
    assert log is not None
    assert (log["status"], log["notes"]) == (
        "succeeded",
        ["webhook subscription not checked: webhooks:write not granted"],
    )
    assert await _webhook_calls(control) == 0


async def _periodic_log(api: Api) -> dict[str, Any] | None:
    """The first finished periodic sync log."""
    _, logs = await api.call("GET", "/sync-logs")
    done = [e for e in logs["items"] if e["trigger"] == "periodic" and e["status"] != "running"]
    return done[0] if done else None


async def test_missing_scope_answers_409_with_the_scope(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(calendly_scopes=["users:read", "scheduled_events:read"])
    await api.connect()
    before = await control.count("GET", "/event_types")
    status, body = await api.call("POST", "/event-types/refresh")
    calls = await control.count("GET", "/event_types") - before
    assert (status, body["error"]["code"], body["error"]["details"]) == (
        409,
        "missing_scope",
        {"required_scopes": ["event_types:read"]},
    )
    assert calls == 1  # never retried


async def test_sync_without_its_scope_fails_once_with_a_clear_error(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(calendly_scopes=["users:read", "event_types:read"])
    await api.connect()
    before = await control.count("GET", "/scheduled_events")
    entry = await sync_now(api)
    calls = await control.count("GET", "/scheduled_events") - before
    assert (entry["status"], entry["error"]) == (
        "failed",
        "missing_scope: the Calendly grant lacks the scope(s) scheduled_events:read; "
        "the user must reconnect to grant it",
    )
    assert calls == 1


async def test_without_users_read_the_token_response_identifies_the_account(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(calendly_scopes=["scheduled_events:read", "webhooks:write"])
    integration = await api.connect()
    users = (await control.call("GET", "/_sandbox/users"))["collection"]
    assert await control.count("GET", "/users/me") == 0
    assert (integration["calendly_user_uri"], integration["email"]) == (users[0]["uri"], None)
    assert integration["webhook_active"] is True


async def test_a_refresh_stores_the_scopes_it_returns(
    api: Api, control: Sandbox, database_url: str
) -> None:
    await api.connect()
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET granted_scopes = NULL")  # a legacy grant
    _, legacy = await api.call("GET", "/integration")
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    refreshed, _ = await api.call("POST", "/event-types/refresh")
    stored = await conn.fetchval("SELECT granted_scopes FROM integrations")
    await conn.close()
    assert (legacy["granted_scopes"], legacy["missing_scopes"]) == (None, [])
    assert (refreshed, stored) == (200, list(NEEDED_SCOPES))


async def test_without_event_types_read_bookings_stay_unmapped(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(calendly_scopes=["users:read", "scheduled_events:read"])
    await api.connect()
    await book(control, await default_event_type(control), "2026-12-21T10:00:00Z", deliver=False)
    entry = await sync_now(api)
    # the event type is never asked for: the grant cannot read it, so nothing maps the booking
    assert await control.count("GET", "/event_types") == 0
    assert (entry["status"], entry["invitees_fetched"], await appointments(api)) == (
        "succeeded",
        1,
        [],
    )


async def test_webhooks_write_alone_subscribes_to_nothing(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(calendly_scopes=["webhooks:write"])
    integration = await api.connect()
    assert (integration["webhook_active"], integration["webhook_error"]) == (
        False,
        "not permitted: no event family's read scope granted",
    )
    assert await _webhook_calls(control) == 0


async def test_legacy_grant_without_scope_is_stored_as_unknown_full_access(
    api: Api, control: Sandbox
) -> None:
    await control.call("POST", "/_sandbox/faults", {"legacy_grants": True})
    integration = await api.connect()
    _, status = await api.call("GET", "/status")
    assert (integration["granted_scopes"], integration["missing_scopes"]) == (None, [])
    assert (status["granted_scopes"], status["missing_scopes"]) == (None, [])
    assert (integration["webhook_active"], integration["routing_forms_webhook"]) == (
        True,
        "active",
    )
    assert integration["email"] == "sandbox@example.com"  # /users/me was read


READ_ONLY = [s for s in NEEDED_SCOPES if not s.startswith(("scheduled_events:write", "scheduling"))]


async def test_write_calls_without_their_scope_raise_missing_scope_once(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(calendly_scopes=READ_ONLY)
    await api.connect()
    deps = api.client.server.app[DEPS]
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, 1)
    assert integration is not None
    source = deps.tokens.for_integration(integration)
    event_type = await default_event_type(control)
    booked = await book(control, event_type, "2030-01-01T15:00:00Z", deliver=False)
    with pytest.raises(CalendlyMissingScope) as cancel:
        await deps.calendly.cancel_event(source, booked["event"]["uri"], None)
    with pytest.raises(CalendlyMissingScope) as link:
        await deps.calendly.create_scheduling_link(source, event_type)
    calls = [
        await control.count("POST", "/scheduled_events/{uuid}/cancellation"),
        await control.count("POST", "/scheduling_links"),
    ]
    assert (cancel.value.scopes, link.value.scopes) == (
        ["scheduled_events:write"],
        ["scheduling_links:write"],
    )
    assert calls == [1, 1]  # never retried
