"""`make profile`: py-spy flame graphs of the edge and the worker under the ingest benchmark's load.

The service runs as in `make bench` (an edge process and a worker process, production settings),
the load generator sends signed deliveries at 50 connections for `--seconds`, and py-spy samples
both processes meanwhile; Postgres logs each statement's CPU (`log_statement_stats`), tabled per
delivery. The SVGs and the table go to `--out` (default `docs/profiles/`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

import aiohttp

from tests.bench.ingest_bench import WORKER, loadgen
from tests.bench.pgstats import statement_stats, table
from tests.bench.stack import Client, stack

SUFFIX = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}


async def _record(pid: int, seconds: int, out: Path, fmt: str) -> asyncio.subprocess.Process:
    """Start py-spy on one process for `seconds`, writing a flame graph (or collapsed stacks)."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
        "--format", fmt, "--output", str(out), "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def run(seconds: int, out: Path, label: str, fmt: str) -> dict[str, object]:
    """Load the edge and its worker; profile both; the load generator's summary."""
    async with stack() as bench, aiohttp.ClientSession() as session:
        service = await bench.start_service(WORKER_ENABLED="false")
        worker = await bench.start_worker(**WORKER)
        assert bench.sandbox is not None
        client = Client(session, service.url, bench.sandbox.url)
        integration = await client.connect(1)
        types = await client.api("GET", "/event-types", 1)
        event_type = types["items"][0]["calendly_event_type_uri"]
        url = f"{service.url}/api/v1/calendly/webhook?integration={integration['public_id']}"
        await loadgen([url], event_type, seconds=3)
        async with statement_stats(bench.dsn):
            spies = [
                await _record(service.pid, seconds, out / f"edge-{label}.{SUFFIX[fmt]}", fmt),
                await _record(worker.pid, seconds, out / f"worker-{label}.{SUFFIX[fmt]}", fmt),
            ]
            summary = await loadgen([url], event_type, seconds=seconds + 1)
            for spy in spies:
                await spy.wait()
        stats = table(bench.directory / "pg" / "log", summary["ok"])
        (out / f"postgres-{label}.md").write_text(stats)
    return summary


def main() -> int:
    """Parse arguments and profile."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("docs/profiles"))
    parser.add_argument("--label", default="after")
    parser.add_argument("--format", choices=sorted(SUFFIX), default="flamegraph")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = asyncio.run(run(args.seconds, args.out, args.label, args.format))
    names = f"{{edge,worker}}-{args.label}.{SUFFIX[args.format]}"
    tables = f"postgres-{args.label}.md"
    print(f"load: {summary}; flame graphs in {args.out}/{names}, Postgres in {tables}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
