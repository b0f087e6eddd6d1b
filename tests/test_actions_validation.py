"""Actions on Calendly: what a real user types and what an attacker sends, 404s, scope gates,
and the Idempotency-Key rules that need no answer from Calendly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.actions_helpers import START, booking_body, event_type_id, in_days, post_booking
from tests.conftest import Api, Sandbox
from tests.helpers import appointments, book, default_event_type, settled


async def _codes(response: tuple[int, Any]) -> tuple[int, str, list[str]]:
    """(status, error code, invalid fields)."""
    status, body = response
    details = body["error"].get("details") or []
    fields = [d["field"] for d in details] if isinstance(details, list) else []
    return status, body["error"]["code"], fields


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"invitee": {"name": "Ana", "email": "ana@example.com", "timezone": "Mars/Olympus"}},
         "invitee.timezone"),
        ({"invitee": {"name": "Ana", "email": "ana@example.com", "timezone": "../../etc/passwd"}},
         "invitee.timezone"),
        ({"invitee": {"name": "Ana", "email": "not-an-email", "timezone": "UTC"}},
         "invitee.email"),
        ({"invitee": {"name": "A\x00na", "email": "ana@example.com", "timezone": "UTC"}},
         "invitee.name"),
        ({"invitee": {"name": "   ", "email": "ana@example.com", "timezone": "UTC"}},
         "invitee.name"),
        ({"invitee": {"name": "A" * 100_000, "email": "ana@example.com", "timezone": "UTC"}},
         "invitee.name"),
        ({"invitee": {"name": "Ana", "email": "ana@example.com", "timezone": "UTC",
                      "phone": "call me"}}, "invitee.phone"),
        ({"start_time": "2030-01-07T10:00:00"}, "start_time"),
        ({"start_time": "2020-01-07T10:00:00Z"}, "start_time"),
        ({"start_time": "tomorrow"}, "start_time"),
        ({"start_time": "9999-12-31T23:59:59Z"}, "start_time"),
        ({"event_type_id": "1"}, "event_type_id"),
        ({"event_type_id": 2**63}, "event_type_id"),
        ({"surprise": True}, "surprise"),
    ],
)  # fmt: skip
async def test_bad_booking_input_is_422(api: Api, change: dict[str, Any], field: str) -> None:
    await api.connect()
    body = booking_body(await event_type_id(api)) | change
    assert (422, "validation_error", [field]) == await _codes(await post_booking(api, body))


async def test_booking_without_idempotency_key_is_400(api: Api) -> None:
    await api.connect()
    body = booking_body(await event_type_id(api))
    missing = await _codes(await post_booking(api, body, key=None))
    blank = await _codes(await post_booking(api, body, key="  "))
    too_long = await _codes(await post_booking(api, body, key="k" * 300))
    assert missing == (400, "idempotency_key_required", [])
    assert blank == (400, "idempotency_key_required", [])
    assert too_long == (422, "validation_error", ["Idempotency-Key"])


async def test_bad_json_is_400_and_wrong_shapes_422(api: Api) -> None:
    await api.connect()
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    broken, e1 = await api.call("POST", "/appointments", data=b"{nope", headers=headers)
    listed, e2 = await api.call("POST", "/appointments", data=b"[]", headers=headers)
    cancel, e3 = await api.call("POST", "/appointments/1/cancel", json={"reason": 5})
    assert (broken, e1["error"]["code"]) == (400, "invalid_json")
    assert (listed, e2["error"]["code"]) == (400, "invalid_json")
    assert (cancel, e3["error"]["code"]) == (422, "validation_error")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_time": "2030-01-07T10:00:00", "end_time": "2030-01-08T10:00:00Z"}, "start_time"),
        ({"start_time": "2020-01-07T10:00:00Z", "end_time": "2030-01-08T10:00:00Z"}, "start_time"),
        ({"start_time": "2030-01-08T10:00:00Z", "end_time": "2030-01-07T10:00:00Z"}, "body"),
        ({"start_time": "2030-01-01T00:00:00Z", "end_time": "2030-06-01T00:00:00Z"}, "body"),
        ({"start_time": "2030-01-07T10:00:00Z"}, "end_time"),
    ],
)
async def test_bad_available_times_range_is_422(
    api: Api, params: dict[str, str], field: str
) -> None:
    await api.connect()
    path = f"/event-types/{await event_type_id(api)}/available-times"
    status, body = await api.call("GET", path, params=params)
    assert (status, body["error"]["code"]) == (422, "validation_error")
    assert field in [d["field"] for d in body["error"]["details"]]


async def test_another_users_appointment_or_event_type_is_404(api: Api, control: Sandbox) -> None:
    await api.connect(user=1)
    await control.call("POST", "/_sandbox/users", {"email": "other@example.com", "name": "Other"})
    await api.connect(user=2, email="other@example.com")
    await book(control, await default_event_type(control), START)
    await settled(api)
    [mine] = await appointments(api)
    my_type = await event_type_id(api)
    asks = [
        ("POST", f"/appointments/{mine['id']}/cancel", {}),
        ("PUT", f"/appointments/{mine['id']}/no-show", None),
        ("DELETE", f"/appointments/{mine['id']}/no-show", None),
        ("POST", f"/event-types/{my_type}/scheduling-links", {}),
    ]
    answers = [await api.call(m, p, 2, json=b) for m, p, b in asks]
    times = await api.call(
        "GET", f"/event-types/{my_type}/available-times", 2,
        params={"start_time": in_days(1), "end_time": in_days(2)},
    )  # fmt: skip
    booked = await post_booking(api, booking_body(my_type), user=2)
    codes = [(s, b["error"]["code"]) for s, b in [*answers, times, booked]]
    assert codes == [
        (404, "appointment_not_found"), (404, "appointment_not_found"),
        (404, "appointment_not_found"), (404, "event_type_not_found"),
        (404, "event_type_not_found"), (404, "event_type_not_found"),
    ]  # fmt: skip
    [unchanged] = await appointments(api)
    assert (unchanged["status"], unchanged["no_show"]) == ("confirmed", False)
    assert await control.count("POST", "/invitees") == 0


async def test_missing_write_scopes_refuse_before_calling_calendly(
    start_service: Any, control: Sandbox
) -> None:
    read_only = "users:read event_types:read scheduled_events:read webhooks:write"
    api = await start_service(calendly_scopes=read_only)
    await api.connect()
    await book(control, await default_event_type(control), START)
    await settled(api)
    [appointment] = await appointments(api)
    my_type = await event_type_id(api)
    answers = [
        await api.call("POST", f"/appointments/{appointment['id']}/cancel", json={}),
        await api.call("PUT", f"/appointments/{appointment['id']}/no-show"),
        await post_booking(api, booking_body(my_type)),
        await api.call("POST", f"/event-types/{my_type}/scheduling-links", json={}),
    ]
    found = [(s, b["error"]["code"], b["error"]["details"]) for s, b in answers]
    events = {"required_scopes": ["scheduled_events:write"]}
    links = {"required_scopes": ["scheduling_links:write"]}
    assert found == [
        (409, "missing_scope", events), (409, "missing_scope", events),
        (409, "missing_scope", events), (409, "missing_scope", links),
    ]  # fmt: skip
    writes = [
        await control.count("POST", "/scheduled_events/{uuid}/cancellation"),
        await control.count("POST", "/invitee_no_shows"),
        await control.count("POST", "/invitees"),
        await control.count("POST", "/scheduling_links"),
    ]
    assert writes == [0, 0, 0, 0]


async def test_same_key_with_another_body_is_422(api: Api) -> None:
    await api.connect()
    my_type = await event_type_id(api)
    first, _ = await post_booking(api, booking_body(my_type))
    reused = await _codes(await post_booking(api, booking_body(my_type, name="Bia Souza")))
    assert first == 201
    assert reused == (422, "idempotency_key_reused", [])
