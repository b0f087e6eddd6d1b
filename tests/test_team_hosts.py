"""Team event types (round robin, collective) and reschedules that move a booking to another
host, end to end: sandbox, service and worker over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from calendly_svc.apply.domain import MOVED_REASON
from calendly_svc.store import queries
from tests.conftest import MAIN_APP_SECRET, Api, MainAppReceiver, Sandbox
from tests.helpers import appointments, envelope, eventually, invitee_payload, post_webhook, settled

OWNER, PRO = "sandbox@example.com", "pro@example.com"
START, LATER = "2030-02-04T10:00:00Z", "2030-02-05T15:00:00Z"
INVITEE_ROUTE = "/scheduled_events/{uuid}/invitees/{invitee_uuid}"


async def _service(start_service: Any, url: str, wait: float = 0.5, **extra: Any) -> Api:
    """The service notifying the receiver, checking reschedule halves after `wait` seconds."""
    return await start_service(
        main_app_webhook_url=url,
        main_app_webhook_secret=MAIN_APP_SECRET,
        worker_poll_seconds=0.2,
        sync_schedule_check_seconds=0.2,
        reschedule_half_wait_seconds=wait,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        **extra,
    )


async def _team_type(
    control: Sandbox, pooling: str, *hosts: str, deliver: bool = True
) -> dict[str, Any]:
    """A team event type hosted by `hosts` (an event_type.created reaches each host)."""
    body = {"name": f"Team {pooling}", "duration": 30, "pooling_type": pooling,
            "hosts": list(hosts), "team_name": "Care Team", "deliver": deliver}  # fmt: skip
    resource: dict[str, Any] = (await control.call("POST", "/_sandbox/event_types", body))[
        "resource"
    ]
    return resource


async def _book(
    control: Sandbox, event_type: str, start: str, host: str | None = None, deliver: bool = True
) -> dict[str, Any]:
    """One guest booked into a team type (round robin: with the given host)."""
    body = {"event_type": event_type, "start_time": start, "deliver": deliver,
            "invitees": [{"name": "Ana Lima", "email": "ana@example.com"}]}  # fmt: skip
    result: dict[str, Any] = await control.call(
        "POST", "/_sandbox/bookings", body | ({"host": host} if host else {})
    )
    return result


async def _reschedule(control: Sandbox, invitee: str, start: str, **extra: Any) -> dict[str, Any]:
    """Reschedule an invitee (optionally to another host, or without deliveries)."""
    body = {"invitee": invitee, "start_time": start, **extra}
    result: dict[str, Any] = await control.call("POST", "/_sandbox/invitees/reschedule", body)
    return result


async def _type_id(api: Api, user: int, uri: str) -> int:
    """The service's id of an event type in one user's list."""
    _, listing = await api.call("GET", "/event-types", user)
    return int(next(i["id"] for i in listing["items"] if i["calendly_event_type_uri"] == uri))


async def _both_connected(api: Api, control: Sandbox) -> None:
    """The sandbox owner as user 1 and a plain member, pro@, as user 2."""
    await control.call("POST", "/_sandbox/users", {"email": PRO, "name": "Pro"})
    await api.connect(user=1)
    await api.connect(user=2, email=PRO)


def _kinds(state: MainAppReceiver, appointment_id: int) -> list[str]:
    """The notification types the main app received for one appointment."""
    return [n["type"] for n in state.received if n["appointment"]["id"] == appointment_id]


async def test_round_robin_booking_is_its_hosts_appointment_with_the_mapping(
    api: Api, control: Sandbox
) -> None:
    await _both_connected(api, control)
    robin = await _team_type(control, "round_robin", OWNER, PRO)
    await settled(api, 1)
    await settled(api, 2)
    type_id = await _type_id(api, 2, robin["uri"])
    await api.call("PUT", f"/event-types/{type_id}/mapping", 2, json={"service_id": 42})
    booking = await _book(control, robin["uri"], START, host=PRO)
    await settled(api, 2)
    [appointment] = await appointments(api, 2)
    assert (appointment["status"], appointment["service_id"]) == ("confirmed", 42)
    assert appointment["event_type_id"] == type_id
    assert appointment["calendly_invitee_uri"] == booking["invitees"][0]["uri"]
    assert await appointments(api, 1) == []


async def test_collective_booking_gives_each_connected_host_an_appointment(
    api: Api, control: Sandbox
) -> None:
    await _both_connected(api, control)
    joint = await _team_type(control, "collective", OWNER, PRO, deliver=False)
    _, refreshed = await api.call("POST", "/event-types/refresh", 2)
    by_webhook = await _book(control, joint["uri"], START)
    await settled(api, 1)
    await settled(api, 2)
    soon = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%dT10:00:00Z")
    by_sync = await _book(control, joint["uri"], soon, deliver=False)
    for user in (1, 2):
        status, _ = await api.call("POST", "/sync/manual", user, json={"full": True})
        assert status == 202
    await api.syncs_idle()
    expected = sorted(b["invitees"][0]["uri"] for b in (by_webhook, by_sync))
    for user in (1, 2):
        items = await appointments(api, user)
        type_id = await _type_id(api, user, joint["uri"])
        assert sorted(a["calendly_invitee_uri"] for a in items) == expected
        assert {(a["status"], a["event_type_id"]) for a in items} == {("confirmed", type_id)}
    assert refreshed["added"] == 1
    first, second = await appointments(api, 1), await appointments(api, 2)
    assert not {a["id"] for a in first} & {a["id"] for a in second}


async def test_host_change_with_both_hosts_connected(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str]
) -> None:
    state, url = main_app
    api = await _service(start_service, url)
    await _both_connected(api, control)
    robin = await _team_type(control, "round_robin", OWNER, PRO)
    booking = await _book(control, robin["uri"], START, host=OWNER)
    await settled(api, 1)
    [before] = await appointments(api, 1)
    moved = await _reschedule(control, booking["invitees"][0]["uri"], LATER, host=PRO)
    await settled(api, 2)

    async def canceled() -> dict[str, Any] | None:
        [item] = await appointments(api, 1)
        return item if item["status"] == "canceled" else None

    old = await eventually(canceled, within=15)
    [new] = await appointments(api, 2)
    await eventually(lambda: _arrived(state, 3))
    assert old is not None
    assert (old["id"], old["start_time"], old["reschedule_count"]) == (
        before["id"], "2030-02-04T10:00:00+00:00", 0,
    )  # fmt: skip
    assert (old["cancellation"]["reason"], old["cancellation"]["canceler_type"]) == (
        MOVED_REASON,
        "invitee",
    )
    assert (new["status"], new["start_time"]) == ("confirmed", "2030-02-05T15:00:00+00:00")
    assert new["calendly_invitee_uri"] == moved["new_invitee"]["uri"]
    # the new host never saw the earlier invitee: its history names it, without times
    assert (new["reschedule_count"], new["history"]) == (1, [{
        "calendly_invitee_uri": booking["invitees"][0]["uri"], "calendly_event_uri": None,
        "start_time": None, "end_time": None,
    }])  # fmt: skip
    assert _kinds(state, old["id"]) == ["appointment.created", "appointment.canceled"]
    assert _kinds(state, new["id"]) == ["appointment.created"]


async def _waiting_gauge(api: Api) -> float:
    """calendly_svc_queue_depth of the reschedule waits, from GET /metrics."""
    text = await (await api.client.get("/metrics")).text()
    prefix = 'calendly_svc_queue_depth{queue="reschedule_waits"} '
    return float(next(line for line in text.splitlines() if line.startswith(prefix)).split()[-1])


async def _arrived(state: MainAppReceiver, count: int) -> bool:
    """Whether the main app has received at least `count` notifications."""
    return len(state.received) >= count


async def test_host_change_with_only_the_old_host_connected(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str], database_url: str
) -> None:
    state, url = main_app
    api = await _service(start_service, url, wait=3.0)
    await control.call("POST", "/_sandbox/users", {"email": PRO, "name": "Pro"})
    integration = await api.connect(user=1, email=PRO)
    robin = await _team_type(control, "round_robin", PRO, OWNER)
    booking = await _book(control, robin["uri"], START)
    await settled(api)
    moved = await _reschedule(control, booking["invitees"][0]["uri"], LATER, host=OWNER)
    await settled(api)
    [waiting] = await appointments(api)
    reads_before = await control.count("GET", INVITEE_ROUTE)
    depth_before = await _waiting_gauge(api)

    async def canceled() -> dict[str, Any] | None:
        [item] = await appointments(api)
        return item if item["status"] == "canceled" else None

    old = await eventually(canceled, within=20)
    assert old is not None
    assert (waiting["status"], depth_before, await _waiting_gauge(api)) == ("confirmed", 1, 0)
    assert await control.count("GET", INVITEE_ROUTE) > reads_before
    assert old["cancellation"]["reason"] == MOVED_REASON
    await eventually(lambda: _arrived(state, 2))
    assert _kinds(state, old["id"]) == ["appointment.created", "appointment.canceled"]

    # a created half that reaches the old host anyway changes nothing
    late = envelope("invitee.created", await invitee_payload(control, moved["new_invitee"]["uri"]))
    assert (await post_webhook(api, integration["public_id"], late))[0] == 200
    await settled(api)
    [after] = await appointments(api)
    assert (after["id"], after["status"], after["cancellation"]) == (
        old["id"], "canceled", old["cancellation"],
    )  # fmt: skip
    conn = await asyncpg.connect(database_url)
    try:
        waits = await conn.fetch(
            "SELECT new_invitee_uri, moved_at IS NOT NULL AS moved FROM reschedule_waits"
        )
    finally:
        await conn.close()
    assert [tuple(w) for w in waits] == [(moved["new_invitee"]["uri"], True)]
    assert _kinds(state, old["id"]) == ["appointment.created", "appointment.canceled"]


async def test_missing_created_half_is_read_and_a_late_one_changes_nothing(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str], database_url: str
) -> None:
    state, url = main_app
    api = await _service(start_service, url)
    integration = await api.connect()
    await control.call("POST", "/_sandbox/users", {"email": PRO, "name": "Pro"})
    robin = await _team_type(control, "round_robin", OWNER, PRO)
    booking = await _book(control, robin["uri"], START)
    await settled(api)
    [before] = await appointments(api)
    moved = await _reschedule(control, booking["invitees"][0]["uri"], LATER, deliver=False)
    old_half = await invitee_payload(control, moved["old_invitee"]["uri"])
    new_half = await invitee_payload(control, moved["new_invitee"]["uri"])
    await post_webhook(api, integration["public_id"], envelope("invitee.canceled", old_half))

    async def rescheduled() -> dict[str, Any] | None:
        [item] = await appointments(api)
        return item if item["reschedule_count"] == 1 else None

    after = await eventually(rescheduled, within=15)
    assert after is not None
    await post_webhook(api, integration["public_id"], envelope("invitee.created", new_half))
    await settled(api)
    [final] = await appointments(api)
    await eventually(lambda: _arrived(state, 2))
    assert (after["id"], after["status"], after["start_time"]) == (
        before["id"], "confirmed", "2030-02-05T15:00:00+00:00",
    )  # fmt: skip
    assert after["calendly_invitee_uri"] == moved["new_invitee"]["uri"]
    assert final == after
    assert _kinds(state, before["id"]) == ["appointment.created", "appointment.rescheduled"]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM reschedule_waits") == 0
    finally:
        await conn.close()


async def _old_host_only(api: Api, control: Sandbox) -> tuple[dict[str, Any], dict[str, Any]]:
    """pro@ (a plain member) connected as user 1 hosts a round robin booking; returns the
    integration and the booking."""
    await control.call("POST", "/_sandbox/users", {"email": PRO, "name": "Pro"})
    integration = await api.connect(user=1, email=PRO)
    robin = await _team_type(control, "round_robin", PRO, OWNER)
    booking = await _book(control, robin["uri"], START)
    await settled(api)
    return integration, booking


async def _waits(database_url: str) -> list[tuple[Any, ...]]:
    """(attempts, moved, last_error) of every reschedule wait."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT attempts, moved_at IS NOT NULL, last_error FROM reschedule_waits"
        )
    finally:
        await conn.close()
    return [tuple(row) for row in rows]


async def test_calendly_failures_are_retried_later(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str], database_url: str
) -> None:
    _, url = main_app
    api = await _service(start_service, url, calendly_max_retries=0)
    _, booking = await _old_host_only(api, control)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 2, "fail_status": 503})
    await _reschedule(control, booking["invitees"][0]["uri"], LATER, host=OWNER)
    await settled(api)

    async def canceled() -> dict[str, Any] | None:
        [item] = await appointments(api)
        return item if item["status"] == "canceled" else None

    old = await eventually(canceled, within=20)
    assert old is not None
    assert old["cancellation"]["reason"] == MOVED_REASON
    assert await _waits(database_url) == [(3, True, None)]


async def test_needs_reauth_stops_the_check(
    start_service: Any, control: Sandbox, main_app: tuple[MainAppReceiver, str], database_url: str
) -> None:
    _, url = main_app
    api = await _service(start_service, url)
    _, booking = await _old_host_only(api, control)
    await _reschedule(control, booking["invitees"][0]["uri"], LATER, host=OWNER)
    await settled(api)
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {})

    async def stopped() -> list[tuple[Any, ...]] | None:
        waits = await _waits(database_url)
        return waits if waits and waits[0][2] else None

    first = await eventually(stopped, within=15)
    await asyncio.sleep(1.5)  # several scheduler passes (every 0.2 s) while it needs reauth
    _, status = await api.call("GET", "/status")
    [appointment] = await appointments(api)
    assert first is not None
    assert status["status"] == "needs_reauth"
    assert appointment["status"] == "confirmed"
    assert await _waits(database_url) == first
    assert (first[0][0], first[0][1], first[0][2].startswith("needs_reauth")) == (1, False, True)


async def test_a_due_wait_is_claimed_once_and_finished_only_by_its_claim(
    database_url: str,
) -> None:
    conn, other = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO integrations (user_id, calendly_user_uri, access_token_enc, "
            "refresh_token_enc) VALUES (1, 'https://api.calendly.com/users/U', '\\x00', '\\x00')"
        )
        await queries.insert_reschedule_wait(conn, 1, "old", "new")
        await queries.insert_reschedule_wait(conn, 1, "old", "new")
        async with conn.transaction():
            [mine] = await queries.claim_reschedule_waits(conn, 0, "first", 10, 60)
            assert await queries.claim_reschedule_waits(other, 0, "second", 10, 60) == []
        assert await queries.claim_reschedule_waits(other, 0, "second", 10, 60) == []
        # a lease that ran out (here: of 0 s) lets another claim take the wait over
        await conn.execute("UPDATE reschedule_waits SET retry_at = now() - interval '1 s'")
        [taken] = await queries.claim_reschedule_waits(other, 0, "second", 10, 60)
        late = await queries.finish_reschedule_wait(conn, mine, "first")
        moved = await queries.mark_reschedule_moved(other, taken, "second")
        await queries.end_reschedule_wait(conn, 1, "new")
        kept = await queries.moved_invitees(conn, 1, ["old", "other"])
        again = await queries.claim_reschedule_waits(conn, 0, "third", 10, 60)
    finally:
        await conn.close()
        await other.close()
    assert (mine.old_invitee_uri, mine.new_invitee_uri, mine.attempts) == ("old", "new", 1)
    assert (taken.attempts, late, moved, kept, again) == (2, False, True, frozenset({"old"}), [])
