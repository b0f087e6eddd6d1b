"""Helpers shared by the sandbox tests (imported by conftest and test modules)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from calendly_svc.calendly.scopes import NEEDED_SCOPES
from calendly_svc.sandbox import SandboxServer

REDIRECT_URI = "http://localhost:9999/oauth/callback"
# Everything the service requests: a token without scopes has no API access.
ALL_SCOPES = " ".join(NEEDED_SCOPES)
START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    """A Calendly-formatted UTC time `minutes` after START."""
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def basic_auth(client_id: str = "sandbox-client", secret: str = "sandbox-secret") -> str:  # noqa: S107
    """An HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def pkce_pair() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Reply:
    """Status, JSON body (None when empty) and headers of a response."""

    status: int
    body: Any
    headers: dict[str, str]


class Sandbox:
    """Test-side helper around a running sandbox."""

    def __init__(self, server: SandboxServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.url = server.url

    async def request(self, method: str, path_or_url: str, **kwargs: Any) -> Reply:
        """Send a request to the sandbox (path or full URL) and decode the reply."""
        url = path_or_url if path_or_url.startswith("http") else self.url + path_or_url
        async with self.http.request(method, url, allow_redirects=False, **kwargs) as response:
            raw = await response.read()
            is_json = response.content_type == "application/json"
            body = await response.json() if raw and is_json else None
            return Reply(response.status, body, dict(response.headers))

    async def control(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        """Call the control API, asserting the status; returns the JSON body."""
        reply = await self.request(method, "/_sandbox" + path, json=body)
        assert reply.status == status, reply
        return reply.body

    async def api(self, token: str, path_or_url: str, method: str = "GET", **kwargs: Any) -> Reply:
        """Call the Calendly API with a bearer token."""
        headers = {"Authorization": f"Bearer {token}"}
        return await self.request(method, path_or_url, headers=headers, **kwargs)

    async def authorize(self, challenge: str | None = None, **params: str) -> str:
        """Run /oauth/authorize (for every scope the service needs unless `scope` is given) and
        return the code from the redirect."""
        query = {
            "client_id": "sandbox-client",
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": ALL_SCOPES,
            **params,
        }
        if challenge is not None:
            query.update(code_challenge=challenge, code_challenge_method="S256")
        reply = await self.request("GET", "/oauth/authorize", params=query)
        assert reply.status == 302, reply
        return URL(reply.headers["Location"]).query["code"]

    async def token_request(self, form: dict[str, str], auth: str | None = None) -> Reply:
        """POST /oauth/token with a form body and Basic client auth."""
        headers = {"Authorization": auth or basic_auth()}
        return await self.request("POST", "/oauth/token", data=form, headers=headers)

    async def connect(
        self, login_hint: str | None = None, scope: str = ALL_SCOPES
    ) -> dict[str, Any]:
        """Full OAuth round trip with PKCE; returns the token response body."""
        verifier, challenge = pkce_pair()
        extra = {"login_hint": login_hint, "scope": scope} if login_hint else {"scope": scope}
        code = await self.authorize(challenge, **extra)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        reply = await self.token_request(form)
        assert reply.status == 200, reply
        body: dict[str, Any] = reply.body
        return body

    async def default_event_type(self) -> str:
        """URI of the seeded 30 Minute Meeting event type."""
        collection = (await self.control("GET", "/event_types"))["collection"]
        return str(next(et["uri"] for et in collection if et["slug"] == "30min"))

    async def add_user(self, email: str, role: str = "user", **extra: Any) -> dict[str, Any]:
        """Create a sandbox user and return its User resource."""
        body = {"email": email, "name": email.split("@")[0].title(), "role": role, **extra}
        resource: dict[str, Any] = (await self.control("POST", "/users", body))["resource"]
        return resource

    async def book(
        self, event_type: str, start: str, *emails: str, deliver: bool = True
    ) -> dict[str, Any]:
        """Book invitees (default one) into event_type at start."""
        invitees = [{"name": f"Guest {e}", "email": e} for e in emails or ("guest@example.com",)]
        body = {"event_type": event_type, "start_time": start, "invitees": invitees}
        result: dict[str, Any] = await self.control(
            "POST", "/bookings", {**body, "deliver": deliver}
        )
        return result


@dataclass
class Received:
    """One webhook POST as the receiver saw it."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint on a free port that records requests and replies scripted statuses."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        """Record the request and answer the next scripted status (200 when none left)."""
        self.received.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int, within: float = 10.0) -> None:
        """Wait until at least `count` requests arrived."""
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
