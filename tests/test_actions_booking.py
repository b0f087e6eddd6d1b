"""POST /appointments over real HTTP against the sandbox: one booking per Idempotency-Key, never
a second one after a lost answer, the webhook echo converging, the next sync agreeing."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.actions_helpers import (
    booking_body,
    calendly_bookings,
    event_type_id,
    notifying,
    post_booking,
    quiet,
)
from tests.conftest import Api, MainAppReceiver, Sandbox
from tests.helpers import appointments, settled

INVITEES = ("POST", "/invitees")


async def test_booking_answers_the_appointment_and_the_echo_changes_nothing(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str]
) -> None:
    receiver, url = main_app
    api = await notifying(start_service, url)
    await api.connect()
    body = booking_body(await event_type_id(api), name="Inês Conceição")
    status, booked = await post_booking(api, body)
    notes = await quiet(api, receiver, 1)
    [listed] = await appointments(api)
    assert status == 201, booked
    assert (booked["status"], booked["start_time"], booked["no_show"]) == (
        "confirmed", "2030-01-07T15:00:00+00:00", False,
    )  # fmt: skip
    assert booked["client"]["name"] == "Inês Conceição"
    assert booked["client"]["email"] == "ana+calendly@example.com"
    assert [n["type"] for n in notes] == ["appointment.created"]
    assert listed == booked | {"updated_at": listed["updated_at"]}
    assert listed["updated_at"] == booked["updated_at"]
    assert await control.count(*INVITEES) == 1


async def test_the_same_key_and_body_answer_the_same_without_calling_again(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    body = booking_body(await event_type_id(api))
    first = await post_booking(api, body)
    again = await post_booking(api, body)
    assert first[0] == 201, first
    assert again == first
    assert await control.count(*INVITEES) == 1


async def test_concurrent_requests_with_one_key_make_one_call(api: Api, control: Sandbox) -> None:
    await api.connect()
    body = booking_body(await event_type_id(api))
    answers = await asyncio.gather(*[post_booking(api, body) for _ in range(5)])
    assert {status for status, _ in answers} == {201}
    assert len({answer["id"] for _, answer in answers}) == 1
    assert await control.count(*INVITEES) == 1
    assert len(await appointments(api)) == 1


async def test_a_lost_answer_is_looked_up_before_a_retry_with_the_same_key(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    body = booking_body(await event_type_id(api))
    fault = {"path_prefix": "/invitees", "count": 1, "mode": "drop"}
    await control.call("POST", "/_sandbox/faults", {"drop_response_after_apply": fault})
    lost, error = await post_booking(api, body)
    retried, booked = await post_booking(api, body)
    await settled(api)
    assert (lost, error["error"]["code"], error["error"]["details"]["state"]) == (
        502, "calendly_error", "unknown",
    )  # fmt: skip
    assert retried == 201, booked
    assert await control.count(*INVITEES) == 1
    assert await calendly_bookings(control) == [
        ("2030-01-07T15:00:00.000000Z", "active", "ana+calendly@example.com")
    ]
    [appointment] = await appointments(api)
    assert appointment["id"] == booked["id"]


async def test_a_lost_answer_is_looked_up_before_a_retry_with_a_new_key(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    body = booking_body(await event_type_id(api))
    fault = {"path_prefix": "/invitees", "count": 1, "mode": "error"}
    await control.call("POST", "/_sandbox/faults", {"drop_response_after_apply": fault})
    lost, _ = await post_booking(api, body, key="first")
    retried, booked = await post_booking(api, body, key="second")
    old_key, same = await post_booking(api, body, key="first")
    await settled(api)
    assert (lost, retried, old_key) == (502, 201, 201)
    assert same == booked
    assert await control.count(*INVITEES) == 1
    assert len(await calendly_bookings(control)) == 1
    assert len(await appointments(api)) == 1


async def test_a_taken_slot_is_409_after_the_available_times_say_so(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    my_type = await event_type_id(api)
    await post_booking(api, booking_body(my_type), key="first")
    status, body = await post_booking(api, booking_body(my_type, email="bia@example.com"), "b")
    off_hours, e2 = await post_booking(api, booking_body(my_type, "2030-01-07T03:00:00Z"), "c")
    assert (status, body["error"]["code"]) == (409, "slot_unavailable")
    assert (off_hours, e2["error"]["code"]) == (409, "slot_unavailable")
    assert await control.count("GET", "/event_type_available_times") == 2


async def test_calendly_booking_limit_is_429_with_retry_after(api: Api, control: Sandbox) -> None:
    await api.connect()
    await control.call("POST", "/_sandbox/faults", {"scheduling_limits": [[1, 60]]})
    my_type = await event_type_id(api)
    await post_booking(api, booking_body(my_type), key="first")
    resp = await api.client.post(
        "/api/v1/calendly/appointments",
        json=booking_body(my_type, "2030-01-07T16:00:00Z"),
        headers=api.headers(1) | {"Idempotency-Key": "second"},
    )
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (429, "calendly_limit")
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert await control.count(*INVITEES) == 2


async def test_a_booking_made_here_is_the_same_appointment_for_the_next_sync(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    status, booked = await post_booking(api, booking_body(await event_type_id(api)))
    await settled(api)
    synced, job = await api.call("POST", "/sync/manual", json={"full": True})
    await api.syncs_idle()
    _, done = await api.call("GET", f"/sync/jobs/{job['job_id']}")
    [appointment] = await appointments(api)
    assert (status, synced, done["status"]) == (201, 202, "succeeded")
    assert appointment == booked | {"updated_at": appointment["updated_at"]}


async def test_a_5xx_is_unknown_and_the_retry_books_once_after_looking(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    body = booking_body(await event_type_id(api))
    await control.call("POST", "/_sandbox/faults", {"fail_next": 1, "fail_status": 503})
    failed, error = await post_booking(api, body)
    listings_before = await control.count("GET", "/scheduled_events")
    retried, booked = await post_booking(api, body)
    assert (failed, error["error"]["code"], error["error"]["details"]["state"]) == (
        502, "calendly_error", "unknown",
    )  # fmt: skip
    assert retried == 201, booked
    assert await control.count("GET", "/scheduled_events") == listings_before + 1
    assert await calendly_bookings(control) == [
        ("2030-01-07T15:00:00.000000Z", "active", "ana+calendly@example.com")
    ]


async def test_a_key_in_flight_longer_than_the_wait_is_409_in_progress(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(action_wait_seconds=0.3)
    await api.connect()
    body = booking_body(await event_type_id(api))
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 1500})
    first = asyncio.create_task(post_booking(api, body))
    await asyncio.sleep(0.3)
    waiting, error = await post_booking(api, body)
    booked = await first
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 0})
    after = await post_booking(api, body)
    assert (waiting, error["error"]["code"]) == (409, "idempotency_key_in_progress")
    assert booked[0] == 201, booked
    assert after == booked
    assert await control.count(*INVITEES) == 1
