"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from calendly_svc.api import responses
from calendly_svc.api.middleware import error_response
from calendly_svc.api.operations import Reply, operation
from calendly_svc.db import missing_migrations
from calendly_svc.keys import DB_POOL, EXPECTED_MIGRATIONS, METRICS

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
@operation(id="healthz", summary="The process is up", tag="health",
           responses={200: Reply("Alive", responses.Health)})  # fmt: skip
async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return responses.reply(responses.Health(status="ok"))


@routes.get("/metrics")
@operation(
    id="metrics", summary="Prometheus text exposition", tag="health",
    responses={200: Reply("Metrics", content={"text/plain": {"schema": {"type": "string"}}})},
)  # fmt: skip
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition; gauges are read from Postgres when it answers."""
    registry = request.app[METRICS]
    try:
        async with asyncio.timeout(3):
            async with request.app[DB_POOL].acquire() as conn:
                await registry.refresh_gauges(conn)
    except Exception:  # stale gauges are better than no metrics during an outage
        log.warning("metrics_gauges_unavailable")
    body = registry.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/readyz")
@operation(
    id="readyz", summary="The database answers and every migration is applied", tag="health",
    responses={200: Reply("Ready", responses.Ready)},
    errors={503: ["database_unavailable", "migrations_pending"]},
)  # fmt: skip
async def readyz(request: web.Request) -> web.Response:
    """The database answers and every migration is applied."""
    try:
        async with asyncio.timeout(3):
            async with request.app[DB_POOL].acquire() as conn:
                missing = await missing_migrations(conn, request.app[EXPECTED_MIGRATIONS])
    except (OSError, TimeoutError, Exception) as exc:
        return error_response(
            503, "database_unavailable", f"database unreachable: {type(exc).__name__}"
        )
    if missing:
        return error_response(503, "migrations_pending", "migrations not applied", sorted(missing))
    return responses.reply(responses.Ready(status="ready"))
