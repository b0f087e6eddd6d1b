"""SIGTERM on the real process: stop accepting, finish in-flight requests, release, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import aiohttp
import asyncpg
from cryptography.fernet import Fernet

from tests.conftest import SERVICE_TOKEN, SIGNING_KEY, Sandbox, free_port
from tests.helpers import book, default_event_type


async def _start(
    database_url: str, sandbox_url: str, port: int, *args: str
) -> asyncio.subprocess.Process:
    """`python -m calendly_svc serve` in production mode, with serve's `args`."""
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "CALENDLY_CLIENT_ID": "sandbox-client",
        "CALENDLY_CLIENT_SECRET": "sandbox-secret",
        "CALENDLY_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
        "CALENDLY_API_BASE_URL": sandbox_url,
        "CALENDLY_AUTH_BASE_URL": sandbox_url,
        "BACKEND_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "SERVICE_API_TOKENS": SERVICE_TOKEN,
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "LOG_FORMAT": "json",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "1",
        "WORKER_POLL_SECONDS": "0.2",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calendly_svc",
        "serve",
        "--no-migrate",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _ready(session: aiohttp.ClientSession, base: str) -> None:
    """Wait for /readyz."""
    for _ in range(200):
        try:
            async with session.get(f"{base}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("service did not become ready")


async def _call(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    """A main-app call; returns (status, json)."""
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-User-Id": "1"}
    async with session.request(method, url, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json()


async def _syncs_idle(database_url: str, within: float = 20.0) -> None:
    """Wait until no sync job is queued or running."""
    conn = await asyncpg.connect(database_url)
    deadline = time.monotonic() + within
    query = "SELECT count(*) FROM sync_jobs WHERE status IN ('queued', 'running')"
    while await conn.fetchval(query):
        assert time.monotonic() < deadline, "sync jobs still active"
        await asyncio.sleep(0.05)
    await conn.close()


async def _connect(session: aiohttp.ClientSession, base: str) -> None:
    """The OAuth round trip: the browser callback forwards code and state, which the main app
    posts to /oauth-callback."""
    _, start = await _call(session, "GET", f"{base}/api/v1/calendly/auth-url")
    async with session.get(start["auth_url"]) as resp:  # follows into /oauth/callback
        assert resp.status == 200, await resp.text()
        forwarded = await resp.json()
    body = {"code": forwarded["code"], "state": forwarded["state"]}
    status, _ = await _call(session, "POST", f"{base}/api/v1/calendly/oauth-callback", json=body)
    assert status == 200


async def test_sigterm_drains_and_releases(
    database_url: str, sandbox: Any, control: Sandbox
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await _start(database_url, sandbox.url, port)
    async with aiohttp.ClientSession() as session:
        await _ready(session, base)
        await _connect(session, base)
        event_type = await default_event_type(control)
        for n in range(20):
            await book(
                control,
                event_type,
                f"2026-12-10T{8 + n // 4:02}:{(n % 4) * 15:02}:00Z",
                {"name": f"S{n}", "email": f"s{n}@example.com"},
                deliver=False,
            )
        await _syncs_idle(database_url)  # the initial sync is done
        await control.call("POST", "/_sandbox/faults", {"latency_ms": 1500})
        in_flight = asyncio.create_task(
            _call(session, "POST", f"{base}/api/v1/calendly/event-types/refresh")
        )
        await _call(session, "POST", f"{base}/api/v1/calendly/sync/manual", json={"full": True})
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(proc.wait(), 15)
        elapsed = time.monotonic() - started
        status, body = await in_flight
        refused = None
        try:
            async with session.get(f"{base}/healthz") as resp:
                refused = resp.status
        except aiohttp.ClientError:
            refused = "refused"
    conn = await asyncpg.connect(database_url)
    jobs = await conn.fetch("SELECT trigger, status, locked_by FROM sync_jobs ORDER BY id")
    await conn.close()
    assert code == 0
    assert elapsed < 10
    assert (status, sorted(body)) == (200, ["added", "items", "removed", "updated"])
    assert refused == "refused"
    # the sync could not finish within the grace period: its lease is handed back
    assert [(j["trigger"], j["status"], j["locked_by"]) for j in jobs] == [
        ("initial", "succeeded", None),
        ("manual", "queued", None),
    ]
