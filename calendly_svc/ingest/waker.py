"""Coalesced wake-ups: many stored rows, few NOTIFYs.

A transaction that NOTIFYs takes a database-wide lock while it commits, so notifying inside
every webhook insert serialises the commits of all of them. The edge instead pokes a Waker after
its insert committed; the Waker sends one NOTIFY for every poke made before it, at most one per
interval. A wake-up is only a hint: the worker also polls, so a lost one delays, never drops.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from calendly_svc.store import queries

log = structlog.get_logger(__name__)
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
RETRY_SECONDS = 1.0


class Waker:
    """Sends a NOTIFY on one channel after pokes, no more often than every `interval` seconds."""

    def __init__(self, pool: asyncpg.Pool, channel: str, interval: float) -> None:
        self.pool = pool
        self.channel = channel
        self.interval = interval
        self.sent = 0
        self._pending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def poke(self) -> None:
        """Ask for a NOTIFY; rows committed before this call are covered by it."""
        self._pending.set()

    def start(self) -> None:
        """Run the sender in the background."""
        self._task = asyncio.create_task(self._run(), name=f"waker {self.channel}")

    async def close(self) -> None:
        """Stop, sending a last NOTIFY if a poke is still unanswered."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pending.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send(), 2)

    async def _run(self) -> None:
        """Wait for a poke, notify, pause; repeat."""
        while True:
            await self._pending.wait()
            if await self._send():
                await asyncio.sleep(self.interval)
            else:
                self._pending.set()
                await asyncio.sleep(RETRY_SECONDS)

    async def _send(self) -> bool:
        """One NOTIFY in its own transaction; a failure is logged once until it recovers."""
        self._pending.clear()
        try:
            async with self.pool.acquire() as conn:
                await queries.notify(conn, self.channel)
        except _ERRORS as exc:
            if not self._failing:
                log.warning("wake_failed", channel=self.channel, error=type(exc).__name__)
            self._failing = True
            return False
        if self._failing:
            log.info("wake_recovered", channel=self.channel)
        self._failing = False
        self.sent += 1
        return True
