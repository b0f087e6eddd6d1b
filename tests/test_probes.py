"""/metrics and /readyz share one cached database read each, so parallel scrapes cannot take
the pool from the webhook edge; a slow upload gets a 408 without touching the database."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import Api, Sandbox
from tests.helpers import (
    book,
    default_event_type,
    envelope,
    invitee_payload,
    post_webhook,
    settled,
)

SCRAPES = 64


def _probe_queries(text: str) -> dict[str, float]:
    """calendly_svc_probe_queries_total by probe, from an exposition."""
    pattern = re.compile(r'^calendly_svc_probe_queries_total\{probe="(\w+)"\} (\S+)$', re.M)
    return {probe: float(value) for probe, value in pattern.findall(text)}


async def _deliveries(api: Api, control: Sandbox, count: int) -> tuple[str, list[bytes]]:
    """`count` distinct versions of one invitee.created, as raw bodies."""
    integration = await api.connect()
    booking = await book(
        control, await default_event_type(control), "2030-01-07T10:00:00Z", deliver=False
    )
    payload = await invitee_payload(control, booking["invitees"][0]["uri"])
    stamps = [f"2026-11-29T10:{n // 60:02}:{n % 60:02}.000000Z" for n in range(count)]
    bodies = [
        json.dumps(envelope("invitee.created", payload | {"updated_at": t}, t)).encode()
        for t in stamps
    ]
    return integration["public_id"], bodies


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    """A call's result and its seconds."""
    started = time.perf_counter()
    result = await call()
    return result, time.perf_counter() - started


async def test_parallel_scrapes_do_not_compete_with_webhooks(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(db_pool_max_size=2, db_pool_min_size=1, probe_cache_seconds=30)
    public_id, bodies = await _deliveries(api, control, 32)

    async def scrape(path: str) -> int:
        resp = await api.client.get(path)
        await resp.read()
        return resp.status

    async def deliver(raw: bytes) -> tuple[tuple[int, Any], float]:
        return await _timed(lambda: post_webhook(api, public_id, raw))

    jobs = [scrape("/metrics") for _ in range(SCRAPES)] + [
        scrape("/readyz") for _ in range(SCRAPES)
    ]
    results = await asyncio.gather(*jobs, *(deliver(raw) for raw in bodies))
    scrapes, webhooks = results[: 2 * SCRAPES], results[2 * SCRAPES :]
    await settled(api)
    exposition = await (await api.client.get("/metrics")).text()
    statuses = [status for (status, _), _ in webhooks]
    latencies = sorted(seconds for _, seconds in webhooks)
    print(f"webhook p50={latencies[len(latencies) // 2]:.3f}s max={latencies[-1]:.3f}s "
          f"probe_queries={_probe_queries(exposition)}")  # fmt: skip
    assert scrapes == [200] * (2 * SCRAPES)
    assert statuses.count(503) == 0
    assert statuses == [200] * len(bodies)
    # one read each for the 128 parallel scrapes; the last scrape is inside the TTL
    assert _probe_queries(exposition) == {"metrics": 1.0, "readyz": 1.0}


async def test_probe_reads_expire_and_outages_show(start_service: Any) -> None:
    from calendly_svc.keys import DB_POOL

    api = await start_service(probe_cache_seconds=0.3)
    first = await api.client.get("/readyz")
    await asyncio.sleep(0.4)
    second = await api.client.get("/readyz")
    await api.client.server.app[DB_POOL].close()
    cached = await api.client.get("/readyz")
    await asyncio.sleep(0.4)
    down = await api.client.get("/readyz")
    still_down = await api.client.get("/readyz")  # a failure is not cached: read again
    queries = _probe_queries(await (await api.client.get("/metrics")).text())
    statuses = [r.status for r in (first, second, cached, down, still_down)]
    assert statuses == [200, 200, 200, 503, 503]
    # the last /metrics scrape reads readiness too (calendly_svc_ready): a fifth read
    assert queries["readyz"] == 5


async def _slow_upload(api: Api, public_id: str, length: int, gap: float) -> tuple[bytes, float]:
    """Send headers, then one body byte every `gap` seconds; the raw answer and its delay."""
    reader, writer = await asyncio.open_connection("127.0.0.1", api.client.server.port)
    head = (
        f"POST /api/v1/calendly/webhook?integration={public_id} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    writer.write(head.encode())
    started = time.perf_counter()

    async def trickle() -> None:
        for _ in range(length):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(gap)

    sender = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(reader.readuntil(b"}}"), 30)
    finally:
        sender.cancel()
        writer.close()
    return answer, time.perf_counter() - started


async def test_a_slow_upload_gets_408_and_stores_nothing(
    start_service: Any, database_url: str
) -> None:
    import asyncpg

    api = await start_service(body_timeout_seconds=1.0)
    integration = await api.connect()
    answer, seconds = await _slow_upload(api, integration["public_id"], 40, 0.1)
    status = int(answer.split(b" ", 2)[1])
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM webhook_events")
    finally:
        await conn.close()
    assert (status, body["error"]["code"]) == (408, "body_timeout")
    assert 1.0 <= seconds < 2.5
    assert stored == 0
