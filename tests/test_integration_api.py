"""Managing the integration: status, toggle, sync settings, disconnect."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest

from tests.conftest import Api, Sandbox


async def test_not_connected(api: Api) -> None:
    status, body = await api.call("GET", "/status")
    missing, error = await api.call("GET", "/integration")
    assert (status, body) == (
        200,
        {
            "connected": False,
            "status": "not_connected",
            "sync_enabled": False,
            "scheduling_url": None,
            "webhook_active": False,
            "last_sync_at": None,
            "last_sync_status": None,
            "routing_forms_webhook": None,
            "granted_scopes": None,
            "missing_scopes": [],
            "webhook_retrying_since": None,
        },
    )
    assert (missing, error["error"]["code"]) == (404, "not_connected")


async def test_get_integration_has_no_secrets(api: Api) -> None:
    connected = await api.connect()
    status, body = await api.call("GET", "/integration")
    volatile = {"last_sync_at", "last_sync_status", "updated_at"}
    assert status == 200
    assert {k: v for k, v in body.items() if k not in volatile} == {
        k: v for k, v in connected.items() if k not in volatile
    }
    assert not {k for k in body if "token" in k or "secret" in k or "key" in k}
    assert body["webhook_uri"].startswith(f"{api.sandbox_url}/webhook_subscriptions/")


async def test_toggle(api: Api) -> None:
    await api.connect()
    off_status, off = await api.call("PUT", "/integration/toggle", json={"sync_enabled": False})
    _, status_off = await api.call("GET", "/status")
    on_status, on = await api.call("PUT", "/integration/toggle", json={"sync_enabled": True})
    assert (off_status, off["sync_enabled"], off["status"]) == (200, False, "disabled")
    assert (status_off["status"], status_off["sync_enabled"]) == ("disabled", False)
    assert (on_status, on["sync_enabled"], on["status"]) == (200, True, "active")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"sync_enabled": "yes"}, "sync_enabled"),
        ({}, "sync_enabled"),
        ({"sync_enabled": True, "x": 1}, "x"),
    ],
)
async def test_toggle_validation(api: Api, payload: dict[str, object], field: str) -> None:
    await api.connect()
    status, body = await api.call("PUT", "/integration/toggle", json=payload)
    assert (status, body["error"]["details"][0]["field"]) == (422, field)


async def test_toggle_without_integration_is_404(api: Api) -> None:
    status, body = await api.call("PUT", "/integration/toggle", json={"sync_enabled": False})
    assert (status, body["error"]["code"]) == (404, "not_connected")


async def test_sync_settings_subset(api: Api) -> None:
    await api.connect()
    s1, first = await api.call(
        "PUT", "/integration/sync-settings", json={"sync_past_days": 30, "default_service_id": 9}
    )
    s2, second = await api.call(
        "PUT",
        "/integration/sync-settings",
        json={"auto_confirm_bookings": False, "default_service_id": None},
    )
    assert (s1, s2) == (200, 200)
    assert first["sync_settings"]["sync_past_days"] == 30
    assert first["sync_settings"]["default_service_id"] == 9
    assert second["sync_settings"] == {
        "sync_past_days": 30,
        "sync_future_days": 60,
        "auto_confirm_bookings": False,
        "create_client_if_not_exists": True,
        "default_service_id": None,
        "notification_on_booking": True,
    }


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"sync_past_days": 366}, ["sync_past_days"]),
        ({"sync_past_days": -1}, ["sync_past_days"]),
        ({"sync_future_days": 0}, ["sync_future_days"]),
        ({"sync_future_days": 400, "sync_past_days": 500}, ["sync_past_days", "sync_future_days"]),
        ({"auto_confirm_bookings": None}, ["body"]),
        ({"default_service_id": "5"}, ["default_service_id"]),
        ({"default_service_id": 0}, ["default_service_id"]),
        ({"colour": "red"}, ["colour"]),
        ({"nullable": []}, ["nullable"]),
    ],
)
async def test_sync_settings_validation(
    api: Api, payload: dict[str, object], fields: list[str]
) -> None:
    await api.connect()
    status, body = await api.call("PUT", "/integration/sync-settings", json=payload)
    _, unchanged = await api.call("GET", "/integration")
    assert status == 422
    assert [d["field"] for d in body["error"]["details"]] == fields
    assert unchanged["sync_settings"]["sync_past_days"] == 7


async def test_disconnect(api: Api, control: Sandbox, database_url: str) -> None:
    integration = await api.connect()
    conn = await asyncpg.connect(database_url)
    tokens = await conn.fetchrow("SELECT access_token_enc FROM integrations")
    status, body = await api.call("DELETE", "/integration")
    again, error = await api.call("DELETE", "/integration")
    _, current = await api.call("GET", "/status")
    row = await conn.fetchrow("SELECT * FROM integrations")
    await conn.close()
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    assert tokens["access_token_enc"] is not None  # and both subscriptions (user, org) are gone
    assert (status, body) == (204, None)
    assert (again, error["error"]["code"]) == (404, "not_connected")
    assert current["status"] == "not_connected"
    assert hooks == []
    assert (row["status"], row["id"]) == ("disconnected", integration["id"])
    assert (row["access_token_enc"], row["refresh_token_enc"], row["webhook_signing_key_enc"]) == (
        None,
        None,
        None,
    )


async def test_disconnect_revokes_tokens(api: Api, control: Sandbox) -> None:
    await api.connect()
    deps = api.client.server.app
    from calendly_svc.keys import DEPS

    integration = await _integration(api)
    access = deps[DEPS].cipher.decrypt(integration["access_token_enc"])
    await api.call("DELETE", "/integration")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{control.url}/users/me", headers={"Authorization": f"Bearer {access}"}
        ) as resp,
    ):
        assert resp.status == 401


async def _integration(api: Api) -> asyncpg.Record:
    """The stored integration row."""
    from calendly_svc.keys import DB_POOL

    async with api.client.server.app[DB_POOL].acquire() as conn:
        return await conn.fetchrow("SELECT * FROM integrations")


async def test_disconnect_survives_calendly_outage(api: Api, control: Sandbox) -> None:
    await api.connect()
    await control.call("POST", "/_sandbox/faults", {"fail_next": 100, "fail_status": 500})
    status, _ = await api.call("DELETE", "/integration")
    _, current = await api.call("GET", "/status")
    assert (status, current["status"]) == (204, "not_connected")


async def test_reconnect_after_disconnect(api: Api) -> None:
    first = await api.connect()
    await api.call("DELETE", "/integration")
    second = await api.connect()
    assert (second["id"], second["status"], second["webhook_active"]) == (
        first["id"],
        "active",
        True,
    )


async def test_users_are_isolated(api: Api) -> None:
    await api.connect(user=1)
    status, body = await api.call("GET", "/integration", user=2)
    toggled, _ = await api.call("PUT", "/integration/toggle", user=2, json={"sync_enabled": False})
    _, mine = await api.call("GET", "/integration", user=1)
    assert (status, body["error"]["code"]) == (404, "not_connected")
    assert toggled == 404
    assert mine["sync_enabled"] is True
