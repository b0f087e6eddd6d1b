"""Real Postgres (a migrated template cloned per test) and the Calendly sandbox over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from calendly_svc.app import create_app
from calendly_svc.ingest.signatures import verify
from calendly_svc.keys import DB_POOL
from calendly_svc.logging import configure_logging
from calendly_svc.sandbox import SandboxConfig, start_sandbox
from calendly_svc.settings import Settings
from calendly_svc.store.db import apply_migrations_sync

SERVICE_TOKEN = "test-service-token"
configure_logging("INFO", "json")
SIGNING_KEY = "test-app-signing-key"


def with_database(dsn: str, name: str) -> str:
    """The same server DSN pointing at another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin(dsn: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """TEST_DATABASE_URL, or an embedded PostgreSQL for the whole run."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    from calendly_svc.devenv import start_embedded_postgres

    with tempfile.TemporaryDirectory(prefix="cs-pg-") as directory:
        server = start_embedded_postgres(Path(directory) / "pg")
        yield server.get_uri()
        server.cleanup()


@pytest.fixture(scope="session")
def template_database(pg_server_dsn: str) -> Iterator[str]:
    """A database migrated once per run, cloned by every test."""
    name = f"cs_template_{uuid.uuid4().hex[:8]}"
    _admin(pg_server_dsn, f'CREATE DATABASE "{name}"')
    apply_migrations_sync(with_database(pg_server_dsn, name))
    yield name
    _admin(pg_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_server_dsn: str, template_database: str) -> Iterator[str]:
    """This test's own database."""
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    _admin(pg_server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield with_database(pg_server_dsn, name)
    _admin(pg_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def sandbox() -> AsyncIterator[Any]:
    """A fresh Calendly sandbox on a real port."""
    config = SandboxConfig(webhook_signing_key=SIGNING_KEY)
    server = await start_sandbox(config, "127.0.0.1", 0)
    yield server
    await server.close()


@pytest.fixture
def service_port() -> int:
    """The port the service under test listens on (known before it starts)."""
    return free_port()


@pytest.fixture
def make_settings(database_url: str, sandbox: Any, service_port: int) -> Callable[..., Settings]:
    """Settings for the service under test; keyword arguments override."""
    key = Fernet.generate_key().decode()

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "calendly_client_id": "sandbox-client",
            "calendly_client_secret": "sandbox-secret",
            "calendly_webhook_signing_key": SIGNING_KEY,
            "backend_url": f"http://127.0.0.1:{service_port}",
            "calendly_api_base_url": sandbox.url,
            "calendly_auth_base_url": sandbox.url,
            "service_api_tokens": [SERVICE_TOKEN, "second-token"],
            "token_encryption_key": [key],
            "oauth_redirect_uris": ["https://app.example.com/calendly/return"],
            "calendly_retry_base_seconds": 0.01,
            "log_format": "json",
            **overrides,
        }
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


class Api:
    """The service's HTTP API as the main app uses it."""

    def __init__(self, client: TestClient[Any, Any], sandbox_url: str) -> None:
        self.client = client
        self.sandbox_url = sandbox_url

    @staticmethod
    def headers(user: int | None, token: str | None = SERVICE_TOKEN) -> dict[str, str]:
        """Bearer token and X-User-Id headers."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return headers | ({"X-User-Id": str(user)} if user is not None else {})

    async def call(
        self, method: str, path: str, user: int | None = 1, **kwargs: Any
    ) -> tuple[int, Any]:
        """(status, parsed JSON or None) for one request under /api/v1/calendly."""
        headers = self.headers(user) | kwargs.pop("headers", {})
        resp = await self.client.request(
            method, f"/api/v1/calendly{path}", headers=headers, **kwargs
        )
        text = await resp.text()
        return resp.status, (await resp.json() if text else None)

    async def authorize(self, user: int = 1, email: str | None = None) -> tuple[str, str]:
        """Get an auth URL and let the sandbox approve it; returns (code, state)."""
        status, body = await self.call("GET", "/auth-url", user)
        assert status == 200, body
        url = body["auth_url"] + (f"&login_hint={email}" if email else "")
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as resp,
        ):
            assert resp.status == 302, await resp.text()
            query = parse_qs(urlsplit(resp.headers["Location"]).query)
        return query["code"][0], query["state"][0]

    async def connect(self, user: int = 1, email: str | None = None) -> dict[str, Any]:
        """The whole OAuth round trip; returns the integration."""
        code, state = await self.authorize(user, email)
        status, body = await self.call(
            "POST", "/oauth-callback", user, json={"code": code, "state": state}
        )
        assert status == 200, body
        await self.syncs_idle()
        return body  # type: ignore[no-any-return]

    async def syncs_idle(self, within: float = 20.0) -> None:
        """Wait until no sync job is queued or running (connecting starts one)."""
        pool = self.client.server.app[DB_POOL]
        deadline = time.monotonic() + within
        while True:
            async with pool.acquire() as conn:
                active = await conn.fetchval(
                    "SELECT count(*) FROM sync_jobs WHERE status IN ('queued', 'running')"
                )
            if not active:
                return
            assert time.monotonic() < deadline, "sync jobs still active"
            await asyncio.sleep(0.05)


@pytest.fixture
async def start_service(
    make_settings: Callable[..., Settings], service_port: int, sandbox: Any
) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    """Start the service on its real port with optional setting overrides."""
    clients: list[TestClient[Any, Any]] = []

    async def start(**overrides: Any) -> Api:
        server = TestServer(create_app(make_settings(**overrides)), port=service_port)
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return Api(client, sandbox.url)

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def api(start_service: Callable[..., Awaitable[Api]]) -> Api:
    """The service with default test settings."""
    return await start_service()


class Sandbox:
    """The sandbox's control API."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session
        self.reader_token: str | None = None  # tests' own API token (helpers.invitee_payload)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API (or any sandbox path) and return the JSON body."""
        async with self.session.request(method, f"{self.url}{path}", json=body) as resp:
            assert resp.status < 400, (resp.status, await resp.text())
            return await resp.json() if resp.content_length != 0 else None

    async def count(self, method: str, path: str) -> int:
        """How many requests the sandbox has served for a route template."""
        stats = await self.call("GET", "/_sandbox/stats")
        matches = [
            r["count"] for r in stats["requests"] if (r["method"], r["path"]) == (method, path)
        ]
        return sum(matches)


@pytest.fixture
async def control(sandbox: Any) -> AsyncIterator[Sandbox]:
    """A client for the sandbox's control API."""
    async with aiohttp.ClientSession() as session:
        yield Sandbox(sandbox.url, session)


MAIN_APP_SECRET = "main-app-secret"


@dataclass
class MainAppReceiver:
    """The main app's notification endpoint."""

    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    calls: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        """Verify the signature, then accept (or fail on purpose)."""
        raw = await request.read()
        self.calls += 1
        try:
            verify(
                request.headers.get("X-Calendly-Svc-Signature"),
                raw,
                [MAIN_APP_SECRET],
                time.time(),
                180,
                60,
            )
        except Exception:
            self.rejected += 1
            return web.Response(status=401)
        if self.calls <= self.fail_first:
            return web.Response(status=500)
        self.received.append(json.loads(raw))
        return web.Response(status=204)


@pytest.fixture
async def main_app() -> AsyncIterator[tuple[MainAppReceiver, str]]:
    """The main app's notification endpoint on a real port, and its URL."""
    state = MainAppReceiver()
    app = web.Application()
    app.router.add_post("/hooks/calendly", state.handle)
    server = TestServer(app, port=0)
    await server.start_server()
    yield state, str(server.make_url("/hooks/calendly"))
    await server.close()
