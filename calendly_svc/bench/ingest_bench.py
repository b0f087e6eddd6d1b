"""`make bench`, ingest part: signed webhook deliveries at 50 connections against the service
and against a bare aiohttp + asyncpg insert endpoint (the ceiling on this machine), the delay
from 200 to the appointment being readable, and a check that nothing acknowledged is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from calendly_svc.bench.cpu import CpuMeter, per_request
from calendly_svc.bench.loadgen import percentile
from calendly_svc.bench.stack import SIGNING_KEY, Client, Process, Stack, finish, free_port, stack
from calendly_svc.bench.sync_bench import Check

Cpu = dict[str, float]
SECONDS = 15
CONNECTIONS = 50
STEADY_SHARE = 0.8  # of the measured processing capacity


async def loadgen(
    urls: list[str], event_type: str, acks: Path | None = None, rate: float | None = None
) -> dict[str, Any]:
    """Run the load generator process (closed loop, or open loop at `rate`); its summary."""
    args = [sys.executable, "-m", "calendly_svc.bench.loadgen", *urls]
    args += ["--seconds", str(SECONDS), "--connections", str(CONNECTIONS)]
    args += ["--key", SIGNING_KEY, "--event-type", event_type]
    args += ["--acks", str(acks)] if acks is not None else []
    args += ["--rate", str(rate)] if rate is not None else []
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


async def checkpoint(dsn: str) -> None:
    """Start a measured phase with no dirty buffers or WAL left over from the one before."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def ceiling(bench: Stack, event_type: str) -> tuple[dict[str, Any], Cpu]:
    """The bare insert endpoint under the same load, and the CPU each process spent."""
    meter = CpuMeter(bench.directory / "pg")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "calendly_svc.bench.ceiling", bench.dsn, str(port)
    )
    url = f"http://127.0.0.1:{port}/ingest"
    try:
        await asyncio.sleep(1.5)
        await checkpoint(bench.dsn)
        return await meter.measure(loadgen([url], event_type))
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


async def phase(
    bench: Stack, url: str, event_type: str, name: str, rate: float | None = None
) -> tuple[dict[str, Any], float, int, list[float], int, Cpu]:
    """Load, drain, audit: (summary, drain seconds, missing, delays, acknowledged, CPU spent
    during the load)."""
    acks_file = bench.directory / f"acks-{name}.json"
    meter = CpuMeter(bench.directory / "pg")
    await checkpoint(bench.dsn)
    loaded, cpu = await meter.measure(loadgen([url], event_type, acks_file, rate))
    drain = await drained(bench.dsn)
    acked = [uri for uri, _ in json.loads(acks_file.read_text())]
    missing, delays = await audit(bench.dsn, acked)
    return loaded, drain, missing, delays, len(acked), cpu


def _cores(cpu: Cpu) -> str:
    """How many of the machine's cores a load phase kept busy."""
    return f"{sum(cpu.values()) / SECONDS:.2f} of {os.cpu_count()} cores busy"


def _ms(delays: list[float], q: float) -> float:
    """A delay quantile in milliseconds."""
    return percentile(delays, q) * 1000


WORKER = {"WORKER_CONCURRENCY": "8", "WORKER_BATCH_SIZE": "50"}


async def edge_only(bench: Stack, url: str, event_type: str) -> tuple[dict[str, Any], float]:
    """The edge with no worker running (as the ceiling runs), then one worker draining what it
    stored: (load summary, deliveries/s the worker applies with the machine to itself)."""
    await checkpoint(bench.dsn)
    loaded = await loadgen([url], event_type)
    started = time.monotonic()
    await bench.start_worker(**WORKER)
    drain = await drained(bench.dsn)
    return loaded, loaded["ok"] / max(drain, time.monotonic() - started)


async def run() -> list[Check]:
    """Ceiling; the edge alone; the service (edge + worker) at full load and at a steady rate."""
    async with stack() as bench, aiohttp.ClientSession() as session:
        # the HTTP edge and the worker run as separate processes (one replica of each)
        service = await bench.start_service(WORKER_ENABLED="false")
        connecting = await bench.start_worker(**WORKER)
        assert bench.sandbox is not None
        client = Client(session, service.url, bench.sandbox.url)
        integration = await client.connect(1)
        await connecting.stop()
        types = await client.api("GET", "/event-types", 1)
        event_type = types["items"][0]["calendly_event_type_uri"]
        bare, bare_cpu = await ceiling(bench, event_type)
        url = f"{service.url}/api/v1/calendly/webhook?integration={integration['public_id']}"
        alone, apply_rate = await edge_only(bench, url, event_type)
        full, drain, missing_a, delays_a, acked_a, full_cpu = await phase(
            bench, url, event_type, "full"
        )
        capacity = acked_a / (SECONDS + drain)
        steady = round(capacity * STEADY_SHARE)
        paced, _, missing_b, delays_b, acked_b, _ = await phase(
            bench, url, event_type, "steady", steady
        )
    edge_ratio, ratio = alone["rps"] / bare["rps"], full["rps"] / bare["rps"]
    print(f"ceiling (bare aiohttp + asyncpg insert): {json.dumps(bare)}")
    print(f"  CPU per request, µs: {per_request(bare_cpu, bare['ok'])} ({_cores(bare_cpu)})")
    print(f"edge alone (verify + store, no worker running): {json.dumps(alone)}")
    print(f"  one worker then applied that backlog at {apply_rate:.0f} deliveries/s")
    print(f"service (edge + worker) at {CONNECTIONS} connections: {json.dumps(full)}")
    print(f"  CPU per delivery, µs: {per_request(full_cpu, full['ok'])} ({_cores(full_cpu)})")
    print(
        f"  processing capacity under that load {capacity:.0f} deliveries/s (inbox drained "
        f"{drain:.1f} s after the load); delay p50 {_ms(delays_a, 0.5):.0f} ms, "
        f"p99 {_ms(delays_a, 0.99):.0f} ms"
    )
    print(
        f"service open loop at {steady}/s: {json.dumps(paced)}; delay 200 -> readable "
        f"p50 {_ms(delays_b, 0.5):.1f} ms, p99 {_ms(delays_b, 0.99):.1f} ms"
    )
    return [
        Check(
            "edge requests/s vs ceiling (neither with a worker running)",
            f"{alone['rps']:.0f} / {bare['rps']:.0f} = {edge_ratio:.2f}",
            ">= 0.8",
            edge_ratio >= 0.8,
        ),
        Check(
            "service requests/s vs ceiling, worker draining on the same cores",
            f"{full['rps']:.0f} / {bare['rps']:.0f} = {ratio:.2f}",
            ">= 0.8",
            ratio >= 0.8,
        ),
        Check(
            "ingest latency p50 / p99 at full load",
            f"{full['p50_ms']} / {full['p99_ms']} ms",
            "reported",
            True,
        ),
        Check(
            "delay 200 -> readable p99 at full load, worker running",
            f"{_ms(delays_a, 0.99):.0f} ms",
            "<= 250 ms",
            _ms(delays_a, 0.99) <= 250,
        ),
        Check(
            f"delay 200 -> readable p99 at {steady}/s",
            f"{_ms(delays_b, 0.99):.1f} ms",
            "<= 250 ms",
            _ms(delays_b, 0.99) <= 250,
        ),
        Check(
            "acknowledged but missing",
            f"{missing_a + missing_b} of {acked_a + acked_b}",
            "0",
            missing_a + missing_b == 0 and acked_a > 0 and acked_b > 0,
        ),
    ]


def main() -> int:
    """Print the figures with their targets; non-zero when one misses."""
    checks = asyncio.run(run())
    return finish(f"ingest benchmark: {CONNECTIONS} connections, {SECONDS} s per target", checks)


if __name__ == "__main__":
    raise SystemExit(main())
