"""Fixtures for the Calendly sandbox tests: live sandbox, HTTP client, webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from sandbox_helpers import Receiver, Sandbox

from calendly_svc.sandbox import SandboxConfig, start_sandbox


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """The config of the sandbox fixture (override per module if needed)."""
    return SandboxConfig()


@pytest.fixture
async def sandbox(
    sandbox_config: SandboxConfig, http: aiohttp.ClientSession
) -> AsyncIterator[Sandbox]:
    """A sandbox served on a free port."""
    server = await start_sandbox(sandbox_config, port=0)
    try:
        yield Sandbox(server, http)
    finally:
        await server.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running webhook receiver; its URL path is /hook."""
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    app.router.add_post("/other", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield recv
    finally:
        await runner.cleanup()
