"""DELETE /clients/{id} erases a person's data from every table, and nothing brings it back:
not a full sync, not a Calendly redelivery, not a replay (issue 15, item 10)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from calendly_svc.apply import domain
from calendly_svc.keys import DB_POOL, DEPS
from calendly_svc.store import queries
from tests.actions_helpers import booking_body, event_type_id, post_booking
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


def _days_ahead(days: int, hour: int) -> str:
    """A time inside the default sync window (now - 7 days ... now + 60 days)."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


START, MOVED, LATER = _days_ahead(3, 10), _days_ahead(4, 15), _days_ahead(10, 9)
ZELIA = {
    "name": "Zelia Quintana",
    "email": "Zelia.Quintana@Example.org",
    "text_reminder_number": "+15550199",
    "questions_and_answers": [
        {"question": "Anything we should know?", "answer": "allergic to penicillin", "position": 0}
    ],
}
BRUNO = {"name": "Bruno Ferraz", "email": "bruno.ferraz@example.net"}
# what identifies Zelia, compared case-insensitively with every stored value
ZELIA_TRACES = ["zelia.quintana@example.org", "zelia quintana", "+15550199", "penicillin"]
TEXT_TYPES = ("text", "character varying", "json", "jsonb", "bytea", "ARRAY")


async def _dump(api: Api) -> str:
    """Every text, JSON, bytea and array value of every table of the public schema (yoyo's
    bookkeeping excepted), lower-cased, one per line."""
    pool = api.client.server.app[DB_POOL]
    async with pool.acquire() as conn:
        columns = await conn.fetch(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = 'public' AND data_type = ANY ($1::text[])
              AND table_name NOT LIKE '%yoyo%'
            ORDER BY table_name, column_name""",
            list(TEXT_TYPES),
        )
        values = [await _column(conn, *column) for column in columns]
    return "\n".join(values).lower()


async def _column(conn: asyncpg.Connection, table: str, column: str, data_type: str) -> str:
    """One column's values as text (bytea with its printable bytes as they are)."""
    value = f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
    text = await conn.fetchval(f"SELECT string_agg({value}, E'\\n') FROM \"{table}\"")  # noqa: S608
    return str(text or "")


def _traces(dump: str, *needles: str) -> list[str]:
    """The needles the dump contains."""
    return [needle for needle in needles if needle.lower() in dump]


async def _client_id(api: Api, email: str, user: int = 1) -> int | None:
    """The id of the user's client with this email, if any."""
    status, body = await api.call("GET", "/clients", user, params={"email": email})
    assert status == 200, body
    return body["items"][0]["id"] if body["items"] else None


async def _sync(api: Api, **body: Any) -> None:
    """A manual sync, waited for."""
    status, job = await api.call("POST", "/sync/manual", json=body)
    assert status == 202, job
    await api.syncs_idle()
    _, done = await api.call("GET", f"/sync/jobs/{job['job_id']}")
    assert done["status"] == "succeeded", done


async def _counts(api: Api, appointment_id: int) -> tuple[int, int]:
    """(notifications of the appointment, stored deliveries) right now."""
    pool = api.client.server.app[DB_POOL]
    async with pool.acquire() as conn:
        outbox = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE appointment_id = $1", appointment_id
        )
        deliveries = await conn.fetchval("SELECT count(*) FROM webhook_events")
    return outbox, deliveries


async def _zelia_booked(api: Api, control: Sandbox) -> dict[str, Any]:
    """Zelia books, reschedules and fills the routing form; Bruno books too; a sync runs.
    Returns Zelia's rescheduled invitee and the submission's resource."""
    event_type = await default_event_type(control)
    booking = await book(control, event_type, START, ZELIA)
    await book(control, event_type, LATER, BRUNO)
    await settled(api)
    moved = await control.call(
        "POST", "/_sandbox/invitees/reschedule",
        {"invitee": booking["invitees"][0]["uri"], "start_time": MOVED, "deliver": True},
    )  # fmt: skip
    submission = await control.call(
        "POST", "/_sandbox/routing_form_submissions",
        {"questions_and_answers": [{"question": "Email?", "answer": ZELIA["email"]}],
         "submitter": {"name": ZELIA["name"], "email": ZELIA["email"]}},
    )  # fmt: skip
    await settled(api)
    await _sync(api)
    return {"old": booking["invitees"][0], "new": moved["new_invitee"], "form": submission}


async def test_erasing_a_client_leaves_no_trace_and_nothing_brings_it_back(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(
        main_app_webhook_url="http://127.0.0.1:9/hook", main_app_webhook_secret="s"
    )
    integration = await api.connect()
    zelia = await _zelia_booked(api, control)
    client_id = await _client_id(api, ZELIA["email"])
    assert client_id is not None
    [appointment] = [a for a in await appointments(api) if a["client"]["id"] == client_id]
    outbox, _ = await _counts(api, appointment["id"])
    log = await settled(api)
    before = await _dump(api)
    uris = [zelia["old"]["uri"], zelia["new"]["uri"], zelia["form"]["resource"]["uri"]]

    status, erased = await api.call("DELETE", f"/clients/{client_id}")

    after = await _dump(api)
    assert _traces(before, *ZELIA_TRACES, *uris) == [*ZELIA_TRACES, *uris]  # the test can fail
    assert (status, erased) == (200, {"client_id": client_id, "erased": {
        "clients": 1, "appointments": 1, "invitees": 2, "reschedule_waits": 0,
        "events_seen": 2, "routing_form_submissions": 1,
        "webhook_events": len([e for e in log if e["payload_uri"] in uris]),
        "outbox": outbox, "tombstones": 3, "actions": 0, "scheduling_links": 0,
    }})  # fmt: skip
    assert _traces(after, *ZELIA_TRACES, *uris) == []
    assert _traces(after, BRUNO["email"], BRUNO["name"]) == [BRUNO["email"], BRUNO["name"]]
    [kept] = [a for a in await appointments(api) if a["id"] == appointment["id"]]
    assert {k: kept[k] for k in ("status", "start_time", "reschedule_count", "client",
                                 "questions_and_answers", "cancel_url", "reschedule_url",
                                 "calendly_invitee_uri", "timezone")} == {
        "status": "confirmed", "start_time": MOVED.replace("Z", "+00:00"), "reschedule_count": 1,
        "client": None, "questions_and_answers": [], "cancel_url": None, "reschedule_url": None,
        "calendly_invitee_uri": "erased", "timezone": None,
    }  # fmt: skip
    assert kept["history"] == [
        slot | {"calendly_invitee_uri": "erased"} for slot in appointment["history"]
    ]
    assert kept["location"] == {"type": appointment["location"]["type"]}

    await _sync(api, full=True)
    _, sync_logs = await api.call("GET", "/sync-logs", params={"limit": "1"})
    [full] = sync_logs["items"]
    assert (full["full_pass"], full["invitees_fetched"], full["appointments_created"]) == (
        True,
        3,
        0,
    )  # Zelia's two invitees were read again, and skipped
    assert _traces(await _dump(api), *ZELIA_TRACES, *uris) == []
    assert len(await appointments(api)) == 2

    payload = await invitee_payload(control, zelia["new"]["uri"])
    status, stored = await post_webhook(
        api, integration["public_id"], envelope("invitee.created", payload)
    )
    assert status == 200, stored
    redelivered = next(e for e in await settled(api) if e["id"] == stored["id"])
    assert (redelivered["status"], redelivered["reason"]) == ("ignored", "erased")
    assert _traces(await _dump(api), *ZELIA_TRACES, *uris) == []

    older = await invitee_payload(control, zelia["old"]["uri"])
    del older["scheduled_event"]  # a 2022-shaped payload would need a read of its event
    reads = await control.count("GET", "/scheduled_events/{uuid}")
    status, old_shape = await post_webhook(
        api, integration["public_id"], envelope("invitee.canceled", older)
    )
    ignored = next(e for e in await settled(api) if e["id"] == old_shape["id"])
    assert (status, ignored["status"], ignored["reason"]) == (200, "ignored", "erased")
    assert await control.count("GET", "/scheduled_events/{uuid}") == reads

    status, _ = await api.call("POST", f"/webhook-events/{stored['id']}/replay")
    replayed = next(e for e in await settled(api) if e["id"] == stored["id"])
    assert (status, replayed["status"], replayed["reason"]) == (202, "ignored", "erased")
    assert _traces(await _dump(api), *ZELIA_TRACES, *uris) == []
    assert len(await appointments(api)) == 2

    # Zelia reschedules the erased booking: its canceled half is erased, its created half is a
    # new booking (new invitee URI), with a new client and no history naming the erased invitee
    again = await control.call(
        "POST", "/_sandbox/invitees/reschedule",
        {"invitee": zelia["new"]["uri"], "start_time": LATER, "deliver": True},
    )  # fmt: skip
    halves = {e["event"]: e for e in (await settled(api))[:2]}
    [booked] = [a for a in await appointments(api) if a["id"] not in (appointment["id"], kept["id"])
                and a["calendly_invitee_uri"] == again["new_invitee"]["uri"]]  # fmt: skip
    new_client = await _client_id(api, ZELIA["email"])
    assert (halves["invitee.canceled"]["reason"], halves["invitee.created"]["status"]) == (
        "erased", "processed",
    )  # fmt: skip
    assert (booked["reschedule_count"], booked["history"], booked["status"]) == (0, [], "confirmed")
    assert (new_client is not None, new_client != client_id) == (True, True)
    assert len(await appointments(api)) == 3


async def test_another_users_client_and_bad_ids_are_not_found(api: Api, control: Sandbox) -> None:
    await api.connect()
    await book(control, await default_event_type(control), START, ZELIA)
    await settled(api)
    client_id = await _client_id(api, ZELIA["email"])

    other = await api.call("DELETE", f"/clients/{client_id}", 2)
    answers = [(await api.call("DELETE", f"/clients/{bad}"))[0] for bad in ("abc", "0", "-1")]
    unknown = await api.call("DELETE", f"/clients/{(client_id or 0) + 1000}")

    assert (other[0], other[1]["error"]["code"]) == (404, "client_not_found")
    assert answers == [404, 404, 404]
    assert (unknown[0], unknown[1]["error"]["code"]) == (404, "client_not_found")
    assert await _client_id(api, ZELIA["email"]) == client_id


async def test_a_batched_run_skips_erased_invitees_and_applies_the_others(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    event_type = await default_event_type(control)
    erased_booking = await book(control, event_type, START, ZELIA)
    await settled(api)
    client_id = await _client_id(api, ZELIA["email"])
    status, _ = await api.call("DELETE", f"/clients/{client_id}")
    assert status == 200
    fresh = await book(control, event_type, LATER, BRUNO, deliver=False)
    payloads = [
        await invitee_payload(control, erased_booking["invitees"][0]["uri"]),
        await invitee_payload(control, fresh["invitees"][0]["uri"]),
    ]
    pool = api.client.server.app[DB_POOL]
    async with pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, 1)
        assert integration is not None
        mapping = await queries.get_event_type_by_uri(conn, integration.id, event_type)
        from calendly_svc.apply.tombstones import tombstones  # new in issue 15: main fails here

        marks = tombstones(api.client.server.app[DEPS].settings)
        ctx = domain.ApplyContext(integration, mapping, False, marks)
        states = [domain.invitee_state(p, p["scheduled_event"]) for p in payloads]
        async with conn.transaction():
            await queries.lock_integration_apply(conn, integration.id)
            results = await domain.apply_invitees(conn, [(s, ctx) for s in states])

    assert [(r.status, r.reason, r.change) for r in results] == [
        ("ignored", "erased", None), ("processed", None, "created"),
    ]  # fmt: skip
    assert _traces(await _dump(api), *ZELIA_TRACES) == []
    assert await _client_id(api, ZELIA["email"]) is None
    assert await _client_id(api, BRUNO["email"]) is not None


async def test_only_the_whole_address_is_erased_and_cancellations_lose_who_and_why(
    api: Api, control: Sandbox
) -> None:
    integration = await api.connect()
    event_type = await default_event_type(control)
    ana = {"name": "Ana Souza", "email": "ana@example.org"}
    joana = {"name": "Joana Prado", "email": "joana@example.org"}
    booked = await book(control, event_type, START, ana)
    await book(control, event_type, LATER, joana)
    await control.call(
        "POST", "/_sandbox/invitees/cancel",
        {"invitee": booked["invitees"][0]["uri"], "reason": "ana@example.org is ill",
         "deliver": True},
    )  # fmt: skip
    form = await control.call(
        "POST", "/_sandbox/routing_form_submissions",
        {"questions_and_answers": [{"question": "Email?", "answer": "ana@example.org"}],
         "submitter": ana},
    )  # fmt: skip
    await control.call(
        "POST", "/_sandbox/routing_form_submissions",
        {"questions_and_answers": [{"question": "Email?", "answer": joana["email"]}],
         "submitter": joana},
    )  # fmt: skip
    await settled(api)
    [canceled] = [a for a in await appointments(api) if a["status"] == "canceled"]

    status, erased = await api.call("DELETE", f"/clients/{await _client_id(api, ana['email'])}")

    _, submissions = await api.call("GET", "/routing-form-submissions")
    [kept] = [a for a in await appointments(api) if a["id"] == canceled["id"]]
    dump = await _dump(api)
    assert status == 200
    assert (erased["erased"]["routing_form_submissions"], erased["erased"]["webhook_events"]) == (
        1,
        3,
    )  # Ana's booking, cancel and submission; Joana's two deliveries stay
    assert len(submissions["items"]) == 1
    assert "ana souza" not in dump
    assert set(re.findall(r"[\w.%+-]*ana@example\.org[\w.-]*", dump)) == {joana["email"]}
    assert _traces(dump, joana["email"], joana["name"]) == [joana["email"], joana["name"]]
    assert kept["cancellation"] == canceled["cancellation"] | {"canceled_by": None, "reason": None}
    assert kept["cancellation"]["canceler_type"] == "invitee"

    status, stored = await post_webhook(
        api, integration["public_id"],
        envelope("routing_form_submission.created", form["resource"]),
    )  # fmt: skip
    redelivered = next(e for e in await settled(api) if e["id"] == stored["id"])
    assert (status, redelivered["status"], redelivered["reason"]) == (200, "ignored", "erased")
    assert "ana souza" not in await _dump(api)


async def test_erasure_clears_the_actions_and_links_made_for_the_person(api: Api) -> None:
    await api.connect()
    type_id = await event_type_id(api)
    person = {"name": "Zélia Quintana", "email": "Zelia.Quintana@example.org"}
    booked_status, booked = await post_booking(api, booking_body(type_id, **person), "erase-1")
    path = f"/event-types/{type_id}/scheduling-links"
    _, link = await api.call("POST", path, json={"prefill": person})
    _, other = await api.call("POST", path, json={"prefill": BRUNO})
    await settled(api)
    client_id = await _client_id(api, person["email"])
    assert (booked_status, client_id is not None) == (201, True), booked
    pool = api.client.server.app[DB_POOL]
    async with pool.acquire() as conn:
        hashes_before = await conn.fetchval(
            "SELECT count(*) FROM actions WHERE invitee_email_hash IS NOT NULL"
        )

    status, erased = await api.call("DELETE", f"/clients/{client_id}")

    after = await _dump(api)
    async with pool.acquire() as conn:
        links = await conn.fetch("SELECT booking_url, prefill FROM scheduling_links ORDER BY id")
        hashes_after = await conn.fetchval(
            "SELECT count(*) FROM actions WHERE invitee_email_hash IS NOT NULL"
        )
    assert status == 200, erased
    assert (erased["erased"]["actions"], erased["erased"]["scheduling_links"]) == (1, 1)
    assert (hashes_before, hashes_after) == (1, 0)
    assert [(r["booking_url"], r["prefill"]) for r in links] == [
        (link["booking_url"].split("?")[0], None),
        (other["booking_url"], BRUNO),
    ]
    assert _traces(after, "zelia.quintana@example.org", "zelia%40example", "quintana") == []
    assert _traces(after, BRUNO["email"]) == [BRUNO["email"]]
