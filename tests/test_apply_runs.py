"""A worker claims one integration's deliveries as a group and applies runs of them in one
transaction; the outcome is the one row-by-row processing gives, whatever the mix."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from calendly_svc.keys import DEPS, WORKER
from calendly_svc.worker.engine import Worker, run_until_stopped
from calendly_svc.worker.queues import inbox_queue
from tests.conftest import Api, Sandbox
from tests.helpers import (
    appointments,
    book,
    default_event_type,
    envelope,
    invitee_payload,
    post_webhook,
    settled,
)


async def _created(control: Sandbox, event_type: str, day: int, email: str) -> dict[str, Any]:
    """An undelivered booking and its invitee.created delivery."""
    person = {"name": f"Person {day}", "email": email}
    booking = await book(control, event_type, f"2030-05-{day:02}T09:00:00Z", person, deliver=False)
    uri = booking["invitees"][0]["uri"]
    return envelope("invitee.created", await invitee_payload(control, uri))


async def _after(control: Sandbox, action: str, uri: str, **extra: Any) -> dict[str, Any]:
    """Perform an action on an invitee without delivering; its (new) invitee's payload."""
    body = {"invitee": uri, "deliver": False, **extra}
    result = await control.call("POST", f"/_sandbox/invitees/{action}", body)
    return result


async def _connect_then_pause(api: Api) -> str:
    """Connect user 1, then stop the service's own worker: from here on, deliveries wait
    until a test worker claims them together. Returns the integration's public id."""
    integration = await api.connect()
    own = api.client.server.app[WORKER]
    own.stop()
    assert own.task is not None
    await own.task
    return str(integration["public_id"])


async def _drain_with_one_worker(api: Api) -> None:
    """Process everything stored with a worker claiming up to 50 rows at once."""
    deps = api.client.server.app[DEPS]
    worker = Worker(deps, [inbox_queue(deps)])
    stop = await run_until_stopped(worker, grace=5)
    try:
        await settled(api, within=20)
    finally:
        await stop()


async def _notified(database_url: str) -> list[tuple[int, str, int]]:
    """(appointment id, notification type, id in its payload) of every queued notification."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT appointment_id, type, payload FROM outbox ORDER BY id")
    finally:
        await conn.close()
    return [(r["appointment_id"], r["type"], json.loads(r["payload"])["id"]) for r in rows]


async def test_a_mixed_group_converges_like_row_by_row(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(
        worker_batch_size=50,
        main_app_webhook_url="http://127.0.0.1:9/unreachable",
        main_app_webhook_secret="outbox-secret",
    )
    public_id = await _connect_then_pause(api)
    event_type = await default_event_type(control)
    earlier = await _created(control, event_type, 1, "earlier@example.com")
    assert (await post_webhook(api, public_id, earlier))[0] == 200
    await _drain_with_one_worker(api)

    plain = [await _created(control, event_type, 2 + n, f"p{n}@example.com") for n in range(5)]
    shared = [await _created(control, event_type, 8 + n, "Same@Example.com") for n in range(2)]
    doomed = await _created(control, event_type, 11, "doomed@example.com")
    doomed_uri = doomed["payload"]["uri"]
    await _after(control, "cancel", doomed_uri, reason="no longer needed")
    canceled = envelope("invitee.canceled", await invitee_payload(control, doomed_uri))
    moved = await _created(control, event_type, 12, "moved@example.com")
    moved_uri = moved["payload"]["uri"]
    new = (await _after(control, "reschedule", moved_uri, start_time="2030-05-20T15:00:00Z"))[
        "new_invitee"
    ]["uri"]
    moved_canceled = envelope("invitee.canceled", await invitee_payload(control, moved_uri))
    moved_new = envelope("invitee.created", await invitee_payload(control, new))
    earlier_uri = earlier["payload"]["uri"]
    await _after(control, "no_show", earlier_uri)
    no_show = envelope("invitee_no_show.created", await invitee_payload(control, earlier_uri))
    # `doomed` (its invitee.created) arrives after its cancellation: a stale state
    group = [*plain, shared[0], canceled, moved, shared[1], moved_canceled, doomed, moved_new]
    group += [no_show]
    for delivery in group:
        assert (await post_webhook(api, public_id, delivery))[0] == 200
    await _drain_with_one_worker(api)

    log = await settled(api)
    by_uri: dict[str, dict[str, Any]] = {}
    for item in await appointments(api):
        by_uri[item["calendly_invitee_uri"]] = item
    statuses = sorted((e["event"], e["status"], e["reason"]) for e in log)
    expected_statuses = sorted(
        [("invitee.created", "processed", None)] * 10
        + [("invitee.canceled", "processed", None)] * 2
        + [("invitee_no_show.created", "processed", None)]
        + [("invitee.created", "ignored", "stale_state")]
    )
    assert expected_statuses == statuses
    summary = {
        uri: (a["status"], a["no_show"], a["reschedule_count"], a["client"]["email"])
        for uri, a in by_uri.items()
    }
    expected = {
        earlier_uri: ("confirmed", True, 0, "earlier@example.com"),
        **{
            p["payload"]["uri"]: ("confirmed", False, 0, f"p{n}@example.com")
            for n, p in enumerate(plain)
        },
        **{s["payload"]["uri"]: ("confirmed", False, 0, "Same@Example.com") for s in shared},
        doomed_uri: ("canceled", False, 0, "doomed@example.com"),
        new: ("confirmed", False, 1, "moved@example.com"),
    }
    assert expected == summary
    shared_clients = {by_uri[s["payload"]["uri"]]["client"]["id"] for s in shared}
    assert len(shared_clients) == 1
    notified = await _notified(database_url)
    created = sorted(a for a, kind, _ in notified if kind == "appointment.created")
    assert sorted(a["id"] for a in by_uri.values()) == created
    assert all(appointment == in_payload for appointment, _, in_payload in notified)
    assert (by_uri[new]["id"], "appointment.rescheduled") in {(a, k) for a, k, _ in notified}


async def _group_sizes(database_url: str) -> list[int]:
    """How many deliveries each transaction finished, in order (a group's rows share now())."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT count(*) AS n FROM webhook_events GROUP BY updated_at ORDER BY min(id)"
        )
    finally:
        await conn.close()
    return [row["n"] for row in rows]


async def test_a_backlog_is_claimed_in_doubling_batches(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(worker_batch_size=3, worker_max_batch_size=12)
    public_id = await _connect_then_pause(api)
    event_type = await default_event_type(control)
    for n in range(40):
        delivery = await _created(control, event_type, 1 + n % 28, f"b{n}@example.com")
        assert (await post_webhook(api, public_id, delivery))[0] == 200
    await _drain_with_one_worker(api)
    assert await _group_sizes(database_url) == [3, 6, 12, 12, 7]
    assert len(await appointments(api)) == 40
