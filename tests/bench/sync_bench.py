"""`make bench`, sync part: rate-limit utilisation, cost of an unchanged re-sync, peak memory.

Against the sandbox (its own process) with 20 ms latency and a rate limit set through its fault
API; the service runs as its own process, so its peak RSS is its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from tests.bench.stack import Client, Stack, finish, peak_rss_mb, stack

LATENCY_MS = 20
LIMIT, WINDOW = 1000, 10  # 100 requests/s, over several windows for 2,000 events
SIZES = (5_000, 10_000, 20_000)


@dataclass
class Check:
    """One figure against its target."""

    label: str
    value: str
    target: str
    ok: bool

    def line(self) -> str:
        """A report line."""
        return (
            f"{'PASS' if self.ok else 'FAIL'}  {self.label}: {self.value}  (target {self.target})"
        )


def _elapsed(entry: dict[str, Any]) -> float:
    """Seconds a sync took, from its log."""
    start = datetime.fromisoformat(entry["started_at"])
    return (datetime.fromisoformat(entry["finished_at"]) - start).total_seconds()


async def _bulk(client: Client, event_type: str, count: int) -> None:
    """Bookings the service never heard of, one a quarter hour from tomorrow on."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body = {
        "event_type": event_type,
        "count": count,
        "start_time": start.isoformat(),
        "interval_minutes": 15,
        "deliver": False,
    }
    await client.control("POST", "/_sandbox/bookings/bulk", body)


async def _default_event_type(client: Client) -> str:
    """The seeded event type of the default sandbox user."""
    types = (await client.control("GET", "/_sandbox/event_types"))["collection"]
    return str(next(t["uri"] for t in types if t["name"] == "30 Minute Meeting"))


async def utilisation(bench: Stack, session: aiohttp.ClientSession) -> list[Check]:
    """(a) a full sync of 2,000 events under a binding rate limit; (b) the same, unchanged."""
    service = await bench.start_service(
        CALENDLY_RATE_LIMIT=str(LIMIT), CALENDLY_RATE_LIMIT_WINDOW_SECONDS=str(WINDOW)
    )
    assert bench.sandbox is not None
    client = Client(session, service.url, bench.sandbox.url)
    await client.connect(1)
    await _bulk(client, await _default_event_type(client), 2000)
    await client.control(
        "POST",
        "/_sandbox/faults",
        {
            "latency_ms": LATENCY_MS,
            "rate_limit_per_minute": LIMIT,
            "rate_limit_window_seconds": WINDOW,
        },
    )
    full = await client.sync(1, full=True)
    again = await client.sync(1)
    await service.stop()
    bound = full["api_calls"] / (LIMIT / WINDOW)
    used = bound / _elapsed(full)
    print(
        f"(a) {full['events_seen']} events, {full['invitees_fetched']} invitees, "
        f"{full['api_calls']} API calls, {full['rate_limited_waits']} 429 waits, "
        f"{_elapsed(full):.1f} s; lower bound {bound:.1f} s at {LIMIT / WINDOW:.0f} req/s"
    )
    return [
        Check(
            "(a) rate-limit utilisation",
            f"{used:.1%}",
            ">= 90 %",
            used >= 0.9 and full["status"] == "succeeded" and full["appointments_created"] == 2000,
        ),
        Check(
            "(b) API calls of an unchanged re-sync",
            str(again["api_calls"]),
            "<= 21 (pages)",
            again["api_calls"] <= 21 and again["invitees_fetched"] == 0,
        ),
    ]


async def _prepare_users(bench: Stack, session: aiohttp.ClientSession) -> None:
    """One sandbox user per size, connected (no events yet), then their bookings."""
    service = await bench.start_service()
    assert bench.sandbox is not None
    client = Client(session, service.url, bench.sandbox.url)
    for n, size in enumerate(SIZES):
        email = f"size{size}@example.com"
        await client.control("POST", "/_sandbox/users", {"email": email, "name": f"Size {size}"})
        made = await client.control(
            "POST", "/_sandbox/event_types", {"user": email, "name": "Bench", "duration": 15}
        )
        await client.connect(10 + n, email)
        await _bulk(client, made["resource"]["uri"], size)
    await asyncio.sleep(1)
    await service.stop()


async def memory(bench: Stack, session: aiohttp.ClientSession) -> list[Check]:
    """(c) peak RSS of a fresh service process syncing 5k, 10k and 20k events."""
    await _prepare_users(bench, session)
    assert bench.sandbox is not None
    await Client(session, "", bench.sandbox.url).control(
        "POST", "/_sandbox/faults", {"latency_ms": LATENCY_MS, "rate_limit_per_minute": 1_000_000}
    )
    peaks = []
    for n, size in enumerate(SIZES):
        service = await bench.start_service()
        client = Client(session, service.url, bench.sandbox.url)
        entry = await client.sync(10 + n, full=True, future_days=365)
        peaks.append(peak_rss_mb(service.pid))
        await service.stop()
        print(
            f"(c) {size} events: {entry['events_seen']} seen, {entry['invitees_fetched']} "
            f"invitees, {entry['appointments_created']} appointments created, "
            f"{entry['api_calls']} API calls in {_elapsed(entry):.1f} s, "
            f"peak RSS {peaks[-1]:.1f} MB"
        )
    growth = peaks[-1] - peaks[0]
    figures = " / ".join(f"{p:.0f}" for p in peaks)
    return [
        Check("(c) peak RSS at 5k / 10k / 20k events (MB)", figures, "< 150 MB", max(peaks) < 150),
        Check(
            "(c) growth from 5k to 20k events", f"{growth:+.1f} MB", "flat (< 10 MB)", growth < 10
        ),
    ]


async def run() -> list[Check]:
    """Every sync figure, each on a fresh stack."""
    async with aiohttp.ClientSession() as session:
        async with stack() as bench:
            checks = await utilisation(bench, session)
        async with stack() as bench:
            checks += await memory(bench, session)
    return checks


def main() -> int:
    """Print the figures with their targets; non-zero when one misses."""
    checks = asyncio.run(run())
    return finish(
        f"sync benchmark: sandbox latency {LATENCY_MS} ms, rate limit {LIMIT} per {WINDOW} s",
        checks,
    )


if __name__ == "__main__":
    raise SystemExit(main())
