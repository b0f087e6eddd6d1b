"""Manual, initial and periodic syncs against the sandbox: repair, cost, faults, concurrency."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from calendly_svc.integrations.sync import MAX_IDLE_RESUMES
from calendly_svc.keys import DEPS, WORKER
from calendly_svc.worker.engine import run_until_stopped
from calendly_svc.worker.queues import standard_worker
from tests.conftest import Api, Sandbox
from tests.helpers import _token, appointments, book, default_event_type, eventually

INVITEES = "/scheduled_events/{uuid}/invitees"


async def sync_now(api: Api, user: int = 1, **body: Any) -> dict[str, Any]:
    """Run a manual sync to the end; returns its sync log."""
    status, queued = await api.call("POST", "/sync/manual", user, json=body)
    assert status == 202, queued
    job = await eventually(lambda: _finished(api, queued["job_id"], user), within=60)
    assert job is not None, "sync did not finish"
    _, logs = await api.call("GET", "/sync-logs", user)
    entry: dict[str, Any] = next(e for e in logs["items"] if e["id"] == job["sync_log_id"])
    return entry | {"job": job}


async def _finished(api: Api, job_id: int, user: int) -> dict[str, Any] | None:
    """The job once it is no longer queued or running."""
    _, job = await api.call("GET", f"/sync/jobs/{job_id}", user)
    return job if job["status"] in ("succeeded", "failed") else None


async def _missed(control: Sandbox, count: int, day: int = 1) -> list[dict[str, Any]]:
    """Bookings the service never heard of (no webhook delivered)."""
    event_type = await default_event_type(control)
    return [
        await book(
            control,
            event_type,
            f"2026-12-{day:02}T{9 + n % 8:02}:{(n // 8) * 5:02}:00Z",
            {"name": f"M{n}", "email": f"m{n}@example.com"},
            deliver=False,
        )
        for n in range(count)
    ]


async def test_manual_sync_repairs_what_webhooks_missed(api: Api, control: Sandbox) -> None:
    await api.connect()
    kept, canceled, moved = await _missed(control, 3)
    await control.call(
        "POST",
        "/_sandbox/invitees/cancel",
        {"invitee": canceled["invitees"][0]["uri"], "deliver": False},
    )
    move = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {
            "invitee": moved["invitees"][0]["uri"],
            "start_time": "2026-12-03T15:00:00Z",
            "deliver": False,
        },
    )
    entry = await sync_now(api)
    by_client = {a["client"]["email"]: a for a in await appointments(api)}
    assert entry["status"] == "succeeded"
    assert entry["trigger"] == "manual"
    assert (entry["events_seen"], entry["invitees_fetched"]) == (4, 4)
    assert (entry["appointments_created"], entry["clients_created"]) == (3, 3)
    # the moved booking is created from one half and moved (or completed) by the other
    # (the canceled booking is created canceled)
    assert (entry["appointments_updated"], entry["appointments_canceled"]) == (1, 0)
    assert entry["repaired"] == 4
    assert entry["api_calls"] == 1 + 4
    assert by_client["m0@example.com"]["status"] == "confirmed"
    assert by_client["m0@example.com"]["calendly_invitee_uri"] == kept["invitees"][0]["uri"]
    assert by_client["m1@example.com"]["status"] == "canceled"
    assert by_client["m2@example.com"]["start_time"] == "2026-12-03T15:00:00+00:00"
    assert by_client["m2@example.com"]["calendly_invitee_uri"] == move["new_invitee"]["uri"]
    assert by_client["m2@example.com"]["reschedule_count"] == 1


async def test_second_sync_changes_nothing_and_fetches_no_invitees(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    await _missed(control, 5)
    first = await sync_now(api)
    before = await appointments(api)
    invitee_calls = await control.count("GET", INVITEES)
    second = await sync_now(api)
    assert (first["invitees_fetched"], second["invitees_fetched"]) == (5, 0)
    assert second["api_calls"] == 1
    assert await control.count("GET", INVITEES) == invitee_calls
    assert (second["appointments_created"], second["appointments_updated"], second["repaired"]) == (
        0,
        0,
        0,
    )
    assert await appointments(api) == before


async def test_only_changed_events_are_reread(api: Api, control: Sandbox) -> None:
    await api.connect()
    bookings = await _missed(control, 4)
    await sync_now(api)
    await control.call(
        "POST",
        "/_sandbox/invitees/cancel",
        {"invitee": bookings[1]["invitees"][0]["uri"], "deliver": False},
    )
    entry = await sync_now(api)
    assert (entry["invitees_fetched"], entry["appointments_canceled"], entry["repaired"]) == (
        1,
        1,
        1,
    )


async def test_full_pass_rereads_everything(api: Api, control: Sandbox, database_url: str) -> None:
    await api.connect()
    await _missed(control, 3)
    await sync_now(api)
    forced = await sync_now(api, full=True)
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET last_full_sync_at = now() - interval '25 hours'")
    await conn.close()
    daily = await sync_now(api)
    after = await sync_now(api)
    assert (forced["full_pass"], forced["invitees_fetched"]) == (True, 3)
    assert (daily["full_pass"], daily["invitees_fetched"]) == (True, 3)
    assert (after["full_pass"], after["invitees_fetched"]) == (False, 0)


async def test_window_limits_the_sync(api: Api, control: Sandbox) -> None:
    await api.connect()
    event_type = await default_event_type(control)
    await book(control, event_type, "2027-06-01T10:00:00Z", deliver=False)  # > 60 days ahead
    narrow = await sync_now(api)
    wide = await sync_now(api, future_days=365)
    assert (narrow["events_seen"], wide["events_seen"]) == (0, 1)
    assert len(await appointments(api)) == 1


async def test_initial_sync_on_connect(start_service: Any, control: Sandbox) -> None:
    await _missed(control, 2)
    api = await start_service()
    await api.connect()
    _, logs = await api.call("GET", "/sync-logs")
    [initial] = logs["items"]
    assert (initial["trigger"], initial["status"], initial["appointments_created"]) == (
        "initial",
        "succeeded",
        2,
    )
    assert initial["repaired"] == 0
    assert len(await appointments(api)) == 2


async def test_concurrent_manual_requests_are_deduplicated(api: Api, control: Sandbox) -> None:
    await api.connect()
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 300})
    await _missed(control, 2)
    answers = await asyncio.gather(*(api.call("POST", "/sync/manual", json={}) for _ in range(6)))
    ids = {body["job_id"] for _, body in answers}
    flags = sorted(body.get("deduplicated", False) for _, body in answers)
    assert {status for status, _ in answers} == {202}
    assert len(ids) == 1
    assert flags == [False] + [True] * 5
    await api.syncs_idle(within=30)


async def test_sync_api_errors(api: Api) -> None:
    missing, e1 = await api.call("POST", "/sync/manual", json={})
    await api.connect()
    bad, e2 = await api.call("POST", "/sync/manual", json={"past_days": 400, "extra": 1})
    unknown, e3 = await api.call("GET", "/sync/jobs/999999")
    await api.call("PUT", "/integration/toggle", json={"sync_enabled": False})
    disabled, e4 = await api.call("POST", "/sync/manual", json={})
    _, logs = await api.call("GET", "/sync-logs")
    other, e5 = await api.call("GET", f"/sync/jobs/{logs['items'][0]['id']}", user=2)
    assert (missing, e1["error"]["code"]) == (404, "not_connected")
    assert (bad, [d["field"] for d in e2["error"]["details"]]) == (422, ["past_days", "extra"])
    assert (unknown, e3["error"]["code"]) == (404, "sync_job_not_found")
    assert (disabled, e4["error"]["code"]) == (409, "sync_disabled")
    assert (other, e5["error"]["code"]) == (404, "not_connected")


async def test_sync_logs_pages(api: Api) -> None:
    await api.connect()
    for _ in range(3):
        await sync_now(api)
    _, first = await api.call("GET", "/sync-logs", params={"limit": "3"})
    _, rest = await api.call(
        "GET", "/sync-logs", params={"limit": "3", "cursor": first["next_cursor"]}
    )
    triggers = [e["trigger"] for e in first["items"] + rest["items"]]
    assert triggers == ["manual", "manual", "manual", "initial"]
    assert rest["next_cursor"] is None


async def _spend_window(control: Sandbox, window: int) -> None:
    """Use up the default user's rate-limit window with more than `window - 1` seconds of it
    left (X-RateLimit-Reset counts whole seconds), so that the service's next call is refused."""
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {await _token(control, session)}"}
        while True:
            async with session.get(f"{control.url}/users/me", headers=headers) as resp:
                reset = int(resp.headers["X-RateLimit-Reset"])
                if resp.status == 429 and reset == window:
                    return
                if resp.status == 429:
                    await asyncio.sleep(reset)


async def test_rate_limit_storm_ends_complete(start_service: Any, control: Sandbox) -> None:
    # the sandbox's window is shortened to two seconds; the client is told the same
    api = await start_service(calendly_rate_limit_window_seconds=2)
    await api.connect()
    await _missed(control, 30)
    await control.call(
        "POST", "/_sandbox/faults", {"rate_limit_per_minute": 12, "rate_limit_window_seconds": 2}
    )
    await _spend_window(control, 2)
    before = (await control.call("GET", "/_sandbox/stats"))["rate_limited"]
    storm = await sync_now(api, full=True)
    stats = await control.call("GET", "/_sandbox/stats")
    assert (storm["status"], storm["invitees_fetched"]) == ("succeeded", 30)
    assert stats["rate_limited"] > before
    assert storm["rate_limited_waits"] >= 1
    assert len(await appointments(api)) == 30


async def test_5xx_bursts_end_complete(start_service: Any, control: Sandbox) -> None:
    api = await start_service(calendly_max_retries=6)
    await api.connect()
    await _missed(control, 30)
    await control.call(
        "POST", "/_sandbox/faults", {"fail_next": 6, "fail_status": 503, "latency_ms": 20}
    )
    status, queued = await api.call("POST", "/sync/manual", json={"full": True})
    await eventually(lambda: _invitee_calls_started(control))
    # a second burst lands on the concurrent invitee reads
    await control.call("POST", "/_sandbox/faults", {"fail_next": 6, "fail_status": 500})
    job = await eventually(lambda: _finished(api, queued["job_id"], 1), within=30)
    _, logs = await api.call("GET", "/sync-logs")
    entry = next(e for e in logs["items"] if e["id"] == job["sync_log_id"])
    assert status == 202
    assert (entry["status"], entry["invitees_fetched"]) == ("succeeded", 30)
    assert entry["api_calls"] >= 1 + 30 + 6
    assert len(await appointments(api)) == 30


async def test_token_expiry_mid_sync(api: Api, control: Sandbox) -> None:
    await api.connect()
    await _missed(control, 40)
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 100})
    grants = (await control.call("GET", "/_sandbox/stats"))["token_grants"]["refresh_token"]
    status, queued = await api.call("POST", "/sync/manual", json={"full": True})
    await eventually(lambda: _invitee_calls_started(control))
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    job = await eventually(lambda: _finished(api, queued["job_id"], 1), within=30)
    after = (await control.call("GET", "/_sandbox/stats"))["token_grants"]["refresh_token"]
    assert status == 202
    assert job["status"] == "succeeded"
    assert after - grants == 1
    assert len(await appointments(api)) == 40


async def _invitee_calls_started(control: Sandbox) -> bool:
    """Whether the sync has begun reading invitees."""
    return await control.count("GET", INVITEES) > 0


async def test_invalid_grant_fails_the_sync_and_stops_periodic(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(sync_schedule_check_seconds=0.2)
    await api.connect()
    await _missed(control, 2)
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {})
    entry = await sync_now(api)
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET next_sync_at = now() - interval '1 minute'")
    await asyncio.sleep(1)
    jobs = await conn.fetchval("SELECT count(*) FROM sync_jobs WHERE trigger = 'periodic'")
    await conn.close()
    _, status = await api.call("GET", "/status")
    again, error = await api.call("POST", "/sync/manual", json={})
    assert (entry["status"], entry["job"]["status"]) == ("failed", "failed")
    assert entry["error"].startswith("needs_reauth")
    assert (status["status"], status["last_sync_status"]) == ("needs_reauth", "failed")
    assert jobs == 0
    assert (again, error["error"]["code"]) == (409, "integration_not_active")


async def test_periodic_sync_recreates_a_disabled_subscription(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(sync_schedule_check_seconds=0.2, sync_interval_seconds=3600)
    integration = await api.connect()
    uuid = integration["webhook_uri"].rsplit("/", 1)[1]
    await control.call("POST", f"/_sandbox/webhook_subscriptions/{uuid}/disable")
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET next_sync_at = now()")
    await conn.close()
    log = await eventually(lambda: _periodic_log(api), within=20)
    _, after = await api.call("GET", "/integration")
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    user_hooks = [h for h in hooks if h["scope"] == "user"]
    assert log["status"] == "succeeded"
    assert log["notes"] == ["webhook subscription disabled: recreated"]
    assert after["webhook_uri"] != integration["webhook_uri"]
    assert [(h["uri"], h["state"]) for h in user_hooks] == [(after["webhook_uri"], "active")]


async def _periodic_log(api: Api) -> dict[str, Any] | None:
    """The first finished periodic sync log."""
    _, logs = await api.call("GET", "/sync-logs")
    done = [e for e in logs["items"] if e["trigger"] == "periodic" and e["status"] != "running"]
    return done[0] if done else None


async def test_periodic_scheduler_enqueues_due_integrations_once(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(sync_schedule_check_seconds=0.1, sync_interval_seconds=3600)
    await api.connect()
    deps = api.client.server.app[DEPS]
    extra = [standard_worker(deps) for _ in range(2)]
    stops = [await run_until_stopped(w, grace=5) for w in extra]
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET next_sync_at = now()")
    await asyncio.sleep(1.5)
    periodic = await conn.fetch("SELECT status FROM sync_jobs WHERE trigger = 'periodic'")
    next_at = await conn.fetchval("SELECT next_sync_at - now() FROM integrations")
    await conn.close()
    for stop in stops:
        await stop()
    assert [r["status"] for r in periodic] == ["succeeded"]
    assert next_at.total_seconds() > 3000


async def test_workers_never_sync_one_integration_at_once(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(worker_poll_seconds=0.05)
    await api.connect()
    await _missed(control, 6)
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 30})
    deps = api.client.server.app[DEPS]
    extra = [standard_worker(deps) for _ in range(3)]
    stops = [await run_until_stopped(w, grace=10) for w in extra]
    # requests keep coming while syncs run (each deduplicated onto the queued or running job)
    # until three jobs were made, however long a sync takes on a loaded machine
    jobs: set[int] = set()
    async with asyncio.timeout(45):
        while len(jobs) < 3:
            _status, job = await api.call("POST", "/sync/manual", json={"full": True})
            jobs.add(job["job_id"])
            await asyncio.sleep(0.05)
    await api.syncs_idle(within=60)
    for stop in stops:
        await stop()
    conn = await asyncpg.connect(database_url)
    spans = await conn.fetch("SELECT started_at, finished_at FROM sync_logs ORDER BY started_at")
    owners = await conn.fetchval("SELECT count(DISTINCT locked_by) FROM sync_jobs")
    await conn.close()
    assert len(spans) >= 3
    assert all(a["finished_at"] <= b["started_at"] for a, b in itertools.pairwise(spans))
    assert owners == 0  # every finished job has its lease cleared


async def test_killed_worker_job_is_reclaimed(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(worker_lease_seconds=1, worker_poll_seconds=0.1)
    await api.connect()
    await _missed(control, 10)
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 200})
    _status, queued = await api.call("POST", "/sync/manual", json={})
    first = api.client.server.app[WORKER]
    await eventually(lambda: _job_running(database_url))
    await asyncio.sleep(0.3)
    assert first.task is not None
    first.task.cancel()
    await asyncio.gather(first.task, return_exceptions=True)
    await control.call("DELETE", "/_sandbox/faults")
    second = standard_worker(api.client.server.app[DEPS])
    stop = await run_until_stopped(second, grace=5)
    try:
        job = await eventually(lambda: _finished(api, queued["job_id"], 1), within=30)
    finally:
        await stop()
    _, logs = await api.call("GET", "/sync-logs")
    manual = [e for e in logs["items"] if e["trigger"] == "manual"]
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    assert [(e["status"], e["error"]) for e in manual] == [
        ("succeeded", None),
        ("failed", "interrupted: the worker stopped"),
    ]
    assert len(await appointments(api)) == 10


async def _job_running(database_url: str) -> bool:
    """Whether a manual sync job is running."""
    conn = await asyncpg.connect(database_url)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM sync_jobs WHERE trigger = 'manual' AND status = 'running'"
            )
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("status", ["disabled", "needs_reauth"])
async def test_manual_sync_refused_for_inactive_integration(
    api: Api, control: Sandbox, status: str
) -> None:
    await api.connect()
    if status == "disabled":
        await api.call("PUT", "/integration/toggle", json={"sync_enabled": False})
    else:
        await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
        await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {})
        await api.call("POST", "/event-types/refresh")
    code, body = await api.call("POST", "/sync/manual", json={})
    expected = "sync_disabled" if status == "disabled" else "integration_not_active"
    assert (code, body["error"]["code"]) == (409, expected)


async def test_stale_page_tokens_resume_the_listing(start_service: Any, control: Sandbox) -> None:
    # A 429 storm holds the listing's cursor open past the page tokens' one-second life.
    api = await start_service(calendly_rate_limit_window_seconds=1)
    await api.connect()
    event_type = await default_event_type(control)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    for start, count, interval in ((tomorrow, 150, 30), (tomorrow + timedelta(hours=40), 60, 0)):
        body = {"event_type": event_type, "count": count, "interval_minutes": interval,
                "start_time": start.isoformat()}  # fmt: skip
        await control.call("POST", "/_sandbox/bookings/bulk", body)
    await control.call(
        "POST",
        "/_sandbox/faults",
        {"rate_limit_per_minute": 40, "rate_limit_window_seconds": 1, "page_token_ttl_seconds": 1},
    )
    await _spend_window(control, 1)
    entry = await sync_now(api, full=True)
    stats = await control.call("GET", "/_sandbox/stats")
    items = await appointments(api)
    assert (entry["status"], entry["error"], entry["invitees_fetched"]) == ("succeeded", None, 210)
    assert entry["events_seen"] == 210
    assert stats["rate_limited"] >= 1
    resumed = "event listing resumed after refused page tokens"
    assert [n for n in entry["notes"] if n.startswith(resumed)] != []
    assert len({a["calendly_invitee_uri"] for a in items}) == len(items) == 210


async def test_a_listing_that_keeps_refusing_fails_after_bounded_resumes(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    event_type = await default_event_type(control)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    body = {"event_type": event_type, "count": 130, "interval_minutes": 0,
            "start_time": start.isoformat()}  # fmt: skip
    await control.call("POST", "/_sandbox/bookings/bulk", body)
    await control.call("POST", "/_sandbox/faults", {"page_token_ttl_seconds": 0})
    await control.call("DELETE", "/_sandbox/stats")
    entry = await sync_now(api, full=True)
    listings = await control.count("GET", "/scheduled_events")
    assert entry["status"] == "failed"
    assert entry["error"].startswith("CalendlyBadRequest: 400")  # a CalendlyError subclass
    # the first listing, its refused second page, then per resume one page and one refusal
    assert listings == 2 + 2 * MAX_IDLE_RESUMES
