"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from calendly_svc.http import responses
from calendly_svc.http.middleware import error_response
from calendly_svc.http.operations import Reply, operation
from calendly_svc.http.probes import SharedRead
from calendly_svc.keys import DB_POOL, EXPECTED_MIGRATIONS, METRICS, SETTINGS
from calendly_svc.store.db import missing_migrations

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
# /metrics and /readyz read Postgres through these: one read at a time, reused for a while
GAUGES_READ = web.AppKey("gauges_read", SharedRead[None])
MIGRATIONS_READ = web.AppKey("migrations_read", SharedRead[set[str]])


def install(app: web.Application) -> None:
    """The probes' shared reads, cached for PROBE_CACHE_SECONDS."""
    ttl = app[SETTINGS].probe_cache_seconds

    async def gauges() -> None:
        app[METRICS].probe_queries.labels("metrics").inc()
        async with asyncio.timeout(3), app[DB_POOL].acquire() as conn:
            await app[METRICS].refresh_gauges(conn)

    async def migrations() -> set[str]:
        app[METRICS].probe_queries.labels("readyz").inc()
        async with asyncio.timeout(3), app[DB_POOL].acquire() as conn:
            return await missing_migrations(conn, app[EXPECTED_MIGRATIONS])

    app[GAUGES_READ] = SharedRead(gauges, ttl)
    app[MIGRATIONS_READ] = SharedRead(migrations, ttl)


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
        await request.app[GAUGES_READ].get()
    except Exception:  # stale gauges are better than no metrics during an outage
        log.warning("metrics_gauges_unavailable")
    await _not_ready(request.app)
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
    if (problem := await _not_ready(request.app)) is not None:
        return error_response(503, *problem)
    return responses.reply(responses.Ready(status="ready"))


async def _not_ready(app: web.Application) -> tuple[str, str, list[str] | None] | None:
    """Why /readyz answers 503 (None when ready); calendly_svc_ready follows the same read."""
    problem: tuple[str, str, list[str] | None] | None = None
    try:
        missing = await app[MIGRATIONS_READ].get()
    except Exception as exc:
        problem = ("database_unavailable", f"database unreachable: {type(exc).__name__}", None)
    else:
        if missing:
            problem = ("migrations_pending", "migrations not applied", sorted(missing))
    app[METRICS].ready.set(0 if problem else 1)
    return problem
