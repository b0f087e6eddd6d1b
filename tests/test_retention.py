"""Retention: finished rows of the webhook log, the sync logs and jobs and the outbox are deleted
in batches by every replica's scheduler once their days have passed; queued, running and recent
rows stay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from calendly_svc.keys import DEPS
from calendly_svc.store import queries
from calendly_svc.store.db import create_pool
from calendly_svc.worker.retention import purge_expired
from tests.conftest import Api, Sandbox
from tests.helpers import book, default_event_type, eventually, settled, store_deliveries

LOG = """SELECT w.dedup_key, w.status, q.id IS NOT NULL AS queued
         FROM webhook_events w LEFT JOIN webhook_queue q USING (id) ORDER BY w.id"""


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Integration 1 with six deliveries: k0-k3 settled, k4 processing, k5 waiting; all last
    changed 31 days ago but k3, changed 29 days ago."""
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await store_deliveries(conn, 6)
            ids = [row.id for row in await queries.claim_webhook_events(conn, "a", 4, 60.0)]
            await queries.finish_webhook_event(conn, ids[0], "a", "processed", None)
            await queries.finish_webhook_event(conn, ids[1], "a", "ignored", "stale_state")
            await queries.fail_webhook_event(conn, ids[2], "a", "boom", 0, 0.0)
            await queries.finish_webhook_event(conn, ids[3], "a", "processed", None)
            await queries.claim_webhook_events(conn, "b", 1, 60.0)
            await conn.execute(
                "UPDATE webhook_events SET updated_at = now() - CASE dedup_key "
                "WHEN 'k3' THEN interval '29 days' ELSE interval '31 days' END"
            )
            yield conn
    finally:
        await pool.close()


async def test_settled_deliveries_past_retention_go_a_batch_at_a_time(
    conn: asyncpg.Connection,
) -> None:
    # each pass looks at the two oldest deliveries: k0 k1, then k2 k3, then k3 k4
    before = [tuple(row) for row in await conn.fetch(LOG)]
    batches = [await queries.purge_webhook_events(conn, 30, 2) for _ in range(3)]
    after = [tuple(row) for row in await conn.fetch(LOG)]
    assert before == [
        ("k0", "processed", False),
        ("k1", "ignored", False),
        ("k2", "failed", False),
        ("k3", "processed", False),
        ("k4", "processing", True),
        ("k5", "received", True),
    ]
    assert (batches, after) == (
        [2, 1, 0],
        [("k3", "processed", False), ("k4", "processing", True), ("k5", "received", True)],
    )


async def _delivered_and_aged(api: Api, control: Sandbox, days: int) -> asyncpg.Pool:
    """Connect, have the sandbox deliver one booking, wait until it is applied, then make it
    `days` old; returns the service's pool."""
    await api.connect()
    await book(control, await default_event_type(control), "2030-01-07T10:00:00Z")
    await settled(api)
    pool: asyncpg.Pool = api.client.server.app[DEPS].pool
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE webhook_events SET updated_at = now() - make_interval(days => $1)", days
        )
    return pool


async def _logged(pool: asyncpg.Pool) -> int:
    """Deliveries in the webhook log."""
    async with pool.acquire() as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM webhook_events")
    return count


async def test_the_scheduler_purges_the_log(
    start_service: Callable[..., Awaitable[Api]], control: Sandbox
) -> None:
    api = await start_service(sync_schedule_check_seconds=0.1, webhook_log_retention_days=2)
    pool = await _delivered_and_aged(api, control, 3)
    emptied = await eventually(lambda: _empty(pool))
    registry = api.client.server.app[DEPS].metrics.registry
    purged = registry.get_sample_value(
        "calendly_svc_retention_deleted_total", {"table": "webhook_events"}
    )
    assert (emptied, purged) == (True, 1.0)


async def _empty(pool: asyncpg.Pool) -> bool:
    """Whether the webhook log is empty."""
    return await _logged(pool) == 0


async def test_retention_zero_keeps_the_log(
    start_service: Callable[..., Awaitable[Api]], control: Sandbox
) -> None:
    api = await start_service(webhook_log_retention_days=0)
    pool = await _delivered_and_aged(api, control, 400)
    purged = await purge_expired(api.client.server.app[DEPS])
    assert (purged["webhook_events"], await _logged(pool)) == (0, 1)


SYNC_AND_OUTBOX = """
INSERT INTO sync_logs (integration_id, trigger, status, started_at, finished_at, window_start,
                       window_end)
SELECT 1, 'periodic', s, now() - make_interval(days => d), now() - make_interval(days => d),
       now(), now()
FROM (VALUES ('succeeded', 100), ('failed', 100), ('running', 100), ('succeeded', 80)) AS v (s, d);
INSERT INTO sync_jobs (integration_id, trigger, status, sync_log_id, created_at, finished_at)
VALUES (1, 'periodic', 'succeeded', 1, now() - interval '100 days', now() - interval '100 days'),
       (1, 'periodic', 'failed', 2, now() - interval '100 days', now() - interval '91 days'),
       (1, 'periodic', 'succeeded', 4, now() - interval '80 days', now() - interval '80 days'),
       (1, 'periodic', 'queued', NULL, now() - interval '100 days', NULL);
INSERT INTO outbox (user_id, appointment_id, type, payload, status, created_at, delivered_at)
VALUES (1, 1, 'appointment.created', '{}', 'delivered', now() - interval '9 days',
        now() - interval '8 days'),
       (1, 1, 'appointment.updated', '{}', 'failed', now() - interval '8 days', NULL),
       (1, 1, 'appointment.updated', '{}', 'pending', now() - interval '9 days', NULL),
       (1, 2, 'appointment.created', '{}', 'delivered', now() - interval '9 days',
        now() - interval '6 days');
"""
REMAINING = """
SELECT (SELECT array_agg(status ORDER BY id) FROM sync_jobs),
       (SELECT array_agg(status ORDER BY id) FROM sync_logs),
       (SELECT array_agg(type || ':' || status ORDER BY id) FROM outbox)
"""


async def test_finished_syncs_and_notifications_past_retention_go(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute(SYNC_AND_OUTBOX)
    deleted = [
        await queries.purge_sync_jobs(conn, 90, 100),
        await queries.purge_sync_logs(conn, 90, 100),
        await queries.purge_outbox(conn, 7, 100),
    ]
    remaining = tuple(await conn.fetchrow(REMAINING))
    assert (deleted, remaining) == (
        [2, 2, 2],
        (
            ["succeeded", "queued"],
            ["running", "succeeded"],
            ["appointment.updated:pending", "appointment.created:delivered"],
        ),
    )
