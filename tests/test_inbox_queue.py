"""The inbox's queue table follows its deliveries through every transition: a row is queued
exactly while its delivery is received or processing, and carries the delivery's lease."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from calendly_svc.store import queries
from calendly_svc.store.db import create_pool
from tests.helpers import store_deliveries

STATE = """SELECT w.dedup_key, w.status, w.locked_by, q.id IS NOT NULL AS queued,
                  q.locked_by AS queue_locked_by
           FROM webhook_events w LEFT JOIN webhook_queue q USING (id) ORDER BY w.id"""


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database with integration 1 and three stored deliveries."""
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await store_deliveries(conn, 3)
            yield conn
    finally:
        await pool.close()


async def _state(conn: asyncpg.Connection) -> list[tuple[str, str, str | None, bool, str | None]]:
    """(key, status, lease, queued, queue's lease) of every delivery."""
    return [tuple(row) for row in await conn.fetch(STATE)]  # type: ignore[misc]


async def test_the_queue_follows_claims_outcomes_replays_and_releases(
    conn: asyncpg.Connection,
) -> None:
    ids = [row.id for row in await queries.claim_webhook_events(conn, "a", 3, 60.0)]
    claimed = await _state(conn)
    await queries.finish_webhook_event(conn, ids[0], "a", "processed", None)
    await queries.fail_webhook_event(conn, ids[1], "a", "boom", 5, 0.0)
    await queries.fail_webhook_event(conn, ids[2], "a", "boom", 0, 0.0)
    settled = await _state(conn)
    await queries.replay_webhook_event(conn, ids[0], 1)
    await queries.replay_webhook_event(conn, ids[2], 1)
    again = [row.id for row in await queries.claim_webhook_events(conn, "b", 3, 60.0)]
    await queries.release_webhook_events(conn, "b")
    assert claimed == [(f"k{n}", "processing", "a", True, "a") for n in range(3)]
    assert settled == [
        ("k0", "processed", None, False, None),
        ("k1", "received", None, True, None),
        ("k2", "failed", None, False, None),
    ]
    assert again == ids
    assert await _state(conn) == [(f"k{n}", "received", None, True, None) for n in range(3)]
