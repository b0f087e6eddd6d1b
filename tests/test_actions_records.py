"""The actions table: what each action records, retention of keys (at least 24 hours), the
setting's floor, and calendly_svc_actions_total."""

from __future__ import annotations

from typing import Any

import pytest

from calendly_svc.keys import DB_POOL, DEPS
from calendly_svc.settings import ConfigError, load_settings
from calendly_svc.worker.retention import purge_expired
from tests.actions_helpers import booking_body, event_type_id, post_booking
from tests.conftest import Api, Sandbox
from tests.helpers import settled

ROWS = """SELECT kind, actor_user_id, idempotency_key, state, appointment_id IS NOT NULL AS linked,
                 error ->> 'code' AS code FROM actions ORDER BY id"""


async def test_each_action_is_recorded_with_its_actor_and_outcome(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    my_type = await event_type_id(api)
    _, booked = await post_booking(api, booking_body(my_type), key="k1")
    await post_booking(api, booking_body(my_type, email="bia@example.com"), key="k2")
    await api.call("PUT", f"/appointments/{booked['id']}/no-show")
    await api.call("DELETE", f"/appointments/{booked['id']}/no-show")
    await api.call("POST", f"/appointments/{booked['id']}/cancel", json={"reason": "x"})
    await api.call("POST", f"/event-types/{my_type}/scheduling-links", json={})
    await settled(api)
    async with api.client.server.app[DB_POOL].acquire() as conn:
        rows = [tuple(row) for row in await conn.fetch(ROWS)]
    assert rows == [
        ("book", 1, "k1", "succeeded", True, None),
        ("book", 1, "k2", "failed", False, "slot_unavailable"),
        ("no_show", 1, None, "succeeded", True, None),
        ("no_show_undo", 1, None, "succeeded", True, None),
        ("cancel", 1, None, "succeeded", True, None),
        ("scheduling_link", 1, None, "succeeded", False, None),
    ]
    metrics = await (await api.client.get("/metrics")).text()
    for line in (
        'calendly_svc_actions_total{action="book",outcome="succeeded"} 1.0',
        'calendly_svc_actions_total{action="book",outcome="slot_unavailable"} 1.0',
        'calendly_svc_actions_total{action="cancel",outcome="succeeded"} 1.0',
    ):
        assert line in metrics


async def test_keys_are_kept_24_hours_then_purged(start_service: Any, control: Sandbox) -> None:
    api = await start_service(action_retention_hours=24)
    await api.connect()
    body = booking_body(await event_type_id(api))
    await post_booking(api, body, key="k1")
    pool = api.client.server.app[DB_POOL]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE actions SET updated_at = now() - interval '23 hours'")
    kept = await purge_expired(api.client.server.app[DEPS])
    async with pool.acquire() as conn:
        await conn.execute("UPDATE actions SET updated_at = now() - interval '25 hours'")
    purged = await purge_expired(api.client.server.app[DEPS])
    async with pool.acquire() as conn:
        left = await conn.fetchval("SELECT count(*) FROM actions")
    assert (kept["actions"], purged["actions"], left) == (0, 1, 0)


REQUIRED: dict[str, Any] = {
    "database_url": "postgresql://x/y", "calendly_client_id": "c",
    "calendly_client_secret": "s", "calendly_webhook_signing_key": "k",
    "backend_url": "http://127.0.0.1:1", "service_api_tokens": ["t"],
    "token_encryption_key": ["k" * 43 + "="], "_env_file": None,
}  # fmt: skip


@pytest.mark.parametrize("hours", ["0", "23", "-1"])
def test_action_retention_under_24_hours_is_refused(
    monkeypatch: pytest.MonkeyPatch, hours: str
) -> None:
    monkeypatch.setenv("ACTION_RETENTION_HOURS", hours)
    with pytest.raises(ConfigError) as error:
        load_settings(**REQUIRED)
    assert str(error.value).startswith("ACTION_RETENTION_HOURS: ")


def test_action_retention_of_24_hours_or_more_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTION_RETENTION_HOURS", "24")
    assert load_settings(**REQUIRED).action_retention_hours == 24
