"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from calendly_svc.api.middleware import error_response
from calendly_svc.db import missing_migrations
from calendly_svc.keys import DB_POOL, EXPECTED_MIGRATIONS, METRICS

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return web.json_response({"status": "ok"})


@routes.get("/metrics")
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
    return web.json_response({"status": "ready"})
