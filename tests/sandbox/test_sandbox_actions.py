"""The sandbox's write endpoints over HTTP: cancel, no-shows, available times, the Scheduling
API with its per-plan limits, single-use links, the webhooks each causes, the lost-answer fault."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sandbox_helpers import Receiver, Sandbox

DAY = datetime(2030, 1, 1, tzinfo=UTC)  # a Tuesday; New York working hours are 14:00-22:00Z
EVENTS = ["invitee.created", "invitee.canceled", "invitee_no_show.created",
          "invitee_no_show.deleted"]  # fmt: skip


def utc(moment: datetime) -> str:
    """Calendly's UTC text."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hour(h: float, day: datetime = DAY) -> datetime:
    """A moment on day, h hours after midnight UTC."""
    return day + timedelta(hours=h)


class Owner:
    """The default user's token, organization and event types, with webhooks subscribed."""

    def __init__(self, sandbox: Sandbox, tokens: dict[str, Any]) -> None:
        self.sandbox = sandbox
        self.token = tokens["access_token"]
        self.uri = tokens["owner"]
        self.org = tokens["organization"]

    async def api(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        """An API call as the owner."""
        return await self.sandbox.api(self.token, path, method, **kwargs)

    async def event_type(self, name: str, duration: int = 30, **extra: Any) -> str:
        """A new event type of the owner."""
        body = {"user": self.uri, "name": name, "duration": duration, **extra}
        made = await self.sandbox.control("POST", "/event_types", {**body, "deliver": False})
        return str(made["resource"]["uri"])

    async def times(self, event_type: str, low: datetime, high: datetime) -> list[Any]:
        """The available times' (start_time, invitees_remaining) pairs."""
        params = {"event_type": event_type, "start_time": utc(low), "end_time": utc(high)}
        reply = await self.api("/event_type_available_times", params=params)
        assert reply.status == 200, reply
        return [(t["start_time"], t["invitees_remaining"]) for t in reply.body["collection"]]

    async def invitee(
        self, event_type: str, start: datetime, email: str = "pat@example.com"
    ) -> Any:
        """POST /invitees with a minimal valid body."""
        body = {"event_type": event_type, "start_time": utc(start),
                "invitee": {"name": "Pat", "email": email, "timezone": "Europe/Paris"}}  # fmt: skip
        return await self.api("/invitees", "POST", json=body)


@pytest.fixture
async def owner(sandbox: Sandbox, receiver: Receiver) -> Owner:
    """The owner, subscribed (organization scope) to the invitee events."""
    owner = Owner(sandbox, await sandbox.connect())
    body = {"url": receiver.url, "events": EVENTS, "organization": owner.org,
            "scope": "organization"}  # fmt: skip
    assert (await owner.api("/webhook_subscriptions", "POST", json=body)).status == 201
    return owner


def received(receiver: Receiver) -> list[tuple[str, str]]:
    """(event, invitee URI) of every delivery so far."""
    bodies = [json.loads(item.body) for item in receiver.received]
    return [(body["event"], body["payload"]["uri"]) for body in bodies]


async def test_cancel_cancels_the_event_and_every_invitee_with_one_webhook_each(
    sandbox: Sandbox, owner: Owner, receiver: Receiver
) -> None:
    group = await owner.event_type("Class", kind="group", invitee_limit=3)
    made = await sandbox.book(group, utc(hour(14)), "a@example.com", "b@example.com", deliver=False)
    event = made["event"]["uri"]
    reply = await owner.api(event + "/cancellation", "POST", json={"reason": "Sick"})
    after = (await owner.api(event)).body["resource"]
    invitees = (await owner.api(event + "/invitees")).body["collection"]
    expected = {"canceled_by": "Sandbox User", "reason": "Sick", "canceler_type": "host"}
    assert (reply.status, {k: reply.body["resource"][k] for k in expected}) == (201, expected)
    assert (after["status"], after["cancellation"]["canceler_type"]) == ("canceled", "host")
    assert [(i["status"], i["cancellation"]["reason"]) for i in invitees] == [
        ("canceled", "Sick")
    ] * 2
    await receiver.wait_for(2)
    assert sorted(received(receiver)) == sorted(("invitee.canceled", i["uri"]) for i in invitees)


async def test_cancel_refusals(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    future = (await sandbox.book(solo, utc(hour(14)), deliver=False))["event"]["uri"]
    past = await sandbox.book(solo, utc(datetime.now(UTC) - timedelta(hours=2)), deliver=False)
    await sandbox.add_user("member@example.com")
    member = (await sandbox.connect(login_hint="member@example.com"))["access_token"]
    await sandbox.add_user("out@example.com", new_organization=True)
    outsider = (await sandbox.connect(login_hint="out@example.com"))["access_token"]
    path = future + "/cancellation"
    calls = [
        ("too-long", await owner.api(path, "POST", json={"reason": "x" * 10_001})),
        ("not-an-object", await owner.api(path, "POST", json=["reason"])),
        ("reason-not-text", await owner.api(path, "POST", json={"reason": 5})),
        ("member", await sandbox.api(member, path, "POST")),
        ("outsider", await sandbox.api(outsider, path, "POST")),
        ("unknown", await owner.api("/scheduled_events/nope/cancellation", "POST")),
        ("past", await owner.api(past["event"]["uri"] + "/cancellation", "POST")),
        ("first", await owner.api(path, "POST")),
        ("again", await owner.api(path, "POST")),
    ]
    expected = [
        ("too-long", 400, "The supplied parameters are invalid."),
        ("not-an-object", 400, "The supplied parameters are invalid."),
        ("reason-not-text", 400, "The supplied parameters are invalid."),
        ("member", 403, "You are not allowed to cancel this event"),
        ("outsider", 404, "Scheduled event not found"),
        ("unknown", 404, "Scheduled event not found"),
        ("past", 403, "Event in the past"),
        ("first", 201, None),
        ("again", 403, "Event is already canceled"),
    ]
    assert [(n, r.status, r.body.get("message")) for n, r in calls] == expected


async def test_no_show_mark_read_unmark_with_webhooks(
    sandbox: Sandbox, owner: Owner, receiver: Receiver
) -> None:
    made = await sandbox.book(await sandbox.default_event_type(), utc(hour(14)), deliver=False)
    invitee = made["invitees"][0]["uri"]
    marked = await owner.api("/invitee_no_shows", "POST", json={"invitee": invitee})
    mark = marked.body["resource"]
    shown = (await owner.api(invitee)).body["resource"]["no_show"]
    read = await owner.api(mark["uri"])
    twice = await owner.api("/invitee_no_shows", "POST", json={"invitee": invitee})
    deleted = await owner.api(mark["uri"], "DELETE")
    gone = await owner.api(mark["uri"])
    deleted_again = await owner.api(mark["uri"], "DELETE")
    cleared = (await owner.api(invitee)).body["resource"]["no_show"]
    assert (marked.status, mark["invitee"]) == (201, invitee)
    assert shown == {"uri": mark["uri"], "created_at": mark["created_at"]}
    assert (read.status, read.body["resource"]) == (200, mark)
    assert (twice.status, twice.body["details"][0]["parameter"]) == (400, "invitee")
    assert (deleted.status, deleted.body, gone.status, deleted_again.status) == (
        204,
        None,
        404,
        404,
    )
    assert cleared is None
    await receiver.wait_for(2)
    expected = [("invitee_no_show.created", invitee), ("invitee_no_show.deleted", invitee)]
    assert received(receiver) == expected


async def test_no_show_refusals(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    canceled = (await sandbox.book(solo, utc(hour(15)), deliver=False))["invitees"][0]["uri"]
    await sandbox.control("POST", "/invitees/cancel", {"invitee": canceled, "deliver": False})
    event = canceled.rsplit("/invitees/", 1)[0]
    bodies = {
        "canceled": {"invitee": canceled},
        "unknown": {"invitee": event + "/invitees/nope"},
        "not-a-uri": {"invitee": "https://example.com/users/x"},
        "missing": {},
        "not-text": {"invitee": 7},
    }
    replies = {
        name: (await owner.api("/invitee_no_shows", "POST", json=body)).status
        for name, body in bodies.items()
    }
    expected = {"canceled": 403, "unknown": 404, "not-a-uri": 400, "missing": 400, "not-text": 400}
    assert replies == expected


async def test_available_times_are_working_hours_minus_the_hosts_events(
    sandbox: Sandbox, owner: Owner
) -> None:
    solo = await sandbox.default_event_type()
    hourly = await owner.event_type("Hour", 60)
    day = await owner.times(solo, DAY, DAY + timedelta(days=1))
    await sandbox.book(solo, utc(hour(15)), deliver=False)
    await sandbox.book(hourly, utc(hour(16)), deliver=False)
    after = await owner.times(solo, DAY, DAY + timedelta(days=1))
    hourly_after = await owner.times(hourly, DAY, DAY + timedelta(days=1))
    halves = [utc(hour(14 + n / 2)).replace(".000000", "") for n in range(16)]
    assert day == [(start, 1) for start in halves]
    taken = {utc(hour(h)).replace(".000000", "") for h in (15, 16, 16.5)}
    assert after == [(start, 1) for start in halves if start not in taken]
    # the 60-minute type loses 15:00 and 16:00, and 14:30/15:30 (which overlap them) too
    hourly_starts = [utc(hour(h)).replace(".000000", "") for h in (14, 17, 18, 19, 20, 21)]
    assert hourly_after == [(start, 1) for start in hourly_starts]


async def test_group_slots_count_invitees_down_until_full(sandbox: Sandbox, owner: Owner) -> None:
    group = await owner.event_type("Class", 60, kind="group", invitee_limit=3)
    window = (hour(14), hour(16))
    before = await owner.times(group, *window)
    await sandbox.book(group, utc(hour(14)), "a@example.com", "b@example.com", deliver=False)
    two = await owner.times(group, *window)
    booked = await owner.invitee(group, hour(14), "c@example.com")
    full = await owner.times(group, *window)
    two_free = [("2030-01-01T14:00:00Z", 3), ("2030-01-01T15:00:00Z", 3)]
    assert (before, two) == (two_free, [("2030-01-01T14:00:00Z", 1), two_free[1]])
    assert (booked.status, full) == (201, [("2030-01-01T15:00:00Z", 3)])


async def test_weekly_availability_is_settable(sandbox: Sandbox, owner: Owner) -> None:
    user = owner.uri.rsplit("/", 1)[1]
    week = {"timezone": "UTC", "week": {"wednesday": [["10:00", "11:00"]]}}
    shown = await sandbox.control("PUT", f"/users/{user}/availability", week)
    solo = await sandbox.default_event_type()
    times = await owner.times(solo, DAY, DAY + timedelta(days=7))
    bad = await sandbox.request(
        "PUT",
        f"/_sandbox/users/{user}/availability",
        json={"week": {"monday": [["11:00", "10:00"]]}},
    )
    assert (shown["timezone"], shown["week"]["wednesday"], shown["week"]["monday"]) == (
        "UTC", [["10:00", "11:00"]], [],
    )  # fmt: skip
    assert times == [("2030-01-02T10:00:00Z", 1), ("2030-01-02T10:30:00Z", 1)]
    assert bad.status == 400
    late = {"timezone": "UTC", "week": {"thursday": [["23:00", "24:00"]]}}
    await sandbox.control("PUT", f"/users/{user}/availability", late)
    hourly = await owner.event_type("Hour", 60)
    assert await owner.times(hourly, DAY, DAY + timedelta(days=7)) == [("2030-01-03T23:00:00Z", 1)]


async def test_available_times_refuse_bad_ranges(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    now = datetime.now(UTC)
    ranges = {
        "past": (now - timedelta(days=1), now + timedelta(days=1)),
        "reversed": (DAY + timedelta(days=1), DAY),
        "32-days": (DAY, DAY + timedelta(days=32)),
        "31-days": (DAY, DAY + timedelta(days=31)),
    }
    statuses = {}
    for name, (low, high) in ranges.items():
        params = {"event_type": solo, "start_time": utc(low), "end_time": utc(high)}
        statuses[name] = (await owner.api("/event_type_available_times", params=params)).status
    params = {"start_time": utc(DAY), "end_time": utc(DAY + timedelta(days=1))}
    statuses["no-type"] = (await owner.api("/event_type_available_times", params=params)).status
    unknown = {**params, "event_type": solo + "X"}
    statuses["unknown"] = (await owner.api("/event_type_available_times", params=unknown)).status
    garbage = {"event_type": solo, "start_time": "soon", "end_time": "later"}
    statuses["garbage"] = (await owner.api("/event_type_available_times", params=garbage)).status
    expected = {"past": 400, "reversed": 400, "32-days": 400, "31-days": 200, "no-type": 400,
                "unknown": 404, "garbage": 400}  # fmt: skip
    assert statuses == expected


async def test_post_invitees_books_like_a_ui_booking(
    sandbox: Sandbox, owner: Owner, receiver: Receiver
) -> None:
    solo = await sandbox.default_event_type()
    body = {
        "event_type": solo,
        "start_time": "2030-01-01T14:30:00Z",
        "invitee": {"first_name": "Ada", "last_name": "L", "email": "ada@example.com",
                    "timezone": "Europe/London", "text_reminder_number": "+14155551234"},
        "location": {"kind": "physical", "location": "Sandbox Office"},
        "questions_and_answers": [{"question": "Why?", "answer": "Because", "position": 0}],
    }  # fmt: skip
    reply = await owner.api("/invitees", "POST", json=body)
    invitee = reply.body["resource"]
    read = (await owner.api(invitee["uri"])).body["resource"]
    event = (await owner.api(invitee["event"])).body["resource"]
    again = await owner.invitee(solo, hour(14.5), "other@example.com")
    times = await owner.times(solo, hour(14), hour(15))
    assert (reply.status, invitee) == (201, read)
    assert (invitee["name"], invitee["timezone"], invitee["status"]) == (
        "Ada L",
        "Europe/London",
        "active",
    )
    assert (event["start_time"], event["status"]) == ("2030-01-01T14:30:00.000000Z", "active")
    assert (again.status, again.body["message"]) == (400, "The selected time is not available.")
    assert times == [("2030-01-01T14:00:00Z", 1)]
    await receiver.wait_for(1)
    assert received(receiver) == [("invitee.created", invitee["uri"])]


async def test_post_invitees_refuses_bad_bodies_naming_the_parameter(
    sandbox: Sandbox, owner: Owner
) -> None:
    solo = await sandbox.default_event_type()
    good = {"event_type": solo, "start_time": "2030-01-01T15:00:00Z",
            "invitee": {"name": "Pat", "email": "pat@example.com", "timezone": "UTC"}}  # fmt: skip
    person = good["invitee"]
    cases = {
        "invitee.email": {**good, "invitee": {**person, "email": "not-an-email"}},  # type: ignore[dict-item]
        "invitee.timezone": {**good, "invitee": {**person, "timezone": "Mars/Base"}},  # type: ignore[dict-item]
        "invitee": {**good, "invitee": {"email": "pat@example.com", "timezone": "UTC"}},
        "tracking": {**good, "tracking": {"utm_source": "x"}},
        "event_guests": {**good, "event_guests": [f"g{n}@example.com" for n in range(11)]},
        "start_time": {**good, "start_time": "tomorrow"},
        "event_type": {**good, "event_type": "https://example.com/users/x"},
        "location.kind": {**good, "location": {"kind": "zoom_conference"}},
        "questions_and_answers.0.position": {
            **good, "questions_and_answers": [{"question": "Why?", "answer": "x"}]
        },
    }  # fmt: skip
    found = {}
    for name, body in cases.items():
        reply = await owner.api("/invitees", "POST", json=body)
        found[name] = (reply.status, [d.get("parameter") for d in reply.body.get("details", [])])
    assert found == {name: (400, [name]) for name in cases}
    listed = await owner.api("/scheduled_events", params={"user": owner.uri})
    assert listed.body["collection"] == []


async def test_post_invitees_plan_limits_answer_429_with_their_headers(
    sandbox: Sandbox, owner: Owner
) -> None:
    solo = await sandbox.default_event_type()
    await sandbox.control("POST", "/faults", {"scheduling_limits": [[2, 60]]})
    replies = [await owner.invitee(solo, hour(14 + n / 2), f"p{n}@example.com") for n in range(3)]
    refused = replies[-1]
    limit = {k: refused.headers[k] for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining")}
    assert [reply.status for reply in replies] == [201, 201, 429]
    assert (refused.body["title"], limit) == (
        "Too Many Requests", {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0"}
    )  # fmt: skip
    assert 1 <= int(refused.headers["X-RateLimit-Reset"]) <= 60
    # other endpoints keep the user's own limit
    assert (await owner.api("/users/me")).headers["X-RateLimit-Limit"] == "500"


async def test_trial_plan_allows_five_bookings_a_day(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    user = owner.uri.rsplit("/", 1)[1]
    plan = await sandbox.control("PUT", f"/users/{user}/plan", {"plan": "trial"})
    statuses = [
        (await owner.invitee(solo, hour(14 + n / 2), f"p{n}@example.com")).status for n in range(6)
    ]
    assert (plan["limits"], statuses) == ([[5, 86_400]], [201] * 5 + [429])


async def test_scheduling_links_are_single_use(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    body = {"max_event_count": 1, "owner": solo, "owner_type": "EventType"}
    reply = await owner.api("/scheduling_links", "POST", json=body)
    link = reply.body["resource"]
    code = link["booking_url"].split("/d/", 1)[1].split("/", 1)[0]
    guest = {"start_time": utc(hour(14)), "invitee": {"name": "Pat", "email": "p@example.com"}}
    first = await sandbox.request("POST", f"/_sandbox/scheduling_links/{code}/book", json=guest)
    second = await sandbox.request("POST", f"/_sandbox/scheduling_links/{code}/book", json=guest)
    listed = (await sandbox.control("GET", "/scheduling_links"))["collection"]
    refusals = {
        "count-2": {**body, "max_event_count": 2},
        "count-text": {**body, "max_event_count": "1"},
        "owner-type": {**body, "owner_type": "User"},
        "no-owner": {"max_event_count": 1, "owner_type": "EventType"},
        "unknown": {**body, "owner": solo + "X"},
    }
    statuses = {
        name: (await owner.api("/scheduling_links", "POST", json=b)).status
        for name, b in refusals.items()
    }
    assert (reply.status, link["owner"], link["owner_type"]) == (201, solo, "EventType")
    assert (first.status, second.status) == (200, 409)
    assert [(item["used"], item["invitee"]) for item in listed] == [
        (True, first.body["invitees"][0]["uri"])
    ]
    expected = {
        "count-2": 400,
        "count-text": 400,
        "owner-type": 400,
        "no-owner": 400,
        "unknown": 404,
    }
    assert statuses == expected


async def _posts(sandbox: Sandbox, path: str) -> int:
    """Requests counted by /_sandbox/stats for POST path."""
    stats = await sandbox.control("GET", "/stats")
    return sum(r["count"] for r in stats["requests"] if (r["method"], r["path"]) == ("POST", path))


async def test_a_dropped_answer_comes_after_the_booking_was_applied(
    sandbox: Sandbox, owner: Owner, receiver: Receiver
) -> None:
    solo = await sandbox.default_event_type()
    fault = {"path_prefix": "/invitees", "count": 1, "mode": "drop"}
    await sandbox.control("POST", "/faults", {"drop_response_after_apply": fault})
    with pytest.raises(aiohttp.ClientError):
        await owner.invitee(solo, hour(14))
    listed = await owner.api(
        "/scheduled_events", params={"user": owner.uri, "invitee_email": "pat@example.com"}
    )
    answered = await owner.invitee(solo, hour(15), "next@example.com")
    await receiver.wait_for(2)
    assert [e["start_time"] for e in listed.body["collection"]] == ["2030-01-01T14:00:00.000000Z"]
    assert (answered.status, await _posts(sandbox, "/invitees")) == (201, 2)
    assert [event for event, _ in received(receiver)] == ["invitee.created"] * 2


async def test_the_error_mode_answers_500_after_applying(sandbox: Sandbox, owner: Owner) -> None:
    made = await sandbox.book(await sandbox.default_event_type(), utc(hour(14)), deliver=False)
    event = made["event"]["uri"]
    fault = {"path_prefix": "/scheduled_events/", "count": 1, "mode": "error"}
    await sandbox.control("POST", "/faults", {"drop_response_after_apply": fault})
    reply = await owner.api(event + "/cancellation", "POST")
    status = (await owner.api(event)).body["resource"]["status"]
    assert (reply.status, reply.body["title"], status) == (500, "Internal Server Error", "canceled")


async def test_an_injected_5xx_answers_before_applying(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    await sandbox.control("POST", "/faults", {"fail_next": 1, "fail_status": 503})
    reply = await owner.invitee(solo, hour(14))
    listed = await owner.api("/scheduled_events", params={"user": owner.uri})
    assert (reply.status, listed.body["collection"]) == (503, [])


async def test_stats_count_each_write_route_by_template(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    made = await sandbox.book(solo, utc(hour(14)), deliver=False)
    await owner.api(made["event"]["uri"] + "/cancellation", "POST")
    await owner.api("/scheduled_events/x/cancellation", "POST")
    await owner.invitee(solo, hour(15))
    await owner.times(solo, hour(14), hour(16))
    stats = await sandbox.control("GET", "/stats")
    counts = Counter({(r["method"], r["path"]): r["count"] for r in stats["requests"]})
    assert counts[("POST", "/scheduled_events/{uuid}/cancellation")] == 2
    assert counts[("POST", "/invitees")] == 1
    assert counts[("GET", "/event_type_available_times")] == 1


async def test_available_times_accept_either_documented_scope(sandbox: Sandbox) -> None:
    solo = await sandbox.default_event_type()
    params = {"event_type": solo, "start_time": utc(DAY), "end_time": utc(hour(24))}
    statuses = []
    for scope in ("availability:read", "event_types:read", "users:read"):
        token = (await sandbox.connect(scope=scope))["access_token"]
        reply = await sandbox.api(token, "/event_type_available_times", params=params)
        statuses.append(reply.status)
    assert statuses == [200, 200, 403]


async def test_hostile_input_gets_a_4xx_never_a_500(sandbox: Sandbox, owner: Owner) -> None:
    solo = await sandbox.default_event_type()
    far = {
        "event_type": solo,
        "start_time": "9999-12-30T00:00:00Z",
        "end_time": "9999-12-31T00:00:00Z",
    }
    early = {"event_type": solo, "start_time": "0001-01-01T00:00:00+14:00", "end_time": utc(DAY)}
    ipv6 = {"invitee": "http://[::1/scheduled_events/x/invitees/y"}
    booking = {
        "event_type": solo,
        "invitee": {"name": "P", "email": "p@example.com", "timezone": "UTC"},
    }
    calls = [
        ("GET", "/event_type_available_times", {"params": far}),
        ("GET", "/event_type_available_times", {"params": early}),
        ("GET", "/event_type_available_times", {"params": {**far, "event_type": "http://[::1"}}),
        ("POST", "/invitee_no_shows", {"json": ipv6}),
        ("POST", "/invitee_no_shows", {"data": b"\xff\xfe not json"}),
        ("POST", "/invitees", {"json": {**booking, "start_time": "9999-12-31T23:59:00Z"}}),
        ("POST", "/invitees", {"json": {**booking, "start_time": "0001-01-01T00:00:00+14:00"}}),
        ("POST", "/invitees", {"json": {**booking, "start_time": "0001-01-01T00:00:00Z"}}),
        ("POST", "/invitees", {"json": {**booking, "start_time": 5}}),
        ("POST", "/invitees", {"json": [1, 2]}),
        ("POST", "/invitees", {"json": {**booking, "invitee": {"name": "<script>", "email": "a@b.c",
                                                              "timezone": "../../etc/passwd"}}}),
        ("POST", "/scheduling_links", {"json": {"max_event_count": True, "owner": solo,
                                                "owner_type": "EventType"}}),
        ("POST", "/scheduled_events/%2e%2e/cancellation", {"json": {"reason": None}}),
    ]  # fmt: skip
    statuses = []
    for method, path, kwargs in calls:
        reply = await owner.api(path, method, **kwargs)
        statuses.append((path, reply.status, (reply.body or {}).get("title", reply.body)))
    assert [s for s in statuses if not (400 <= s[1] < 500 and isinstance(s[2], str))] == []


async def test_round_robin_times_need_one_free_host_and_bookings_go_to_it(
    sandbox: Sandbox, owner: Owner
) -> None:
    await sandbox.add_user("member@example.com")
    hosts = ["sandbox@example.com", "member@example.com"]
    body = {"name": "Team", "duration": 30, "pooling_type": "round_robin", "hosts": hosts}
    team = (await sandbox.control("POST", "/event_types", body))["resource"]["uri"]
    solo = await sandbox.default_event_type()
    await sandbox.book(solo, utc(hour(14)), deliver=False)  # the owner is busy at 14:00
    first = await owner.invitee(team, hour(14), "a@example.com")
    event = (await owner.api(first.body["resource"]["event"])).body["resource"]
    left = await owner.times(team, hour(14), hour(15))
    assert (first.status, [m["user_email"] for m in event["event_memberships"]]) == (
        201, ["member@example.com"],
    )  # fmt: skip
    assert left == [("2030-01-01T14:30:00Z", 1)]
