"""Calendly's webhook endpoint, and the webhook log the main app reads."""

from __future__ import annotations

import structlog
from aiohttp import web

from calendly_svc.deps import Deps
from calendly_svc.errors import Conflict, NotFound
from calendly_svc.http import responses, schemas
from calendly_svc.http.operations import DB, NOT_CONNECTED, Reply, operation
from calendly_svc.http.pagination import id_cursor, page_of
from calendly_svc.http.validation import BodyTimeout, path_int, query, read_within
from calendly_svc.http.views import webhook_event_view
from calendly_svc.ingest import inbox
from calendly_svc.integrations import lookup
from calendly_svc.keys import DEPS, INBOX_WRITER, USER_ID
from calendly_svc.store import channels, queries

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


# Calendly's side of the route: hand-written, since the edge verifies the raw bytes itself.
RECEIVE_PARAMETERS = (
    {"name": "integration", "in": "query", "required": True,
     "description": "the integration's public id, from the subscription's callback URL",
     "schema": {"type": "string", "format": "uuid"}},
    {"name": "Calendly-Webhook-Signature", "in": "header", "required": True,
     "description": "`t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>`",
     "schema": {"type": "string", "maxLength": 1024}},
)  # fmt: skip
SIGNATURE_CODES = ["missing_signature", "malformed_signature", "stale_signature",
                   "future_signature", "invalid_signature"]  # fmt: skip


async def read_body(deps: Deps, request: web.Request) -> bytes:
    """The raw body (aiohttp refuses more than the app's client_max_size with a 413; a body
    slower than BODY_TIMEOUT_SECONDS gets a 408)."""
    try:
        return await read_within(request)
    except web.HTTPRequestEntityTooLarge:
        deps.metrics.webhooks_rejected.labels("payload_too_large").inc()
        raise
    except BodyTimeout as exc:
        raise inbox.rejected(deps, exc) from None


@routes.post(f"{PREFIX}/webhook")
@operation(
    id="receiveWebhook", summary="A Calendly delivery: verified, stored, processed later",
    tag="webhooks", parameters=RECEIVE_PARAMETERS, raw_body=schemas.WebhookEnvelope,
    responses={200: Reply("Stored (or a duplicate counted)", responses.WebhookReceipt)},
    errors=[{400: ["invalid_payload"], 401: SIGNATURE_CODES, 404: ["unknown_integration"],
             410: ["integration_disconnected"]}, DB],
)  # fmt: skip
async def receive(request: web.Request) -> web.Response:
    """Verify, store durably, answer; processing happens in the worker."""
    deps = request.app[DEPS]
    body = await read_body(deps, request)
    signature = request.headers.get(inbox.SIGNATURE_HEADER)
    integration_id = await inbox.accept(deps, request.query.get("integration"), signature, body)
    envelope = inbox.parse_envelope(deps, body)
    event = inbox.new_event(integration_id, envelope, body, request.headers)
    written = await inbox.store(deps, request.app[INBOX_WRITER], event)
    log.debug("webhook_received", integration_id=integration_id, webhook_event_id=written.id,
              calendly_event=envelope["event"], duplicate=not written.inserted)  # fmt: skip
    return responses.receipt_reply(written.id, not written.inserted)


@routes.get(f"{PREFIX}/webhook-events")
@operation(
    id="listWebhookEvents", summary="The webhook log, newest first", tag="webhooks",
    query=schemas.WebhookEventsQuery, responses={200: responses.WebhookEventPage},
    errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def list_events(request: web.Request) -> web.Response:
    """The webhook log: received, processed, ignored, failed, with errors and attempts."""
    params = query(request, schemas.WebhookEventsQuery)
    deps = request.app[DEPS]
    integration = await lookup.any_integration(deps, request[USER_ID])
    before = id_cursor(params.cursor)
    async with deps.pool.acquire() as conn:
        rows = await queries.list_webhook_events(
            conn, integration.id, params.status, params.event, before, params.limit + 1
        )
    page, cursor = page_of(rows, params.limit, lambda row: (row.id,))
    items = [webhook_event_view(r) for r in page]
    return responses.reply(responses.WebhookEventPage(items=items, next_cursor=cursor))


@routes.post(f"{PREFIX}/webhook-events/{{event_id}}/replay")
@operation(
    id="replayWebhookEvent", summary="Queue a logged delivery again", tag="webhooks",
    path={"event_id": "the delivery's id in the webhook log"},
    responses={202: Reply("Queued again", responses.WebhookEvent)},
    errors=[{404: ["not_found", "not_connected", "webhook_event_not_found"],
             409: ["event_in_progress"]}, DB],
)  # fmt: skip
async def replay(request: web.Request) -> web.Response:
    """Queue a logged delivery again (e.g. after fixing a mapping or re-enabling sync)."""
    event_id = path_int(request, "event_id")
    deps = request.app[DEPS]
    integration = await lookup.any_integration(deps, request[USER_ID])
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await queries.replay_webhook_event(conn, event_id, integration.id)
        if row is None:
            exists = await queries.get_webhook_event(conn, event_id, integration.id)
        else:
            await queries.notify(conn, channels.INBOX, str(row.id))
    if row is None:
        if exists is None:
            raise NotFound("webhook event not found", code="webhook_event_not_found")
        raise Conflict("the event is being processed right now", code="event_in_progress")
    return responses.reply(webhook_event_view(row), status=202)
