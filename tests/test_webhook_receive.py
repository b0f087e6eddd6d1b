"""Receiving deliveries: signatures, time window, size, shape, dedup, disconnected integrations."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
import pytest

from calendly_svc.http import responses
from calendly_svc.ingest.signatures import sign, signature_header
from tests.conftest import SIGNING_KEY, Api, Sandbox
from tests.helpers import (
    appointments,
    book,
    default_event_type,
    envelope,
    invitee_payload,
    post_webhook,
    settled,
)


async def _created_delivery(api: Api, control: Sandbox) -> tuple[str, dict[str, Any]]:
    """Connect, book without delivery, and build the invitee.created Calendly would send."""
    integration = await api.connect()
    booking = await book(
        control, await default_event_type(control), "2030-01-07T10:00:00Z", deliver=False
    )
    payload = await invitee_payload(control, booking["invitees"][0]["uri"])
    return integration["public_id"], envelope("invitee.created", payload)


async def _stored(database_url: str) -> list[asyncpg.Record]:
    """Every inbox row."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT * FROM webhook_events ORDER BY id")
    finally:
        await conn.close()


async def test_valid_delivery_is_stored_and_applied(api: Api, control: Sandbox) -> None:
    public_id, delivery = await _created_delivery(api, control)
    status, body = await post_webhook(api, public_id, delivery)
    log = await settled(api)
    [appointment] = await appointments(api)
    assert (status, body["duplicate"]) == (200, False)
    assert [(e["event"], e["status"], e["attempts"]) for e in log] == [
        ("invitee.created", "processed", 1)
    ]
    assert appointment["calendly_invitee_uri"] == delivery["payload"]["uri"]


async def test_the_body_is_stored_as_signed_and_applied(
    api: Api, control: Sandbox, database_url: str
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    delivery["payload"]["name"] = "Zoë 🙂 O\u2019Brien"
    # raw UTF-8, odd spacing and a surrogate pair written as escapes: kept byte for byte
    raw = (
        json.dumps(delivery, ensure_ascii=False, indent=3)
        .encode()
        .replace("🙂".encode(), b"\\ud83d\\ude42")
    )
    status, _ = await post_webhook(api, public_id, raw)
    await settled(api)
    [row] = await _stored(database_url)
    [appointment] = await appointments(api)
    assert (status, row["body"], appointment["client"]["name"]) == (
        200,
        raw.decode(),
        "Zoë 🙂 O\u2019Brien",
    )


async def test_kept_headers_are_stored_whatever_their_case(
    api: Api, control: Sandbox, database_url: str
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    raw = json.dumps(delivery).encode()
    headers = {  # lower case, as an HTTP/2 proxy forwards them
        "calendly-webhook-signature": signature_header(SIGNING_KEY, raw, int(time.time())),
        "content-type": "application/json",
        "user-agent": "Calendly-Webhooks",
        "x-request-id": "req-42",
        "x-other": "not kept",
    }
    resp = await api.client.post(
        f"/api/v1/calendly/webhook?integration={public_id}", data=raw, headers=headers
    )
    [row] = await _stored(database_url)
    assert (resp.status, json.loads(row["headers"])) == (
        200,
        {
            "Calendly-Webhook-Signature": headers["calendly-webhook-signature"],
            "User-Agent": "Calendly-Webhooks",
            "Content-Type": "application/json",
            "X-Request-Id": "req-42",
        },
    )


async def test_duplicates_are_stored_once_and_applied_once(
    api: Api, control: Sandbox, database_url: str
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    answers = [await post_webhook(api, public_id, delivery) for _ in range(3)]
    await settled(api)
    rows = await _stored(database_url)
    assert [(s, b["duplicate"]) for s, b in answers] == [(200, False), (200, True), (200, True)]
    assert [(r["status"], r["duplicates"]) for r in rows] == [("processed", 2)]
    assert len(await appointments(api)) == 1


async def test_app_key_and_integration_key_are_both_accepted(
    api: Api, control: Sandbox, database_url: str
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    from calendly_svc.keys import CIPHER

    conn = await asyncpg.connect(database_url)
    key_enc = await conn.fetchval("SELECT webhook_signing_key_enc FROM integrations")
    await conn.close()
    own_key = api.client.server.app[CIPHER].decrypt(key_enc)
    app_key, _ = await post_webhook(api, public_id, delivery, key=SIGNING_KEY)
    other = envelope(
        "invitee.created", delivery["payload"] | {"updated_at": "2030-01-01T00:00:00.000000Z"}
    )
    own, _ = await post_webhook(api, public_id, other, key=own_key)
    assert (app_key, own) == (200, 200)


@pytest.mark.parametrize(
    ("make_header", "reason"),
    [
        (lambda raw, t: None, "missing_signature"),
        (lambda raw, t: "", "missing_signature"),
        (lambda raw, t: "v1=abc", "malformed_signature"),
        (lambda raw, t: f"t={t}", "malformed_signature"),
        (lambda raw, t: f"t=soon,v1={sign(SIGNING_KEY, raw, t)}", "malformed_signature"),
        (lambda raw, t: f"t={t},v1={sign('wrong-key', raw, t)}", "invalid_signature"),
        (lambda raw, t: f"t={t},v1={sign(SIGNING_KEY, raw + b' ', t)}", "invalid_signature"),
        (lambda raw, t: f"t={t - 181},v1={sign(SIGNING_KEY, raw, t - 181)}", "stale_signature"),
        (lambda raw, t: f"t={t + 61},v1={sign(SIGNING_KEY, raw, t + 61)}", "future_signature"),
        (lambda raw, t: f"t={t * 1000},v1={sign(SIGNING_KEY, raw, t * 1000)}", "future_signature"),
    ],
)
async def test_rejected_signatures_store_nothing(
    api: Api, control: Sandbox, database_url: str, make_header: Any, reason: str
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    raw = json.dumps(delivery).encode()
    header = make_header(raw, int(time.time()))
    status, body = await post_webhook(api, public_id, raw, header=header if header else "")
    assert (status, body["error"]["code"]) == (401, reason)
    assert await _stored(database_url) == []


async def test_signature_window_edges_are_accepted(api: Api, control: Sandbox) -> None:
    public_id, delivery = await _created_delivery(api, control)
    now = int(time.time())
    old, _ = await post_webhook(api, public_id, delivery, timestamp=now - 170)
    ahead = envelope(
        "invitee.created", delivery["payload"] | {"updated_at": "2031-01-01T00:00:00Z"}
    )
    future, _ = await post_webhook(api, public_id, ahead, timestamp=now + 50)
    assert (old, future) == (200, 200)


async def test_any_of_several_v1_values_may_match(api: Api, control: Sandbox) -> None:
    public_id, delivery = await _created_delivery(api, control)
    raw = json.dumps(delivery).encode()
    t = int(time.time())
    header = f"t={t},v1={'0' * 64},v1={sign(SIGNING_KEY, raw, t)}"
    status, _ = await post_webhook(api, public_id, raw, header=header)
    assert status == 200


async def test_oversize_body_is_413(api: Api, control: Sandbox, database_url: str) -> None:
    public_id, delivery = await _created_delivery(api, control)
    delivery["payload"]["padding"] = "x" * (1024 * 1024)
    status, body = await post_webhook(api, public_id, delivery)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert await _stored(database_url) == []


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[]", "invalid_payload"),
        (b'{"event": "invitee.created", "created_at": "x"}', "invalid_payload"),
        (b'{"event": 5, "created_at": "x", "payload": {}}', "invalid_payload"),
        (b'{"event": "invitee.created", "created_at": "x", "payload": []}', "invalid_payload"),
        # NUL or an unpaired surrogate in a key column (never typed by an invitee)
        (b'{"event": "x", "created_at": "x", "payload": {"uri": "a\\u0000b"}}', "invalid_payload"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        # JSON to Python, not to Postgres's jsonb: refused as bad input, not as an outage
        (b'{"event": "x", "created_at": "x", "payload": {"n": NaN}}', "invalid_json"),
        (b'{"event": "x", "created_at": "x", "payload": {"n": -Infinity}}', "invalid_json"),
        (b'{"event": "x\\ud800", "created_at": "x", "payload": {}}', "invalid_payload"),
        (b'{"event": "x", "created_at": "x", "payload": {"n": 1e400000}}', "invalid_json"),
    ],
)
async def test_malformed_bodies_are_400(
    api: Api, control: Sandbox, database_url: str, raw: bytes, code: str
) -> None:
    public_id, _ = await _created_delivery(api, control)
    status, body = await post_webhook(api, public_id, raw)
    assert (status, body["error"]["code"]) == (400, code)
    assert await _stored(database_url) == []


async def test_a_refused_body_does_not_fail_deliveries_stored_with_it(
    api: Api, control: Sandbox, database_url: str
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    bad = b'{"event": "x", "created_at": "x", "payload": {"uri": "u\\udc00"}}'
    stamps = [f"2026-11-29T10:00:{n:02}.000000Z" for n in range(12)]
    good = [  # twelve versions of one invitee: distinct deliveries
        json.dumps(
            delivery | {"created_at": t, "payload": delivery["payload"] | {"updated_at": t}}
        ).encode()
        for t in stamps
    ]
    answers = await asyncio.gather(*(post_webhook(api, public_id, raw) for raw in [*good, bad]))
    await settled(api)
    rows = await _stored(database_url)
    assert [status for status, _ in answers] == [200] * 12 + [400]
    assert answers[-1][1]["error"]["code"] == "invalid_payload"
    assert sorted(r["calendly_created_at"].second for r in rows) == list(range(12))


async def test_unknown_integration_is_404(api: Api, control: Sandbox) -> None:
    _, delivery = await _created_delivery(api, control)
    unknown, b1 = await post_webhook(api, "00000000-0000-0000-0000-000000000000", delivery)
    junk, b2 = await post_webhook(api, "not-a-uuid", delivery)
    assert (unknown, b1["error"]["code"]) == (404, "unknown_integration")
    assert (junk, b2["error"]["code"]) == (404, "unknown_integration")


async def test_disconnected_integration_is_410(api: Api, control: Sandbox) -> None:
    public_id, delivery = await _created_delivery(api, control)
    await api.call("DELETE", "/integration")
    status, body = await post_webhook(api, public_id, delivery)
    assert (status, body["error"]["code"]) == (410, "integration_disconnected")


async def test_webhook_needs_no_bearer_token(api: Api, control: Sandbox) -> None:
    public_id, delivery = await _created_delivery(api, control)
    raw = json.dumps(delivery).encode()
    t = int(time.time())
    resp = await api.client.post(
        f"/api/v1/calendly/webhook?integration={public_id}",
        data=raw,
        headers={"Calendly-Webhook-Signature": f"t={t},v1={sign(SIGNING_KEY, raw, t)}"},
    )
    assert resp.status == 200


async def test_unsupported_event_is_stored_and_ignored(api: Api, control: Sandbox) -> None:
    public_id, _ = await _created_delivery(api, control)
    status, _ = await post_webhook(api, public_id, envelope("meeting_recap.created", {"uri": "x"}))
    log = await settled(api)
    assert status == 200
    assert [(e["event"], e["status"], e["reason"]) for e in log] == [
        ("meeting_recap.created", "ignored", "unsupported_event")
    ]


async def test_malformed_invitee_payload_fails_without_retries(api: Api, control: Sandbox) -> None:
    public_id, _ = await _created_delivery(api, control)
    status, _ = await post_webhook(api, public_id, envelope("invitee.created", {"uri": "x"}))
    log = await settled(api)
    assert status == 200
    assert [(e["status"], e["attempts"]) for e in log] == [("failed", 1)]
    assert log[0]["error"].startswith("PayloadError")


async def test_reconnect_rotates_the_key_and_deliveries_follow(
    api: Api, control: Sandbox, database_url: str
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    from calendly_svc.keys import CIPHER

    async def own_key() -> str:
        conn = await asyncpg.connect(database_url)
        key_enc = await conn.fetchval("SELECT webhook_signing_key_enc FROM integrations")
        await conn.close()
        return str(api.client.server.app[CIPHER].decrypt(key_enc))

    first_key = await own_key()
    assert (await post_webhook(api, public_id, delivery, key=first_key))[0] == 200
    await api.connect()
    second_key = await own_key()
    later = envelope(
        "invitee.created", delivery["payload"] | {"updated_at": "2031-01-01T00:00:00Z"}
    )
    status, _ = await post_webhook(api, public_id, later, key=second_key)
    stale, body = await post_webhook(api, public_id, later | {"created_at": "x"}, key=first_key)
    assert first_key != second_key
    assert status == 200
    assert (stale, body["error"]["code"]) == (401, "invalid_signature")


async def test_disconnect_is_seen_at_once_by_this_process(api: Api, control: Sandbox) -> None:
    public_id, delivery = await _created_delivery(api, control)
    assert (await post_webhook(api, public_id, delivery))[0] == 200
    await api.call("DELETE", "/integration")
    status, body = await post_webhook(api, public_id, delivery)
    assert (status, body["error"]["code"]) == (410, "integration_disconnected")


async def test_a_stored_delivery_logs_no_request_line_a_refused_one_does(
    api: Api, control: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    public_id, delivery = await _created_delivery(api, control)
    capfd.readouterr()
    stored, _ = await post_webhook(api, public_id, delivery)
    refused, _ = await post_webhook(api, public_id, delivery, key="not-the-key")
    read, _ = await api.call("GET", "/status")
    _, err = capfd.readouterr()
    lines = [json.loads(line) for line in err.splitlines() if '"http_request"' in line]
    assert (stored, refused, read) == (200, 401, 200)
    assert [(line["path"], line["status"]) for line in lines] == [
        ("/api/v1/calendly/webhook", 401),
        ("/api/v1/calendly/status", 200),
    ]


@pytest.mark.parametrize(("stored_id", "duplicate"), [(1, False), (2**63 - 1, True), (42, True)])
def test_the_receipt_is_the_models_json(stored_id: int, duplicate: bool) -> None:
    model = responses.WebhookReceipt(id=stored_id, duplicate=duplicate)
    expected = responses.reply(model)
    actual = responses.receipt_reply(stored_id, duplicate)
    assert (expected.body, expected.content_type, expected.charset) == (
        actual.body,
        actual.content_type,
        actual.charset,
    )
