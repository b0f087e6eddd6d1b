"""Retention: finished rows of the webhook log, the sync logs and jobs, the outbox and the actions
on Calendly are deleted once their settings' days (hours for actions) have passed, a batch per
transaction, from every replica's scheduler (concurrent batches skip each other's rows). A setting
of 0 keeps its rows forever (actions are kept at least 24 hours).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from calendly_svc.deps import Deps
from calendly_svc.settings import Settings
from calendly_svc.store import queries

log = structlog.get_logger(__name__)
BATCH = 5000  # a batch looks at this many of a table's oldest rows
MAX_BATCHES = 20  # per table and scheduler pass, while batches come back full


@dataclass(frozen=True, slots=True)
class Kept:
    """A table under retention: its purge and the setting that gives its days."""

    table: str
    purge: Callable[[queries.Conn, int, int], Awaitable[int]]
    days: Callable[[Settings], int]
    unit: str = "days"


# jobs before logs: a log's deletion then finds no job left to unlink
KEPT = (
    Kept("webhook_events", queries.purge_webhook_events, lambda s: s.webhook_log_retention_days),
    Kept("sync_jobs", queries.purge_sync_jobs, lambda s: s.sync_log_retention_days),
    Kept("sync_logs", queries.purge_sync_logs, lambda s: s.sync_log_retention_days),
    Kept("outbox", queries.purge_outbox, lambda s: s.outbox_retention_days),
    Kept("actions", queries.purge_actions, lambda s: s.action_retention_hours, "hours"),
)


async def purge_expired(deps: Deps) -> dict[str, int]:
    """One pass over every table under retention; rows deleted by table."""
    return {kept.table: await _purge(deps, kept) for kept in KEPT}


async def _purge(deps: Deps, kept: Kept) -> int:
    """Delete a table's expired rows (at most MAX_BATCHES batches); how many."""
    days = kept.days(deps.settings)
    if not days:
        return 0
    total = 0
    for _ in range(MAX_BATCHES):
        async with deps.pool.acquire() as conn:
            deleted = await kept.purge(conn, days, BATCH)
        total += deleted
        if deleted < BATCH:
            break
    if total:
        deps.metrics.retention_deleted.labels(kept.table).inc(total)
        kept_for = {f"retention_{kept.unit}": days}
        log.info("retention_deleted", table=kept.table, rows=total, **kept_for)
    return total
