"""Webhook subscription health: see a failing subscription before Calendly disables it.

Calendly retries failed deliveries for 24 hours, then disables the subscription without a word
(FACTS §8, §9); `retry_started_at` is set while deliveries fail. A periodic check, cheaper and
more frequent than the periodic sync, reads each active integration's user-scope subscription
and records what it saw (`webhook_health`): `active`, `retrying` (active, deliveries failing),
`disabled` or `missing`. A disabled or missing subscription is recreated (Calendly has no
re-enable), and a gap sync is asked for: a sync whose window starts where the failure began,
so the bookings made while nothing was delivered are repaired. The periodic sync's own check is
this same function.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from calendly_svc.apply.times import parse_time
from calendly_svc.calendly.errors import (
    CalendlyError,
    CalendlyMissingScope,
    CalendlyNotFound,
    NeedsReauth,
)
from calendly_svc.deps import Deps
from calendly_svc.integrations import subscriptions
from calendly_svc.store import channels, queries

log = structlog.get_logger(__name__)
CLAIM_LIMIT = 50
# A health check's read that waits longer (e.g. for a rate-limit reset) is left for the next
# round; the periodic sync's own check waits as its listing would.
READ_TIMEOUT_SECONDS = 30.0
GAP_CLAIM_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Seen:
    """A subscription as Calendly shows it: our state name and when its failures began."""

    state: str
    retry_started_at: datetime | None


def _iso(moment: datetime) -> str:
    """A timestamp for notes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the periodic check ---------------------------------------------------------------------


async def check_due(deps: Deps) -> int:
    """Check every subscription whose turn it is (safe on every replica at once); then turn
    pending gap syncs into jobs. Returns how many were checked."""
    async with deps.pool.acquire() as conn:
        ids = await queries.claim_webhook_checks(
            conn, deps.settings.webhook_health_interval_seconds, CLAIM_LIMIT
        )
    slots = asyncio.Semaphore(deps.settings.worker_concurrency)

    async def one(integration_id: int) -> None:
        async with slots:
            await _check_safely(deps, integration_id)

    await asyncio.gather(*(one(integration_id) for integration_id in ids))
    await enqueue_gap_syncs(deps, None)
    return len(ids)


async def _check_safely(deps: Deps, integration_id: int) -> None:
    """One integration's check; Calendly failures are noted and retried next round."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration(conn, integration_id)
    if integration is None or integration.status != "active":
        return
    try:
        note = await check_subscription(deps, integration, None, READ_TIMEOUT_SECONDS)
    except NeedsReauth as exc:  # the integration is needs_reauth now; checks skip it
        note = f"webhook subscription not checked: needs_reauth: {exc}"
    except CalendlyMissingScope as exc:
        note = f"webhook subscription not checked: {exc.message}"
    except (CalendlyError, TimeoutError) as exc:
        message = exc.message if isinstance(exc, CalendlyError) else "timed out"
        note = f"webhook subscription not checked: {message}; next round"
    else:
        if note is not None:
            log.info("webhook_health_checked", integration_id=integration_id, note=note)
        return
    log.warning("webhook_health_check_failed", integration_id=integration_id, note=note)
    async with deps.pool.acquire() as conn:
        await queries.note_webhook_check(conn, integration_id, note)


# --- the one check (health check and periodic sync) ------------------------------------------


async def check_subscription(
    deps: Deps, integration: queries.Integration, covered_from: datetime | None,
    read_timeout: float | None = None,
) -> str | None:  # fmt: skip
    """Read the user-scope subscription and record its health; recreate a disabled or missing
    one and ask for a gap sync, unless the caller's own sync (listing from `covered_from`)
    covers the gap. Returns a note for the sync log when something was done or skipped.
    Raises NeedsReauth, CalendlyError (not 404) or TimeoutError (the read outlasted
    `read_timeout`) when it could not read."""
    if (refusal := subscriptions.webhook_refusal(integration)) is not None:
        note = f"webhook subscription not checked: {refusal}"
        async with deps.pool.acquire() as conn:
            await queries.note_webhook_check(conn, integration.id, note)
        return note
    seen = await _read(deps, integration, read_timeout)
    before = await _record(deps, integration.id, seen, None)
    if seen.state in ("active", "retrying"):
        if before.previous_state != "disabled":
            return None
        start = await _gap_start(deps, integration, before, seen)
        reason = f"webhook subscription disabled since {_iso(start)}: enabled again"
        return await _gap(deps, integration, start, reason, covered_from)
    return await _repair(deps, integration, seen, before, covered_from)


async def _read(deps: Deps, integration: queries.Integration, read_timeout: float | None) -> Seen:
    """What Calendly says of the subscription (`missing` when it has none or a 404)."""
    uri = integration.webhook_uri
    if uri is None:
        return Seen("missing", None)
    source = deps.tokens.for_integration(integration)
    try:
        async with asyncio.timeout(read_timeout):
            resource = await deps.calendly.get_webhook(source, uri)
    except CalendlyNotFound:
        return Seen("missing", None)
    retry_started_at = _time(resource.get("retry_started_at"))
    if resource.get("state") != "active":
        return Seen("disabled", retry_started_at)
    return Seen("retrying" if retry_started_at is not None else "active", retry_started_at)


def _time(value: object) -> datetime | None:
    """A timestamp from Calendly; None when absent or unreadable."""
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


async def _record(
    deps: Deps, integration_id: int, seen: Seen, note: str | None
) -> queries.WebhookHealthBefore:
    """Store what was seen; returns what was known before."""
    async with deps.pool.acquire() as conn:
        return await queries.record_webhook_health(
            conn, integration_id, seen.state, seen.retry_started_at, note,
            deps.settings.webhook_health_interval_seconds,
        )  # fmt: skip


async def _gap_start(
    deps: Deps, integration: queries.Integration, before: queries.WebhookHealthBefore, seen: Seen
) -> datetime:
    """Where the failure began: Calendly's retry_started_at, else the one a check saw before,
    else the later of the last delivery received and the last healthy check (deliveries worked
    until then), else the periodic sync's usual window start."""
    known = seen.retry_started_at or before.previous_retry_started_at
    if known is not None:
        return known
    async with deps.pool.acquire() as conn:
        received = await queries.last_delivery_received(conn, integration.id)
    moments = [m for m in (received, before.previous_healthy_at) if m is not None]
    if moments:
        return max(moments)
    return datetime.now(UTC) - timedelta(days=integration.sync_past_days)


async def _repair(
    deps: Deps, integration: queries.Integration, seen: Seen,
    before: queries.WebhookHealthBefore, covered_from: datetime | None,
) -> str | None:  # fmt: skip
    """Recreate a disabled or missing subscription (one repairer at a time per integration)."""
    start = await _gap_start(deps, integration, before, seen)
    async with deps.pool.acquire() as conn, conn.transaction():
        if not await queries.try_lock_webhook_repair(conn, integration.id):
            return None  # another check or sync is recreating it right now
        fresh = await queries.get_integration(conn, integration.id)
        if (
            fresh is None
            or fresh.status != "active"
            or fresh.webhook_uri != integration.webhook_uri
        ):
            return None  # recreated (or disconnected) since it was read
        await subscriptions.ensure_webhook(deps, fresh, fresh.webhook_uri)
        after = await queries.get_integration(conn, integration.id)
    previous = seen.state if integration.webhook_uri is not None else "absent"
    if after is None or after.webhook_uri is None:
        error = after.webhook_error if after is not None else "integration gone"
        # a known start of the failure is kept for the next attempt's gap sync
        known = seen.retry_started_at or before.previous_retry_started_at
        await _record(deps, integration.id, Seen("missing", known), error)
        log.warning("webhook_subscription_not_recreated", integration_id=integration.id,
                    previous_state=previous, error=error)  # fmt: skip
        return f"webhook subscription {previous}: not recreated: {error}"
    log.warning("webhook_subscription_recreated", integration_id=integration.id,
                previous_state=previous, since=_iso(start))  # fmt: skip
    await _record(deps, integration.id, Seen("active", None), None)
    deps.metrics.webhook_recreated.labels(previous).inc()
    reason = f"webhook subscription {previous} since {_iso(start)}: recreated"
    return await _gap(deps, integration, start, reason, covered_from)


# --- gap syncs -----------------------------------------------------------------------------------


async def _gap(
    deps: Deps, integration: queries.Integration, start: datetime, reason: str,
    covered_from: datetime | None,
) -> str:  # fmt: skip
    """Ask for a gap sync from `start`, unless the caller's sync already lists from there."""
    if covered_from is not None and covered_from <= start:
        return f"{reason}; this sync covers the gap"
    async with deps.pool.acquire() as conn:
        await queries.request_gap_sync(conn, integration.id, start, reason)
    jobs = await enqueue_gap_syncs(deps, integration.id)
    return f"{reason}; gap sync {'queued' if jobs else 'pending'}"


async def enqueue_gap_syncs(deps: Deps, integration_id: int | None) -> int:
    """Queue pending gap syncs (one integration's, or all) whose integration is not syncing."""
    async with deps.pool.acquire() as conn, conn.transaction():
        jobs = await queries.enqueue_gap_syncs(conn, integration_id, GAP_CLAIM_LIMIT)
        if jobs:
            await queries.notify(conn, channels.JOBS)
    return len(jobs)
