"""`make bench`, ingest part: signed webhook deliveries at 50 connections against the service
and against a bare aiohttp + asyncpg insert endpoint (the ceiling on this machine), the delay
from 200 to the appointment being readable, and a check that nothing acknowledged is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.bench.cpu import CpuMeter, per_request
from tests.bench.loadgen import percentile
from tests.bench.stack import (
    SIGNING_KEY,
    Client,
    Process,
    Stack,
    finish,
    free_port,
    scalar,
    stack,
)
from tests.bench.sync_bench import Check

Cpu = dict[str, float]
SECONDS = 15
CONNECTIONS = 50
STEADY_SHARE = 0.8  # of the measured processing capacity
# The ceiling is measured in slices alternating with the endpoint's (no worker running), then with
# the service's (worker running), one first in a round and the other in the next, so a change of
# the machine's speed during the run weighs on both sides of each ratio.
# Every target gets an unmeasured warm-up first (a new table's first pages and the first WAL
# segments made the ceiling's first 8 s about 20 % slower than the next ones).
ROUNDS = 4
SLICE_SECONDS = 8
WARM_UP_SECONDS = 3


async def loadgen(
    urls: list[str], event_type: str, acks: Path | None = None, rate: float | None = None,
    seconds: float = SECONDS,
) -> dict[str, Any]:  # fmt: skip
    """Run the load generator process (closed loop, or open loop at `rate`); its summary."""
    args = [sys.executable, "-m", "tests.bench.loadgen", *urls]
    args += ["--seconds", str(seconds), "--connections", str(CONNECTIONS)]
    args += ["--key", SIGNING_KEY, "--event-type", event_type]
    args += ["--acks", str(acks)] if acks is not None else []
    args += ["--rate", str(rate)] if rate is not None else []
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


async def checkpoint(dsn: str) -> None:
    """Start a measured phase with no dirty buffers or WAL left over from the one before."""
    await scalar(dsn, "CHECKPOINT")


@contextlib.asynccontextmanager
async def ceiling(bench: Stack) -> AsyncIterator[str]:
    """The bare insert endpoint in its own process, for the time of the block: its URL."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.ceiling", bench.dsn, str(port)
    )
    url = f"http://127.0.0.1:{port}/ingest"
    try:
        await asyncio.sleep(1.5)
        yield url
    finally:
        await Process(proc, url).stop()


async def drained(dsn: str, within: float = 120.0) -> float:
    """Wait until the inbox is empty; returns how long that took."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        while time.monotonic() - started < within:
            pending = await conn.fetchval("SELECT EXISTS (SELECT FROM webhook_queue)")
            if not pending:
                break
            await asyncio.sleep(0.2)
        return time.monotonic() - started
    finally:
        await conn.close()


async def audit(dsn: str, acked: list[str]) -> tuple[int, list[float]]:
    """(acknowledged deliveries without an appointment, delays 200 → readable in seconds)."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM appointments WHERE calendly_invitee_uri = ANY ($1::text[])", acked
        )
        rows = await conn.fetch(
            "SELECT extract(epoch FROM processed_at - received_at) AS delay FROM webhook_events "
            "WHERE payload_uri = ANY ($1::text[]) AND status = 'processed'",
            acked,
        )
    finally:
        await conn.close()
    return len(acked) - found, [float(r["delay"]) for r in rows]


Ack = tuple[str, float, float]  # invitee URI, ack time, latency


async def measure(
    bench: Stack, url: str, event_type: str, name: str, rate: float | None = None,
    seconds: float = SECONDS,
) -> tuple[dict[str, Any], list[Ack], Cpu]:  # fmt: skip
    """One load slice from a checkpoint: (summary, every 200, CPU each process spent)."""
    acks_file = bench.directory / f"acks-{name}.json"
    meter = CpuMeter(bench.directory / "pg")
    await checkpoint(bench.dsn)
    loaded, cpu = await meter.measure(loadgen([url], event_type, acks_file, rate, seconds))
    return loaded, [tuple(ack) for ack in json.loads(acks_file.read_text())], cpu


@dataclass
class Slices:
    """Load slices against one target, added up."""

    ok: int = 0
    seconds: float = 0.0
    acks: list[Ack] = field(default_factory=list)
    cpu: Cpu = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    slices: list[float] = field(default_factory=list)  # requests/s of each

    def add(self, loaded: dict[str, Any], acks: list[Ack], cpu: Cpu) -> None:
        """Count one slice."""
        self.ok += loaded["ok"]
        self.seconds += loaded["seconds"]
        self.acks += acks
        self.slices.append(loaded["rps"])
        for role, spent in cpu.items():
            self.cpu[role] = self.cpu.get(role, 0.0) + spent
        for status, n in loaded["errors"].items():
            self.errors[status] = self.errors.get(status, 0) + n

    @property
    def rps(self) -> float:
        """Requests answered 200 per second over all slices."""
        return self.ok / self.seconds

    def latency(self) -> str:
        """Latency p50 / p99 over all slices."""
        latencies = [latency * 1000 for _, _, latency in self.acks]
        return f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.99):.1f} ms"

    def summary(self) -> str:
        """The figures of the slices together, and each slice's requests/s."""
        return (
            f"{self.rps:.0f} req/s over {self.seconds:.0f} s in {len(self.slices)} slices "
            f"({', '.join(f'{rps:.0f}' for rps in self.slices)}), p50 / p99 {self.latency()}, "
            f"errors {json.dumps(self.errors)}"
        )


@dataclass
class Applied:
    """What the worker made of the acknowledged deliveries of a target's slices."""

    acked: int = 0
    missing: int = 0
    delays: list[float] = field(default_factory=list)
    drain: float = 0.0

    async def check(self, bench: Stack, acks: list[Ack]) -> None:
        """Wait for the inbox to drain, then audit the slice's acknowledged deliveries."""
        self.drain += await drained(bench.dsn)
        missing, delays = await audit(bench.dsn, [uri for uri, _, _ in acks])
        self.acked += len(acks)
        self.missing += missing
        self.delays += delays


@dataclass(frozen=True)
class Phase:
    """A target's slices and the ceiling's slices interleaved with them."""

    name: str
    bare: Slices
    target: Slices

    @property
    def ratio(self) -> float:
        """The target's requests/s over the ceiling's."""
        return self.target.rps / self.bare.rps

    def rounds(self) -> str:
        """The ratio of each round."""
        pairs = zip(self.bare.slices, self.target.slices, strict=True)
        return ", ".join(f"{target / bare:.2f}" for bare, target in pairs)

    def lines(self, detail: str, unit: str) -> list[str]:
        """Both targets' figures, their CPU and the ratio by round."""
        return [
            f"{self.name} ({detail}): {self.target.summary()}",
            f"  CPU per {unit}, µs: {per_request(self.target.cpu, self.target.ok)} "
            f"({_cores(self.target.cpu, self.target.seconds)})",
            f"  ceiling in the slices between (bare aiohttp + asyncpg insert): "
            f"{self.bare.summary()}",
            f"  CPU per request, µs: {per_request(self.bare.cpu, self.bare.ok)} "
            f"({_cores(self.bare.cpu, self.bare.seconds)})",
            f"  {self.name}/ceiling by round: {self.rounds()}",
        ]


def _cores(cpu: Cpu, seconds: float) -> str:
    """How many of the machine's cores a load phase kept busy."""
    return f"{sum(cpu.values()) / seconds:.2f} of {os.cpu_count()} cores busy"


def _ms(delays: list[float], q: float) -> float:
    """A delay quantile in milliseconds."""
    return percentile(delays, q) * 1000


WORKER = {"WORKER_CONCURRENCY": "8", "WORKER_BATCH_SIZE": "50"}
# the edge as deployed on this machine: one serve process per core (SO_REUSEPORT)
EDGE_WORKERS = int(os.environ.get("BENCH_EDGE_WORKERS", str(os.cpu_count() or 1)))


async def alternate(
    bench: Stack, urls: tuple[str, str], event_type: str, applied: Applied | None = None
) -> tuple[Slices, Slices]:
    """ROUNDS rounds of one slice on each of two targets, after a warm-up of each, the first
    target first in even rounds; the second target's deliveries are audited after each of its
    slices when `applied` is given (its worker is running)."""
    totals = (Slices(), Slices())
    for target_url in urls:
        await loadgen([target_url], event_type, seconds=WARM_UP_SECONDS)
    if applied is not None:
        await drained(bench.dsn)
    for n in range(ROUNDS):
        for which in (0, 1) if n % 2 == 0 else (1, 0):
            name = f"{'alone' if applied is None else 'full'}-{which}-{n}"  # its acks file
            loaded, acks, cpu = await measure(
                bench, urls[which], event_type, name, None, SLICE_SECONDS
            )
            totals[which].add(loaded, acks, cpu)
            if which == 1 and applied is not None:
                await applied.check(bench, acks)
    return totals


async def apply_backlog(bench: Stack, acks: list[Ack]) -> tuple[float, Applied]:
    """Start the worker (it keeps running) on what the endpoint stored with no worker running:
    (deliveries/s it applied with the machine to itself, its start included; the audit of those
    deliveries)."""
    backlog = await scalar(bench.dsn, "SELECT count(*) FROM webhook_queue")
    await bench.start_worker(**WORKER)
    applied = Applied()
    await applied.check(bench, acks)
    return backlog / applied.drain if applied.drain else 0.0, applied


async def _one_edge(bench: Stack, previous: Process, public_id: str) -> str:
    """The service phase's edge, in place of the endpoint phase's `serve --workers N`: one
    process beside the worker, one replica of each (N edge processes take the worker's share of
    the cores, and the backlog grows while they accept faster than it applies)."""
    await previous.stop()
    edge = await bench.start_service(WORKER_ENABLED="false")
    return f"{edge.url}/api/v1/calendly/webhook?integration={public_id}"


async def run() -> list[Check]:
    """The ceiling against the endpoint with no worker running, then against the service (edge
    + worker) at full load, each in interleaved slices; the service at a steady rate."""
    async with stack() as bench, aiohttp.ClientSession() as session:
        # the HTTP edge and the worker run as separate processes
        service = await bench.start_service("--workers", str(EDGE_WORKERS), WORKER_ENABLED="false")
        connecting = await bench.start_worker(**WORKER)
        assert bench.sandbox is not None
        client = Client(session, service.url, bench.sandbox.url)
        integration = await client.connect(1)
        await connecting.stop()
        types = await client.api("GET", "/event-types", 1)
        event_type = types["items"][0]["calendly_event_type_uri"]
        url = f"{service.url}/api/v1/calendly/webhook?integration={integration['public_id']}"
        async with ceiling(bench) as bare_url:
            bare_alone, alone = await alternate(bench, (bare_url, url), event_type)
            apply_rate, backlog = await apply_backlog(bench, alone.acks)
            url = await _one_edge(bench, service, integration["public_id"])
            applied = Applied()
            bare, full = await alternate(bench, (bare_url, url), event_type, applied)
        steady = round(applied.acked / (full.seconds + applied.drain) * STEADY_SHARE)
        paced, acks, _ = await measure(bench, url, event_type, "steady", steady)
        steadied = Applied()
        await steadied.check(bench, acks)
    endpoint, loaded = Phase("endpoint", bare_alone, alone), Phase("service", bare, full)
    report(endpoint, apply_rate, loaded, applied)
    print(
        f"service open loop at {steady}/s: {json.dumps(paced)}; delay 200 -> readable "
        f"p50 {_ms(steadied.delays, 0.5):.1f} ms, p99 {_ms(steadied.delays, 0.99):.1f} ms"
    )
    return checks(endpoint, loaded, (backlog, applied, steadied), steady)


def report(endpoint: Phase, apply_rate: float, service: Phase, applied: Applied) -> None:
    """The figures behind the checks."""
    detail = f"POST /webhook: verify + store, serve --workers {EDGE_WORKERS}, no worker running"
    for line in endpoint.lines(detail, "request"):
        print(line)
    print(f"one worker then applied that backlog at {apply_rate:.0f} deliveries/s")
    detail = f"one serve process + one worker process at {CONNECTIONS} connections"
    for line in service.lines(detail, "delivery"):
        print(line)
    print(
        f"  processing under that load: inbox drained {applied.drain / ROUNDS:.1f} s after each "
        f"slice on average; delay p50 {_ms(applied.delays, 0.5):.0f} ms, "
        f"p99 {_ms(applied.delays, 0.99):.0f} ms"
    )


def checks(
    endpoint: Phase, service: Phase, audits: tuple[Applied, Applied, Applied], steady: int
) -> list[Check]:
    """Every figure against its target (issue 18's table, then the steady rate)."""
    _, applied, steadied = audits
    full_p99, steady_p99 = _ms(applied.delays, 0.99), _ms(steadied.delays, 0.99)
    missing = sum(audit.missing for audit in audits)
    acked = sum(audit.acked for audit in audits)
    spent = sum(v for role, v in service.target.cpu.items() if role != "load generator")
    cpu_us = spent / max(service.target.ok, 1) * 1e6
    ack_p99 = percentile([latency * 1000 for _, _, latency in service.target.acks], 0.99)
    return [
        Check(
            f"POST /webhook requests/s vs ceiling, serve --workers {EDGE_WORKERS}, no worker",
            f"{endpoint.target.rps:.0f} / {endpoint.bare.rps:.0f} = {endpoint.ratio:.2f}",
            ">= 1.4",
            endpoint.ratio >= 1.4,
        ),
        Check(
            "service requests/s vs ceiling, one serve process and its worker on the same cores",
            f"{service.target.rps:.0f} / {service.bare.rps:.0f} = {service.ratio:.2f}",
            ">= 0.9",
            service.ratio >= 0.9,
        ),
        Check(
            "CPU per delivery at full load, edge + worker + Postgres",
            f"{cpu_us:.0f} µs",
            "<= 380 µs",
            cpu_us <= 380,
        ),
        Check(
            f"ack p99 at {CONNECTIONS} connections, service (worker running)",
            f"{ack_p99:.1f} ms",
            "<= 40 ms",
            ack_p99 <= 40,
        ),
        Check(
            "delay 200 -> readable p99 at full load, worker running",
            f"{full_p99:.0f} ms",
            "<= 100 ms",
            full_p99 <= 100,
        ),
        Check(
            f"delay 200 -> readable p99 at {steady}/s",
            f"{steady_p99:.1f} ms",
            "<= 250 ms",
            steady_p99 <= 250,
        ),
        Check(
            "acknowledged but missing",
            f"{missing} of {acked}",
            "0",
            missing == 0 and all(audit.acked > 0 for audit in audits),
        ),
    ]


def main() -> int:
    """Print the figures with their targets; non-zero when one misses."""
    results = asyncio.run(run())
    title = (
        f"ingest benchmark: {CONNECTIONS} connections; the ceiling interleaved with the endpoint "
        f"(no worker), then with the service (worker running), {ROUNDS} x {SLICE_SECONDS} s "
        f"each; steady rate {SECONDS} s"
    )
    return finish(title, results)


if __name__ == "__main__":
    raise SystemExit(main())
