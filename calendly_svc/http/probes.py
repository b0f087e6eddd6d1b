"""Database reads for the unauthenticated probes, shared and cached so that scrapes cannot
compete with the webhook edge for the pool: one read at a time, reused for a TTL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    """Single-flight with a TTL: concurrent callers await one read, and its value answers every
    caller until `ttl` seconds after it arrived."""

    def __init__(self, read: Callable[[], Awaitable[T]], ttl: float) -> None:
        self._read = read
        self._ttl = ttl
        self._task: asyncio.Task[T] | None = None
        self._expires = 0.0

    async def get(self) -> T:
        """The cached outcome, or a fresh one (a cancelled caller leaves the read running)."""
        task = self._task
        if task is None or (task.done() and time.monotonic() >= self._expires):
            task = self._task = asyncio.create_task(self._run())
            task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def _run(self) -> T:
        """One read; a value is reused for the TTL from when it arrived, an error only by the
        callers already waiting (readiness comes back with the first scrape after an outage)."""
        self._expires = 0.0
        value = await self._read()
        self._expires = time.monotonic() + self._ttl
        return value


def _retrieve(task: asyncio.Task[T]) -> None:
    """Mark the outcome retrieved (every caller may have been cancelled meanwhile)."""
    if not task.cancelled():
        task.exception()
