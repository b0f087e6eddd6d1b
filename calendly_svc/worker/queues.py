"""The app's queues on the lease engine: the inbox, the outbox, sync jobs and the scheduler."""

from __future__ import annotations

from calendly_svc.deps import Deps
from calendly_svc.integrations.sync import enqueue_due, process_sync_job
from calendly_svc.integrations.webhook_health import check_due
from calendly_svc.store import channels, queries
from calendly_svc.worker.engine import Queue, Worker
from calendly_svc.worker.outbox import deliver
from calendly_svc.worker.processing import process_webhook_group
from calendly_svc.worker.reschedules import check_reschedule_waits
from calendly_svc.worker.retention import purge_expired


def inbox_queue(deps: Deps) -> Queue:
    """The webhook inbox."""

    async def process_group(worker: str, rows: list[queries.ClaimedWebhookEvent]) -> None:
        await process_webhook_group(deps, worker, rows)

    return Queue(
        "webhook_event", channels.INBOX, queries.claim_webhook_events, None,
        queries.heartbeat_webhook_events, queries.release_webhook_events,
        order_by=lambda row: row.integration_id, process_group=process_group,
        max_batch=deps.settings.worker_max_batch_size, prefetch=True,
    )  # fmt: skip


def outbox_queue(deps: Deps) -> Queue:
    """Notifications to the main app."""

    async def process(worker: str, row: queries.OutboxRow) -> None:
        await deliver(deps, worker, row)

    return Queue(
        "outbox", channels.OUTBOX, queries.claim_outbox, process,
        queries.heartbeat_outbox, queries.release_outbox,
    )  # fmt: skip


def sync_queue(deps: Deps) -> Queue:
    """Sync jobs: long-running, so few at a time per worker."""

    async def process(worker: str, row: queries.SyncJob) -> None:
        await process_sync_job(deps, worker, row)

    return Queue(
        "sync_job", channels.JOBS, queries.claim_sync_jobs, process,
        queries.heartbeat_sync_jobs, queries.release_sync_jobs, deps.settings.sync_jobs_per_worker,
    )  # fmt: skip


def standard_worker(deps: Deps) -> Worker:
    """The worker every replica runs: inbox, outbox, syncs and the periodic scheduler."""

    async def schedule() -> int:
        queued = await enqueue_due(deps)
        await purge_expired(deps)
        await check_reschedule_waits(deps)
        await check_due(deps)
        return queued

    queues = [inbox_queue(deps), outbox_queue(deps), sync_queue(deps)]
    return Worker(deps, queues, schedule=schedule)
