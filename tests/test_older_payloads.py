"""Older webhook payloads (no embedded scheduled_event) and unknown event types are completed
with one single-resource read each, through the Calendly client, over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, Sandbox
from tests.helpers import (
    appointments,
    book,
    default_event_type,
    envelope,
    invitee_payload,
    post_webhook,
    settled,
    shared_calendly_dir,
)
from tests.test_apply_runs import _connect_then_pause, _drain_with_one_worker

START = "2030-03-04T15:00:00Z"
EVENT_READ = ("GET", "/scheduled_events/{uuid}")


async def _old_shape(control: Sandbox, start: str = START, email: str = "ana@example.com") -> Any:
    """An undelivered booking's invitee.created payload without its scheduled_event."""
    person = {"name": "Ana Lima", "email": email}
    booking = await book(control, await default_event_type(control), start, person, deliver=False)
    payload = await invitee_payload(control, booking["invitees"][0]["uri"])
    del payload["scheduled_event"]
    return payload


async def _fresh_stats(control: Sandbox) -> None:
    """Forget the requests made so far (the test's own reads included)."""
    await control.call("DELETE", "/_sandbox/stats")


async def test_old_shape_is_applied_after_one_event_read(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    payload = await _old_shape(control)
    await _fresh_stats(control)
    status, _ = await post_webhook(
        api, integration["public_id"], envelope("invitee.created", payload)
    )
    [event] = await settled(api)
    [appointment] = await appointments(api)
    assert (status, event["status"], event["reason"]) == (200, "processed", None)
    assert (appointment["start_time"], appointment["end_time"]) == (
        "2030-03-04T15:00:00+00:00",
        "2030-03-04T15:30:00+00:00",
    )
    assert appointment["calendly_event_uri"] == payload["event"]
    assert await control.count(*EVENT_READ) == 1


def _sample(name: str, real: dict[str, Any]) -> dict[str, Any]:
    """A 2022-shape delivery from the shared samples, made about a booking the sandbox knows
    (the sample's identities point at Calendly's example account)."""
    shared = shared_calendly_dir()
    if shared is None:
        pytest.skip("../shared/calendly (or CALENDLY_SHARED_DIR) is absent")
    sample: dict[str, Any] = json.loads((shared / "webhook-samples" / name).read_text())
    assert "scheduled_event" not in sample["payload"]
    sample["payload"] |= {key: real[key] for key in ("uri", "event", "email", "created_at")}
    return sample


async def test_old_shape_from_the_2022_samples(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    real = await _old_shape(control)
    created = _sample("invitee.created.openapi-2022.json", real)
    canceled = _sample("invitee.canceled.openapi-2022.json", real)
    await _fresh_stats(control)
    status, _ = await post_webhook(api, integration["public_id"], created)
    [first] = await settled(api)
    [booked] = await appointments(api)
    reads_after_created = await control.count(*EVENT_READ)
    await post_webhook(api, integration["public_id"], canceled)
    events = await settled(api)
    [after] = await appointments(api)
    assert (status, first["status"]) == (200, "processed")
    assert (booked["status"], booked["start_time"], booked["end_time"]) == (
        "confirmed",
        "2030-03-04T15:00:00+00:00",
        "2030-03-04T15:30:00+00:00",
    )
    assert booked["client"]["name"] == "John Doe"
    assert [e["status"] for e in events] == ["processed", "processed"]
    assert (after["id"], after["status"], after["cancellation"]["reason"]) == (
        booked["id"],
        "canceled",
        "Meeting Conflict",
    )
    assert (reads_after_created, await control.count(*EVENT_READ)) == (1, 2)


async def test_old_shape_in_a_batched_run(start_service: Any, control: Sandbox) -> None:
    api = await start_service(worker_batch_size=50)
    public_id = await _connect_then_pause(api)
    _, integration = await api.call("GET", "/integration")
    group = await control.call(
        "POST",
        "/_sandbox/event_types",
        {"user": integration["calendly_user_uri"], "name": "Workshop", "duration": 60,
         "kind": "group", "invitee_limit": 5, "deliver": False},
    )  # fmt: skip
    solo = await _old_shape(control, "2030-03-05T09:00:00Z", "one@example.com")
    people = [{"name": f"P{n}", "email": f"p{n}@example.com"} for n in range(2)]
    booking = await book(
        control, group["resource"]["uri"], "2030-03-06T09:00:00Z", *people, deliver=False
    )
    shared = [await invitee_payload(control, i["uri"]) for i in booking["invitees"]]
    for payload in shared:
        del payload["scheduled_event"]
    await _fresh_stats(control)
    for payload in (solo, *shared):
        await post_webhook(api, public_id, envelope("invitee.created", payload))
    await _drain_with_one_worker(api)
    times = sorted((a["start_time"], a["end_time"]) for a in await appointments(api))
    assert times == [
        ("2030-03-05T09:00:00+00:00", "2030-03-05T09:30:00+00:00"),
        ("2030-03-06T09:00:00+00:00", "2030-03-06T10:00:00+00:00"),
        ("2030-03-06T09:00:00+00:00", "2030-03-06T10:00:00+00:00"),
    ]
    # one read per scheduled event: the run's two deliveries of the group event share it
    assert await control.count(*EVENT_READ) == 2
    assert await control.count("GET", "/event_types/{uuid}") == 1


async def test_old_shape_retries_when_calendly_fails(start_service: Any, control: Sandbox) -> None:
    api = await start_service(calendly_max_retries=0, retry_base_seconds=0.2)
    integration = await api.connect()
    payload = await _old_shape(control)
    await _fresh_stats(control)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 1, "fail_status": 503})
    await post_webhook(api, integration["public_id"], envelope("invitee.created", payload))
    [event] = await settled(api)
    [appointment] = await appointments(api)
    assert (event["status"], event["attempts"]) == ("processed", 2)
    assert appointment["start_time"] == "2030-03-04T15:00:00+00:00"
    # the refused read and the one that worked
    assert await control.count(*EVENT_READ) == 2


async def test_old_shape_whose_event_is_unknown_fails_for_good(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    payload = await _old_shape(control)
    payload["event"] = f"{control.url}/scheduled_events/NO-SUCH-EVENT"
    await post_webhook(api, integration["public_id"], envelope("invitee.created", payload))
    [event] = await settled(api)
    assert (event["status"], event["attempts"]) == ("failed", 1)
    assert event["error"] == (
        f"PayloadError: the scheduled event {payload['event']} is not found at Calendly"
    )
    assert await appointments(api) == []


async def test_unknown_event_type_is_read_alone(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    made = await control.call(
        "POST",
        "/_sandbox/event_types",
        {"user": integration["calendly_user_uri"], "name": "Quiet", "duration": 50,
         "deliver": False},
    )  # fmt: skip
    await _fresh_stats(control)
    await book(control, made["resource"]["uri"], START)
    await settled(api)
    [appointment] = await appointments(api)
    _, listing = await api.call("GET", "/event-types")
    quiet = next(i for i in listing["items"] if i["name"] == "Quiet")
    assert appointment["event_type_id"] == quiet["id"]
    assert appointment["end_time"] == "2030-03-04T15:50:00+00:00"
    reads = (await control.count("GET", "/event_types/{uuid}"), await control.count(
        "GET", "/event_types"
    ))  # fmt: skip
    assert reads == (1, 0)
