"""Manual syncs, sync jobs and sync logs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from calendly_svc import connect, queries, sync
from calendly_svc.api import schemas
from calendly_svc.api.pagination import id_cursor, page_of
from calendly_svc.api.validation import body, path_int, query
from calendly_svc.errors import NotFound
from calendly_svc.keys import DEPS, USER_ID
from calendly_svc.views import iso, sync_log_view

routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


def job_view(job: queries.SyncJob) -> dict[str, Any]:
    """A sync job."""
    return {
        "job_id": job.id,
        "status": job.status,
        "trigger": job.trigger,
        "attempts": job.attempts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "sync_log_id": job.sync_log_id,
        "error": job.error,
    }


@routes.post(f"{PREFIX}/sync/manual")
async def manual(request: web.Request) -> web.Response:
    """Queue a sync now (or return the one already queued or running)."""
    data = await body(request, schemas.ManualSyncBody)
    deps = request.app[DEPS]
    integration = await connect.live_integration(deps, request[USER_ID])
    queued = await sync.enqueue(
        deps, integration, "manual", data.past_days, data.future_days, data.full
    )
    result = {"job_id": queued.job.id, "status": queued.job.status}
    if queued.deduplicated:
        result["deduplicated"] = True
    return web.json_response(result, status=202)


@routes.get(f"{PREFIX}/sync/jobs/{{job_id}}")
async def get_job(request: web.Request) -> web.Response:
    """One sync job of the user's integration."""
    job_id = path_int(request, "job_id")
    deps = request.app[DEPS]
    integration = await connect.any_integration(deps, request[USER_ID])
    async with deps.pool.acquire() as conn:
        job = await queries.get_sync_job(conn, job_id, integration.id)
    if job is None:
        raise NotFound("sync job not found", code="sync_job_not_found")
    return web.json_response(job_view(job))


@routes.get(f"{PREFIX}/sync-logs")
async def list_logs(request: web.Request) -> web.Response:
    """Sync logs, newest first."""
    params = query(request, schemas.SyncLogsQuery)
    deps = request.app[DEPS]
    integration = await connect.any_integration(deps, request[USER_ID])
    before = id_cursor(params.cursor)
    async with deps.pool.acquire() as conn:
        rows = await queries.list_sync_logs(conn, integration.id, before, params.limit + 1)
    page, cursor = page_of(rows, params.limit, lambda row: (row.id,))
    return web.json_response({"items": [sync_log_view(r) for r in page], "next_cursor": cursor})
