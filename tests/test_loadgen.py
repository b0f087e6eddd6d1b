"""The benchmark's load generator: signed, distinct deliveries; every answer counted once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from calendly_svc.ingest.signatures import verify
from tests.bench.loadgen import Load

KEY = "loadgen-key"
EVENT_TYPE = "https://api.calendly.com/event_types/LOAD"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Receiver:
    """A stand-in endpoint: checks each delivery's signature and keeps its body."""

    def __init__(self, fail_every: int = 0, close_every: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_every, self.close_every = fail_every, close_every

    async def handle(self, request: web.Request) -> web.Response:
        """200 with an id, or a 500 / a closed connection every so often."""
        body = await request.read()
        header = request.headers["Calendly-Webhook-Signature"]
        verify(header, body, [KEY], time.time(), 180, 60)
        self.bodies.append(json.loads(body))
        n = len(self.bodies)
        if self.fail_every and n % self.fail_every == 0:
            return web.json_response({"error": "boom"}, status=500)
        response = web.json_response({"id": n})
        if self.close_every and n % self.close_every == 0:
            response.force_close()
        return response


async def serve(receiver: Receiver) -> TestServer:
    """The receiver on a local port."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app)
    await server.start_server()
    return server


async def drive(receiver: Receiver, seconds: float, rate: float | None = None) -> Load:
    """Run the generator against the receiver with 4 connections."""
    server = await serve(receiver)
    try:
        url = str(server.make_url("/hook?integration=x"))
        load = Load([url], KEY, EVENT_TYPE, "https://api.calendly.com", seconds, rate)
        await load.drive(4)
    finally:
        await server.close()
    return load


def invitees(receiver: Receiver) -> list[str]:
    """The invitee URI of every delivery the receiver got."""
    return [body["payload"]["uri"] for body in receiver.bodies]


async def test_closed_loop_deliveries_are_signed_distinct_and_all_acknowledged() -> None:
    receiver = Receiver()
    load = await drive(receiver, 0.5)
    received = invitees(receiver)
    assert len(received) > 50
    assert len(set(received)) == len(received)
    assert [uri for uri, _, _ in load.acks] == received
    assert load.errors == {}
    assert len(load.latencies) == len(received)
    first = receiver.bodies[0]
    assert (
        first["event"],
        first["payload"]["scheduled_event"]["event_type"],
    ) == ("invitee.created", EVENT_TYPE)
    shaped = re.compile(r"https://api\.calendly\.com/scheduled_events/[A-Z]{16}/invitees/[A-Z]{16}")
    assert [uri for uri in received if not shaped.fullmatch(uri)] == []
    assert [body["payload"]["event"] for body in receiver.bodies] == [
        uri.split("/invitees/")[0] for uri in received
    ]


async def test_errors_and_closed_connections_are_counted_and_the_run_goes_on() -> None:
    receiver = Receiver(fail_every=5, close_every=7)
    load = await drive(receiver, 0.5)
    failed = len(receiver.bodies) // 5
    assert {"500": failed} == load.errors
    assert len(receiver.bodies) - failed == len(load.acks)
    assert len(receiver.bodies) > 7 * 4  # connections were closed and opened again


@pytest.mark.parametrize("rate", [100.0, 400.0])
async def test_open_loop_posts_at_the_rate(rate: float) -> None:
    receiver = Receiver()
    load = await drive(receiver, 1.0, rate)
    assert abs(len(receiver.bodies) - rate) <= rate * 0.1
    assert len(load.acks) == len(receiver.bodies)
