"""A load generator in its own process: signed, distinct invitee.created deliveries.

`python -m calendly_svc.bench.loadgen URL... --seconds S --connections C --key K --event-type U`
posts for S seconds over C connections, round-robin over the URLs, and prints one JSON summary
line (and, with --acks FILE, the invitee URI and ack time of every 200).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp

from calendly_svc.signatures import signature_header


def delivery(event_type: str, host: str, n: int) -> dict[str, Any]:
    """A distinct invitee.created envelope, shaped like Calendly's."""
    event_uuid, invitee_uuid = uuid.uuid4().hex, uuid.uuid4().hex
    event_uri = f"{host}/scheduled_events/{event_uuid}"
    start = 1_900_000_000 + n * 900
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    return {
        "event": "invitee.created", "created_at": stamp,
        "created_by": f"{host}/users/BENCH",
        "payload": {
            "uri": f"{event_uri}/invitees/{invitee_uuid}", "email": f"load{n}@example.com",
            "name": f"Load {n}", "first_name": None, "last_name": None, "status": "active",
            "timezone": "UTC", "event": event_uri, "created_at": stamp, "updated_at": stamp,
            "questions_and_answers": [], "rescheduled": False, "old_invitee": None,
            "new_invitee": None, "no_show": None, "text_reminder_number": None,
            "cancel_url": "https://calendly.com/c", "reschedule_url": "https://calendly.com/r",
            "scheduled_event": {
                "uri": event_uri, "name": "Load", "status": "active",
                "start_time": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(start)),
                "end_time": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(start + 1800)),
                "event_type": event_type, "location": {"type": "physical", "location": "Desk"},
                "invitees_counter": {"total": 1, "active": 1, "limit": 1},
                "created_at": stamp, "updated_at": stamp,
            },
        },
    }  # fmt: skip


class Load:
    """Shared counters of one run."""

    def __init__(self, urls: list[str], key: str, event_type: str, host: str) -> None:
        self.urls, self.key, self.event_type, self.host = urls, key, event_type, host
        self.latencies: list[float] = []
        self.acks: list[tuple[str, float]] = []
        self.errors: dict[str, int] = {}
        self.sequence = count()

    async def one(self, session: aiohttp.ClientSession) -> None:
        """Post one delivery and record the outcome."""
        n = next(self.sequence)
        body = json.dumps(delivery(self.event_type, self.host, n)).encode()
        headers = {
            "Content-Type": "application/json",
            "Calendly-Webhook-Signature": signature_header(self.key, body, int(time.time())),
        }
        started = time.perf_counter()
        try:
            async with session.post(
                self.urls[n % len(self.urls)], data=body, headers=headers
            ) as resp:
                await resp.read()
                status = str(resp.status)
        except aiohttp.ClientError as exc:
            status = type(exc).__name__
        if status == "200":
            self.latencies.append(time.perf_counter() - started)
            self.acks.append((json.loads(body)["payload"]["uri"], time.time()))
        else:
            self.errors[status] = self.errors.get(status, 0) + 1

    async def connection(self, session: aiohttp.ClientSession, until: float) -> None:
        """One closed-loop connection."""
        while time.monotonic() < until:
            await self.one(session)

    async def paced(self, session: aiohttp.ClientSession, until: float, rate: float) -> None:
        """Open loop: one delivery every 1/rate seconds, whatever the answers take."""
        tasks: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while next_at < until:
            task = asyncio.create_task(self.one(session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*tasks)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drive the load and summarise it."""
    load = Load(args.urls, args.key, args.event_type, args.host)
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        until = time.monotonic() + args.seconds
        started = time.monotonic()
        if args.rate:
            await load.paced(session, until, args.rate)
        else:
            await asyncio.gather(
                *(load.connection(session, until) for _ in range(args.connections))
            )
        elapsed = time.monotonic() - started
    if args.acks:
        await asyncio.to_thread(Path(args.acks).write_text, json.dumps(load.acks))
    return {
        "ok": len(load.latencies),
        "errors": load.errors,
        "seconds": round(elapsed, 2),
        "rps": round(len(load.latencies) / elapsed, 1),
        "p50_ms": round(percentile(load.latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(load.latencies, 0.99) * 1000, 2),
    }


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--key", required=True)
    parser.add_argument("--event-type", required=True)
    parser.add_argument("--host", default="https://api.calendly.com")
    parser.add_argument("--acks")
    parser.add_argument("--rate", type=float, help="open loop at this many deliveries per second")
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
