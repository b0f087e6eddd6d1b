"""A URL Calendly hands back (pagination.next_page, resource URIs) is requested only when it
resolves to the API's own origin: the token never reaches another host, port or scheme."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.conftest import Api, Sandbox


class Evil:
    """A second local HTTP server that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        """Record the path and Authorization header; answer an empty page."""
        self.requests.append((request.path_qs, request.headers.get("Authorization")))
        return web.json_response({"collection": [], "pagination": {"next_page": None}})


@pytest.fixture
async def evil() -> AsyncIterator[Evil]:
    """The "evil" server on a free port."""
    server = Evil()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


def _sandbox_hostport(api: Api) -> str:
    """host:port of the sandbox (the API base)."""
    return api.sandbox_url.split("://", 1)[1]


NEXT_PAGES = {
    "userinfo_suffix_path": "@127.0.0.1:{evil}/event_types",
    "base_as_userinfo": "{base}@127.0.0.1:{evil}/event_types",
    "network_path": "//127.0.0.1:{evil}/event_types",
    "other_port": "http://127.0.0.1:{evil}/event_types",
    "other_scheme": "https://{hostport}/event_types",
    "userinfo_same_host": "http://user:pw@{hostport}/event_types",
    "no_leading_slash": "event_types?page_token=x",
    "host_suffix": ".localhost:{evil}/event_types",
}


@pytest.mark.parametrize("template", NEXT_PAGES.values(), ids=NEXT_PAGES.keys())
async def test_a_next_page_off_the_api_origin_is_refused(
    api: Api, control: Sandbox, evil: Evil, template: str
) -> None:
    await api.connect()
    next_page = template.format(
        evil=evil.port, base=api.sandbox_url, hostport=_sandbox_hostport(api)
    )
    await control.call("POST", "/_sandbox/faults", {"next_page_override": next_page})
    status, body = await api.call("POST", "/event-types/refresh")
    await control.call("DELETE", "/_sandbox/faults")
    assert (status, body["error"]["code"]) == (502, "calendly_error")
    assert "refusing to send a token" in body["error"]["message"]
    assert evil.requests == []


async def test_a_same_origin_next_page_is_followed(api: Api, control: Sandbox, evil: Evil) -> None:
    await api.connect()
    before = await control.count("GET", "/event_types")
    # the same origin written differently: an upper-case scheme and host
    next_page = api.sandbox_url.replace("http://", "HTTP://").upper() + "/event_types?x=1"
    await control.call("POST", "/_sandbox/faults", {"next_page_override": next_page})
    status, _ = await api.call("POST", "/event-types/refresh")
    await control.call("DELETE", "/_sandbox/faults")
    # followed to the sandbox, which refuses a listing without `user` (a 400: 502 here)
    assert status == 502
    assert await control.count("GET", "/event_types") == before + 2
    assert evil.requests == []


@pytest.mark.parametrize("template", NEXT_PAGES.values(), ids=NEXT_PAGES.keys())
async def test_a_resource_uri_off_the_api_origin_is_refused(
    api: Api, evil: Evil, template: str
) -> None:
    from calendly_svc.calendly.errors import CalendlyError
    from tests.test_calendly_client import _setup

    deps, integration = await _setup(api)
    source = deps.tokens.for_integration(integration)
    uri = template.format(evil=evil.port, base=api.sandbox_url, hostport=_sandbox_hostport(api))
    with pytest.raises(CalendlyError, match="refusing to send a token"):
        await deps.calendly.get_invitee(source, uri)
    with pytest.raises(CalendlyError, match="refusing to send a token"):
        await deps.calendly.delete_webhook(source, uri)
    assert evil.requests == []
