"""Routing form submissions made in the sandbox reach the organization's subscription, are
stored, and every connected member of that organization reads them, page by page."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, Sandbox
from tests.helpers import book, default_event_type, settled

START = "2030-02-11T14:00:00Z"


async def _submit(control: Sandbox, answer: str, **body: Any) -> dict[str, Any]:
    """A submission made in the sandbox (delivered to organization subscriptions)."""
    made = await control.call(
        "POST",
        "/_sandbox/routing_form_submissions",
        {"questions_and_answers": [{"question": "Team?", "answer": answer}], **body},
    )
    resource: dict[str, Any] = made["resource"]
    return resource


async def _all(api: Api, user: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every submission the user sees, following next_cursor; (items, pages)."""
    items: list[dict[str, Any]] = []
    params, pages = {"limit": str(limit)}, 0
    while True:
        status, body = await api.call("GET", "/routing-form-submissions", user, params=params)
        assert status == 200, body
        items, pages = items + body["items"], pages + 1
        if body["next_cursor"] is None:
            return items, pages
        params["cursor"] = body["next_cursor"]


def _view(made: dict[str, Any], item_id: int) -> dict[str, Any]:
    """What the service answers for a submission the sandbox made."""
    return {
        "id": item_id,
        "calendly_uri": made["uri"],
        "routing_form": made["routing_form"],
        "questions_and_answers": made["questions_and_answers"],
        "submitter": made["submitter"],
        "result": made["result"],
        "created_at": made["created_at"].replace("Z", "+00:00"),
    }


async def test_members_of_the_organization_read_its_submissions(api: Api, control: Sandbox) -> None:
    admin = await api.connect(1)
    await control.call("POST", "/_sandbox/users", {"email": "member@example.com", "name": "M"})
    await api.connect(2, "member@example.com")
    await control.call(
        "POST", "/_sandbox/users",
        {"email": "elsewhere@example.com", "name": "E", "new_organization": True},
    )  # fmt: skip
    await api.connect(3, "elsewhere@example.com")
    booking = await book(control, await default_event_type(control), START)
    lead = {"name": "Ana Lima", "email": "ana@example.com"}
    made = [
        await _submit(control, "A"),
        await _submit(control, "B", submitter=lead),
        await _submit(control, "C"),
    ]
    log = await settled(api, 1)
    admin_items, admin_pages = await _all(api, 1, 2)
    member_items, _ = await _all(api, 2, 50)
    outsider_items, _ = await _all(api, 3, 50)
    status, unknown = await api.call("GET", "/routing-form-submissions", 4)
    routed = [e for e in log if e["event"] == "routing_form_submission.created"]
    assert admin["routing_forms_webhook"] == "active"
    assert [e["status"] for e in routed] == ["processed"] * 3
    newest_first = list(reversed(made))
    ids = [i["id"] for i in admin_items]
    assert ids == sorted(ids, reverse=True)
    assert admin_items == [_view(m, i) for m, i in zip(newest_first, ids, strict=True)]
    assert admin_pages == 2
    assert member_items == admin_items
    assert admin_items[1]["submitter"] == booking["invitees"][0]["uri"]
    assert outsider_items == []
    assert (status, unknown["error"]["code"]) == (404, "not_connected")


async def test_a_disconnected_member_reads_nothing(api: Api, control: Sandbox) -> None:
    await api.connect(1)
    await control.call("POST", "/_sandbox/users", {"email": "member@example.com", "name": "M"})
    await api.connect(2, "member@example.com")
    await _submit(control, "A")
    await settled(api, 1)
    before, _ = await _all(api, 2, 50)
    disconnected, _ = await api.call("DELETE", "/integration", 2)
    status, body = await api.call("GET", "/routing-form-submissions", 2)
    admin, _ = await _all(api, 1, 50)
    assert (len(before), disconnected, len(admin)) == (1, 204, 1)
    assert (status, body["error"]["code"]) == (404, "not_connected")


async def test_bad_limit_or_cursor(api: Api) -> None:
    await api.connect()
    path = "/routing-form-submissions"
    zero = await api.call("GET", path, params={"limit": "0"})
    huge = await api.call("GET", path, params={"limit": "201"})
    cursor = await api.call("GET", path, params={"cursor": "not-a-cursor"})
    extra = await api.call("GET", path, params={"organization": "x"})
    assert [(s, b["error"]["code"]) for s, b in (zero, huge, cursor, extra)] == [
        (422, "validation_error"),
        (422, "validation_error"),
        (400, "invalid_cursor"),
        (422, "validation_error"),
    ]
