"""Header and query values that are not UTF-8 (or not ASCII where ASCII is expected) get a 4xx
JSON error over real HTTP, never a 500. Requests are written byte for byte on a raw socket."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from calendly_svc.ingest.signatures import sign
from tests.conftest import SERVICE_TOKEN, SIGNING_KEY, Api, Sandbox
from tests.helpers import book, default_event_type, envelope, invitee_payload, settled

BODY = json.dumps(envelope("invitee.created", {"uri": "https://api.calendly.com/x"})).encode()


async def raw_request(
    api: Api, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, parsed JSON body) of one request written as raw bytes."""
    port = api.client.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), parsed, json.loads(payload) if payload else None


def _auth(user: bytes = b"1", token: bytes = SERVICE_TOKEN.encode()) -> list[tuple[bytes, bytes]]:
    """Bearer token and X-User-Id as raw header lines."""
    return [(b"Authorization", b"Bearer " + token), (b"X-User-Id", user)]


def _error_shape(body: Any) -> tuple[str, ...]:
    """The keys of the one error body."""
    return tuple(sorted(body["error"]))


@pytest.mark.parametrize(
    ("method", "target", "headers", "status", "code"),
    [
        # a bearer token that is not UTF-8
        ("GET", b"/api/v1/calendly/status", _auth(token=b"\xff\xfe\x80"), 401, "unauthorized"),
        ("GET", b"/api/v1/calendly/status", _auth(token=b"t\xc3\xa9st"), 401, "unauthorized"),
        ("GET", b"/api/v1/calendly/status", _auth(user=b"\xff"), 400, "invalid_user_id"),
        ("GET", b"/api/v1/calendly/status", _auth(user=b"\xd9\xa1"), 400, "invalid_user_id"),
        ("GET", b"/api/v1/calendly/appointments?status=%ff", _auth(), 422, "validation_error"),
        ("GET", b"/api/v1/calendly/appointments?cursor=%ff%fe", _auth(), 400, "invalid_cursor"),
        ("GET", b"/api/v1/calendly/appointments?from=%ff", _auth(), 422, "validation_error"),
        ("GET", b"/api/v1/calendly/clients?email=%ff", _auth(), 200, None),  # kept as "%ff"
        ("GET", b"/api/v1/calendly/webhook-events?event=%00%ff", _auth(), 422, None),
        ("GET", b"/api/v1/calendly/appointments/%ff", _auth(), 404, "not_found"),
        ("GET", b"/api/v1/calendly/sync/jobs/%ff", _auth(), 404, "not_found"),
        ("GET", b"/api/v1/calendly/webhook-events?status=%ff", _auth(), 422, "validation_error"),
        ("GET", b"/api/v1/calendly/auth-url?redirect_uri=%ff", _auth(), 422, None),
        ("GET", b"/api/v1/calendly/oauth/callback?code=%ff&state=%ff", [], 422, None),
        ("POST", b"/api/v1/calendly/webhook?integration=%ff", [], 404, "unknown_integration"),
        ("POST", b"/api/v1/calendly/webhook?integration=%C0%AF", [], 404, "unknown_integration"),
    ],
)
async def test_undecodable_values_are_4xx_json(
    api: Api, method: str, target: bytes, headers: list[tuple[bytes, bytes]], status: int,
    code: str | None,
) -> None:  # fmt: skip
    body = b"{}" if method == "POST" else b""
    got, _, payload = await raw_request(api, method, target, headers, body)
    assert got == status, payload
    if status >= 400:
        assert _error_shape(payload) == ("code", "details", "message")
        if code is not None:
            assert payload["error"]["code"] == code


async def test_undecodable_request_id_is_replaced(api: Api) -> None:
    status, headers, body = await raw_request(api, "GET", b"/healthz", [(b"X-Request-Id", b"\xff")])
    assert (status, body, len(headers["X-Request-Id"])) == (200, {"status": "ok"}, 32)


async def test_json_body_that_is_not_utf8_is_400(api: Api) -> None:
    target = b"/api/v1/calendly/integration/toggle"
    status, _, body = await raw_request(api, "PUT", target, _auth(), b'{"enabled": "\xff"}')
    assert (status, body["error"]["code"]) == (400, "invalid_json")


@pytest.mark.parametrize(
    "v1",
    [
        "é" * 64,  # non-ASCII where hex is expected
        "\u0661" * 64,  # Arabic-Indic digits
        "\uff41" * 64,  # fullwidth a
    ],
    ids=["latin", "arabic_indic_digits", "fullwidth"],
)
async def test_non_ascii_signature_is_401(api: Api, v1: str) -> None:
    integration = await api.connect()
    header = f"t={int(time.time())},v1={v1}".encode()
    target = f"/api/v1/calendly/webhook?integration={integration['public_id']}".encode()
    status, _, body = await raw_request(
        api, "POST", target, [(b"Calendly-Webhook-Signature", header)], BODY
    )
    assert (status, body["error"]["code"]) == (401, "malformed_signature")


async def test_non_utf8_signature_bytes_are_401(api: Api) -> None:
    integration = await api.connect()
    header = f"t={int(time.time())},v1=".encode() + b"\xff" * 64
    target = f"/api/v1/calendly/webhook?integration={integration['public_id']}".encode()
    status, _, body = await raw_request(
        api, "POST", target, [(b"Calendly-Webhook-Signature", header)], BODY
    )
    assert (status, body["error"]["code"]) == (401, "malformed_signature")


async def test_a_valid_v1_beside_a_non_ascii_one_is_accepted(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    booking = await book(
        control, await default_event_type(control), "2030-01-07T10:00:00Z", deliver=False
    )
    raw = json.dumps(
        envelope("invitee.created", await invitee_payload(control, booking["invitees"][0]["uri"]))
    ).encode()
    now = int(time.time())
    header = f"t={now},v1={'é' * 64},v1={sign(SIGNING_KEY, raw, now)}".encode()
    target = f"/api/v1/calendly/webhook?integration={integration['public_id']}".encode()
    status, _, body = await raw_request(
        api, "POST", target, [(b"Calendly-Webhook-Signature", header)], raw
    )
    assert (status, body["duplicate"]) == (200, False)
    assert [e["status"] for e in await settled(api)] == ["processed"]


async def test_undecodable_kept_header_does_not_refuse_the_delivery(
    api: Api, control: Sandbox, database_url: str
) -> None:
    import asyncpg

    integration = await api.connect()
    booking = await book(
        control, await default_event_type(control), "2030-01-07T10:00:00Z", deliver=False
    )
    raw = json.dumps(
        envelope("invitee.created", await invitee_payload(control, booking["invitees"][0]["uri"]))
    ).encode()
    now = int(time.time())
    headers = [
        (b"Calendly-Webhook-Signature", f"t={now},v1={sign(SIGNING_KEY, raw, now)}".encode()),
        (b"User-Agent", b"Calendly\xff\xfe/1.0"),
    ]
    target = f"/api/v1/calendly/webhook?integration={integration['public_id']}".encode()
    status, _, body = await raw_request(api, "POST", target, headers, raw)
    conn = await asyncpg.connect(database_url)
    try:
        kept = await conn.fetchval("SELECT headers->>'User-Agent' FROM webhook_events")
    finally:
        await conn.close()
    assert (status, body["duplicate"]) == (200, False)
    assert kept == "Calendly\ufffd\ufffd/1.0"
