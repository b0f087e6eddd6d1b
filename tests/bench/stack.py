"""A throwaway deployment for benchmarks: embedded Postgres, the sandbox and service processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import asyncpg
from cryptography.fernet import Fernet

from calendly_svc.devenv import start_embedded_postgres
from calendly_svc.store.db import apply_migrations_sync

TOKEN = "bench-token"
SIGNING_KEY = "bench-signing-key"


async def scalar(dsn: str, sql: str, *args: Any) -> Any:
    """One value from Postgres."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def finish(title: str, checks: list[Any]) -> int:
    """Print a benchmark's title and checks; the exit status is non-zero when one misses."""
    print(title)
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else 1


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident set size (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def wait_http(url: str, within: float = 30.0) -> None:
    """Poll until the URL answers 200."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not come up")
            await asyncio.sleep(0.1)


@dataclass
class Process:
    """A child process of the benchmark."""

    proc: asyncio.subprocess.Process
    url: str

    @property
    def pid(self) -> int:
        """Its pid."""
        return self.proc.pid

    async def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.proc.returncode is None:
            self.proc.terminate()
        return await self.proc.wait()


@dataclass
class Stack:
    """Postgres, one sandbox process and any number of service processes."""

    directory: Path
    dsn: str = ""
    sandbox: Process | None = None
    services: list[Process] = field(default_factory=list)
    key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    postgres: Any = None

    def service_env(self, port: int, **extra: str) -> dict[str, str]:
        """A production-mode environment pointing at the sandbox."""
        assert self.sandbox is not None
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", tempfile.gettempdir()),
            "DATABASE_URL": self.dsn,
            "CALENDLY_CLIENT_ID": "sandbox-client",
            "CALENDLY_CLIENT_SECRET": "sandbox-secret",
            "CALENDLY_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
            "CALENDLY_API_BASE_URL": self.sandbox.url,
            "CALENDLY_AUTH_BASE_URL": self.sandbox.url,
            "BACKEND_URL": f"http://127.0.0.1:{port}",
            "PORT": str(port),
            "SERVICE_API_TOKENS": TOKEN,
            "TOKEN_ENCRYPTION_KEY": self.key,
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "XDG_RUNTIME_DIR": str(self.directory),
            **extra,
        }

    async def start_sandbox(self) -> Process:
        """The sandbox in its own process (its memory is not the service's)."""
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CALENDLY_WEBHOOK_SIGNING_KEY": SIGNING_KEY,
            "LOG_LEVEL": "WARNING",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "calendly_svc",
            "sandbox",
            "--port",
            str(port),
            env=env,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.sandbox = Process(proc, f"http://127.0.0.1:{port}")
        await wait_http(f"{self.sandbox.url}/_sandbox/stats")
        return self.sandbox

    async def start_service(self, *args: str, **extra: str) -> Process:
        """One service replica (production mode, settings from the environment); `args` are
        serve's options, e.g. `--workers 2`."""
        port = free_port()
        with (self.directory / f"service-{port}.log").open("wb") as log:  # the child keeps a copy
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "calendly_svc", "serve", "--no-migrate", *args,
                env=self.service_env(port, **extra), stdout=log, stderr=log,
            )  # fmt: skip
        service = Process(proc, f"http://127.0.0.1:{port}")
        self.services.append(service)
        await wait_http(f"{service.url}/readyz", within=60)
        return service

    async def start_worker(self, **extra: str) -> Process:
        """A worker-only process (no HTTP)."""
        with (self.directory / f"worker-{len(self.services)}.log").open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "calendly_svc", "worker",
                env=self.service_env(free_port(), **extra), stdout=log, stderr=log,
            )  # fmt: skip
        worker = Process(proc, "")
        self.services.append(worker)
        return worker

    async def close(self) -> None:
        """Stop every process and Postgres."""
        for process in [*self.services, *([self.sandbox] if self.sandbox else [])]:
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(process.stop(), 30)
        if self.postgres is not None:
            self.postgres.cleanup()


@contextlib.asynccontextmanager
async def stack() -> AsyncIterator[Stack]:
    """A fresh stack in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="cs-bench-") as directory:
        result = Stack(Path(directory))
        result.postgres = start_embedded_postgres(Path(directory) / "pg")
        result.dsn = result.postgres.get_uri()
        apply_migrations_sync(result.dsn)
        await result.start_sandbox()
        try:
            yield result
        finally:
            await result.close()


class Client:
    """The main app's and the sandbox operator's HTTP calls."""

    def __init__(self, session: aiohttp.ClientSession, service: str, sandbox: str) -> None:
        self.session = session
        self.service = service
        self.sandbox = sandbox

    async def api(
        self,
        method: str,
        path: str,
        user: int,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """Call the service's API as the main app."""
        headers = {"Authorization": f"Bearer {TOKEN}", "X-User-Id": str(user)}
        async with self.session.request(
            method,
            f"{self.service}/api/v1/calendly{path}",
            json=body,
            params=params,
            headers=headers,
        ) as resp:
            data = await resp.json()
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the sandbox's control API."""
        async with self.session.request(method, f"{self.sandbox}{path}", json=body) as resp:
            data = await resp.json()
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data

    async def connect(self, user: int, email: str | None = None) -> dict[str, Any]:
        """The OAuth round trip, as a browser would follow it."""
        start = await self.api("GET", "/auth-url", user)
        url = start["auth_url"] + (f"&{urlencode({'login_hint': email})}" if email else "")
        async with self.session.get(url, allow_redirects=False) as resp:
            query = parse_qs(urlsplit(resp.headers["Location"]).query)
        body = {"code": query["code"][0], "state": query["state"][0]}
        result: dict[str, Any] = await self.api("POST", "/oauth-callback", user, body)
        await self.wait_syncs_idle(user)
        return result

    async def wait_syncs_idle(self, user: int, within: float = 60.0) -> None:
        """Wait until the user's syncs (e.g. the initial one) have finished."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            logs = await self.api("GET", "/sync-logs", user)
            if logs["items"] and all(e["status"] != "running" for e in logs["items"]):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError("syncs still running")

    async def wait_job(self, user: int, job_id: int, within: float = 900.0) -> dict[str, Any]:
        """Poll a sync job until it finishes."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            job: dict[str, Any] = await self.api("GET", f"/sync/jobs/{job_id}", user)
            if job["status"] in ("succeeded", "failed"):
                return job
            await asyncio.sleep(0.1)
        raise TimeoutError(f"sync job {job_id} did not finish")

    async def sync(self, user: int, **body: Any) -> dict[str, Any]:
        """A manual sync to its end; returns its log."""
        queued = await self.api("POST", "/sync/manual", user, body)
        job = await self.wait_job(user, queued["job_id"])
        logs = await self.api("GET", "/sync-logs", user, params={"limit": "5"})
        entry: dict[str, Any] = next(e for e in logs["items"] if e["id"] == job["sync_log_id"])
        return entry
