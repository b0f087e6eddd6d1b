"""Shared helpers: signed deliveries, waiting for the worker, reading the sandbox."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg

from calendly_svc.calendly.scopes import NEEDED_SCOPES
from calendly_svc.ingest.signatures import signature_header
from calendly_svc.store import queries
from tests.conftest import SIGNING_KEY, Api, Sandbox

T = TypeVar("T")


def shared_calendly_dir() -> Path | None:
    """Calendly's reference material: $CALENDLY_SHARED_DIR, else ../shared/calendly beside the
    repository (CI clones there); None when the folder is absent."""
    configured = os.environ.get("CALENDLY_SHARED_DIR")
    repo_root = Path(__file__).resolve().parents[1]
    path = Path(configured) if configured else repo_root / ".." / "shared" / "calendly"
    return path if path.is_dir() else None


def envelope(event: str, payload: dict[str, Any], created_at: str | None = None) -> dict[str, Any]:
    """A Calendly webhook envelope."""
    return {
        "event": event,
        "created_at": created_at or "2026-11-29T10:00:00.000000Z",
        "created_by": "https://api.calendly.com/users/CREATOR",
        "payload": payload,
    }


async def post_webhook(
    api: Api,
    public_id: str,
    body: dict[str, Any] | bytes,
    *,
    key: str = SIGNING_KEY,
    timestamp: int | None = None,
    header: str | None = None,
) -> tuple[int, Any]:
    """POST a delivery as Calendly would, signed unless a header is given."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = (
        header
        if header is not None
        else signature_header(key, raw, timestamp if timestamp is not None else int(time.time()))
    )
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["Calendly-Webhook-Signature"] = signature
    resp = await api.client.post(
        f"/api/v1/calendly/webhook?integration={public_id}", data=io.BytesIO(raw), headers=headers
    )
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


async def eventually(check: Callable[[], Awaitable[T]], within: float = 10.0) -> T:
    """Poll until check() returns something truthy (the worker is asynchronous)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def settled(api: Api, user: int = 1, within: float = 10.0) -> list[dict[str, Any]]:
    """Wait until no delivery of the user is waiting or being processed; return the log."""

    async def done() -> list[dict[str, Any]] | None:
        status, body = await api.call("GET", "/webhook-events", user, params={"limit": "200"})
        assert status == 200, body
        pending = [e for e in body["items"] if e["status"] in ("received", "processing")]
        return None if pending else body["items"]

    result = await eventually(done, within)
    assert result is not None, "webhook events still pending"
    return result


async def appointments(api: Api, user: int = 1, **params: str) -> list[dict[str, Any]]:
    """Every appointment of the user (all pages)."""
    items: list[dict[str, Any]] = []
    query = {"limit": "200", **params}
    while True:
        status, body = await api.call("GET", "/appointments", user, params=query)
        assert status == 200, body
        items += body["items"]
        if not body["next_cursor"]:
            return items
        query["cursor"] = body["next_cursor"]


async def book(
    control: Sandbox, event_type: str, start: str, *invitees: dict[str, Any], deliver: bool = True
) -> dict[str, Any]:
    """Book through the sandbox (a signed invitee.created per invitee when delivering)."""
    people = list(invitees) or [{"name": "Ana Lima", "email": "Ana@Example.com"}]
    body = {"event_type": event_type, "start_time": start, "invitees": people, "deliver": deliver}
    result: dict[str, Any] = await control.call("POST", "/_sandbox/bookings", body)
    return result


async def default_event_type(control: Sandbox) -> str:
    """URI of the sandbox's seeded "30 Minute Meeting"."""
    types = (await control.call("GET", "/_sandbox/event_types"))["collection"]
    return str(next(t["uri"] for t in types if t["name"] == "30 Minute Meeting"))


async def invitee_payload(control: Sandbox, invitee_uri: str) -> dict[str, Any]:
    """An invitee as the API returns it, with its scheduled event embedded like a webhook."""
    async with aiohttp.ClientSession() as session:
        invitee = await _read(control, session, invitee_uri)
        event = await _read(control, session, invitee["event"])
    return invitee | {"scheduled_event": event}


async def _read(control: Sandbox, session: aiohttp.ClientSession, url: str) -> Any:
    """GET a sandbox API resource with the test's own token, fetched once per sandbox as a
    real client would (Calendly allows 8 token requests per user per minute) and again only
    when a test has expired it."""
    for attempt in range(2):
        if control.reader_token is None or attempt:
            control.reader_token = await _token(control, session)
        headers = {"Authorization": f"Bearer {control.reader_token}"}
        async with session.get(url, headers=headers) as resp:
            if resp.status == 401 and not attempt:
                continue
            assert resp.status == 200, await resp.text()
            return (await resp.json())["resource"]
    raise AssertionError("unreachable")


async def _token(control: Sandbox, session: aiohttp.ClientSession) -> str:
    """An access token of the default sandbox user, through the real OAuth flow."""
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlencode, urlsplit

    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    redirect = "http://127.0.0.1:1/cb"
    query = urlencode(
        {
            "client_id": "sandbox-client",
            "response_type": "code",
            "redirect_uri": redirect,
            "code_challenge_method": "S256",
            "code_challenge": challenge.decode(),
            "scope": " ".join(NEEDED_SCOPES),
        }
    )
    async with session.get(f"{control.url}/oauth/authorize?{query}", allow_redirects=False) as r:
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "code_verifier": verifier,
    }
    auth = "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    async with session.post(
        f"{control.url}/oauth/token", data=form, headers={"Authorization": auth}
    ) as resp:
        return str((await resp.json())["access_token"])


async def store_deliveries(conn: asyncpg.Connection, count: int) -> None:
    """Integration 1 (disconnected: no tokens) and `count` distinct deliveries k0, k1, ... for
    tests that drive the inbox's queries directly."""
    await conn.execute(
        "INSERT INTO integrations (user_id, status, calendly_user_uri) "
        "VALUES (1, 'disconnected', 'https://api.calendly.com/users/Q')"
    )
    events = [
        queries.NewWebhookEvent(
            integration_id=1,
            event="invitee.created",
            dedup_key=f"k{n}",
            payload_uri=None,
            calendly_created_at=None,
            headers="{}",
            body='{"event": "invitee.created"}',
        )
        for n in range(count)
    ]
    await queries.insert_webhook_events(conn, events, [0] * count)
