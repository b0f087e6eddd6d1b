"""Coalesced wake-ups: many pokes, few NOTIFYs, none lost at the end."""

from __future__ import annotations

import asyncio

import asyncpg

from calendly_svc.ingest.waker import Waker
from calendly_svc.store.db import create_pool

CHANNEL = "test_wake"


async def _listener(database_url: str, heard: list[str]) -> asyncpg.Connection:
    """A connection recording every NOTIFY on the channel."""
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(CHANNEL, lambda *args: heard.append(args[2]))
    return conn


async def test_a_burst_of_pokes_sends_few_notifies_and_the_last_is_not_lost(
    database_url: str,
) -> None:
    heard: list[str] = []
    listener = await _listener(database_url, heard)
    pool = await create_pool(database_url)
    waker = Waker(pool, CHANNEL, interval=0.05)
    waker.start()
    try:
        for _ in range(200):
            waker.poke()
            await asyncio.sleep(0.001)
        waker.poke()
        await waker.close()
        await asyncio.sleep(0.2)
    finally:
        await pool.close()
        await listener.close()
    assert 2 <= waker.sent <= 12
    assert len(heard) == waker.sent


async def test_no_poke_no_notify(database_url: str) -> None:
    heard: list[str] = []
    listener = await _listener(database_url, heard)
    pool = await create_pool(database_url)
    waker = Waker(pool, CHANNEL, interval=0.01)
    waker.start()
    await asyncio.sleep(0.1)
    await waker.close()
    await pool.close()
    await asyncio.sleep(0.1)
    await listener.close()
    assert (waker.sent, heard) == (0, [])
