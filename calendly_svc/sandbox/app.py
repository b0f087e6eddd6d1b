"""Application factory and a runnable server for the Calendly sandbox."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from . import (
    api,
    api_actions,
    api_events,
    api_scheduling,
    api_webhooks,
    control,
    control_actions,
    control_bookings,
    oauth,
    routing,
)
from .config import SandboxConfig, public_base_url
from .middleware import sandbox_middleware
from .state import SANDBOX_STATE, SandboxState
from .webhooks import webhook_context

SHUTDOWN_TIMEOUT_SECONDS = 5.0
WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


def create_sandbox_app(config: SandboxConfig, base_url: str | None = None) -> web.Application:
    """Build the sandbox app; URIs it emits start with base_url (changeable later on the state)."""
    app = web.Application(middlewares=[sandbox_middleware])
    app[SANDBOX_STATE] = SandboxState(config, base_url)
    modules = (oauth, api, api_events, api_webhooks, control, control_bookings, routing,
               api_actions, api_scheduling, control_actions)  # fmt: skip
    for module in modules:
        module.add_routes(app)
    app.cleanup_ctx.append(webhook_context)
    return app


@dataclass
class SandboxServer:
    """A running sandbox bound to a real port; `url` reaches it directly."""

    url: str
    app: web.Application
    runner: web.AppRunner

    @property
    def public_url(self) -> str:
        """The base of every URI the sandbox emits."""
        return self.state.base_url

    @property
    def state(self) -> SandboxState:
        """The sandbox's in-memory state."""
        return self.app[SANDBOX_STATE]

    async def close(self) -> None:
        """Stop serving and cancel background work."""
        await self.runner.cleanup()


async def start_sandbox(
    config: SandboxConfig, host: str = "127.0.0.1", port: int = 8081, public_url: str | None = None
) -> SandboxServer:
    """Serve a new sandbox on host:port (0 picks a free port); the URIs it emits start with
    public_url, else config.public_url, else its own URL."""
    app = create_sandbox_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    url = f"http://{_url_host(host)}:{bound_port}"
    app[SANDBOX_STATE].base_url = public_base_url(public_url) or config.public_url or url
    return SandboxServer(url=url, app=app, runner=runner)


def _url_host(host: str) -> str:
    """The host as a URL names it: a wildcard bind address becomes loopback (a URI naming
    0.0.0.0 reaches nothing), IPv6 literals get brackets."""
    host = WILDCARD_HOSTS.get(host, host)
    return f"[{host}]" if ":" in host else host
