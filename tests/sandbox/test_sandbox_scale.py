"""Bulk booking and paging through 20,000 events stay fast."""

from __future__ import annotations

import time

from sandbox_helpers import Sandbox, at


async def test_bulk_20000_and_page_through(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    event_type = await sandbox.default_event_type()
    started = time.perf_counter()
    created = await sandbox.control(
        "POST",
        "/bookings/bulk",
        {"event_type": event_type, "count": 20_000, "start_time": at(0), "interval_minutes": 15},
    )
    assert created == {"created": 20_000}
    assert time.perf_counter() - started < 3.0

    started = time.perf_counter()
    params = {"organization": tokens["organization"], "count": "100", "sort": "start_time:desc"}
    reply = await sandbox.api(tokens["access_token"], "/scheduled_events", params=params)
    seen, last = 0, None
    while True:
        items = reply.body["collection"]
        seen += len(items)
        starts = [event["start_time"] for event in items]
        assert starts == sorted(starts, reverse=True)
        assert last is None or last > starts[0]
        last = starts[-1]
        if reply.body["pagination"]["next_page"] is None:
            break
        reply = await sandbox.api(tokens["access_token"], reply.body["pagination"]["next_page"])
    assert (seen, last) == (20_000, at(0))
    assert time.perf_counter() - started < 15.0
