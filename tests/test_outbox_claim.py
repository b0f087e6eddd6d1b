"""Claiming notifications: in order per appointment, stale leases taken over, concurrent claims
apart (how a claim reaches its rows: test_query_plans)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from calendly_svc.store import queries
from calendly_svc.store.db import create_pool

# (appointment, seconds until due, status, seconds since its lease was taken)
Row = tuple[int, float, str, float | None]
INSERT = """INSERT INTO outbox (user_id, appointment_id, type, payload, run_after, status,
                                locked_by, locked_at)
    SELECT 1, a, 'appointment.changed', '{}', now() + make_interval(secs => due), s,
           CASE WHEN s = 'processing' THEN 'gone' END, now() - make_interval(secs => held)
    FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::float8[]) AS t (a, due, s, held)"""


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database."""
    pool = await create_pool(database_url)
    yield pool
    await pool.close()


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection of that pool."""
    async with pool.acquire() as conn:
        yield conn


async def _insert(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """Notifications in the order given (ids ascending)."""
    await conn.execute(INSERT, *(list(column) for column in zip(*rows, strict=True)))


async def _claim(conn: asyncpg.Connection, worker: str, limit: int = 10) -> list[int]:
    """The ids one claim leased, in id order."""
    return sorted(row.id for row in await queries.claim_outbox(conn, worker, limit, 30.0))


async def test_only_the_oldest_undelivered_of_each_appointment_is_taken(
    conn: asyncpg.Connection,
) -> None:
    await _insert(
        conn,
        [
            (1, -5, "pending", None),  # 1: due, head of appointment 1
            (1, -9, "pending", None),  # 2: due earlier, but behind 1
            (2, 60, "pending", None),  # 3: head of 2, backing off
            (2, -9, "pending", None),  # 4: due, behind 3
            (3, -1, "processing", 5),  # 5: head of 3, leased a moment ago
            (3, -9, "pending", None),  # 6: due, behind 5
            (4, -1, "processing", 120),  # 7: head of 4, its lease ran out
            (5, -1, "delivered", None),  # 8: delivered
            (5, -1, "pending", None),  # 9: due, head of 5
        ],
    )
    first = await _claim(conn, "a")
    await queries.finish_outbox(conn, 1, "a")
    second = await _claim(conn, "b")
    assert (first, second) == ([1, 7, 9], [2])


async def test_a_claim_takes_stale_leases_and_due_rows_up_to_its_limit(
    conn: asyncpg.Connection,
) -> None:
    await _insert(conn, [(n, -1, "processing", 120) for n in range(3)])
    await _insert(conn, [(n, -n, "pending", None) for n in range(10, 20)])  # the last due first
    batches = [await _claim(conn, "a", limit=4) for _ in range(4)]
    assert batches == [[1, 2, 3, 13], [9, 10, 11, 12], [5, 6, 7, 8], [4]]


async def test_a_claim_skips_what_another_is_still_claiming(
    pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await _insert(conn, [(n, -n, "pending", None) for n in range(6)])
    async with pool.acquire() as other, other.transaction():
        first = await _claim(other, "a", limit=3)  # not committed yet: its rows stay locked
        second = await _claim(conn, "b")
    assert (first, second) == ([4, 5, 6], [1, 2, 3])
