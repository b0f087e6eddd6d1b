"""Receiving webhook deliveries: verify, store durably, wake the worker."""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from calendly_svc import channels, queries
from calendly_svc.deps import Deps
from calendly_svc.errors import BadRequest, NotFound, ServiceError, Unauthorized, Unavailable
from calendly_svc.event_types import parse_time
from calendly_svc.signatures import SignatureError, verify

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "Calendly-Webhook-Signature"
KEPT_HEADERS = (SIGNATURE_HEADER, "User-Agent", "Content-Type", "X-Request-Id")


class Gone(ServiceError):
    """The integration was disconnected: Calendly deletes the subscription on a 410."""

    status = 410
    code = "integration_disconnected"


def _public_id(raw: str | None) -> UUID:
    """The integration named in the callback URL."""
    try:
        return UUID(raw or "")
    except ValueError:
        raise NotFound("unknown integration", code="unknown_integration") from None


async def find_integration(deps: Deps, raw_public_id: str | None) -> queries.Integration:
    """The live integration this delivery is for: 404 unknown, 410 disconnected."""
    public_id = _public_id(raw_public_id)
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_public_id(conn, public_id)
    if integration is None:
        raise NotFound("unknown integration", code="unknown_integration")
    if integration.status == "disconnected":
        raise Gone("this integration was disconnected")
    return integration


def check_signature(
    deps: Deps, integration: queries.Integration, header: str | None, body: bytes
) -> None:
    """Accept the integration's own key or the app's key."""
    keys = [deps.settings.calendly_webhook_signing_key.get_secret_value()]
    if integration.webhook_signing_key_enc is not None:
        keys.append(deps.cipher.decrypt(integration.webhook_signing_key_enc))
    settings = deps.settings
    try:
        verify(header, body, keys, time.time(), settings.webhook_max_age_seconds,
               settings.webhook_max_future_seconds)  # fmt: skip
    except SignatureError as exc:
        raise Unauthorized("webhook signature rejected", {"reason": exc.reason},
                           code=exc.reason) from None  # fmt: skip


def parse_envelope(body: bytes) -> dict[str, Any]:
    """A Calendly envelope: an object with event, created_at and an object payload."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON", code="invalid_json") from None
    ok = (
        isinstance(data, dict)
        and isinstance(data.get("event"), str)
        and isinstance(data.get("created_at"), str)
        and isinstance(data.get("payload"), dict)
    )
    if not ok:
        raise BadRequest("not a Calendly webhook envelope (event, created_at, payload)",
                         code="invalid_payload")  # fmt: skip
    return data  # type: ignore[no-any-return]


def dedup_key(envelope: dict[str, Any]) -> str:
    """Event + subject URI + subject version (its updated_at, else the envelope's created_at)."""
    payload = envelope["payload"]
    version = payload.get("updated_at") or envelope["created_at"]
    return f"{envelope['event']}|{payload.get('uri')}|{version}"


def new_event(
    integration: queries.Integration, envelope: dict[str, Any], headers: dict[str, str]
) -> queries.NewWebhookEvent:
    """The inbox row for a verified delivery."""
    uri = envelope["payload"].get("uri")
    try:
        created = parse_time(envelope["created_at"])
    except ValueError:
        created = None
    return queries.NewWebhookEvent(
        integration_id=integration.id,
        event=envelope["event"],
        dedup_key=dedup_key(envelope),
        payload_uri=uri if isinstance(uri, str) else None,
        calendly_created_at=created,
        headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
        body=envelope,
    )


async def store(deps: Deps, event: queries.NewWebhookEvent) -> queries.Inserted:
    """Insert (or count a duplicate) and NOTIFY in one transaction; 503 if Postgres fails."""
    try:
        async with deps.pool.acquire() as conn, conn.transaction():
            written = await queries.insert_webhook_event(conn, event)
            if written.inserted:
                await queries.notify(conn, channels.INBOX, str(written.id))
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        log.warning("webhook_store_failed", error=type(exc).__name__)
        raise Unavailable("the event could not be stored; retry later") from None
    return written
