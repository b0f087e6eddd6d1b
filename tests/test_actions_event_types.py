"""Available times and single-use links of an event type, over real HTTP against the sandbox."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from calendly_svc.keys import DB_POOL
from tests.actions_helpers import START, booking_body, event_type_id, post_booking
from tests.conftest import Api, Sandbox

TIMES = ("GET", "/event_type_available_times")
MONDAY = {"start_time": "2030-01-07T14:00:00Z", "end_time": "2030-01-07T17:00:00Z"}


async def _times(api: Api, params: dict[str, str], user: int = 1) -> tuple[int, Any]:
    """GET the default event type's available times."""
    return await api.call(
        "GET", f"/event-types/{await event_type_id(api)}/available-times", user, params=params
    )


async def test_available_times_are_calendlys_slots_cached_briefly(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(available_times_cache_seconds=60)
    await api.connect()
    status, first = await _times(api, MONDAY)
    _, cached = await _times(api, MONDAY)
    calls_cached = await control.count(*TIMES)
    await post_booking(api, booking_body(await event_type_id(api)))
    _, after = await _times(api, MONDAY)
    starts = [item["start_time"] for item in first["items"]]
    assert status == 200, first
    assert starts == [
        "2030-01-07T14:00:00+00:00", "2030-01-07T14:30:00+00:00", "2030-01-07T15:00:00+00:00",
        "2030-01-07T15:30:00+00:00", "2030-01-07T16:00:00+00:00", "2030-01-07T16:30:00+00:00",
    ]  # fmt: skip
    assert {item["invitees_remaining"] for item in first["items"]} == {1}
    assert all(item["scheduling_url"].startswith("http") for item in first["items"])
    assert (cached, calls_cached) == (first, 1)
    booked = START.replace("Z", "+00:00")
    assert [i["start_time"] for i in after["items"]] == [s for s in starts if s != booked]


async def test_a_long_range_is_split_into_calls_calendly_accepts(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(available_times_cache_seconds=0)
    await api.connect()
    status, body = await _times(
        api, {"start_time": "2030-01-01T00:00:00Z", "end_time": "2030-02-15T00:00:00Z"}
    )
    days = {item["start_time"][:10] for item in body["items"]}
    assert status == 200, body
    assert ("2030-01-02" in days, "2030-02-14" in days, "2030-01-05" in days) == (
        True, True, False,
    )  # fmt: skip
    assert await control.count(*TIMES) >= 2


async def test_scheduling_link_is_single_use_stored_and_prefilled(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    path = f"/event-types/{await event_type_id(api)}/scheduling-links"
    prefill = {"name": "José Ávila", "email": "jose+saude@example.com"}
    status, link = await api.call("POST", path, json={"prefill": prefill})
    plain_status, plain = await api.call("POST", path)
    made = (await control.call("GET", "/_sandbox/scheduling_links"))["collection"]
    url = urlsplit(link["booking_url"])
    assert (status, plain_status) == (201, 201), link
    assert (link["max_event_count"], plain["max_event_count"]) == (1, 1)
    assert [link["booking_url"].split("?")[0], plain["booking_url"]] == [
        m["booking_url"] for m in made
    ]
    assert parse_qs(url.query) == {"name": ["José Ávila"], "email": ["jose+saude@example.com"]}
    assert link["id"] != plain["id"]
    assert await control.count("POST", "/scheduling_links") == 2
    async with api.client.server.app[DB_POOL].acquire() as conn:
        rows = await conn.fetch("SELECT requested_by, prefill FROM scheduling_links ORDER BY id")
    assert [(r["requested_by"], r["prefill"]) for r in rows] == [(1, prefill), (1, None)]
