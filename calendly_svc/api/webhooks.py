"""Calendly's webhook endpoint, and the webhook log the main app reads."""

from __future__ import annotations

import structlog
from aiohttp import web

from calendly_svc import channels, connect, inbox, queries
from calendly_svc.api import schemas
from calendly_svc.api.pagination import id_cursor, page_of
from calendly_svc.api.validation import path_int, query
from calendly_svc.errors import Conflict, NotFound
from calendly_svc.keys import DEPS, INBOX_WRITER, USER_ID
from calendly_svc.views import webhook_event_view

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


@routes.post(f"{PREFIX}/webhook")
async def receive(request: web.Request) -> web.Response:
    """Verify, store durably, answer; processing happens in the worker."""
    deps = request.app[DEPS]
    body = await inbox.read_body(deps, request)
    signature = request.headers.get(inbox.SIGNATURE_HEADER)
    integration_id = await inbox.accept(deps, request.query.get("integration"), signature, body)
    envelope = inbox.parse_envelope(deps, body)
    event = inbox.new_event(integration_id, envelope, body, request.headers)
    written = await inbox.store(deps, request.app[INBOX_WRITER], event)
    log.debug("webhook_received", integration_id=integration_id, webhook_event_id=written.id,
              calendly_event=envelope["event"], duplicate=not written.inserted)  # fmt: skip
    return web.json_response({"id": written.id, "duplicate": not written.inserted})


@routes.get(f"{PREFIX}/webhook-events")
async def list_events(request: web.Request) -> web.Response:
    """The webhook log: received, processed, ignored, failed, with errors and attempts."""
    params = query(request, schemas.WebhookEventsQuery)
    deps = request.app[DEPS]
    integration = await connect.any_integration(deps, request[USER_ID])
    before = id_cursor(params.cursor)
    async with deps.pool.acquire() as conn:
        rows = await queries.list_webhook_events(
            conn, integration.id, params.status, params.event, before, params.limit + 1
        )
    page, cursor = page_of(rows, params.limit, lambda row: (row.id,))
    return web.json_response(
        {"items": [webhook_event_view(r) for r in page], "next_cursor": cursor}
    )


@routes.post(f"{PREFIX}/webhook-events/{{event_id}}/replay")
async def replay(request: web.Request) -> web.Response:
    """Queue a logged delivery again (e.g. after fixing a mapping or re-enabling sync)."""
    event_id = path_int(request, "event_id")
    deps = request.app[DEPS]
    integration = await connect.any_integration(deps, request[USER_ID])
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
    return web.json_response(webhook_event_view(row), status=202)
