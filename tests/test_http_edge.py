"""Health, request ids, authentication and the JSON error body."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import Api


async def test_healthz_and_readyz(api: Api) -> None:
    health = await api.client.get("/healthz")
    ready = await api.client.get("/readyz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})
    assert (ready.status, await ready.json()) == (200, {"status": "ready"})


async def test_readyz_reports_missing_migrations(api: Api, database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    await conn.execute("DELETE FROM _yoyo_migration")
    await conn.close()
    resp = await api.client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["error"]["code"] == "migrations_pending"
    assert body["error"]["details"] == [
        "0001_integrations",
        "0002_webhooks_appointments",
        "0003_sync",
        "0004_inbox_claims",
        "0005_drop_invitee_event_index",
        "0006_raw_bodies",
        "0007_inbox_queue",
        "0008_sync_job_log_index",
        "0009_webhook_events_statistics",
        "0010_outbox_claim_indexes",
        "0011_apply_tables_statistics",
        "0012_granted_scopes",
        "0013_reschedule_waits",
        "0014_routing_form_organization",
        "0016_erased_invitees",
        "0017_actions",
        "0018_webhook_health",
    ]


async def test_request_id_is_echoed_or_generated(api: Api) -> None:
    echoed = await api.client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    generated = await api.client.get("/healthz")
    assert echoed.headers["X-Request-Id"] == "abc-123"
    assert len(generated.headers["X-Request-Id"]) == 32


async def test_unknown_route_is_json_404(api: Api) -> None:
    status, body = await api.call("GET", "/nope")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_wrong_method_is_json_405(api: Api) -> None:
    status, body = await api.call("POST", "/status")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}],
)
async def test_missing_or_wrong_token_is_401(api: Api, headers: dict[str, str]) -> None:
    resp = await api.client.get("/api/v1/calendly/status", headers=headers | {"X-User-Id": "1"})
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (401, "unauthorized")


async def test_every_configured_token_is_accepted(api: Api) -> None:
    status, body = await api.call("GET", "/status", headers=api.headers(7, "second-token"))
    assert (status, body["connected"]) == (200, False)


@pytest.mark.parametrize(
    "user", [None, "abc", "-3", "0", "1.5", "99999999999999999999", "9" * 5000]
)
async def test_missing_or_bad_user_id_is_400(api: Api, user: str | None) -> None:
    headers = api.headers(None) | ({"X-User-Id": user} if user is not None else {})
    resp = await api.client.get("/api/v1/calendly/status", headers=headers)
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (400, "invalid_user_id")
    assert body["error"]["details"][0]["field"] == "X-User-Id"


async def test_error_body_shape(api: Api) -> None:
    status, body = await api.call("GET", "/integration")
    assert status == 404
    assert body == {
        "error": {
            "code": "not_connected",
            "message": "no Calendly account is connected",
            "details": None,
        }
    }


async def test_json_nested_too_deeply_is_400(api: Api) -> None:
    status, body = await api.call("PUT", "/integration/toggle", data=b"[" * 100_000)
    assert (status, body["error"]["code"]) == (400, "invalid_json")


@pytest.mark.parametrize("raw_id", ["0", "9223372036854775808", "1" * 5000, "١٢"])
async def test_id_that_cannot_be_a_row_is_json_404(api: Api, raw_id: str) -> None:
    status, body = await api.call("GET", f"/appointments/{raw_id}")
    assert (status, body["error"]["code"]) == (404, "not_found")
