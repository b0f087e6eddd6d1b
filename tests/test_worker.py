"""The worker under faults: a killed worker's row is reclaimed and applied once; a database
outage answers 503 and loses nothing; several workers never apply a delivery twice."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from calendly_svc.calendly.client import RetryPolicy
from calendly_svc.devenv import (
    restart_embedded_postgres,
    start_embedded_postgres,
    stop_embedded_postgres,
)
from calendly_svc.keys import DEPS, WORKER
from calendly_svc.store.db import apply_migrations_sync
from calendly_svc.worker.engine import Worker, run_until_stopped
from calendly_svc.worker.processing import retry_delay
from calendly_svc.worker.queues import inbox_queue
from tests.conftest import Api, Sandbox
from tests.helpers import (
    appointments,
    book,
    default_event_type,
    envelope,
    eventually,
    invitee_payload,
    post_webhook,
    settled,
)


async def _quiet_booking(api: Api, control: Sandbox, name: str) -> tuple[str, dict[str, Any]]:
    """A booking of an event type the service has not heard of, and its undelivered webhook."""
    integration = await api.connect()
    made = await control.call(
        "POST",
        "/_sandbox/event_types",
        {
            "user": integration["calendly_user_uri"],
            "name": name,
            "duration": 30,
            "deliver": False,
        },
    )
    booking = await book(control, made["resource"]["uri"], "2030-02-01T09:00:00Z", deliver=False)
    payload = await invitee_payload(control, booking["invitees"][0]["uri"])
    return integration["public_id"], envelope("invitee.created", payload)


async def _row(database_url: str) -> asyncpg.Record:
    """The only inbox row."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow("SELECT status, attempts, locked_by FROM webhook_events")
    finally:
        await conn.close()


async def test_killed_worker_row_is_reclaimed_and_applied_once(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(worker_lease_seconds=1, worker_poll_seconds=0.2)
    public_id, delivery = await _quiet_booking(api, control, "Slow")
    # resolving the unknown event type calls Calendly, which is slow: the worker is mid-item
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 3000})
    assert (await post_webhook(api, public_id, delivery))[0] == 200
    claimed = await eventually(lambda: _claimed(database_url))
    first = api.client.server.app[WORKER]
    assert first.task is not None
    first.task.cancel()
    await asyncio.gather(first.task, return_exceptions=True)
    await control.call("DELETE", "/_sandbox/faults")
    orphan = await _row(database_url)
    second = Worker(api.client.server.app[DEPS], [inbox_queue(api.client.server.app[DEPS])])
    stop = await run_until_stopped(second, grace=5)
    try:
        log = await settled(api, within=15)
    finally:
        await stop()
    assert claimed
    assert (orphan["status"], orphan["attempts"], orphan["locked_by"]) == (
        "processing",
        1,
        first.id,
    )
    assert [(e["status"], e["attempts"]) for e in log] == [("processed", 2)]
    assert len(await appointments(api)) == 1


async def _claimed(database_url: str) -> bool:
    """Whether a worker holds the inbox row."""
    row = await _row(database_url)
    return row is not None and row["status"] == "processing"


async def test_jitter_leaves_the_global_random_state_alone(start_service: Any) -> None:
    # schemathesis draws its inputs from that state in a thread while the service runs
    random.seed(5)
    before = random.getstate()
    api = await start_service(worker_poll_seconds=0.02)
    await asyncio.sleep(0.3)  # a dozen jittered polls of each queue
    delays = [retry_delay(api.client.server.app[DEPS], 3), RetryPolicy().backoff(3)]
    assert before == random.getstate()
    assert [4.0 <= delays[0] <= 8.0, 1.0 <= delays[1] <= 2.0] == [True, True]


async def test_graceful_stop_releases_leases(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(worker_shutdown_grace_seconds=0.5)
    public_id, delivery = await _quiet_booking(api, control, "Slow")
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 3000})
    await post_webhook(api, public_id, delivery)
    await eventually(lambda: _claimed(database_url))
    started = time.monotonic()
    await api.client.close()
    elapsed = time.monotonic() - started
    row = await _row(database_url)
    assert elapsed < 3
    assert (row["status"], row["attempts"], row["locked_by"]) == ("received", 0, None)


async def test_many_workers_apply_each_delivery_once(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(worker_batch_size=3, worker_poll_seconds=0.1)
    integration = await api.connect()
    event_type = await default_event_type(control)
    deps = api.client.server.app[DEPS]
    others = [Worker(deps, [inbox_queue(deps)]) for _ in range(3)]
    stops = [await run_until_stopped(w, grace=5) for w in others]
    people = [{"name": f"N{n}", "email": f"n{n}@example.com"} for n in range(12)]
    deliveries = []
    for n, person in enumerate(people):
        booking = await book(
            control, event_type, f"2030-03-{n + 1:02}T09:00:00Z", person, deliver=False
        )
        deliveries.append(
            envelope(
                "invitee.created", await invitee_payload(control, booking["invitees"][0]["uri"])
            )
        )
    answers = await asyncio.gather(
        *(post_webhook(api, integration["public_id"], d) for d in deliveries * 2)
    )
    try:
        log = await settled(api, within=20)
    finally:
        for stop in stops:
            await stop()
    assert {status for status, _ in answers} == {200}
    assert (
        sorted((e["status"], e["attempts"], e["duplicates"]) for e in log)
        == [("processed", 1, 1)] * 12
    )
    assert len(await appointments(api)) == 12


@pytest.fixture
def own_postgres() -> Iterator[tuple[Any, str]]:
    """A PostgreSQL of this test's own, which the test may stop and start."""
    with tempfile.TemporaryDirectory(prefix="cs-own-") as directory:
        server = start_embedded_postgres(Path(directory) / "pg")
        dsn = server.get_uri()
        apply_migrations_sync(dsn)
        yield server, dsn
        server.cleanup()


@pytest.fixture
async def outage_api(start_service: Any, own_postgres: tuple[Any, str]) -> AsyncIterator[Api]:
    """The service on a database the test controls."""
    return await start_service(database_url=own_postgres[1], worker_poll_seconds=0.2)


async def test_database_outage_answers_503_and_loses_nothing(
    outage_api: Api, own_postgres: tuple[Any, str], control: Sandbox
) -> None:
    server, _dsn = own_postgres
    public_id, delivery = await _quiet_booking(outage_api, control, "Outage")
    stop_embedded_postgres(server)
    try:
        during, body = await post_webhook(outage_api, public_id, delivery)
        ready = await outage_api.client.get("/readyz")
    finally:
        restart_embedded_postgres(server)
    after, _ = await eventually(lambda: _accepted(outage_api, public_id, delivery), within=20)
    log = await settled(outage_api, within=20)
    ready_again = await outage_api.client.get("/readyz")
    assert (during, body["error"]["code"]) == (503, "service_unavailable")
    assert ready.status == 503
    assert after == 200
    assert [(e["status"], e["duplicates"]) for e in log] == [("processed", 0)]
    assert len(await appointments(outage_api)) == 1
    assert ready_again.status == 200


async def _accepted(api: Api, public_id: str, delivery: dict[str, Any]) -> tuple[int, Any] | None:
    """Calendly's retry: the delivery again, until it is accepted."""
    answer = await post_webhook(api, public_id, delivery)
    return answer if answer[0] == 200 else None


def test_worker_ids_are_unique() -> None:
    from calendly_svc.worker.engine import new_worker_id

    assert len({new_worker_id() for _ in range(100)}) == 100


async def test_retries_with_backoff_then_failed(
    start_service: Any, control: Sandbox, database_url: str
) -> None:
    api = await start_service(
        webhook_max_attempts=3,
        retry_base_seconds=0.05,
        retry_max_seconds=0.1,
        worker_poll_seconds=0.1,
        calendly_max_retries=0,
    )
    public_id, delivery = await _quiet_booking(api, control, "Unreachable")
    # the unknown event type cannot be loaded while Calendly keeps failing
    await control.call("POST", "/_sandbox/faults", {"fail_next": 1000, "fail_status": 503})
    await post_webhook(api, public_id, delivery)
    log = await eventually(lambda: _final_log(api), within=15)
    await control.call("DELETE", "/_sandbox/faults")
    status, _ = await api.call("POST", f"/webhook-events/{log[0]['id']}/replay")
    replayed = await settled(api)
    assert [(e["status"], e["attempts"]) for e in log] == [("failed", 3)]
    assert log[0]["error"].startswith("CalendlyUnavailable")
    assert status == 202
    assert [(e["status"], e["attempts"], e["error"]) for e in replayed] == [("processed", 1, None)]
    assert len(await appointments(api)) == 1


async def _final_log(api: Api) -> list[dict[str, Any]] | None:
    """The log once its only entry has failed for good."""
    _, body = await api.call("GET", "/webhook-events")
    return body["items"] if body["items"] and body["items"][0]["status"] == "failed" else None
