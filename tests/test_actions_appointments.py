"""Cancel and no-show actions over real HTTP against the sandbox: the answer is the changed
appointment, a repeat makes no Calendly call, and the webhook echo changes nothing."""

from __future__ import annotations

from typing import Any

from tests.actions_helpers import START, notifying, quiet
from tests.conftest import Api, MainAppReceiver, Sandbox
from tests.helpers import appointments, book, default_event_type, settled

CANCELLATION = ("POST", "/scheduled_events/{uuid}/cancellation")
MARK = ("POST", "/invitee_no_shows")
UNMARK = ("DELETE", "/invitee_no_shows/{uuid}")


async def _booked(api: Api, control: Sandbox, start: str = START) -> dict[str, Any]:
    """Connect, book once through the sandbox (delivered), wait; the appointment."""
    await api.connect()
    await book(control, await default_event_type(control), start)
    await settled(api)
    [appointment] = await appointments(api)
    return appointment


async def test_cancel_answers_the_canceled_appointment_and_the_echo_converges(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str]
) -> None:
    receiver, url = main_app
    api = await notifying(start_service, url)
    appointment = await _booked(api, control)
    path = f"/appointments/{appointment['id']}/cancel"
    status, canceled = await api.call("POST", path, json={"reason": "Médica indisponível"})
    again, repeated = await api.call("POST", path, json={})
    notes = await quiet(api, receiver, 2)
    [listed] = await appointments(api)
    assert (status, canceled["status"]) == (200, "canceled"), canceled
    cancellation = canceled["cancellation"]
    assert (cancellation["canceler_type"], cancellation["reason"]) == (
        "host", "Médica indisponível",
    )  # fmt: skip
    assert None not in (cancellation["canceled_by"], cancellation["canceled_at"])
    assert (again, repeated) == (200, canceled)
    assert listed == canceled
    assert [n["type"] for n in notes] == ["appointment.created", "appointment.canceled"]
    assert await control.count(*CANCELLATION) == 1


async def test_cancel_with_a_lost_answer_checks_the_event(api: Api, control: Sandbox) -> None:
    appointment = await _booked(api, control)
    fault = {"path_prefix": "/scheduled_events/", "count": 1, "mode": "drop"}
    await control.call("POST", "/_sandbox/faults", {"drop_response_after_apply": fault})
    status, canceled = await api.call("POST", f"/appointments/{appointment['id']}/cancel")
    assert (status, canceled["status"]) == (200, "canceled"), canceled
    assert canceled["cancellation"]["canceler_type"] == "host"
    assert await control.count(*CANCELLATION) == 1


async def test_cancel_refusals(api: Api, control: Sandbox) -> None:
    past = await _booked(api, control, "2020-01-06T15:00:00Z")
    status, body = await api.call("POST", f"/appointments/{past['id']}/cancel", json={})
    assert (status, body["error"]["code"]) == (409, "event_in_past")
    booking = await book(control, await default_event_type(control), START)
    await settled(api)
    invitee = booking["invitees"][0]["uri"]
    await control.call(
        "POST", "/_sandbox/invitees/cancel",
        {"invitee": invitee, "canceler_type": "host", "deliver": False},
    )  # fmt: skip
    [current] = [a for a in await appointments(api) if a["calendly_invitee_uri"] == invitee]
    gone, e2 = await api.call("POST", f"/appointments/{current['id']}/cancel", json={})
    _, after = await api.call("GET", f"/appointments/{current['id']}")
    assert (gone, e2["error"]["code"]) == (409, "already_canceled")
    assert (current["status"], after["status"]) == ("confirmed", "canceled")
    assert await control.count(*CANCELLATION) == 0


async def test_a_group_event_needs_whole_event(api: Api, control: Sandbox) -> None:
    [owner] = (await control.call("GET", "/_sandbox/users"))["collection"]
    group = await control.call(
        "POST", "/_sandbox/event_types",
        {"user": owner["email"], "name": "Group class", "duration": 60, "kind": "group",
         "invitee_limit": 5},
    )  # fmt: skip
    await api.connect()
    people = [
        {"name": "Ana", "email": "ana@example.com"},
        {"name": "Bia", "email": "bia@example.com"},
    ]
    await book(control, group["resource"]["uri"], START, *people)
    await settled(api)
    first, second = sorted(await appointments(api), key=lambda a: a["id"])
    path = f"/appointments/{first['id']}/cancel"
    refused, error = await api.call("POST", path, json={})
    calls_refused = await control.count(*CANCELLATION)
    status, canceled = await api.call("POST", path, json={"whole_event": True})
    await settled(api)
    _, other = await api.call("GET", f"/appointments/{second['id']}")
    assert (refused, error["error"]["code"], calls_refused) == (409, "group_event", 0)
    assert (status, canceled["status"], other["status"]) == (200, "canceled", "canceled")
    assert await control.count(*CANCELLATION) == 1


async def test_no_show_mark_and_unmark_converge_with_one_notification_each(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str]
) -> None:
    receiver, url = main_app
    api = await notifying(start_service, url)
    appointment = await _booked(api, control, "2030-01-07T15:00:00Z")
    path = f"/appointments/{appointment['id']}/no-show"
    marked = await api.call("PUT", path)
    marked_again = await api.call("PUT", path)
    await quiet(api, receiver, 2)
    unmarked = await api.call("DELETE", path)
    unmarked_again = await api.call("DELETE", path)
    notes = await quiet(api, receiver, 3)
    [listed] = await appointments(api)
    assert (marked[0], marked[1]["no_show"]) == (200, True), marked
    assert marked_again == marked
    assert (unmarked[0], unmarked[1]["no_show"]) == (200, False), unmarked
    assert unmarked_again == unmarked
    assert listed == unmarked[1]
    assert [n["type"] for n in notes] == [
        "appointment.created", "appointment.no_show", "appointment.no_show",
    ]  # fmt: skip
    assert (await control.count(*MARK), await control.count(*UNMARK)) == (1, 1)


async def test_unmarking_a_mark_made_at_calendly_finds_its_uri(api: Api, control: Sandbox) -> None:
    appointment = await _booked(api, control)
    await control.call(
        "POST", "/_sandbox/invitees/no_show", {"invitee": appointment["calendly_invitee_uri"]}
    )
    await settled(api)
    path = f"/appointments/{appointment['id']}/no-show"
    _, before = await api.call("GET", f"/appointments/{appointment['id']}")
    status, unmarked = await api.call("DELETE", path)
    assert (before["no_show"], status, unmarked["no_show"]) == (True, 200, False)
    assert await control.count(*UNMARK) == 1


async def test_a_canceled_appointment_cannot_be_marked_a_no_show(
    api: Api, control: Sandbox
) -> None:
    appointment = await _booked(api, control)
    await api.call("POST", f"/appointments/{appointment['id']}/cancel")
    status, body = await api.call("PUT", f"/appointments/{appointment['id']}/no-show")
    assert (status, body["error"]["code"]) == (409, "appointment_canceled")
    assert await control.count(*MARK) == 0
