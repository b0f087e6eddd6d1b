"""Team event types (round robin, collective) and reschedules that move a booking to another
host, end to end: sandbox, service and worker over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from calendly_svc.domain import MOVED_REASON
from tests.conftest import Api, Sandbox
from tests.helpers import appointments, envelope, eventually, invitee_payload, post_webhook, settled
from tests.test_notifications import SECRET, Receiver

OWNER, PRO = "sandbox@example.com", "pro@example.com"
START, LATER = "2030-02-04T10:00:00Z", "2030-02-05T15:00:00Z"
INVITEE_ROUTE = "/scheduled_events/{uuid}/invitees/{invitee_uuid}"


@pytest.fixture
async def main_app() -> AsyncIterator[tuple[Receiver, str]]:
    """The main app's notification endpoint (test_notifications' receiver) on a real port."""
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/calendly", state.handle)
    server = TestServer(app, port=0)
    await server.start_server()
    yield state, str(server.make_url("/hooks/calendly"))
    await server.close()


async def _service(start_service: Any, url: str, wait: float = 0.5) -> Api:
    """The service notifying the receiver, checking reschedule halves after `wait` seconds."""
    return await start_service(
        main_app_webhook_url=url,
        main_app_webhook_secret=SECRET,
        worker_poll_seconds=0.2,
        sync_schedule_check_seconds=0.2,
        reschedule_half_wait_seconds=wait,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )


async def _team_type(
    control: Sandbox, pooling: str, *hosts: str, deliver: bool = True
) -> dict[str, Any]:
    """A team event type hosted by `hosts` (an event_type.created reaches each host)."""
    body = {"name": f"Team {pooling}", "duration": 30, "pooling_type": pooling,
            "hosts": list(hosts), "team_name": "Care Team", "deliver": deliver}  # fmt: skip
    resource: dict[str, Any] = (await control.call("POST", "/_sandbox/event_types", body))[
        "resource"
    ]
    return resource


async def _book(
    control: Sandbox, event_type: str, start: str, host: str | None = None, deliver: bool = True
) -> dict[str, Any]:
    """One guest booked into a team type (round robin: with the given host)."""
    body = {"event_type": event_type, "start_time": start, "deliver": deliver,
            "invitees": [{"name": "Ana Lima", "email": "ana@example.com"}]}  # fmt: skip
    result: dict[str, Any] = await control.call(
        "POST", "/_sandbox/bookings", body | ({"host": host} if host else {})
    )
    return result


async def _reschedule(control: Sandbox, invitee: str, start: str, **extra: Any) -> dict[str, Any]:
    """Reschedule an invitee (optionally to another host, or without deliveries)."""
    body = {"invitee": invitee, "start_time": start, **extra}
    result: dict[str, Any] = await control.call("POST", "/_sandbox/invitees/reschedule", body)
    return result


async def _type_id(api: Api, user: int, uri: str) -> int:
    """The service's id of an event type in one user's list."""
    _, listing = await api.call("GET", "/event-types", user)
    return int(next(i["id"] for i in listing["items"] if i["calendly_event_type_uri"] == uri))


async def _both_connected(api: Api, control: Sandbox) -> None:
    """The sandbox owner as user 1 and a plain member, pro@, as user 2."""
    await control.call("POST", "/_sandbox/users", {"email": PRO, "name": "Pro"})
    await api.connect(user=1)
    await api.connect(user=2, email=PRO)


def _kinds(state: Receiver, appointment_id: int) -> list[str]:
    """The notification types the main app received for one appointment."""
    return [n["type"] for n in state.received if n["appointment"]["id"] == appointment_id]


async def test_round_robin_booking_is_its_hosts_appointment_with_the_mapping(
    api: Api, control: Sandbox
) -> None:
    await _both_connected(api, control)
    robin = await _team_type(control, "round_robin", OWNER, PRO)
    await settled(api, 1)
    await settled(api, 2)
    type_id = await _type_id(api, 2, robin["uri"])
    await api.call("PUT", f"/event-types/{type_id}/mapping", 2, json={"service_id": 42})
    booking = await _book(control, robin["uri"], START, host=PRO)
    await settled(api, 2)
    [appointment] = await appointments(api, 2)
    assert (appointment["status"], appointment["service_id"]) == ("confirmed", 42)
    assert appointment["event_type_id"] == type_id
    assert appointment["calendly_invitee_uri"] == booking["invitees"][0]["uri"]
    assert await appointments(api, 1) == []


async def test_collective_booking_gives_each_connected_host_an_appointment(
    api: Api, control: Sandbox
) -> None:
    await _both_connected(api, control)
    joint = await _team_type(control, "collective", OWNER, PRO, deliver=False)
    _, refreshed = await api.call("POST", "/event-types/refresh", 2)
    by_webhook = await _book(control, joint["uri"], START)
    await settled(api, 1)
    await settled(api, 2)
    soon = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT10:00:00Z")
    by_sync = await _book(control, joint["uri"], soon, deliver=False)
    for user in (1, 2):
        status, _ = await api.call("POST", "/sync/manual", user, json={"full": True})
        assert status == 202
    await api.syncs_idle()
    expected = sorted(b["invitees"][0]["uri"] for b in (by_webhook, by_sync))
    for user in (1, 2):
        items = await appointments(api, user)
        type_id = await _type_id(api, user, joint["uri"])
        assert sorted(a["calendly_invitee_uri"] for a in items) == expected
        assert {(a["status"], a["event_type_id"]) for a in items} == {("confirmed", type_id)}
    assert refreshed["added"] == 1
    first, second = await appointments(api, 1), await appointments(api, 2)
    assert not {a["id"] for a in first} & {a["id"] for a in second}


async def test_host_change_with_both_hosts_connected(
    start_service: Any, control: Sandbox, main_app: tuple[Receiver, str]
) -> None:
    state, url = main_app
    api = await _service(start_service, url)
    await _both_connected(api, control)
    robin = await _team_type(control, "round_robin", OWNER, PRO)
    booking = await _book(control, robin["uri"], START, host=OWNER)
    await settled(api, 1)
    [before] = await appointments(api, 1)
    moved = await _reschedule(control, booking["invitees"][0]["uri"], LATER, host=PRO)
    await settled(api, 2)

    async def canceled() -> dict[str, Any] | None:
        [item] = await appointments(api, 1)
        return item if item["status"] == "canceled" else None

    old = await eventually(canceled, within=15)
    [new] = await appointments(api, 2)
    await eventually(lambda: _arrived(state, 3))
    assert old is not None
    assert (old["id"], old["start_time"], old["reschedule_count"]) == (
        before["id"], "2030-02-04T10:00:00+00:00", 0,
    )  # fmt: skip
    assert (old["cancellation"]["reason"], old["cancellation"]["canceler_type"]) == (
        MOVED_REASON,
        "invitee",
    )
    assert (new["status"], new["start_time"]) == ("confirmed", "2030-02-05T15:00:00+00:00")
    assert new["calendly_invitee_uri"] == moved["new_invitee"]["uri"]
    assert _kinds(state, old["id"]) == ["appointment.created", "appointment.canceled"]
    assert _kinds(state, new["id"]) == ["appointment.created"]


async def _arrived(state: Receiver, count: int) -> bool:
    """Whether the main app has received at least `count` notifications."""
    return len(state.received) >= count


async def test_host_change_with_only_the_old_host_connected(
    start_service: Any, control: Sandbox, main_app: tuple[Receiver, str], database_url: str
) -> None:
    state, url = main_app
    api = await _service(start_service, url, wait=3.0)
    await control.call("POST", "/_sandbox/users", {"email": PRO, "name": "Pro"})
    integration = await api.connect(user=1, email=PRO)
    robin = await _team_type(control, "round_robin", PRO, OWNER)
    booking = await _book(control, robin["uri"], START)
    await settled(api)
    moved = await _reschedule(control, booking["invitees"][0]["uri"], LATER, host=OWNER)
    await settled(api)
    [waiting] = await appointments(api)
    reads_before = await control.count("GET", INVITEE_ROUTE)

    async def canceled() -> dict[str, Any] | None:
        [item] = await appointments(api)
        return item if item["status"] == "canceled" else None

    old = await eventually(canceled, within=20)
    assert old is not None
    assert waiting["status"] == "confirmed"
    assert await control.count("GET", INVITEE_ROUTE) > reads_before
    assert old["cancellation"]["reason"] == MOVED_REASON
    await eventually(lambda: _arrived(state, 2))
    assert _kinds(state, old["id"]) == ["appointment.created", "appointment.canceled"]

    # a created half that reaches the old host anyway changes nothing
    late = envelope("invitee.created", await invitee_payload(control, moved["new_invitee"]["uri"]))
    assert (await post_webhook(api, integration["public_id"], late))[0] == 200
    await settled(api)
    [after] = await appointments(api)
    assert (after["id"], after["status"], after["cancellation"]) == (
        old["id"], "canceled", old["cancellation"],
    )  # fmt: skip
    conn = await asyncpg.connect(database_url)
    try:
        waits = await conn.fetch(
            "SELECT new_invitee_uri, moved_at IS NOT NULL AS moved FROM reschedule_waits"
        )
    finally:
        await conn.close()
    assert [tuple(w) for w in waits] == [(moved["new_invitee"]["uri"], True)]
    assert _kinds(state, old["id"]) == ["appointment.created", "appointment.canceled"]


async def test_missing_created_half_is_read_and_a_late_one_changes_nothing(
    start_service: Any, control: Sandbox, main_app: tuple[Receiver, str], database_url: str
) -> None:
    state, url = main_app
    api = await _service(start_service, url)
    integration = await api.connect()
    await control.call("POST", "/_sandbox/users", {"email": PRO, "name": "Pro"})
    robin = await _team_type(control, "round_robin", OWNER, PRO)
    booking = await _book(control, robin["uri"], START)
    await settled(api)
    [before] = await appointments(api)
    moved = await _reschedule(control, booking["invitees"][0]["uri"], LATER, deliver=False)
    old_half = await invitee_payload(control, moved["old_invitee"]["uri"])
    new_half = await invitee_payload(control, moved["new_invitee"]["uri"])
    await post_webhook(api, integration["public_id"], envelope("invitee.canceled", old_half))

    async def rescheduled() -> dict[str, Any] | None:
        [item] = await appointments(api)
        return item if item["reschedule_count"] == 1 else None

    after = await eventually(rescheduled, within=15)
    assert after is not None
    await post_webhook(api, integration["public_id"], envelope("invitee.created", new_half))
    await settled(api)
    [final] = await appointments(api)
    await eventually(lambda: _arrived(state, 2))
    assert (after["id"], after["status"], after["start_time"]) == (
        before["id"], "confirmed", "2030-02-05T15:00:00+00:00",
    )  # fmt: skip
    assert after["calendly_invitee_uri"] == moved["new_invitee"]["uri"]
    assert final == after
    assert _kinds(state, before["id"]) == ["appointment.created", "appointment.rescheduled"]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM reschedule_waits") == 0
    finally:
        await conn.close()
