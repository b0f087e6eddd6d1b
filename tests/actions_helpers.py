"""Shared steps of the tests of actions on Calendly (tests/test_actions_*.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from tests.conftest import MAIN_APP_SECRET, Api, MainAppReceiver, Sandbox
from tests.helpers import _token, eventually, settled

# a Monday at 10:00 in New York (the sandbox user's default Mon-Fri 09:00-17:00), years ahead
START = "2030-01-07T15:00:00Z"


def booking_body(event_type_id: int, start: str = START, **invitee: Any) -> dict[str, Any]:
    """A POST /appointments body for Ana."""
    person = {"name": "Ana Lima", "email": "ana+calendly@example.com",
              "timezone": "America/Sao_Paulo"} | invitee  # fmt: skip
    return {"event_type_id": event_type_id, "start_time": start, "invitee": person}


async def event_type_id(api: Api, user: int = 1) -> int:
    """The id of the user's "30 Minute Meeting"."""
    status, listing = await api.call("GET", "/event-types", user)
    assert status == 200, listing
    return int(next(t["id"] for t in listing["items"] if t["name"] == "30 Minute Meeting"))


async def post_booking(
    api: Api, body: dict[str, Any], key: str | None = "key-1", user: int = 1
) -> tuple[int, Any]:
    """POST /appointments with an Idempotency-Key."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await api.call("POST", "/appointments", user, json=body, headers=headers)


def in_days(days: float) -> str:
    """An instant `days` from now, as UTC text."""
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def notifying(start_service: Any, url: str, **overrides: Any) -> Api:
    """The service sending notifications to the main app."""
    return await start_service(
        main_app_webhook_url=url, main_app_webhook_secret=MAIN_APP_SECRET,
        worker_poll_seconds=0.2, retry_base_seconds=0.05, retry_max_seconds=0.2, **overrides,
    )  # fmt: skip


async def quiet(api: Api, receiver: MainAppReceiver, expected: int) -> list[dict[str, Any]]:
    """Wait until the webhooks are applied and `expected` notifications arrived, then a moment
    more (a late extra one would show); the notifications."""
    await settled(api)
    await eventually(lambda: _arrived(receiver, expected), within=10)
    await asyncio.sleep(0.5)
    await settled(api)
    await asyncio.sleep(0.3)
    return receiver.received


async def _arrived(receiver: MainAppReceiver, expected: int) -> bool:
    """Whether `expected` notifications arrived."""
    return len(receiver.received) >= expected


async def calendly_bookings(control: Sandbox) -> list[tuple[str, str, str]]:
    """(event start, invitee status, invitee e-mail) of every booking of the default sandbox
    user, read through Calendly's API as a client would."""
    async with aiohttp.ClientSession() as session:
        me = await _get(control, session, "/users/me")
        params = {"user": me["resource"]["uri"], "count": "100"}
        events = await _get(control, session, "/scheduled_events", params)
        found = []
        for event in events["collection"]:
            invitees = await _get(control, session, event["uri"] + "/invitees", {"count": "100"})
            found += [
                (event["start_time"], i["status"], i["email"]) for i in invitees["collection"]
            ]
    return sorted(found)


async def _get(
    control: Sandbox, session: aiohttp.ClientSession, path: str, params: Any = None
) -> Any:
    """GET an API path or URL with the tests' own token."""
    if control.reader_token is None:
        control.reader_token = await _token(control, session)
    url = path if path.startswith("http") else control.url + path
    headers = {"Authorization": f"Bearer {control.reader_token}"}
    async with session.get(url, params=params, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()
