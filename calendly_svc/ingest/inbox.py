"""Receiving webhook deliveries: verify, store durably, wake the worker."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import structlog

from calendly_svc.apply.times import parse_time
from calendly_svc.deps import Deps
from calendly_svc.errors import BadRequest, NotFound, ServiceError, Unauthorized, Unavailable
from calendly_svc.ingest.inbox_writer import InboxWriter
from calendly_svc.ingest.signatures import SignatureError, verify
from calendly_svc.store import queries
from calendly_svc.store.receivers import Receiver
from calendly_svc.store.storable import has_unstorable, storable_text

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "Calendly-Webhook-Signature"
KEPT_HEADERS = (SIGNATURE_HEADER, "User-Agent", "Content-Type", "X-Request-Id")


class Gone(ServiceError):
    """The integration was disconnected: Calendly deletes the subscription on a 410."""

    status = 410
    code = "integration_disconnected"


# Any database failure while accepting a delivery: answer 503 so Calendly retries.
STORE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def _unavailable(deps: Deps, exc: BaseException) -> ServiceError:
    """503 for a delivery that could not be checked or stored."""
    log.warning("webhook_store_failed", error=type(exc).__name__)
    return rejected(deps, Unavailable("the event could not be stored; retry later"))


def rejected(deps: Deps, error: ServiceError) -> ServiceError:
    """Count a refused delivery by reason; returns the error to raise."""
    deps.metrics.webhooks_rejected.labels(error.code).inc()
    return error


def _unknown(deps: Deps) -> ServiceError:
    """404 for a callback URL naming no integration."""
    return rejected(deps, NotFound("unknown integration", code="unknown_integration"))


async def _load_receiver(deps: Deps, public_id: UUID) -> Receiver:
    """Read the integration and its keys (the app's key always counts)."""
    try:
        async with deps.pool.acquire() as conn:
            integration = await queries.get_integration_by_public_id(conn, public_id)
    except STORE_ERRORS as exc:
        raise _unavailable(deps, exc) from None
    if integration is None:
        raise _unknown(deps)
    keys = [deps.settings.calendly_webhook_signing_key.get_secret_value()]
    if integration.webhook_signing_key_enc is not None:
        keys.append(deps.cipher.decrypt(integration.webhook_signing_key_enc))
    receiver = Receiver(integration.id, integration.status == "disconnected", tuple(keys))
    deps.receivers.put(public_id, receiver)
    return receiver


def _public_id(deps: Deps, raw: str | None) -> UUID:
    """The integration named in the callback URL."""
    try:
        return deps.receivers.public_id(raw or "")
    except ValueError:
        raise _unknown(deps) from None


def _verify(deps: Deps, receiver: Receiver, header: str | None, body: bytes) -> None:
    """Raise SignatureError unless one of the receiver's keys signed the body in time."""
    settings = deps.settings
    verify(header, body, receiver.keys, time.time(), settings.webhook_max_age_seconds,
           settings.webhook_max_future_seconds)  # fmt: skip


async def accept(deps: Deps, raw_public_id: str | None, header: str | None, body: bytes) -> int:
    """The integration id a verified delivery belongs to: 404 unknown, 410 disconnected,
    401 when no key (the integration's own or the app's) signed it."""
    public_id = _public_id(deps, raw_public_id)
    cached = deps.receivers.get(public_id)
    receiver = cached or await _load_receiver(deps, public_id)
    if receiver.disconnected:
        raise rejected(deps, Gone("this integration was disconnected"))
    try:
        try:
            _verify(deps, receiver, header, body)
        except SignatureError:
            if cached is None:
                raise
            _verify(deps, await _load_receiver(deps, public_id), header, body)
    except SignatureError as exc:
        error = Unauthorized("webhook signature rejected", {"reason": exc.reason}, code=exc.reason)
        raise rejected(deps, error) from None
    return receiver.integration_id


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    """A JSON number; one beyond a float's range (1e400000) is refused, not read as infinity."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


# built once: json.loads with hooks builds a decoder per call
_DECODER = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite)


def _decode(text: str) -> Any:
    """JSON as _DECODER reads it, by orjson where it can: orjson refuses what _DECODER refuses
    (NaN, Infinity, numbers beyond a float) and more (escaped unpaired surrogates, deep nesting),
    which _DECODER then decides; it reads an integer beyond 64 bits as a float, and the edge
    reads only strings."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _DECODER.decode(text)


def parse_envelope(deps: Deps, body: bytes) -> dict[str, Any]:
    """A Calendly envelope: an object with event, created_at and an object payload."""
    try:
        data = _decode(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise rejected(deps, BadRequest("the body is not JSON", code="invalid_json")) from None
    ok = (
        isinstance(data, dict)
        and isinstance(data.get("event"), str)
        and isinstance(data.get("created_at"), str)
        and isinstance(data.get("payload"), dict)
    )
    if not ok:
        message = "not a Calendly webhook envelope (event, created_at, payload)"
        raise rejected(deps, BadRequest(message, code="invalid_payload"))
    # the key columns only: the body is stored as signed, and the worker makes its strings storable
    if has_unstorable(dedup_key(data)):
        message = "event, payload.uri or payload.updated_at holds NUL or an unpaired surrogate"
        raise rejected(deps, BadRequest(message, code="invalid_payload"))
    return data  # type: ignore[no-any-return]


def dedup_key(envelope: dict[str, Any]) -> str:
    """Event + subject URI + subject version (its updated_at, else the envelope's created_at)."""
    payload = envelope["payload"]
    version = payload.get("updated_at") or envelope["created_at"]
    return f"{envelope['event']}|{payload.get('uri')}|{version}"


def new_event(
    integration_id: int, envelope: dict[str, Any], body: bytes, headers: Mapping[str, str]
) -> queries.NewWebhookEvent:
    """The inbox row for a verified delivery; the body is stored as it was signed, with the
    kept headers under their canonical names (the request's headers match case-insensitively)."""
    uri = envelope["payload"].get("uri")
    try:
        created = parse_time(envelope["created_at"])
    except ValueError:
        created = None
    return queries.NewWebhookEvent(
        integration_id=integration_id,
        event=envelope["event"],
        dedup_key=dedup_key(envelope),
        payload_uri=uri if isinstance(uri, str) else None,
        calendly_created_at=created,
        headers=orjson.dumps(
            {name: storable_text(headers[name]) for name in KEPT_HEADERS if name in headers}
        ).decode(),
        body=body.decode("utf-8"),
    )


async def store(
    deps: Deps, writer: InboxWriter, event: queries.NewWebhookEvent
) -> queries.StoredEvent:
    """Store (or count a duplicate) durably; 400 if Postgres refuses a value, 503 if it fails."""
    try:
        written = await writer.store(event)
    except asyncpg.DataError:  # parse_envelope refuses what we know of; never a 503 for input
        error = BadRequest("the body is not storable JSON", code="invalid_json")
        raise rejected(deps, error) from None
    except STORE_ERRORS as exc:
        raise _unavailable(deps, exc) from None
    deps.metrics.webhook_stored(event.event, written.inserted)
    return written
