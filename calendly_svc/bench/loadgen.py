"""A load generator in its own process: signed, distinct invitee.created deliveries.

`python -m calendly_svc.bench.loadgen URL... --seconds S --connections C --key K --event-type U`
posts for S seconds over C keep-alive connections, round-robin over the URLs, and prints one JSON
summary line (and, with --acks FILE, the invitee URI and ack time of every 200).

It shares no code with the service: it signs with its own HMAC and speaks HTTP/1.1 over plain
asyncio sockets, because it runs on the cores it measures and a general-purpose client spent
about as much CPU per request as the bare endpoint it was driving.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid
from itertools import count
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

HEAD_END = b"\r\n\r\n"


def stamp(seconds: float) -> str:
    """Calendly's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(seconds))


def envelope(event_type: str, host: str) -> str:
    """An invitee.created envelope shaped like Calendly's, as JSON with %-placeholders for what
    differs per delivery (filled by `delivery`, so each body costs a format, not a dumps)."""
    body = {
        "event": "invitee.created", "created_at": "<<now>>", "created_by": f"{host}/users/BENCH",
        "payload": {
            "uri": "<<event>>/invitees/<<invitee_id>>", "email": "load<<n>>.<<run>>@example.com",
            "name": "Load <<n>>", "first_name": None, "last_name": None, "status": "active",
            "timezone": "UTC", "event": "<<event>>", "created_at": "<<now>>",
            "updated_at": "<<now>>",
            "questions_and_answers": [], "rescheduled": False, "old_invitee": None,
            "new_invitee": None, "no_show": None, "text_reminder_number": None,
            "cancel_url": "https://calendly.com/c", "reschedule_url": "https://calendly.com/r",
            "scheduled_event": {
                "uri": "<<event>>", "name": "Load", "status": "active",
                "start_time": "<<start>>", "end_time": "<<end>>", "event_type": event_type,
                "location": {"type": "physical", "location": "Desk"},
                "invitees_counter": {"total": 1, "active": 1, "limit": 1},
                "created_at": "<<now>>", "updated_at": "<<now>>",
            },
        },
    }  # fmt: skip
    text = json.dumps(body).replace("%", "%%")
    return re.sub(r"<<(\w+)>>", r"%(\1)s", text)


def delivery(template: str, host: str, n: int, run: str) -> tuple[str, bytes]:
    """A distinct delivery: (invitee URI, JSON body). Each run's invitees are new people: ids
    and the email are unique per run as well as per delivery."""
    event_uri = f"{host}/scheduled_events/{run}{n:024x}"
    invitee_id, start = f"{n:024x}{run}", 1_900_000_000 + n * 900
    body = template % {
        "event": event_uri, "invitee_id": invitee_id, "n": n, "run": run,
        "now": stamp(time.time()), "start": stamp(start), "end": stamp(start + 1800),
    }  # fmt: skip
    return f"{event_uri}/invitees/{invitee_id}", body.encode()


def signed_request(url: str, key: bytes, body: bytes) -> bytes:
    """A POST with Calendly's signature header: t=<unix>,v1=<hex HMAC-SHA256(t + "." + body)>."""
    parts, now = urlsplit(url), int(time.time())
    digest = hmac.new(key, f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nCalendly-Webhook-Signature: t={now},v1={digest}\r\n\r\n"
    )
    return head.encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.status = 0
        self.needed = -1  # bytes of the whole response, once its head is read
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Collect the response; resolve the waiter with its status once it is complete."""
        self.buffer += data
        if self.needed < 0:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            self.status, length = parse_head(bytes(self.buffer[:end]))
            self.needed = end + len(HEAD_END) + length
        if len(self.buffer) >= self.needed and self.waiter is not None:
            del self.buffer[: self.needed]
            self.needed = -1
            if not self.waiter.done():
                self.waiter.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail a pending request."""
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    async def request(self, data: bytes) -> int:
        """Send one request and wait for its status."""
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def parse_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of a response head."""
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(lines[0].split(b" ", 2)[1]), length


class Load:
    """Shared counters of one run, and the idle connections."""

    def __init__(self, urls: list[str], key: str, event_type: str, host: str) -> None:
        self.urls, self.key, self.host = urls, key.encode(), host
        self.template = envelope(event_type, host)
        self.latencies: list[float] = []
        self.acks: list[tuple[str, float]] = []
        self.errors: dict[str, int] = {}
        self.sequence = count()
        self.run = uuid.uuid4().hex[:8]
        self.idle: dict[str, list[Connection]] = {url: [] for url in urls}

    async def _connection(self, url: str) -> Connection:
        """An idle connection to the URL's server, or a new one."""
        while self.idle[url]:
            conn = self.idle[url].pop()
            if not conn.closed:
                return conn
        parts = urlsplit(url)
        _, protocol = await asyncio.get_running_loop().create_connection(
            Connection, parts.hostname or "127.0.0.1", parts.port or 80
        )
        return protocol

    async def one(self) -> None:
        """Post one delivery and record the outcome."""
        n = next(self.sequence)
        url = self.urls[n % len(self.urls)]
        uri, body = delivery(self.template, self.host, n, self.run)
        data = signed_request(url, self.key, body)
        started = time.perf_counter()
        try:
            conn = await self._connection(url)
            status = str(await conn.request(data))
            self.idle[url].append(conn)
        except OSError as exc:
            status = type(exc).__name__
        if status == "200":
            self.latencies.append(time.perf_counter() - started)
            self.acks.append((uri, time.time()))
        else:
            self.errors[status] = self.errors.get(status, 0) + 1

    async def connection(self, until: float) -> None:
        """One closed-loop client."""
        while time.monotonic() < until:
            await self.one()

    async def paced(self, until: float, rate: float, limit: int) -> None:
        """Open loop: one delivery every 1/rate seconds, at most `limit` in flight."""
        slots = asyncio.Semaphore(limit)
        tasks: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while next_at < until:
            task = asyncio.create_task(self._limited(slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.gather(*tasks)

    async def _limited(self, slots: asyncio.Semaphore) -> None:
        """One delivery once a connection slot is free."""
        async with slots:
            await self.one()

    def close(self) -> None:
        """Close every idle connection."""
        for conns in self.idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drive the load and summarise it."""
    load = Load(args.urls, args.key, args.event_type, args.host)
    until = time.monotonic() + args.seconds
    started = time.monotonic()
    try:
        if args.rate:
            await load.paced(until, args.rate, args.connections)
        else:
            await asyncio.gather(*(load.connection(until) for _ in range(args.connections)))
    finally:
        load.close()
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
