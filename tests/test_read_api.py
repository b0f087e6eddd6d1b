"""Reading appointments, clients and the webhook log; every list is scoped to X-User-Id."""

from __future__ import annotations

import pytest

from calendly_svc.http.pagination import encode_cursor
from tests.conftest import Api, Sandbox
from tests.helpers import appointments, book, default_event_type, settled


async def _five(api: Api, control: Sandbox) -> list[dict[str, object]]:
    """Five bookings on five days, the third canceled; each applied before the next is made, so
    each is a change of its own moment (the worker applies deliveries that arrive together in one
    transaction)."""
    await api.connect()
    event_type = await default_event_type(control)
    bookings = []
    for day in range(1, 6):
        person = {"name": f"C{day}", "email": f"c{day}@example.com"}
        bookings.append(await book(control, event_type, f"2030-01-0{day}T10:00:00Z", person))
        await settled(api)
    await control.call(
        "POST", "/_sandbox/invitees/cancel", {"invitee": bookings[2]["invitees"][0]["uri"]}
    )
    await settled(api)
    return bookings


async def test_pages_cover_everything_newest_change_first(api: Api, control: Sandbox) -> None:
    await _five(api, control)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, body = await api.call("GET", "/appointments", params=params)
        assert status == 200
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    keys = [(a["updated_at"], a["id"]) for a in seen]
    assert pages == 3
    assert len({a["id"] for a in seen}) == 5
    assert keys == sorted(keys, reverse=True)
    assert seen[0]["status"] == "canceled"


async def test_filters(api: Api, control: Sandbox) -> None:
    await _five(api, control)
    everything = await appointments(api)
    newest = max(a["updated_at"] for a in everything)
    canceled = await appointments(api, status="canceled")
    window = await appointments(
        api, **{"from": "2030-01-02T00:00:00Z", "to": "2030-01-04T00:00:00Z"}
    )
    changed = await appointments(api, updated_after=min(a["updated_at"] for a in everything))
    none_after = await appointments(api, updated_after=newest)
    assert [a["start_time"][:10] for a in canceled] == ["2030-01-03"]
    assert sorted(a["start_time"][:10] for a in window) == ["2030-01-02", "2030-01-03"]
    assert len(changed) == 4
    assert none_after == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2030-01-01T00:00:00"}, "to"),
        ({"from": "0001-01-01T00:00:00+14:00"}, "from"),
        ({"updated_after": "9999-12-31T23:59:59-14:00"}, "updated_after"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_list_parameters_are_422(api: Api, params: dict[str, str], field: str) -> None:
    status, body = await api.call("GET", "/appointments", params=params)
    assert (status, body["error"]["details"][0]["field"]) == (422, field)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "W10",
        "WyJ4IiwxXQ",
        "WzEsMl0",
        encode_cursor("2030-01-01T00:00:00+00:00", 2**63),
        encode_cursor("0001-01-01T00:00:00+14:00", 1),
    ],
)
async def test_bad_cursor_is_400(api: Api, cursor: str) -> None:
    status, body = await api.call("GET", "/appointments", params={"cursor": cursor})
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")


async def test_cursor_id_beyond_bigint_is_400(api: Api) -> None:
    status, body = await api.call("GET", "/clients", params={"cursor": encode_cursor(2**63)})
    assert (status, body["error"]["code"]) == (400, "invalid_cursor")


@pytest.mark.parametrize(("path", "field"), [("/clients", "email"), ("/webhook-events", "event")])
async def test_nul_in_a_text_filter_is_422(api: Api, path: str, field: str) -> None:
    status, body = await api.call("GET", path, params={field: "a\x00b"})
    assert (status, body["error"]["details"][0]["field"]) == (422, field)


async def test_get_one_and_isolation(api: Api, control: Sandbox) -> None:
    await _five(api, control)
    first = (await appointments(api))[0]
    status, one = await api.call("GET", f"/appointments/{first['id']}")
    other, e1 = await api.call("GET", f"/appointments/{first['id']}", user=2)
    missing, e2 = await api.call("GET", "/appointments/999999")
    junk, _ = await api.call("GET", "/appointments/x1")
    _, others = await api.call("GET", "/appointments", user=2)
    _, other_clients = await api.call("GET", "/clients", user=2)
    other_log, e3 = await api.call("GET", "/webhook-events", user=2)
    assert (status, one) == (200, first)
    assert (other, e1["error"]["code"]) == (404, "appointment_not_found")
    assert (missing, e2["error"]["code"]) == (404, "appointment_not_found")
    assert junk == 404
    assert (others["items"], other_clients["items"]) == ([], [])
    assert (other_log, e3["error"]["code"]) == (404, "not_connected")


async def test_clients_by_email_and_pages(api: Api, control: Sandbox) -> None:
    await _five(api, control)
    _, page1 = await api.call("GET", "/clients", params={"limit": "3"})
    _, page2 = await api.call(
        "GET", "/clients", params={"limit": "3", "cursor": page1["next_cursor"]}
    )
    _, by_email = await api.call("GET", "/clients", params={"email": " C4@EXAMPLE.com"})
    emails = sorted(c["email"] for c in page1["items"] + page2["items"])
    assert emails == [f"c{n}@example.com" for n in range(1, 6)]
    assert page2["next_cursor"] is None
    assert [c["email"] for c in by_email["items"]] == ["c4@example.com"]


async def test_webhook_log_filters_and_replay_errors(api: Api, control: Sandbox) -> None:
    await _five(api, control)
    _, created = await api.call("GET", "/webhook-events", params={"event": "invitee.created"})
    _, canceled = await api.call("GET", "/webhook-events", params={"event": "invitee.canceled"})
    _, processed = await api.call(
        "GET", "/webhook-events", params={"status": "processed", "limit": "4"}
    )
    _, rest = await api.call(
        "GET", "/webhook-events", params={"status": "processed", "cursor": processed["next_cursor"]}
    )
    bad, e1 = await api.call("GET", "/webhook-events", params={"status": "done"})
    missing, e2 = await api.call("POST", "/webhook-events/999999/replay")
    other, e3 = await api.call(
        "POST", f"/webhook-events/{created['items'][0]['id']}/replay", user=2
    )
    assert len(created["items"]) == 5
    assert len(canceled["items"]) == 1
    assert len(processed["items"]) + len(rest["items"]) == 6
    assert (bad, e1["error"]["details"][0]["field"]) == (422, "status")
    assert (missing, e2["error"]["code"]) == (404, "webhook_event_not_found")
    assert (other, e3["error"]["code"]) == (404, "not_connected")


async def test_replay_of_processed_event_changes_nothing(api: Api, control: Sandbox) -> None:
    await _five(api, control)
    before = await appointments(api)
    _, log = await api.call("GET", "/webhook-events")
    for entry in log["items"]:
        status, _ = await api.call("POST", f"/webhook-events/{entry['id']}/replay")
        assert status == 202
    after_log = await settled(api)
    outcomes = sorted((e["event"], e["status"], e["reason"]) for e in after_log)
    assert await appointments(api) == before
    # the canceled booking's creation is older than what is stored now: applying it is a no-op
    assert outcomes == [
        ("invitee.canceled", "processed", None),
        ("invitee.created", "ignored", "stale_state"),
        *[("invitee.created", "processed", None)] * 4,
    ]
