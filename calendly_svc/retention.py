"""The webhook log's retention: settled deliveries unchanged for WEBHOOK_LOG_RETENTION_DAYS are
deleted, a batch per transaction, from every replica's scheduler (batches skip each other's rows).
"""

from __future__ import annotations

import structlog

from calendly_svc import queries
from calendly_svc.deps import Deps

log = structlog.get_logger(__name__)
BATCH = 5000  # a batch looks at this many of the oldest deliveries
MAX_BATCHES = 20  # per scheduler pass, while batches come back full


async def purge_webhook_log(deps: Deps) -> int:
    """Delete expired deliveries (at most MAX_BATCHES batches); how many were deleted."""
    days = deps.settings.webhook_log_retention_days
    if not days:
        return 0
    total = 0
    for _ in range(MAX_BATCHES):
        async with deps.pool.acquire() as conn:
            deleted = await queries.purge_webhook_events(conn, days, BATCH)
        total += deleted
        if deleted < BATCH:
            break
    if total:
        deps.metrics.webhooks_purged.inc(total)
        log.info("webhook_log_purged", rows=total, retention_days=days)
    return total
