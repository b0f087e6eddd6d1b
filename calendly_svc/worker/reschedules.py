"""Reschedule halves that never come.

A reschedule is two deliveries: `invitee.canceled` (rescheduled, naming `new_invitee`) and
`invitee.created` (naming `old_invitee`). After a round robin host change Calendly sends the
created half to the new host's subscription only, so the old host's appointment would wait for
it forever. Applying a canceled half records a wait (`reschedule_waits`); applying the created
half ends it. The worker's periodic scheduler claims waits older than
RESCHEDULE_HALF_WAIT_SECONDS and reads the new invitee and its event from Calendly: if this
integration's user still hosts the event, the new invitee is applied as if its created half had
come; if another host holds it (or Calendly refuses the read with 403/404), the appointment ends
canceled with reason `rescheduled to another host`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from calendly_svc.apply.domain import (
    ApplyContext,
    PayloadError,
    apply_invitee,
    end_moved_booking,
    notifications_on,
)
from calendly_svc.apply.domain import invitee_state as to_state
from calendly_svc.apply.event_types import resolve_event_type
from calendly_svc.apply.tombstones import tombstones
from calendly_svc.calendly.errors import (
    CalendlyError,
    CalendlyNotFound,
    CalendlyPermissionDenied,
    NeedsReauth,
)
from calendly_svc.deps import Deps
from calendly_svc.store import queries
from calendly_svc.worker.processing import retry_delay

log = structlog.get_logger(__name__)
CLAIM_LIMIT = 50


@dataclass(frozen=True, slots=True)
class _Answer:
    """What Calendly says about the new invitee: its state and hosts, or refused."""

    invitee: dict[str, Any] | None
    event: dict[str, Any] | None

    def hosted_by(self, user_uri: str) -> bool:
        """Whether the user is among the event's hosts (event_memberships)."""
        members = (self.event or {}).get("event_memberships") or []
        return any(isinstance(m, dict) and m.get("user") == user_uri for m in members)


async def check_reschedule_waits(deps: Deps) -> int:
    """Resolve the waits that are due; safe on every replica at once. Returns how many."""
    claim = uuid.uuid4().hex
    settings = deps.settings
    async with deps.pool.acquire() as conn:
        waits = await queries.claim_reschedule_waits(
            conn, settings.reschedule_half_wait_seconds, claim, CLAIM_LIMIT,
            settings.worker_lease_seconds,
        )  # fmt: skip
    slots = asyncio.Semaphore(settings.worker_concurrency)

    async def one(wait: queries.RescheduleWait) -> None:
        async with slots:
            await _resolve_safely(deps, claim, wait)

    await asyncio.gather(*(one(wait) for wait in waits))
    return len(waits)


async def _resolve_safely(deps: Deps, claim: str, wait: queries.RescheduleWait) -> None:
    """Resolve one wait; any failure hands it back for a later attempt (with backoff)."""
    log_ctx = {"integration_id": wait.integration_id, "attempts": wait.attempts}
    try:
        await _resolve(deps, claim, wait)
    except NeedsReauth as exc:
        # the integration is needs_reauth now: claims skip it until the user reconnects
        log.warning("reschedule_half_needs_reauth", error=str(exc), **log_ctx)
        await _retry(deps, claim, wait, f"needs_reauth: {exc}")
    except (CalendlyError, PayloadError) as exc:
        log.info("reschedule_half_check_failed", error=str(exc), **log_ctx)
        await _retry(deps, claim, wait, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log.exception("reschedule_half_check_crashed", **log_ctx)
        await _retry(deps, claim, wait, f"{type(exc).__name__}: {exc}")


async def _retry(deps: Deps, claim: str, wait: queries.RescheduleWait, error: str) -> None:
    """Try again after a jittered, growing delay."""
    async with deps.pool.acquire() as conn:
        delay = retry_delay(deps, wait.attempts)
        await queries.retry_reschedule_wait(conn, wait, claim, delay, error[:2000])


async def _read(deps: Deps, integration: queries.Integration, uri: str) -> _Answer:
    """The new invitee and its event as this integration's user may see them."""
    source = deps.tokens.for_integration(integration)
    try:
        invitee, event = await deps.calendly.get_invitee_and_event(source, uri)
    except (CalendlyPermissionDenied, CalendlyNotFound):
        return _Answer(None, None)
    return _Answer(invitee, event)


async def _resolve(deps: Deps, claim: str, wait: queries.RescheduleWait) -> None:
    """Apply the created half from Calendly's answer, or end the booking as moved."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration(conn, wait.integration_id)
    if integration is None or integration.status != "active":
        return  # the lease runs out; claims skip inactive integrations
    answer = await _read(deps, integration, wait.new_invitee_uri)
    notify = notifications_on(deps, integration)
    if answer.invitee is not None and answer.hosted_by(integration.calendly_user_uri):
        state = to_state(answer.invitee, answer.event or {})
        event_type = await resolve_event_type(deps, integration, state.event_type_uri)
        ctx = ApplyContext(integration, event_type, notify, tombstones(deps.settings))
        async with deps.pool.acquire() as conn, conn.transaction():
            await queries.lock_integration_apply(conn, integration.id)
            if await queries.finish_reschedule_wait(conn, wait, claim):
                result = await apply_invitee(conn, ctx, state, locked=True)
                log.info("reschedule_half_read", outcome="applied", status=result.status)
        return
    async with deps.pool.acquire() as conn, conn.transaction():
        await queries.lock_integration_apply(conn, integration.id)
        if await queries.mark_reschedule_moved(conn, wait, claim):
            ctx = ApplyContext(integration, None, notify, tombstones(deps.settings))
            result = await end_moved_booking(conn, ctx, wait.old_invitee_uri)
            log.info("reschedule_half_read", outcome="moved", change=result.change)
