"""The sandbox's public URL: behind a forwarding proxy every URI it emits names the proxy, so
connect, webhooks and syncs work through it; bound to 0.0.0.0 it never emits 0.0.0.0."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict
from pydantic import ValidationError
from yarl import URL

from calendly_svc.__main__ import _parser, main
from calendly_svc.devenv import prepare_dev_environment
from calendly_svc.sandbox import SandboxConfig, SandboxServer, start_sandbox
from calendly_svc.settings import Settings
from tests.conftest import SIGNING_KEY, Api, Sandbox
from tests.helpers import _token, appointments, book, default_event_type, settled
from tests.test_sync import sync_now

# RFC 9110 §7.6.1 connection-specific fields, plus what aiohttp recomputes for the new hop
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


WILDCARD = "0.0.0.0"  # noqa: S104 - the compose bind address under test


@dataclass
class Proxy:
    """A reverse proxy forwarding every request to `target` and logging (method, URL)."""

    target: str = ""
    url: str = ""
    log: list[tuple[str, URL]] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Send the request on as received (method, path, query, headers, body)."""
        assert self.session is not None
        self.log.append((request.method, request.rel_url))
        headers = _end_to_end(request.headers)
        url = URL(self.target + request.raw_path, encoded=True)
        body = await request.read()
        async with self.session.request(
            request.method, url, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            raw = await upstream.read()
            return web.Response(
                status=upstream.status, body=raw, headers=_end_to_end(upstream.headers)
            )

    def calls(self, method: str, path: str) -> list[URL]:
        """Logged `method` requests to path, where `{}` matches one segment."""
        pattern = re.compile(re.escape(path).replace(r"\{\}", "[^/]+") + "$")
        return [url for verb, url in self.log if verb == method and pattern.match(url.path)]


def _end_to_end(headers: Any) -> CIMultiDict[str]:
    """The headers a proxy passes on."""
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    """The proxy on its own port; its target is set once the sandbox runs."""
    proxy = Proxy()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        proxy.session = session
        yield proxy
    await runner.cleanup()


@pytest.fixture
async def sandbox(proxy: Proxy) -> AsyncIterator[SandboxServer]:
    """The conftest sandbox, with the proxy's URL as its public URL."""
    config = SandboxConfig(webhook_signing_key=SIGNING_KEY)
    server = await start_sandbox(config, "127.0.0.1", 0, public_url=proxy.url)
    proxy.target = server.url
    yield server
    await server.close()


@pytest.fixture
async def api(start_service: Any, proxy: Proxy) -> Api:
    """The service reaching Calendly (API and OAuth) only through the proxy."""
    service: Api = await start_service(
        calendly_api_base_url=proxy.url, calendly_auth_base_url=proxy.url
    )
    return service


def _slot(days: int, minutes: int = 0) -> str:
    """A start time `days` from now, on the hour, plus minutes (inside the sync window)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (now + timedelta(days=days, minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_connect_webhook_and_sync_work_through_a_proxy(
    api: Api, control: Sandbox, proxy: Proxy, sandbox: SandboxServer
) -> None:
    integration = await api.connect()
    event_type = await default_event_type(control)
    booked = await book(control, event_type, _slot(2))
    await settled(api)
    after_webhook = await appointments(api)
    await control.call(
        "POST",
        "/_sandbox/bookings/bulk",
        {"event_type": event_type, "count": 100, "start_time": _slot(3), "interval_minutes": 30},
    )
    entry = await sync_now(api)
    assert sandbox.url != proxy.url
    assert integration["calendly_user_uri"].startswith(proxy.url + "/users/")
    assert [a["calendly_invitee_uri"] for a in after_webhook] == [booked["invitees"][0]["uri"]]
    assert booked["invitees"][0]["uri"].startswith(proxy.url + "/scheduled_events/")
    assert (entry["status"], entry["events_seen"], entry["invitees_fetched"]) == (
        "succeeded",
        101,
        101,
    )
    assert len(await appointments(api)) == 101
    assert len(proxy.calls("GET", "/oauth/authorize")) == 1
    assert len(proxy.calls("POST", "/oauth/token")) == 1
    assert len(proxy.calls("GET", "/users/me")) == 1
    assert len(proxy.calls("POST", "/webhook_subscriptions")) >= 1
    # the initial sync's one page, then two pages of 100: the second one through the
    # next_page URL the sandbox built on its public URL
    pages = proxy.calls("GET", "/scheduled_events")
    assert ["page_token" in url.query for url in pages] == [False, False, True]
    assert len(proxy.calls("GET", "/scheduled_events/{}/invitees")) == entry["invitees_fetched"]


async def test_wildcard_bind_without_public_url_emits_loopback_uris() -> None:
    server = await start_sandbox(SandboxConfig(), WILDCARD, 0)
    try:
        port = URL(server.url).port
        async with aiohttp.ClientSession() as session:
            token = await _token(Sandbox(server.url, session), session)
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{server.url}/users/me", headers=headers) as resp:
                text = await resp.text()
                me = (await resp.json())["resource"]
        assert (server.url, server.public_url) == (f"http://127.0.0.1:{port}",) * 2
        assert me["uri"].startswith(f"http://127.0.0.1:{port}/users/")
        assert WILDCARD not in text
    finally:
        await server.close()


def test_public_url_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_PUBLIC_URL", "http://sandbox:8081/")
    from_env = SandboxConfig.from_env().public_url
    flag = _parser().parse_args(["sandbox", "--public-url", "http://proxy:9000"]).public_url
    env_default = _parser().parse_args(["sandbox"]).public_url
    monkeypatch.setenv("SANDBOX_PUBLIC_URL", "sandbox:8081")
    with pytest.raises(ValueError, match="http"):
        SandboxConfig.from_env()
    with pytest.raises(SystemExit) as refused:
        main(["sandbox", "--port", "0"])
    assert (from_env, flag, env_default) == (
        "http://sandbox:8081",
        "http://proxy:9000",
        "http://sandbox:8081/",
    )
    assert refused.value.code == 2


def test_dev_mode_points_the_service_at_the_public_url(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://u@h/db", "SANDBOX_PUBLIC_URL": "http://proxy:9000/"}
    plan = prepare_dev_environment(env, tmp_path)
    values = {key.lower(): value for key, value in env.items()}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert plan.use_sandbox is True
    assert (env["CALENDLY_API_BASE_URL"], env["CALENDLY_AUTH_BASE_URL"]) == (
        "http://proxy:9000",
        "http://proxy:9000",
    )
    assert settings.sandbox_public_url == "http://proxy:9000"
    with pytest.raises(ValidationError, match="http"):
        Settings(_env_file=None, **(values | {"sandbox_public_url": "proxy:9000"}))  # type: ignore[call-arg]
