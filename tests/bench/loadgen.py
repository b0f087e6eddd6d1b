"""A load generator in its own process: signed, distinct invitee.created deliveries.

`python -m tests.bench.loadgen URL... --seconds S --connections C --key K --event-type U`
posts for S seconds over C keep-alive connections, spread over the URLs, and prints one JSON
summary line (and, with --acks FILE, the invitee URI, ack time and latency of every 200).

It shares no code with the service: it signs with its own HMAC and speaks HTTP/1.1 over plain
asyncio sockets on uvloop, because it runs on the cores it measures: a general-purpose client
spent about as much CPU per request as the bare endpoint it was driving, and asyncio's own
event loop 50 µs (uvloop and one callback per response instead of a task: 37 µs).
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
from random import getrandbits
from typing import Any, cast
from urllib.parse import urlsplit

import uvloop

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


# hex digits to letters: a random id then reads like Calendly's (`GBGBDCAADAEDCRZ2`)
LETTERS = str.maketrans("0123456789abcdef", "ABCDEFGHIJKLMNOP")


def calendly_ids() -> tuple[str, str]:
    """Two random ids shaped like Calendly's, 16 capital letters each (64 random bits: they do
    not repeat in a run, and index inserts land anywhere). About 2 µs for both: no system call
    or base32 encoding, since the generator runs on the cores it measures."""
    text = f"{getrandbits(128):032x}".translate(LETTERS)
    return text[:16], text[16:]


def delivery(template: str, host: str, n: int, run: str) -> tuple[str, bytes]:
    """A distinct delivery: (invitee URI, JSON body). Each run's invitees are new people: ids
    are random, and the email is unique per run as well as per delivery."""
    event_id, invitee_id = calendly_ids()
    event_uri, start = f"{host}/scheduled_events/{event_id}", 1_900_000_000 + n * 900
    body = template % {
        "event": event_uri, "invitee_id": invitee_id, "n": n, "run": run,
        "now": stamp(time.time()), "start": stamp(start), "end": stamp(start + 1800),
    }  # fmt: skip
    return f"{event_uri}/invitees/{invitee_id}", body.encode()


def request_head(url: str) -> str:
    """The fixed start of every POST to a URL; `Content-Length` and the signature follow."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return (
        f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    )


def signed_request(head: str, key: bytes, body: bytes) -> bytes:
    """A POST with Calendly's signature header: t=<unix>,v1=<hex HMAC-SHA256(t + "." + body)>."""
    now = int(time.time())
    digest = hmac.new(key, f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    signature = f"Calendly-Webhook-Signature: t={now},v1={digest}\r\n\r\n"
    return f"{head}{len(body)}\r\n{signature}".encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection. The response callback sends the next request: no
    task or future per request, since the generator runs on the cores it measures."""

    def __init__(self, load: Load, url: str) -> None:
        self.load, self.url = load, url
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.needed = -1  # bytes of the whole response, once its head is read
        self.status = 0
        self.closing = False  # the response in hand ends the connection
        self.uri = ""  # the invitee of the request in flight ("" while idle)
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; the connection is open and ready for a request."""
        self.transport = cast(asyncio.Transport, transport)
        self.load.open.add(self)
        self.load.ready(self)

    def send(self) -> None:
        """Post the next delivery."""
        assert self.transport is not None
        self.uri, data = self.load.next_request(self.url)
        self.started = time.perf_counter()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        """Collect the response; once it is complete, record it and offer the connection."""
        self.buffer += data
        if self.needed < 0:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            self.status, length, self.closing = parse_head(bytes(self.buffer[:end]))
            self.needed = end + len(HEAD_END) + length
        if len(self.buffer) >= self.needed:
            del self.buffer[: self.needed]
            self.needed = -1
            uri, self.uri = self.uri, ""
            self.load.record(str(self.status), uri, self.started)
            if self.closing and self.transport is not None:
                self.transport.close()  # connection_lost opens another
            else:
                self.load.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Count the request lost with the connection, if one was in flight."""
        if self.uri:
            self.load.record("ConnectionError", self.uri, self.started)
        self.load.lost(self)


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, whether the server closes the connection) of a response head."""
    lines = head.split(b"\r\n")
    length, closing = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closing = value.strip().lower() == b"close"
    return int(lines[0].split(b" ", 2)[1]), length, closing


class Load:
    """One run: the request stream, the outcomes, and the connections.

    Closed loop: every connection posts again as soon as it is answered, until the end. Open
    loop (`rate`): a ticker makes deliveries due at the rate; an answered connection takes the
    next due one or waits idle, so at most one request per connection is in flight.
    """

    def __init__(
        self, urls: list[str], key: str, event_type: str, host: str, seconds: float,
        rate: float | None = None,
    ) -> None:  # fmt: skip
        self.urls, self.key, self.host, self.rate = urls, key.encode(), host, rate
        self.heads = {url: request_head(url) for url in urls}
        self.template = envelope(event_type, host)
        self.until = time.monotonic() + seconds
        self.latencies: list[float] = []
        self.acks: list[tuple[str, float, float]] = []
        self.errors: dict[str, int] = {}
        self.sequence = count()
        self.run = uuid.uuid4().hex[:8]
        self.idle: list[Connection] = []
        self.due = 0  # open loop: deliveries due and not yet sent
        self.open: set[Connection] = set()
        self.reconnecting: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()

    def next_request(self, url: str) -> tuple[str, bytes]:
        """(invitee URI, request bytes) of the next delivery."""
        uri, body = delivery(self.template, self.host, next(self.sequence), self.run)
        return uri, signed_request(self.heads[url], self.key, body)

    def record(self, status: str, uri: str, started: float) -> None:
        """One outcome."""
        if status == "200":
            latency = time.perf_counter() - started
            self.latencies.append(latency)
            self.acks.append((uri, time.time(), latency))
        else:
            self.errors[status] = self.errors.get(status, 0) + 1

    def ready(self, conn: Connection) -> None:
        """A connection with nothing in flight: send, wait idle, or close once the run is over."""
        if self.rate is None and time.monotonic() < self.until:
            conn.send()
        elif self.due > 0:
            self.due -= 1
            conn.send()
        elif self.rate is not None and time.monotonic() < self.until:
            self.idle.append(conn)
        elif conn.transport is not None:
            conn.transport.close()

    def lost(self, conn: Connection) -> None:
        """A closed connection: another replaces it while the run lasts."""
        self.open.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if time.monotonic() < self.until:
            task = asyncio.get_running_loop().create_task(self.connect(conn.url))
            self.reconnecting.add(task)
            task.add_done_callback(self.reconnecting.discard)
        elif not self.open:
            self.finished.set()

    async def connect(self, url: str) -> None:
        """Open a connection (it starts posting once made); a refusal is counted and retried."""
        parts = urlsplit(url)
        while time.monotonic() < self.until:
            try:
                await asyncio.get_running_loop().create_connection(
                    lambda: Connection(self, url), parts.hostname or "127.0.0.1", parts.port or 80
                )
                return
            except OSError as exc:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.05)
        if not self.open:
            self.finished.set()

    async def pace(self) -> None:
        """Open loop: make deliveries due at the rate, handing them to idle connections."""
        assert self.rate is not None
        started, issued = time.monotonic(), 0
        while (now := time.monotonic()) < self.until:
            due = int((now - started) * self.rate) - issued
            issued += due
            self.due += due
            while self.due > 0 and self.idle:
                self.due -= 1
                self.idle.pop().send()
            await asyncio.sleep(0.001)
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()

    async def drive(self, connections: int) -> None:
        """Open the connections and wait until the run is over and every answer is in."""
        urls = [self.urls[i % len(self.urls)] for i in range(connections)]
        await asyncio.gather(*(self.connect(url) for url in urls))
        if self.rate is not None:
            await self.pace()
        await self.finished.wait()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drive the load and summarise it."""
    started = time.monotonic()
    load = Load(args.urls, args.key, args.event_type, args.host, args.seconds, args.rate)
    await load.drive(args.connections)
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
    print(json.dumps(uvloop.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
