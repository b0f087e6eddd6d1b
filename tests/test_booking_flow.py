"""Bookings, cancels, reschedules and no-shows driven through the sandbox, end to end."""

from __future__ import annotations

from typing import Any

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

START = "2030-01-07T10:00:00Z"


async def _booked(
    api: Api, control: Sandbox, **person: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Connect, book once (delivered), wait; returns (booking, appointment)."""
    await api.connect()
    invitee = {"name": "Ana Lima", "email": "Ana@Example.com"} | person
    booking = await book(control, await default_event_type(control), START, invitee)
    await settled(api)
    [appointment] = await appointments(api)
    return booking, appointment


async def test_booking_creates_appointment_and_client(api: Api, control: Sandbox) -> None:
    booking, appointment = await _booked(
        api,
        control,
        text_reminder_number="+15550100",
        questions_and_answers=[{"question": "Why?", "answer": "Checkup", "position": 0}],
    )
    _, clients = await api.call("GET", "/clients")
    _, event_types = await api.call("GET", "/event-types")
    invitee = booking["invitees"][0]
    assert appointment["status"] == "confirmed"
    assert (appointment["start_time"], appointment["end_time"]) == (
        "2030-01-07T10:00:00+00:00",
        "2030-01-07T10:30:00+00:00",
    )
    assert appointment["calendly_invitee_uri"] == invitee["uri"]
    assert appointment["calendly_event_uri"] == booking["event"]["uri"]
    assert appointment["event_type_id"] == event_types["items"][0]["id"]
    assert (appointment["cancel_url"], appointment["reschedule_url"]) == (
        invitee["cancel_url"],
        invitee["reschedule_url"],
    )
    assert appointment["location"] == booking["event"]["location"]
    assert appointment["questions_and_answers"] == invitee["questions_and_answers"]
    assert (
        appointment["no_show"],
        appointment["reschedule_count"],
        appointment["cancellation"],
    ) == (
        False,
        0,
        None,
    )
    [client] = clients["items"]
    assert appointment["client"] == {
        "id": client["id"],
        "name": "Ana Lima",
        "email": "Ana@Example.com",
        "phone": "+15550100",
    }


async def test_service_comes_from_mapping_or_default(api: Api, control: Sandbox) -> None:
    await api.connect()
    _, listing = await api.call("GET", "/event-types")
    await api.call("PUT", "/integration/sync-settings", json={"default_service_id": 77})
    event_type = await default_event_type(control)
    await book(control, event_type, START)
    await settled(api)
    await api.call(
        "PUT", f"/event-types/{listing['items'][0]['id']}/mapping", json={"service_id": 5}
    )
    await book(
        control, event_type, "2030-01-08T10:00:00Z", {"name": "Bo", "email": "bo@example.com"}
    )
    await settled(api)
    by_start = {a["start_time"][:10]: a["service_id"] for a in await appointments(api)}
    assert by_start == {"2030-01-07": 77, "2030-01-08": 5}


async def test_pending_when_not_auto_confirmed(api: Api, control: Sandbox) -> None:
    await api.connect()
    await api.call("PUT", "/integration/sync-settings", json={"auto_confirm_bookings": False})
    await book(control, await default_event_type(control), START)
    await settled(api)
    assert [a["status"] for a in await appointments(api)] == ["pending"]


async def test_existing_client_is_reused_and_completed(api: Api, control: Sandbox) -> None:
    await api.connect()
    event_type = await default_event_type(control)
    await book(control, event_type, START, {"name": "Ana", "email": "ana@example.com"})
    await book(
        control,
        event_type,
        "2030-01-08T10:00:00Z",
        {"name": "Ana Other", "email": "ANA@Example.COM", "text_reminder_number": "+1555"},
    )
    await settled(api)
    _, clients = await api.call("GET", "/clients")
    [client] = clients["items"]
    assert (client["name"], client["phone"]) == ("Ana", "+1555")
    assert {a["client"]["id"] for a in await appointments(api)} == {client["id"]}


async def test_no_client_created_when_disabled(api: Api, control: Sandbox) -> None:
    await api.connect()
    await api.call("PUT", "/integration/sync-settings", json={"create_client_if_not_exists": False})
    await book(control, await default_event_type(control), START)
    await settled(api)
    _, clients = await api.call("GET", "/clients")
    assert clients["items"] == []
    assert [a["client"] for a in await appointments(api)] == [None]


async def test_first_and_last_name_make_the_client_name(api: Api, control: Sandbox) -> None:
    await _booked(api, control, name="ignored", first_name="Ana", last_name="Lima")
    _, clients = await api.call("GET", "/clients")
    assert [c["name"] for c in clients["items"]] == ["Ana Lima"]


async def test_cancel(api: Api, control: Sandbox) -> None:
    booking, before = await _booked(api, control)
    await control.call(
        "POST",
        "/_sandbox/invitees/cancel",
        {"invitee": booking["invitees"][0]["uri"], "reason": "sick"},
    )
    await settled(api)
    [after] = await appointments(api)
    assert after["id"] == before["id"]
    assert after["status"] == "canceled"
    assert after["cancellation"]["reason"] == "sick"
    assert after["cancellation"]["canceler_type"] == "invitee"
    assert after["cancellation"]["canceled_by"] == "Ana Lima"
    assert after["cancellation"]["canceled_at"] is not None


async def test_reschedule_moves_the_appointment(api: Api, control: Sandbox) -> None:
    booking, before = await _booked(api, control)
    moved = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": booking["invitees"][0]["uri"], "start_time": "2030-01-09T15:00:00Z"},
    )
    log = await settled(api)
    [after] = await appointments(api)
    assert [e["event"] for e in log] == ["invitee.created", "invitee.canceled", "invitee.created"]
    assert after["id"] == before["id"]
    assert after["status"] == "confirmed"
    assert after["start_time"] == "2030-01-09T15:00:00+00:00"
    assert after["calendly_invitee_uri"] == moved["new_invitee"]["uri"]
    assert after["reschedule_count"] == 1
    assert after["history"] == [
        {
            "calendly_invitee_uri": before["calendly_invitee_uri"],
            "calendly_event_uri": before["calendly_event_uri"],
            "start_time": before["start_time"],
            "end_time": before["end_time"],
        }
    ]


async def _reschedule_halves(
    api: Api, control: Sandbox
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Book (delivered), reschedule without delivery; return both halves as Calendly sends them."""
    integration = await api.connect()
    booking = await book(control, await default_event_type(control), START)
    await settled(api)
    moved = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {
            "invitee": booking["invitees"][0]["uri"],
            "start_time": "2030-01-09T15:00:00Z",
            "deliver": False,
        },
    )
    old = envelope("invitee.canceled", await invitee_payload(control, moved["old_invitee"]["uri"]))
    new = envelope("invitee.created", await invitee_payload(control, moved["new_invitee"]["uri"]))
    return integration["public_id"], old, new, moved


async def _final(api: Api) -> tuple[Any, ...]:
    """The one appointment's state that must not depend on arrival order."""
    [a] = await appointments(api)
    return (
        a["id"],
        a["status"],
        a["start_time"],
        a["calendly_invitee_uri"],
        a["reschedule_count"],
        len(a["history"]),
    )


async def test_reschedule_old_half_first(api: Api, control: Sandbox) -> None:
    public_id, old, new, moved = await _reschedule_halves(api, control)
    [original] = await appointments(api)
    await post_webhook(api, public_id, old)
    await settled(api)
    [between] = await appointments(api)
    await post_webhook(api, public_id, new)
    await settled(api)
    assert between["status"] == "confirmed"
    assert await _final(api) == (
        original["id"],
        "confirmed",
        "2030-01-09T15:00:00+00:00",
        moved["new_invitee"]["uri"],
        1,
        1,
    )


async def test_reschedule_new_half_first(api: Api, control: Sandbox) -> None:
    public_id, old, new, moved = await _reschedule_halves(api, control)
    [original] = await appointments(api)
    await post_webhook(api, public_id, new)
    await settled(api)
    [between] = await appointments(api)
    await post_webhook(api, public_id, old)
    await settled(api)
    assert (between["id"], between["status"], between["reschedule_count"]) == (
        original["id"],
        "confirmed",
        1,
    )
    assert await _final(api) == (
        original["id"],
        "confirmed",
        "2030-01-09T15:00:00+00:00",
        moved["new_invitee"]["uri"],
        1,
        1,
    )


async def test_reschedule_halves_duplicated_and_shuffled(api: Api, control: Sandbox) -> None:
    public_id, old, new, moved = await _reschedule_halves(api, control)
    [original] = await appointments(api)
    for delivery in (new, old, new, old, new, old):
        assert (await post_webhook(api, public_id, delivery))[0] == 200
    await settled(api)
    assert await _final(api) == (
        original["id"],
        "confirmed",
        "2030-01-09T15:00:00+00:00",
        moved["new_invitee"]["uri"],
        1,
        1,
    )


async def test_rescheduled_twice(api: Api, control: Sandbox) -> None:
    booking, original = await _booked(api, control)
    first = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": booking["invitees"][0]["uri"], "start_time": "2030-01-09T15:00:00Z"},
    )
    second = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": first["new_invitee"]["uri"], "start_time": "2030-01-10T09:00:00Z"},
    )
    await settled(api)
    [after] = await appointments(api)
    assert (after["id"], after["reschedule_count"]) == (original["id"], 2)
    assert after["calendly_invitee_uri"] == second["new_invitee"]["uri"]
    assert [h["start_time"] for h in after["history"]] == [
        "2030-01-07T10:00:00+00:00",
        "2030-01-09T15:00:00+00:00",
    ]


async def test_no_show_marked_and_cleared(api: Api, control: Sandbox) -> None:
    booking, _ = await _booked(api, control)
    uri = booking["invitees"][0]["uri"]
    await control.call("POST", "/_sandbox/invitees/no_show", {"invitee": uri})
    await settled(api)
    [marked] = await appointments(api)
    await control.call("DELETE", "/_sandbox/invitees/no_show", {"invitee": uri})
    await settled(api)
    [cleared] = await appointments(api)
    assert (marked["no_show"], cleared["no_show"]) == (True, False)
    assert (marked["status"], cleared["status"]) == ("confirmed", "confirmed")


async def test_group_event_gets_one_appointment_per_invitee(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    group = await control.call(
        "POST",
        "/_sandbox/event_types",
        {
            "user": integration["calendly_user_uri"],
            "name": "Workshop",
            "duration": 60,
            "kind": "group",
            "invitee_limit": 5,
        },
    )
    await settled(api)
    people = [{"name": f"P{n}", "email": f"p{n}@example.com"} for n in range(3)]
    booking = await book(control, group["resource"]["uri"], START, *people)
    await settled(api)
    items = await appointments(api)
    await control.call(
        "POST", "/_sandbox/invitees/cancel", {"invitee": booking["invitees"][1]["uri"]}
    )
    await settled(api)
    after = {a["client"]["email"]: a["status"] for a in await appointments(api)}
    _, clients = await api.call("GET", "/clients")
    assert len({a["calendly_event_uri"] for a in items}) == 1
    assert sorted(a["client"]["email"] for a in items) == [p["email"] for p in people]
    assert len(clients["items"]) == 3
    assert after == {
        "p0@example.com": "confirmed",
        "p1@example.com": "canceled",
        "p2@example.com": "confirmed",
    }


async def test_stale_state_never_overwrites_newer(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    booking = await book(control, await default_event_type(control), START, deliver=False)
    uri = booking["invitees"][0]["uri"]
    created = envelope("invitee.created", await invitee_payload(control, uri))
    await control.call("POST", "/_sandbox/invitees/cancel", {"invitee": uri, "deliver": False})
    canceled = envelope("invitee.canceled", await invitee_payload(control, uri))
    await post_webhook(api, integration["public_id"], canceled)
    await settled(api)
    await post_webhook(api, integration["public_id"], created)
    log = await settled(api)
    [appointment] = await appointments(api)
    assert appointment["status"] == "canceled"
    assert [(e["event"], e["status"], e["reason"]) for e in log] == [
        ("invitee.created", "ignored", "stale_state"),
        ("invitee.canceled", "processed", None),
    ]


async def test_inactive_mapping_is_ignored_with_reason(api: Api, control: Sandbox) -> None:
    await api.connect()
    _, listing = await api.call("GET", "/event-types")
    event_type_id = listing["items"][0]["id"]
    await api.call("PUT", f"/event-types/{event_type_id}/mapping", json={"is_active": False})
    await book(control, await default_event_type(control), START)
    inactive = await settled(api)
    await api.call(
        "PUT",
        f"/event-types/{event_type_id}/mapping",
        json={"is_active": True, "auto_create_appointment": False},
    )
    await book(control, await default_event_type(control), "2030-01-08T10:00:00Z")
    no_auto = await settled(api)
    assert await appointments(api) == []
    assert [(e["status"], e["reason"]) for e in inactive] == [("ignored", "event_type_inactive")]
    assert (no_auto[0]["status"], no_auto[0]["reason"]) == ("ignored", "auto_create_disabled")


async def test_sync_disabled_then_replay(api: Api, control: Sandbox) -> None:
    await api.connect()
    await api.call("PUT", "/integration/toggle", json={"sync_enabled": False})
    await book(control, await default_event_type(control), START)
    [ignored] = await settled(api)
    await api.call("PUT", "/integration/toggle", json={"sync_enabled": True})
    status, replayed = await api.call("POST", f"/webhook-events/{ignored['id']}/replay")
    [done] = await settled(api)
    assert (ignored["status"], ignored["reason"]) == ("ignored", "sync_disabled")
    assert (status, replayed["status"]) == (202, "received")
    assert (done["status"], done["reason"], done["attempts"]) == ("processed", None, 1)
    assert len(await appointments(api)) == 1


async def test_unknown_event_type_is_loaded(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    quiet = await control.call(
        "POST",
        "/_sandbox/event_types",
        {
            "user": integration["calendly_user_uri"],
            "name": "Late",
            "duration": 45,
            "deliver": False,
        },
    )
    await book(control, quiet["resource"]["uri"], START)
    await settled(api)
    _, listing = await api.call("GET", "/event-types")
    [appointment] = await appointments(api)
    late = next(i for i in listing["items"] if i["name"] == "Late")
    assert appointment["event_type_id"] == late["id"]
    assert appointment["end_time"] == "2030-01-07T10:45:00+00:00"


async def test_event_type_webhooks_keep_the_list_current(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    _, before = await api.call("GET", "/event-types")
    await api.call(
        "PUT", f"/event-types/{before['items'][0]['id']}/mapping", json={"service_id": 3}
    )
    made = await control.call(
        "POST",
        "/_sandbox/event_types",
        {"user": integration["calendly_user_uri"], "name": "New", "duration": 20},
    )
    uuid = made["resource"]["uri"].rsplit("/", 1)[1]
    await control.call("PATCH", f"/_sandbox/event_types/{uuid}", {"name": "Renamed"})
    seed_uuid = before["items"][0]["calendly_event_type_uri"].rsplit("/", 1)[1]
    await control.call("PATCH", f"/_sandbox/event_types/{seed_uuid}", {"duration": 50})
    await settled(api)
    _, after = await api.call("GET", "/event-types")
    names = {i["name"]: (i["duration_minutes"], i["service_id"]) for i in after["items"]}
    assert names == {"30 Minute Meeting": (50, 3), "Renamed": (20, None)}


async def test_routing_form_submission_is_stored_and_linked(
    api: Api, control: Sandbox, database_url: str
) -> None:
    booking, _ = await _booked(api, control)
    _, integration = await api.call("GET", "/integration")
    submission = {
        "uri": "https://api.calendly.com/routing_form_submissions/SUB1",
        "routing_form": "https://api.calendly.com/routing_forms/FORM1",
        "questions_and_answers": [{"question_uuid": "q1", "question": "Team?", "answer": "A"}],
        "tracking": {"utm_source": None},
        "result": {"type": "event_type", "value": "x"},
        "submitter": booking["invitees"][0]["uri"],
        "submitter_type": "Invitee",
        "created_at": "2030-01-01T00:00:00.000000Z",
        "updated_at": "2030-01-01T00:00:00.000000Z",
    }
    status, _ = await post_webhook(
        api, integration["public_id"], envelope("routing_form_submission.created", submission)
    )
    await settled(api)
    import asyncpg

    conn = await asyncpg.connect(database_url)
    row = await conn.fetchrow(
        "SELECT r.submitter_uri, a.id AS appointment_id FROM routing_form_submissions r "
        "JOIN calendly_invitees ci ON ci.uri = r.submitter_uri "
        "JOIN appointments a ON a.id = ci.appointment_id"
    )
    await conn.close()
    [appointment] = await appointments(api)
    assert status == 200
    assert (row["submitter_uri"], row["appointment_id"]) == (
        booking["invitees"][0]["uri"],
        appointment["id"],
    )
