"""Group commit at the edge: one statement per batch, and a row Postgres refuses fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from calendly_svc.ingest.inbox_writer import InboxWriter
from calendly_svc.ingest.waker import Waker
from calendly_svc.store import queries
from calendly_svc.store.db import create_pool


def _event(n: int, headers: str = "{}") -> queries.NewWebhookEvent:
    """A distinct delivery for integration 1."""
    return queries.NewWebhookEvent(
        integration_id=1, event="invitee.created", dedup_key=f"k{n}", payload_uri=None,
        calendly_created_at=None, headers=headers, body='{"event": "invitee.created"}',
    )  # fmt: skip


@pytest.fixture
async def writer(database_url: str) -> AsyncIterator[InboxWriter]:
    """A started writer (one flusher) on a database with integration 1."""
    pool = await create_pool(database_url)
    await pool.execute(
        "INSERT INTO integrations (user_id, status, calendly_user_uri) "
        "VALUES (1, 'disconnected', 'https://api.calendly.com/users/W')"
    )
    writer = InboxWriter(pool, Waker(pool, "test_writer", interval=0.05), flushers=1)
    writer.start()
    yield writer
    await writer.close()
    await writer.waker.close()
    await pool.close()


async def test_a_row_postgres_refuses_fails_alone_and_its_batch_is_stored(
    writer: InboxWriter,
) -> None:
    # headers are JSON text the edge builds; not JSON here, so the jsonb cast refuses it
    events = [_event(n) for n in range(6)] + [_event(6, headers="not json")]
    answers = await asyncio.gather(*(writer.store(e) for e in events), return_exceptions=True)
    stored = await writer.pool.fetch("SELECT dedup_key FROM webhook_events ORDER BY id")
    assert [type(a).__name__ for a in answers] == ["StoredEvent"] * 6 + [
        "InvalidTextRepresentationError"
    ]
    assert isinstance(answers[-1], asyncpg.DataError)
    assert [r["dedup_key"] for r in stored] == [f"k{n}" for n in range(6)]


@pytest.mark.parametrize("copies", [1, 3])
async def test_copies_in_one_batch_are_one_row_and_the_rest_duplicates(
    writer: InboxWriter, copies: int
) -> None:
    answers = await asyncio.gather(*(writer.store(_event(0)) for _ in range(copies)))
    duplicates = await writer.pool.fetchval("SELECT duplicates FROM webhook_events")
    assert [a.inserted for a in answers] == [True] + [False] * (copies - 1)
    assert duplicates == copies - 1


async def test_a_batch_chosen_as_a_deadlock_victim_is_written_again(
    writer: InboxWriter, database_url: str
) -> None:
    other = await asyncpg.connect(database_url)
    # only the writer's backend looks for the deadlock, so the writer's batch is the victim
    await other.execute("SET deadlock_timeout = '30s'")
    await other.execute("SET statement_timeout = '10s'")
    transaction = other.transaction()
    await transaction.start()
    await queries.insert_webhook_events(other, [_event(1)], [0])
    batch = asyncio.gather(writer.store(_event(0)), writer.store(_event(1)))
    await asyncio.sleep(0.3)  # the batch has stored k0 and waits for this k1
    await queries.insert_webhook_events(other, [_event(0)], [0])  # waits for the batch's k0
    await transaction.rollback()  # the batch, written again, waited for this
    await other.close()
    answers = await batch
    stored = await writer.pool.fetch("SELECT dedup_key FROM webhook_events ORDER BY id")
    assert [a.inserted for a in answers] == [True, True]
    assert [r["dedup_key"] for r in stored] == ["k0", "k1"]
