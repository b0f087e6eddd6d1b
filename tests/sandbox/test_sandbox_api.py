"""API v2: users, event types, scheduled events, invitees, pagination and access rules."""

from __future__ import annotations

import pytest
from sandbox_helpers import Sandbox, at
from yarl import URL

PAGINATION_KEYS = {"count", "next_page", "previous_page", "next_page_token", "previous_page_token"}


async def owner_token(sandbox: Sandbox) -> tuple[str, dict[str, str]]:
    """Access token of the default owner and its token response."""
    tokens = await sandbox.connect()
    return tokens["access_token"], tokens


async def test_users_me_shape(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    reply = await sandbox.api(token, "/users/me")
    user = reply.body["resource"]
    expected_keys = {
        "uri", "name", "slug", "email", "scheduling_url", "timezone", "time_notation",
        "avatar_url", "created_at", "updated_at", "current_organization", "resource_type",
        "locale",
    }  # fmt: skip
    assert expected_keys == set(user)
    assert ("User", tokens["owner"]) == (user["resource_type"], user["uri"])
    assert user["created_at"].endswith("Z")
    assert len(user["created_at"].split(".")[1]) == len("123456Z")
    by_uuid = await sandbox.api(token, user["uri"])
    assert user == by_uuid.body["resource"]
    assert (await sandbox.api(token, "/users/does-not-exist")).status == 404


async def test_rate_limit_headers_on_api_only(sandbox: Sandbox) -> None:
    token, _ = await owner_token(sandbox)
    api = await sandbox.api(token, "/users/me")
    oauth = await sandbox.request("GET", "/oauth/authorize")
    control = await sandbox.request("GET", "/_sandbox/stats")
    assert (
        api.headers["X-RateLimit-Limit"],
        api.headers["X-RateLimit-Remaining"],
    ) == ("500", "499")
    assert 1 <= int(api.headers["X-RateLimit-Reset"]) <= 60
    assert "X-RateLimit-Limit" not in oauth.headers
    assert "X-RateLimit-Limit" not in control.headers


async def test_event_types(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    missing = await sandbox.api(token, "/event_types")
    assert (missing.status, missing.body["title"]) == (400, "Invalid Argument")

    made = await sandbox.control(
        "POST", "/event_types", {"user": tokens["owner"], "name": "A Quick Chat", "duration": 15}
    )
    extra = made["resource"]
    await sandbox.control(
        "POST", "/event_types", {"user": tokens["owner"], "name": "Gone", "duration": 5}
    )
    gone = (await sandbox.control("GET", "/event_types"))["collection"][-1]
    await sandbox.control("DELETE", "/event_types/" + gone["uri"].rsplit("/", 1)[1])

    reply = await sandbox.api(token, "/event_types", params={"user": tokens["owner"]})
    names = [et["name"] for et in reply.body["collection"]]
    assert names == ["30 Minute Meeting", "A Quick Chat"]
    assert set(reply.body["pagination"]) == PAGINATION_KEYS
    default = reply.body["collection"][0]
    expected = {"duration": 30, "slug": "30min", "kind": "solo", "type": "StandardEventType"}
    assert expected == {key: default[key] for key in expected}
    assert (default["active"], default["deleted_at"]) == (True, None)

    await sandbox.control(
        "PATCH", "/event_types/" + extra["uri"].rsplit("/", 1)[1], {"active": False}
    )
    by_org = await sandbox.api(
        token,
        "/event_types",
        params={"organization": tokens["organization"], "active": "true", "sort": "name:desc"},
    )
    assert [et["name"] for et in by_org.body["collection"]] == ["30 Minute Meeting"]


async def test_count_validation(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    for bad in ("0", "101", "abc", "1.5", "-1", ""):
        reply = await sandbox.api(
            token, "/scheduled_events", params={"user": tokens["owner"], "count": bad}
        )
        assert (reply.status, reply.body["details"][0]["parameter"]) == (400, "count"), bad
    bad_token = await sandbox.api(
        token, "/scheduled_events", params={"user": tokens["owner"], "page_token": "%%%"}
    )
    assert (bad_token.status, bad_token.body["details"][0]["parameter"]) == (400, "page_token")


async def test_pagination_past_100(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    event_type = await sandbox.default_event_type()
    created = await sandbox.control(
        "POST",
        "/bookings/bulk",
        {"event_type": event_type, "count": 250, "start_time": at(0), "interval_minutes": 60},
    )
    assert created == {"created": 250}

    first = await sandbox.api(
        token, "/scheduled_events", params={"user": tokens["owner"], "count": "100"}
    )
    pages, url = [first.body], first.body["pagination"]["next_page"]
    while url:
        page = (await sandbox.api(token, url)).body
        pages.append(page)
        url = page["pagination"]["next_page"]
    starts = [event["start_time"] for page in pages for event in page["collection"]]
    assert [len(page["collection"]) for page in pages] == [100, 100, 50]
    assert [at(60 * i) for i in range(250)] == starts
    assert (
        pages[0]["pagination"]["previous_page"],
        pages[-1]["pagination"]["next_page"],
    ) == (None, None)
    next_url = URL(pages[0]["pagination"]["next_page"])
    assert (sandbox.url, "/scheduled_events", "100") == (
        str(next_url.origin()),
        next_url.path,
        next_url.query["count"],
    )
    assert pages[0]["pagination"]["next_page_token"] == next_url.query["page_token"]

    back = await sandbox.api(token, pages[2]["pagination"]["previous_page"])
    assert pages[1]["collection"] == back.body["collection"]


async def test_sort_and_time_window(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    event_type = await sandbox.default_event_type()
    for minutes in (0, 60, 120, 180):
        await sandbox.book(event_type, at(minutes), deliver=False)
    params = {
        "user": tokens["owner"],
        "sort": "start_time:desc",
        "min_start_time": at(60),
        "max_start_time": at(180),
        "count": "1",
    }
    first = await sandbox.api(token, "/scheduled_events", params=params)
    second = await sandbox.api(token, first.body["pagination"]["next_page"])
    got = [first.body["collection"][0]["start_time"], second.body["collection"][0]["start_time"]]
    assert [at(120), at(60)] == got
    assert second.body["pagination"]["next_page"] is None
    bad_sort = await sandbox.api(token, "/scheduled_events", params={**params, "sort": "name:asc"})
    assert (bad_sort.status, bad_sort.body["details"][0]["parameter"]) == (400, "sort")


async def test_event_and_invitee_shapes(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    booked = await sandbox.book(await sandbox.default_event_type(), at(0), "ann@example.com")
    event_uri = booked["event"]["uri"]
    event = (await sandbox.api(token, event_uri)).body["resource"]
    assert (at(0), at(30), "active") == (event["start_time"], event["end_time"], event["status"])
    assert event["invitees_counter"] == {"total": 1, "active": 1, "limit": 1}
    assert "cancellation" not in event
    assert tokens["owner"] == event["event_memberships"][0]["user"]

    invitees = await sandbox.api(token, event_uri + "/invitees")
    invitee = invitees.body["collection"][0]
    assert invitee == (await sandbox.api(token, invitee["uri"])).body["resource"]
    expected_keys = {
        "uri", "email", "first_name", "last_name", "name", "status", "questions_and_answers",
        "timezone", "event", "created_at", "updated_at", "tracking", "text_reminder_number",
        "rescheduled", "old_invitee", "new_invitee", "cancel_url", "reschedule_url",
        "routing_form_submission", "payment", "no_show", "reconfirmation", "scheduling_method",
        "invitee_scheduled_by",
    }  # fmt: skip
    assert expected_keys == set(invitee)
    assert (event_uri, "ann@example.com", None) == (
        invitee["event"],
        invitee["email"],
        invitee["first_name"],
    )

    await sandbox.control("POST", "/invitees/cancel", {"invitee": invitee["uri"], "reason": "ill"})
    canceled = (await sandbox.api(token, event_uri)).body["resource"]
    assert (canceled["status"], canceled["cancellation"]["reason"]) == ("canceled", "ill")
    assert canceled["updated_at"] > event["updated_at"]
    active_only = await sandbox.api(token, event_uri + "/invitees", params={"status": "active"})
    assert active_only.body["collection"] == []
    listed = await sandbox.api(
        token, "/scheduled_events", params={"user": tokens["owner"], "status": "canceled"}
    )
    assert [event_uri] == [e["uri"] for e in listed.body["collection"]]
    unknown = await sandbox.api(token, event_uri + "/invitees/nope")
    assert unknown.status == 404


async def test_access_rules(sandbox: Sandbox) -> None:
    owner_access, owner = await owner_token(sandbox)
    await sandbox.add_user("member@example.com")
    member = await sandbox.connect(login_hint="member@example.com")
    member_access = member["access_token"]
    event_type = await sandbox.default_event_type()
    owner_event = (await sandbox.book(event_type, at(0), deliver=False))["event"]["uri"]

    other_user = await sandbox.api(
        member_access, "/scheduled_events", params={"user": owner["owner"]}
    )
    assert (
        other_user.status,
        other_user.body["title"],
        other_user.body["message"],
    ) == (
        403,
        "Permission Denied",
        "Please also specify organization when requesting events for a user within your"
        " organization.",
    )
    org_wide = await sandbox.api(
        member_access, "/scheduled_events", params={"organization": owner["organization"]}
    )
    assert org_wide.status == 403
    assert (await sandbox.api(member_access, owner_event)).status == 403
    assert (await sandbox.api(member_access, owner_event + "/invitees")).status == 403

    own = await sandbox.api(member_access, "/scheduled_events", params={"user": member["owner"]})
    assert (own.status, own.body["collection"]) == (200, [])
    as_admin = await sandbox.api(
        owner_access,
        "/scheduled_events",
        params={"organization": owner["organization"], "user": owner["owner"]},
    )
    assert [owner_event] == [e["uri"] for e in as_admin.body["collection"]]
    neither = await sandbox.api(owner_access, "/scheduled_events")
    assert neither.status == 400
    assert (await sandbox.api(owner_access, "/scheduled_events/nope")).status == 404


async def test_foreign_org_cannot_read(sandbox: Sandbox) -> None:
    owner_access, owner = await owner_token(sandbox)
    await sandbox.add_user("boss@other.example", role="owner", new_organization=True)
    other = await sandbox.connect(login_hint="boss@other.example")
    assert other["organization"] != owner["organization"]
    reply = await sandbox.api(
        other["access_token"], "/scheduled_events", params={"organization": owner["organization"]}
    )
    assert reply.status == 403
    assert (await sandbox.api(other["access_token"], owner["owner"])).status == 403
    assert (await sandbox.api(owner_access, owner["owner"])).status == 200


async def test_memberships(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    member = await sandbox.add_user("m2@example.com", role="admin")
    reply = await sandbox.api(
        token, "/organization_memberships", params={"organization": tokens["organization"]}
    )
    roles = {m["user"]["email"]: m["role"] for m in reply.body["collection"]}
    assert roles == {"sandbox@example.com": "owner", "m2@example.com": "admin"}
    one = await sandbox.api(token, "/organization_memberships", params={"user": member["uri"]})
    membership = one.body["collection"][0]
    assert (member, tokens["organization"]) == (membership["user"], membership["organization"])
    by_email = await sandbox.api(
        token,
        "/organization_memberships",
        params={"organization": tokens["organization"], "email": "m2@example.com"},
    )
    assert [m["user"]["email"] for m in by_email.body["collection"]] == ["m2@example.com"]
    assert (await sandbox.api(token, "/organization_memberships")).status == 400


async def test_unknown_route_is_calendly_404(sandbox: Sandbox) -> None:
    token, _ = await owner_token(sandbox)
    reply = await sandbox.api(token, "/no_such_thing")
    assert (reply.status, reply.body["title"]) == (404, "Resource Not Found")
    assert "X-RateLimit-Limit" in reply.headers


@pytest.mark.parametrize("count", [1, 7, 100])
async def test_offset_pagination_of_invitees(sandbox: Sandbox, count: int) -> None:
    token, tokens = await owner_token(sandbox)
    group = await sandbox.control(
        "POST",
        "/event_types",
        {
            "user": tokens["owner"],
            "name": "Class",
            "duration": 60,
            "kind": "group",
            "invitee_limit": 20,
        },
    )
    emails = [f"g{i}@example.com" for i in range(12)]
    booked = await sandbox.book(group["resource"]["uri"], at(0), *emails, deliver=False)
    url: str | None = booked["event"]["uri"] + f"/invitees?count={count}"
    seen: list[str] = []
    while url:
        page = (await sandbox.api(token, url)).body
        seen += [invitee["email"] for invitee in page["collection"]]
        url = page["pagination"]["next_page"]
    assert emails == seen


async def test_invitee_sort_desc_and_event_type_by_uri(sandbox: Sandbox) -> None:
    token, tokens = await owner_token(sandbox)
    group = await sandbox.control(
        "POST",
        "/event_types",
        {"user": tokens["owner"], "name": "Panel", "duration": 60, "kind": "group"},
    )
    event_type = group["resource"]
    assert event_type == (await sandbox.api(token, event_type["uri"])).body["resource"]
    booked = await sandbox.book(event_type["uri"], at(0), "a@example.com", "b@example.com")
    desc = await sandbox.api(
        token, booked["event"]["uri"] + "/invitees", params={"sort": "created_at:desc"}
    )
    assert [i["email"] for i in desc.body["collection"]] == ["b@example.com", "a@example.com"]
    by_email = await sandbox.api(
        token, booked["event"]["uri"] + "/invitees", params={"email": "a@example.com"}
    )
    assert [i["email"] for i in by_email.body["collection"]] == ["a@example.com"]
    filtered = await sandbox.api(
        token,
        "/scheduled_events",
        params={"user": tokens["owner"], "invitee_email": "b@example.com"},
    )
    assert [e["uri"] for e in filtered.body["collection"]] == [booked["event"]["uri"]]
