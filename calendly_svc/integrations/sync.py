"""Syncs: re-read a window of scheduled events and apply every changed invitee.

Webhooks miss things (a disabled subscription, bookings made before connecting, an outage); a
sync repairs that through the same `apply_invitee` the webhooks use. Pages are streamed and at
most `SYNC_CONCURRENCY` events are in flight, so memory stays flat however large the window is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from calendly_svc.apply.domain import (
    ApplyContext,
    ApplyResult,
    PayloadError,
    apply_invitee,
    invitee_state,
    notifications_on,
)
from calendly_svc.apply.event_types import resolve_event_type
from calendly_svc.apply.times import parse_time
from calendly_svc.apply.tombstones import tombstones
from calendly_svc.calendly.client import CallStats, current_stats
from calendly_svc.calendly.errors import (
    CalendlyError,
    CalendlyMissingScope,
    NeedsReauth,
)
from calendly_svc.calendly.tokens import TokenSource
from calendly_svc.deps import Deps
from calendly_svc.errors import Conflict
from calendly_svc.integrations import subscriptions, webhook_health
from calendly_svc.metrics import Timer
from calendly_svc.store import channels, queries

log = structlog.get_logger(__name__)
FULL_PASS_EVERY = timedelta(hours=24)
MAX_JOB_ATTEMPTS = 3
_COUNTED = {"created": "appointments_created", "canceled": "appointments_canceled"}
# A refused page token restarts the listing this far before the newest start time seen, so
# an exclusive or inclusive min_start_time (UNCONFIRMED, FACTS §5) both miss nothing.
RESUME_SLACK = timedelta(seconds=1)
# Restarts in a row that list nothing new before the sync gives up.
MAX_IDLE_RESUMES = 3


# --- enqueueing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A sync job and whether it already existed."""

    job: queries.SyncJob
    deduplicated: bool


def _refusal(integration: queries.Integration) -> Conflict | None:
    """Why this integration cannot sync now."""
    if integration.status != "active":
        return Conflict(f"the integration is {integration.status}", code="integration_not_active")
    if not integration.sync_enabled:
        return Conflict("sync is disabled for this integration", code="sync_disabled")
    return None


async def enqueue(
    deps: Deps, integration: queries.Integration, trigger: str, past_days: int | None = None,
    future_days: int | None = None, full_pass: bool = False,
) -> Enqueued:  # fmt: skip
    """Queue a sync, or return the one already queued or running."""
    if (refusal := _refusal(integration)) is not None:
        raise refusal
    async with deps.pool.acquire() as conn, conn.transaction():
        job = await queries.enqueue_sync(
            conn, integration.id, trigger, past_days, future_days, full_pass
        )
        if job is not None:
            await queries.notify(conn, channels.JOBS, str(job.id))
            return Enqueued(job, False)
        active = await queries.active_sync_job(conn, integration.id)
    if active is None:  # finished between the two statements: ask again
        return await enqueue(deps, integration, trigger, past_days, future_days, full_pass)
    return Enqueued(active, True)


async def enqueue_due(deps: Deps) -> int:
    """Queue periodic syncs of every due integration (safe on every replica at once)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        count = await queries.enqueue_due_syncs(conn, deps.settings.sync_interval_seconds)
        if count:
            await queries.notify(conn, channels.JOBS)
    return count


# --- one sync -----------------------------------------------------------------------------------


def _window(
    integration: queries.Integration, job: queries.SyncJob, now: datetime
) -> tuple[datetime, datetime]:
    """From now - past days to now + future days; a manual sync may override both."""
    past = job.past_days if job.past_days is not None else integration.sync_past_days
    future = job.future_days if job.future_days is not None else integration.sync_future_days
    return now - timedelta(days=past), now + timedelta(days=future)


def _is_full(integration: queries.Integration, job: queries.SyncJob, now: datetime) -> bool:
    """Skip nothing on request, on a first sync, and at least every 24 hours."""
    last = integration.last_full_sync_at
    return job.full_pass or last is None or now - last >= FULL_PASS_EVERY


def _iso(moment: datetime) -> str:
    """Calendly's timestamp format."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _counter(event: dict[str, Any]) -> tuple[int | None, int | None]:
    """(total, active) invitees of an event."""
    counter = event.get("invitees_counter") or {}
    return counter.get("total"), counter.get("active")


def _seen(event: dict[str, Any]) -> queries.EventSeen:
    """What to remember of an event once it is applied."""
    total, active = _counter(event)
    return queries.EventSeen(event["uri"], parse_time(event.get("updated_at")), total, active)


def unchanged(event: dict[str, Any], seen: queries.EventSeen | None) -> bool:
    """Whether an event looks exactly as the last sync left it."""
    return seen is not None and (seen.calendly_updated_at, seen.invitees_total,
                                 seen.invitees_active) == (_seen(event).calendly_updated_at,
                                                           *_counter(event))  # fmt: skip


def _start(event: dict[str, Any]) -> datetime | None:
    """An event's start time, None when absent or unreadable (its invitees fail on their own)."""
    try:
        return parse_time(event.get("start_time"))
    except (TypeError, ValueError, AttributeError):
        return None


@dataclass
class Listed:
    """Events listed within RESUME_SLACK of the newest start time seen: all that a resumed
    listing can return again (it is sorted by start time), so memory stays flat."""

    newest: datetime | None = None
    recent: deque[tuple[datetime, str]] = field(default_factory=deque)
    uris: set[str] = field(default_factory=set)

    def add(self, event: dict[str, Any]) -> bool:
        """Remember an event; False when this listing already returned it."""
        uri, start = event.get("uri"), _start(event)
        if not isinstance(uri, str) or start is None:
            return True
        if uri in self.uris:
            return False
        self.newest = max(self.newest or start, start)
        self.recent.append((start, uri))
        self.uris.add(uri)
        while self.recent[0][0] < self.newest - RESUME_SLACK:
            self.uris.discard(self.recent.popleft()[1])
        return True


@dataclass
class SyncRun:
    """One sync of one integration."""

    deps: Deps
    integration: queries.Integration
    job: queries.SyncJob
    full: bool
    counts: queries.SyncCounts = field(default_factory=queries.SyncCounts)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _types: dict[str, queries.EventType | None] = field(default_factory=dict)
    _types_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    resumes: int = 0

    @property
    def source(self) -> TokenSource:
        """Tokens of the integration."""
        return self.deps.tokens.for_integration(self.integration)

    async def run(self, start: datetime, end: datetime) -> None:
        """Stream the window's events; apply the changed ones with bounded concurrency."""
        if self.job.trigger == "periodic":
            await self._check_subscription(start)
            await self._check_organization_subscription()
        slots = asyncio.Semaphore(self.deps.settings.sync_concurrency)
        page: list[dict[str, Any]] = []
        async with asyncio.TaskGroup() as group:
            async for event in self._listing(start, end):
                page.append(event)
                if len(page) == 100:
                    await self._dispatch(group, slots, page)
                    page = []
            await self._dispatch(group, slots, page)
        if self.resumes:
            self.notes.append(f"event listing resumed after refused page tokens: {self.resumes}")

    async def _listing(self, start: datetime, end: datetime) -> AsyncIterator[dict[str, Any]]:
        """The window's events by start time, each once. A 400 on a followed page means its
        page token went stale (the first page accepted every other parameter): list again from
        the newest start time seen instead of failing the sync."""
        listed, low, idle = Listed(), start, 0
        while True:
            answered = False
            try:
                async for event in self.deps.calendly.scheduled_events(
                    self.source, self.integration.calendly_user_uri, _iso(low), _iso(end)
                ):
                    answered = True
                    if listed.add(event):
                        idle = 0
                        yield event
                return
            except CalendlyError as exc:
                if exc.status != 400 or not answered or idle >= MAX_IDLE_RESUMES:
                    raise
            idle += 1
            self.resumes += 1
            if listed.newest is not None:
                low = max(start, listed.newest - RESUME_SLACK)
            log.warning("sync_listing_resumed", min_start_time=_iso(low), resumes=self.resumes)

    async def _dispatch(
        self, group: asyncio.TaskGroup, slots: asyncio.Semaphore, page: list[dict[str, Any]]
    ) -> None:
        """Start a task for each changed event of a page (waiting for a free slot)."""
        self.counts.events_seen += len(page)
        async with self.deps.pool.acquire() as conn:
            seen = await queries.events_seen(conn, self.integration.id, [e["uri"] for e in page])
        for event in page:
            if self.full or not unchanged(event, seen.get(event["uri"])):
                await slots.acquire()
                group.create_task(self._event(event, slots))

    async def _event(self, event: dict[str, Any], slots: asyncio.Semaphore) -> None:
        """Fetch every invitee of one event and apply each; remember the event when done."""
        try:
            async for invitee in self.deps.calendly.invitees(self.source, event["uri"]):
                self.counts.invitees_fetched += 1
                await self._apply(invitee_state(invitee, event))
            async with self.deps.pool.acquire() as conn:
                await queries.mark_events_seen(conn, self.integration.id, [_seen(event)])
        except (CalendlyError, PayloadError) as exc:
            self.failures.append(f"{event.get('uri')}: {exc}")
            log.warning("sync_event_failed", event_uri=event.get("uri"), error=str(exc))
        finally:
            slots.release()

    async def _event_type(self, uri: str | None) -> queries.EventType | None:
        """The mapping for an event type, loading unknown ones at most once per sync."""
        if uri is None:
            return None
        async with self._types_lock:
            if uri not in self._types:
                self._types[uri] = await resolve_event_type(self.deps, self.integration, uri)
            return self._types[uri]

    async def _apply(self, state: queries.InviteeState) -> None:
        """Apply one invitee through the same function the webhooks use."""
        event_type = await self._event_type(state.event_type_uri)
        notify = notifications_on(self.deps, self.integration)
        ctx = ApplyContext(self.integration, event_type, notify, tombstones(self.deps.settings))
        async with self.deps.pool.acquire() as conn, conn.transaction():
            result = await apply_invitee(conn, ctx, state)
        self._count(result)

    def _count(self, result: ApplyResult) -> None:
        """Tally an application."""
        if result.client_created:
            self.counts.clients_created += 1
        if result.change is None:
            return
        name = _COUNTED.get(result.change, "appointments_updated")
        setattr(self.counts, name, getattr(self.counts, name) + 1)
        if self.job.trigger != "initial":
            self.counts.repaired += 1

    async def _check_subscription(self, start: datetime) -> None:
        """A disabled or vanished webhook subscription is deleted and created again (the
        health check's own function); this sync lists from `start`, so it covers a gap that
        began after it."""
        note = await webhook_health.check_subscription(self.deps, self.integration, start)
        if note is not None:
            self.notes.append(note)

    async def _check_organization_subscription(self) -> None:
        """The organization's routing forms subscription is alive and held by an active admin."""
        try:
            note = await subscriptions.check_organization_webhook(
                self.deps, self.integration, self.source
            )
        except CalendlyError as exc:  # the next periodic sync checks again
            note = f"organization webhook subscription not checked: {exc.message}"
        if note is not None:
            self.notes.append(note)


async def _open_log(
    deps: Deps, worker: str, job: queries.SyncJob, run: SyncRun, window: tuple[datetime, datetime]
) -> queries.SyncLog:
    """Close a log an interrupted run left open; open this run's log."""
    async with deps.pool.acquire() as conn:
        if job.sync_log_id is not None:
            await queries.abandon_sync_log(conn, job.sync_log_id, "interrupted: the worker stopped")
        entry = await queries.insert_sync_log(
            conn, job.integration_id, job.trigger, run.full, window[0], window[1]
        )
        await queries.attach_sync_log(conn, job.id, worker, entry.id)
    return entry


def _outcome(run: SyncRun, error: BaseException | None) -> tuple[str, str | None]:
    """(log status, error) of a finished run."""
    if isinstance(error, NeedsReauth):
        return "failed", f"needs_reauth: {error}"
    if isinstance(error, CalendlyMissingScope):
        return "failed", f"missing_scope: {error.message}; the user must reconnect to grant it"
    if error is not None:
        return "failed", f"{type(error).__name__}: {error}"
    if run.failures:
        return "partial", f"{len(run.failures)} events failed; first: {run.failures[0]}"
    return "succeeded", None


async def _close_log(
    deps: Deps, run: SyncRun, entry: queries.SyncLog, stats: CallStats, status: str,
    error: str | None,
) -> None:  # fmt: skip
    """Record counters and outcome; schedule the next periodic sync."""
    async with deps.pool.acquire() as conn, conn.transaction():
        run.counts.api_calls, run.counts.rate_limited_waits = stats.calls, stats.rate_limited_waits
        await queries.finish_sync_log(conn, entry.id, status, run.counts, run.notes, error)
        await queries.record_sync_result(
            conn, run.integration.id, status, run.full and status == "succeeded"
        )
        await queries.schedule_next_sync(
            conn, run.integration.id, deps.settings.sync_interval_seconds
        )


def _unwrap(error: BaseException) -> BaseException:
    """The first error out of a task group (NeedsReauth wins: it ends the sync)."""
    if isinstance(error, BaseExceptionGroup):
        flat = [_unwrap(e) for e in error.exceptions]
        return next((e for e in flat if isinstance(e, NeedsReauth)), flat[0])
    return error


async def _gap_window(
    deps: Deps, run: SyncRun, window: tuple[datetime, datetime]
) -> tuple[datetime, datetime]:
    """A gap sync lists from where the webhook failure began (to the usual end); its log
    notes why it ran."""
    async with deps.pool.acquire() as conn:
        gap = await queries.gap_sync_of_job(conn, run.job.id)
    if gap is None:
        return window
    run.notes.append(gap.reason)
    return gap.window_start, window[1]


async def run_sync(
    deps: Deps, worker: str, job: queries.SyncJob
) -> tuple[str, str | None, int | None]:
    """Run one sync job; returns (log status, error, log id)."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration(conn, job.integration_id)
    assert integration is not None
    now = datetime.now(UTC)
    timer = Timer()
    run = SyncRun(deps, integration, job, _is_full(integration, job, now))
    window = _window(integration, job, now)
    if job.trigger == "gap":
        window = await _gap_window(deps, run, window)
    entry = await _open_log(deps, worker, job, run, window)
    stats = CallStats()
    token = current_stats.set(stats)
    error: BaseException | None = None
    try:
        if (refusal := _refusal(integration)) is not None:
            raise NeedsReauth(refusal.message) if integration.status == "needs_reauth" else refusal
        await run.run(*window)
    except Exception as exc:  # recorded in the sync log
        error = _unwrap(exc)
    finally:
        current_stats.reset(token)
    status, message = _outcome(run, error)
    await _close_log(deps, run, entry, stats, status, message)
    deps.metrics.sync_runs.labels(job.trigger, status).inc()
    deps.metrics.sync_duration.labels(job.trigger).observe(timer.elapsed())
    deps.metrics.sync_repaired.labels(job.trigger).inc(run.counts.repaired)
    log.info("sync_finished", status=status, trigger=job.trigger, **asdict(run.counts))
    return status, message, entry.id


async def process_sync_job(deps: Deps, worker: str, job: queries.SyncJob) -> None:
    """Run a leased job and record its outcome (fenced by owner)."""
    status, log_id = "failed", None
    error: str | None = f"gave up after {MAX_JOB_ATTEMPTS} attempts"
    if job.attempts <= MAX_JOB_ATTEMPTS:
        log_status, error, log_id = await run_sync(deps, worker, job)
        status = "failed" if log_status == "failed" else "succeeded"
    async with deps.pool.acquire() as conn:
        if not await queries.finish_sync_job(conn, job.id, worker, status, error, log_id):
            log.warning("sync_job_lease_lost", sync_job_id=job.id)
