"""Signed notifications to the main app: every change once, in order per appointment."""

from __future__ import annotations

from typing import Any

from tests.conftest import MAIN_APP_SECRET, Api, MainAppReceiver, Sandbox
from tests.helpers import appointments, book, default_event_type, eventually, settled


async def _service(start_service: Any, url: str) -> Api:
    """The service sending notifications to the main_app."""
    return await start_service(
        main_app_webhook_url=url,
        main_app_webhook_secret=MAIN_APP_SECRET,
        worker_poll_seconds=0.2,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )


async def test_every_change_once_in_order(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str]
) -> None:
    state, url = main_app
    api = await _service(start_service, url)
    await api.connect()
    booking = await book(control, await default_event_type(control), "2030-01-07T10:00:00Z")
    moved = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": booking["invitees"][0]["uri"], "start_time": "2030-01-08T10:00:00Z"},
    )
    new_uri = moved["new_invitee"]["uri"]
    await control.call("POST", "/_sandbox/invitees/no_show", {"invitee": new_uri})
    await control.call("DELETE", "/_sandbox/invitees/no_show", {"invitee": new_uri})
    await control.call("POST", "/_sandbox/invitees/cancel", {"invitee": new_uri})
    await settled(api)
    await eventually(lambda: _count(state, 5), within=10)
    [appointment] = await appointments(api)
    types = [n["type"] for n in state.received]
    assert types == [
        "appointment.created",
        "appointment.rescheduled",
        "appointment.no_show",
        "appointment.no_show",
        "appointment.canceled",
    ]
    assert {n["appointment"]["id"] for n in state.received} == {appointment["id"]}
    assert len({n["id"] for n in state.received}) == 5
    assert state.received[-1]["appointment"] == appointment
    assert [n["appointment"]["no_show"] for n in state.received] == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert state.rejected == 0


async def _count(state: MainAppReceiver, n: int) -> bool:
    """Whether n notifications arrived."""
    return len(state.received) >= n


async def test_failures_are_retried_in_order(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str]
) -> None:
    state, url = main_app
    state.fail_first = 3
    api = await _service(start_service, url)
    await api.connect()
    booking = await book(control, await default_event_type(control), "2030-01-07T10:00:00Z")
    await control.call(
        "POST", "/_sandbox/invitees/cancel", {"invitee": booking["invitees"][0]["uri"]}
    )
    await settled(api)
    await eventually(lambda: _count(state, 2), within=10)
    assert [n["type"] for n in state.received] == ["appointment.created", "appointment.canceled"]
    assert state.calls == 5


async def test_nothing_sent_when_notifications_are_off(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str], database_url: str
) -> None:
    state, url = main_app
    api = await _service(start_service, url)
    await api.connect()
    await api.call("PUT", "/integration/sync-settings", json={"notification_on_booking": False})
    await book(control, await default_event_type(control), "2030-01-07T10:00:00Z")
    await settled(api)
    import asyncpg

    conn = await asyncpg.connect(database_url)
    queued = await conn.fetchval("SELECT count(*) FROM outbox")
    await conn.close()
    assert (queued, state.calls) == (0, 0)
    assert len(await appointments(api)) == 1
