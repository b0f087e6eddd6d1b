"""Manual syncs, sync jobs and sync logs."""

from __future__ import annotations

from aiohttp import web

from calendly_svc.errors import NotFound
from calendly_svc.http import responses, schemas
from calendly_svc.http.operations import DB, NOT_CONNECTED, Reply, operation
from calendly_svc.http.pagination import id_cursor, page_of
from calendly_svc.http.validation import body, path_int, query
from calendly_svc.http.views import job_view, sync_log_view
from calendly_svc.integrations import lookup, sync
from calendly_svc.keys import DEPS, USER_ID
from calendly_svc.store import queries

routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


@routes.post(f"{PREFIX}/sync/manual")
@operation(
    id="requestManualSync", summary="Queue a sync now (or return the one queued or running)",
    tag="sync", body=schemas.ManualSyncBody,
    responses={202: Reply("Queued, or the sync already queued or running", responses.SyncQueued)},
    errors=[NOT_CONNECTED, {409: ["integration_not_active", "sync_disabled"]}, DB],
)  # fmt: skip
async def manual(request: web.Request) -> web.Response:
    """Queue a sync now (or return the one already queued or running)."""
    data = await body(request, schemas.ManualSyncBody)
    deps = request.app[DEPS]
    integration = await lookup.live_integration(deps, request[USER_ID])
    queued = await sync.enqueue(
        deps, integration, "manual", data.past_days, data.future_days, data.full
    )
    result = responses.SyncQueued(job_id=queued.job.id, status=queued.job.status)  # type: ignore[arg-type]
    if queued.deduplicated:
        result.deduplicated = True  # set, so the body carries it
    return responses.reply(result, status=202)


@routes.get(f"{PREFIX}/sync/jobs/{{job_id}}")
@operation(
    id="getSyncJob", summary="One sync job", tag="sync",
    path={"job_id": "the job_id POST /sync/manual returned"}, responses={200: responses.SyncJob},
    errors=[{404: ["not_found", "not_connected", "sync_job_not_found"]}, DB],
)  # fmt: skip
async def get_job(request: web.Request) -> web.Response:
    """One sync job of the user's integration."""
    job_id = path_int(request, "job_id")
    deps = request.app[DEPS]
    integration = await lookup.any_integration(deps, request[USER_ID])
    async with deps.pool.acquire() as conn:
        job = await queries.get_sync_job(conn, job_id, integration.id)
    if job is None:
        raise NotFound("sync job not found", code="sync_job_not_found")
    return responses.reply(job_view(job))


@routes.get(f"{PREFIX}/sync-logs")
@operation(
    id="listSyncLogs", summary="Sync logs, newest first", tag="sync",
    query=schemas.SyncLogsQuery, responses={200: responses.SyncLogPage}, errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def list_logs(request: web.Request) -> web.Response:
    """Sync logs, newest first."""
    params = query(request, schemas.SyncLogsQuery)
    deps = request.app[DEPS]
    integration = await lookup.any_integration(deps, request[USER_ID])
    before = id_cursor(params.cursor)
    async with deps.pool.acquire() as conn:
        rows = await queries.list_sync_logs(conn, integration.id, before, params.limit + 1)
    page, cursor = page_of(rows, params.limit, lambda row: (row.id,))
    items = [sync_log_view(r) for r in page]
    return responses.reply(responses.SyncLogPage(items=items, next_cursor=cursor))
