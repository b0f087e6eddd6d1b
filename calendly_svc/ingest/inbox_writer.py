"""Group commit for the webhook edge: concurrent deliveries share one INSERT and one commit.

A request hands its delivery over and waits until the batch holding it has committed, so a 200
still means "stored durably". Under light load a batch holds one delivery; under load, the
deliveries that arrive while a batch is being written make up the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from calendly_svc.ingest.waker import Waker
from calendly_svc.store import queries
from calendly_svc.store.queries import StoredEvent

log = structlog.get_logger(__name__)
MAX_BATCH = 100
DEADLOCK_RETRIES = 3


class WriterStopped(ConnectionError):
    """The writer shut down before the delivery's batch was written."""


@dataclass(slots=True)  # one per delivery: not frozen, see queries.RECORDS
class _Pending:
    """A delivery waiting for its batch."""

    event: queries.NewWebhookEvent
    done: asyncio.Future[queries.StoredEvent]


Key = tuple[int, str]  # (integration id, dedup key)


def _fold(
    events: Sequence[queries.NewWebhookEvent],
) -> tuple[list[queries.NewWebhookEvent], list[int]]:
    """Distinct deliveries in arrival order, with how many extra copies each had."""
    first: dict[Key, int] = {}
    distinct: list[queries.NewWebhookEvent] = []
    repeats: list[int] = []
    for event in events:
        key = (event.integration_id, event.dedup_key)
        if key in first:
            repeats[first[key]] += 1
        else:
            first[key] = len(distinct)
            distinct.append(event)
            repeats.append(0)
    return distinct, repeats


class InboxWriter:
    """Stores deliveries in batches with `flushers` batches in flight at most."""

    def __init__(self, pool: asyncpg.Pool, waker: Waker, flushers: int = 2) -> None:
        self.pool = pool
        self.waker = waker
        self.flushers = flushers
        self._queue: list[_Pending] = []
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Run the flushers."""
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.flushers)]

    async def close(self) -> None:
        """Stop the flushers; anything still queued is answered as not stored."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail(self._queue, WriterStopped("the inbox writer stopped"))
        self._queue = []

    async def store(self, event: queries.NewWebhookEvent) -> queries.StoredEvent:
        """Queue a delivery; returns once it is committed (or raises the batch's error)."""
        done: asyncio.Future[queries.StoredEvent] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(event, done))
        self._ready.set()
        return await done

    async def _run(self) -> None:
        """Take whatever is queued and write it; repeat."""
        while True:
            await self._ready.wait()
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            if not self._queue:
                self._ready.clear()
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        """One statement for the batch; a row Postgres refuses is isolated by retrying alone."""
        try:
            stored = await self._insert_retrying([p.event for p in batch])
        except asyncpg.DataError as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            for pending in batch:
                await self._write([pending])
            return
        except Exception as exc:
            self._fail(batch, exc)
            return
        except BaseException:
            self._fail(batch, WriterStopped("the inbox writer stopped"))
            raise
        self._resolve(batch, stored)

    async def _insert_retrying(
        self, events: list[queries.NewWebhookEvent]
    ) -> dict[Key, StoredEvent]:
        """Write the batch; a deadlock (two batches, or a batch and a worker, counting the same
        deliveries in different orders) rolled it back whole, so it is written again."""
        for _ in range(DEADLOCK_RETRIES):
            try:
                return await self._insert(events)
            except asyncpg.DeadlockDetectedError:
                log.info("inbox_batch_deadlock_retried", size=len(events))
        return await self._insert(events)

    async def _insert(self, events: list[queries.NewWebhookEvent]) -> dict[Key, StoredEvent]:
        """Write the batch; its rows by (integration, dedup key)."""
        distinct, repeats = _fold(events)
        async with self.pool.acquire() as conn:
            rows = await queries.insert_webhook_events(conn, distinct, repeats)
        return {(row.integration_id, row.dedup_key): row for row in rows}

    def _resolve(self, batch: list[_Pending], stored: dict[Key, queries.StoredEvent]) -> None:
        """Answer every delivery; a repeat within the batch is a duplicate of the first."""
        answered: set[Key] = set()
        for pending in batch:
            key = (pending.event.integration_id, pending.event.dedup_key)
            row = stored[key]
            if key in answered:
                row = queries.StoredEvent(row.id, row.integration_id, row.dedup_key, False)
            answered.add(key)
            if not pending.done.done():
                pending.done.set_result(row)
        if any(row.inserted for row in stored.values()):
            self.waker.poke()

    @staticmethod
    def _fail(batch: list[_Pending], error: BaseException) -> None:
        """Answer every unanswered delivery of a batch with the error."""
        for pending in batch:
            if not pending.done.done():
                pending.done.set_exception(error)
