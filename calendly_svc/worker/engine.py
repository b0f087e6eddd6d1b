"""The background worker: leases rows from Postgres queues with SKIP LOCKED and processes them.

Any number of replicas may run one each: rows are leased (locked_by, locked_at), leases are
kept alive by heartbeats, a lease that runs out is taken over by the next claim, and finishing a
row is fenced by the owner. LISTEN/NOTIFY wakes the loops; polling with jitter is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from calendly_svc.deps import Deps
from calendly_svc.jitter import jittered
from calendly_svc.store.queries import Conn

log = structlog.get_logger(__name__)
DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def new_worker_id() -> str:
    """Unique per process and start: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Queue:
    """One leased table: how to claim, process, heartbeat and release its rows."""

    name: str
    channel: str
    claim: Callable[[Conn, str, int, float], Awaitable[Sequence[Any]]]
    # one row at a time (None when the queue hands over whole groups: see process_group)
    process: Callable[[str, Any], Awaitable[None]] | None
    heartbeat: Callable[[Conn, str, list[int]], Awaitable[None]]
    release: Callable[[Conn, str], Awaitable[None]]
    batch: int | None = None
    # rows with the same key are processed one after another, in claim order
    order_by: Callable[[Any], Any] | None = None
    # when set, each such group is handed over whole instead of row by row
    process_group: Callable[[str, list[Any]], Awaitable[None]] | None = None
    # when set, a claim that came back full doubles the next one, up to this (a backlog is
    # worked off in larger, cheaper-per-row batches); a short claim resets it
    max_batch: int | None = None
    # claim the next batch while the current one is processed
    prefetch: bool = False


@dataclass
class _Health:
    """Logs a failure transition once, and its recovery once."""

    failing: set[str] = field(default_factory=set)

    def failed(self, what: str, error: BaseException) -> None:
        """Record a failure; log only the first of a run."""
        if what not in self.failing:
            self.failing.add(what)
            log.warning("worker_failure", what=what, error=f"{type(error).__name__}: {error}")

    def ok(self, what: str) -> None:
        """Record a success; log it only after failures."""
        if what in self.failing:
            self.failing.discard(what)
            log.info("worker_recovered", what=what)


class Worker:
    """Runs every queue's loop, the LISTEN connection and the heartbeat."""

    def __init__(
        self, deps: Deps, queues: list[Queue], worker_id: str | None = None,
        schedule: Callable[[], Awaitable[int]] | None = None,
    ) -> None:  # fmt: skip
        self.deps = deps
        self.schedule = schedule
        self.queues = queues
        self.id = worker_id or new_worker_id()
        self.settings = deps.settings
        self.stopping = asyncio.Event()
        self._wake = {q.channel: asyncio.Event() for q in queues}
        self._inflight: dict[str, set[int]] = {q.name: set() for q in queues}
        self._health = _Health()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Until stop(): claim and process; the loops finish their batch before returning."""
        log.info("worker_started", worker_id=self.id, queues=[q.name for q in self.queues])
        async with asyncio.TaskGroup() as group:
            group.create_task(self._listen())
            group.create_task(self._heartbeat())
            if self.schedule is not None:
                group.create_task(self._scheduler(self.schedule))
            for queue in self.queues:
                group.create_task(self._loop(queue))

    def stop(self) -> None:
        """Stop claiming; running items finish."""
        self.stopping.set()
        for event in self._wake.values():
            event.set()

    def wake(self, channel: str) -> None:
        """Make a queue's loop claim now."""
        if channel in self._wake:
            self._wake[channel].set()

    async def release_all(self) -> None:
        """Hand back every row still leased by this worker."""
        async with self.deps.pool.acquire() as conn:
            for queue in self.queues:
                await queue.release(conn, self.id)

    async def _loop(self, queue: Queue) -> None:
        """Claim a batch, process it, repeat; sleep until woken when there is nothing to do.

        With `prefetch`, the next batch is claimed while the current one is processed (it is
        processed after it, so the claim order is kept); at a stop it is handed back unread.
        """
        base = queue.batch or self.settings.worker_batch_size
        limit = base
        rows: Sequence[Any] = []
        while not self.stopping.is_set():
            if not rows:
                rows = await self._claim(queue, limit)
                limit = _next_limit(queue, base, limit, len(rows))
            if not rows:
                await self._idle(queue.channel)
            elif not queue.prefetch:
                await self._process_batch(queue, rows)
                rows = []
            else:
                rows, limit = await self._process_and_claim(queue, rows, base, limit)

    async def _process_and_claim(
        self, queue: Queue, rows: Sequence[Any], base: int, limit: int
    ) -> tuple[Sequence[Any], int]:
        """Process a batch while claiming the next; returns the next batch and claim size."""
        current = asyncio.create_task(self._process_batch(queue, rows))
        try:
            following = await self._claim(queue, limit)
            self._inflight[queue.name].update(row.id for row in following)
        except BaseException:
            current.cancel()
            await asyncio.gather(current, return_exceptions=True)
            raise
        await current
        return following, _next_limit(queue, base, limit, len(following))

    async def _claim(self, queue: Queue, limit: int) -> Sequence[Any]:
        """Lease up to `limit` rows; none while the database fails."""
        try:
            async with self.deps.pool.acquire() as conn:
                rows = await queue.claim(conn, self.id, limit, self.settings.worker_lease_seconds)
        except DB_ERRORS as exc:
            self._health.failed(f"claim_{queue.name}", exc)
            return []
        self._health.ok(f"claim_{queue.name}")
        return rows

    async def _idle(self, channel: str) -> None:
        """Wait for a NOTIFY, or poll after a jittered interval."""
        event = self._wake[channel]
        timeout = self.settings.worker_poll_seconds * jittered(0.8, 1.2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    async def _process_batch(self, queue: Queue, rows: Sequence[Any]) -> None:
        """Process a claimed batch: groups concurrently (bounded), each group in order."""
        limit = asyncio.Semaphore(self.settings.worker_concurrency)
        groups: dict[Any, list[Any]] = {}
        for row in rows:
            key = queue.order_by(row) if queue.order_by else row.id
            groups.setdefault(key, []).append(row)

        async def in_order(group: list[Any]) -> None:
            async with limit:
                if queue.process_group is not None:
                    await self._process_group(queue, group)
                    return
                for row in group:
                    await self._process_one(queue, row)

        await asyncio.gather(*(in_order(group) for group in groups.values()))

    async def _process_one(self, queue: Queue, row: Any) -> None:
        """One row, with its id in the log context and in the heartbeat set."""
        inflight = self._inflight[queue.name]
        inflight.add(row.id)
        structlog.contextvars.bind_contextvars(**{f"{queue.name}_id": row.id})
        try:
            assert queue.process is not None
            await queue.process(self.id, row)
        except DB_ERRORS as exc:
            # the row stays leased; another claim takes it over when the lease runs out
            self._health.failed(f"process_{queue.name}", exc)
        except Exception:
            log.exception("worker_item_crashed", queue=queue.name)
        finally:
            inflight.discard(row.id)
            structlog.contextvars.unbind_contextvars(f"{queue.name}_id")

    async def _process_group(self, queue: Queue, rows: list[Any]) -> None:
        """A group handed over whole; its rows are in the heartbeat set meanwhile."""
        assert queue.process_group is not None
        inflight = self._inflight[queue.name]
        inflight.update(row.id for row in rows)
        try:
            await queue.process_group(self.id, rows)
        except DB_ERRORS as exc:
            # unfinished rows stay leased; another claim takes them over when the lease runs out
            self._health.failed(f"process_{queue.name}", exc)
        except Exception:
            log.exception("worker_group_crashed", queue=queue.name)
        finally:
            inflight.difference_update(row.id for row in rows)

    async def _heartbeat(self) -> None:
        """Keep the leases of in-flight rows alive."""
        interval = self.settings.worker_lease_seconds / 3
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), interval)
            await self._beat()

    async def _beat(self) -> None:
        """One heartbeat for every queue with rows in flight."""
        try:
            async with self.deps.pool.acquire() as conn:
                for queue in self.queues:
                    if ids := sorted(self._inflight[queue.name]):
                        await queue.heartbeat(conn, self.id, ids)
            self._health.ok("heartbeat")
        except DB_ERRORS as exc:
            self._health.failed("heartbeat", exc)

    async def _scheduler(self, schedule: Callable[[], Awaitable[int]]) -> None:
        """Run the periodic scheduler every few (jittered) seconds; every replica may."""
        while not self.stopping.is_set():
            try:
                await schedule()
                self._health.ok("schedule")
            except DB_ERRORS as exc:
                self._health.failed("schedule", exc)
            delay = self.settings.sync_schedule_check_seconds * jittered(0.8, 1.2)
            await first_completed(asyncio.sleep(delay), self.stopping.wait())

    async def _listen(self) -> None:
        """A dedicated LISTEN connection, re-established after it is lost."""
        while not self.stopping.is_set():
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.settings.database_url)
                conn.add_termination_listener(_setter(lost))
                for channel in self._wake:
                    await conn.add_listener(channel, self._on_notify)
                self._health.ok("listen")
                await first_completed(lost.wait(), self.stopping.wait())
            except DB_ERRORS as exc:
                self._health.failed("listen", exc)
                await first_completed(asyncio.sleep(jittered(1, 3)), self.stopping.wait())
            finally:
                if conn is not None:
                    await _close_quietly(conn)

    def _on_notify(self, _conn: Any, _pid: int, channel: str, _payload: str) -> None:
        """Wake the loop of the notified queue."""
        self.wake(channel)


def _next_limit(queue: Queue, base: int, limit: int, claimed: int) -> int:
    """The next claim's size: doubled after a full claim (up to the queue's maximum)."""
    if queue.max_batch is None or claimed < limit:
        return base
    return min(limit * 2, max(queue.max_batch, base))


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    """A callback that sets the event, whatever it is called with."""
    return lambda *_: event.set()


async def first_completed(*aws: Awaitable[Any]) -> None:
    """Wait until the first of several awaitables completes; cancel the rest."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _close_quietly(conn: asyncpg.Connection) -> None:
    """Close a connection that may already be broken."""
    try:
        await asyncio.wait_for(conn.close(), 2)
    except Exception:
        conn.terminate()


async def run_until_stopped(worker: Worker, grace: float) -> Callable[[], Awaitable[None]]:
    """Start the worker; the returned coroutine stops it within the grace period."""
    task = worker.task = asyncio.create_task(worker.run(), name=f"worker {worker.id}")

    async def stop() -> None:
        worker.stop()
        done, _ = await asyncio.wait([task], timeout=grace)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.warning("worker_cancelled_after_grace", worker_id=worker.id)
        try:
            await worker.release_all()
        except DB_ERRORS as exc:
            log.warning("worker_release_failed", error=type(exc).__name__)
        log.info("worker_stopped", worker_id=worker.id)

    return stop
