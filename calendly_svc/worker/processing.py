"""Processing stored webhook deliveries, exactly once in effect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from calendly_svc.apply.domain import (
    ApplyContext,
    ApplyResult,
    PayloadError,
    apply_invitee,
    apply_invitees,
    erased_uris,
    invitee_state,
    notifications_on,
)
from calendly_svc.apply.event_types import event_type_data, resolve_event_type
from calendly_svc.apply.times import parse_time
from calendly_svc.apply.tombstones import tombstones
from calendly_svc.calendly.errors import CalendlyMissingScope, CalendlyNotFound, NeedsReauth
from calendly_svc.deps import Deps
from calendly_svc.jitter import jittered
from calendly_svc.store import queries
from calendly_svc.store.queries import Conn

log = structlog.get_logger(__name__)
INVITEE_EVENTS = frozenset(
    {"invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted"}
)


class LeaseLost(Exception):
    """Another worker took the row over; this worker's transaction must not commit."""


def retry_delay(deps: Deps, attempts: int) -> float:
    """Exponential backoff with jitter for the next attempt."""
    settings = deps.settings
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    return jittered(ceiling / 2, ceiling)


async def scheduled_event_of(
    deps: Deps, integration: queries.Integration, payload: dict[str, Any],
    cache: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The invitee's scheduled event: embedded, or (older payloads) read once from Calendly."""
    embedded = payload.get("scheduled_event")
    if isinstance(embedded, dict) and embedded:
        return embedded
    uri = payload.get("event")
    if not isinstance(uri, str) or not uri:
        raise PayloadError("the invitee has neither a scheduled_event nor an event URI")
    if cache is not None and uri in cache:
        return cache[uri]
    source = deps.tokens.for_integration(integration)
    try:
        event = await deps.calendly.get_scheduled_event(source, uri)
    except CalendlyNotFound:
        raise PayloadError(f"the scheduled event {uri} is not found at Calendly") from None
    log.info("scheduled_event_read", event_uri=uri)
    if cache is not None:
        cache[uri] = event
    return event


async def _finish(
    deps: Deps, conn: Conn, row: queries.ClaimedWebhookEvent, worker: str, status: str,
    reason: str | None,
) -> None:  # fmt: skip
    """Record the outcome in the caller's transaction, or abort it if the lease is gone."""
    if not await queries.finish_webhook_event(conn, row.id, worker, status, reason):
        raise LeaseLost(f"webhook event {row.id}")
    deps.metrics.webhooks_processed.labels(row.event, status).inc()


Handler = Callable[[Deps, str, queries.ClaimedWebhookEvent, queries.Integration], Awaitable[None]]


async def _invitee(
    deps: Deps, worker: str, row: queries.ClaimedWebhookEvent, integration: queries.Integration
) -> None:
    """invitee.* and invitee_no_show.*: apply the invitee's state."""
    payload = row.body["payload"]
    embedded = isinstance(payload.get("scheduled_event"), dict) and payload["scheduled_event"]
    if not embedded and await _erased_delivery(
        deps, worker, row, integration, [payload.get("uri")]
    ):
        return  # an older payload: checked before the Calendly read it would need
    state = invitee_state(payload, await scheduled_event_of(deps, integration, payload))
    event_type = await resolve_event_type(deps, integration, state.event_type_uri)
    ctx = ApplyContext(
        integration, event_type, notifications_on(deps, integration), tombstones(deps.settings)
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        result = await apply_invitee(conn, ctx, state)
        await _finish(deps, conn, row, worker, result.status, result.reason)
        if result.reason == "erased":
            await queries.scrub_webhook_events(conn, [row.id])


async def _event_type(
    deps: Deps, worker: str, row: queries.ClaimedWebhookEvent, integration: queries.Integration
) -> None:
    """event_type.*: keep the event type row (and its mapping) current."""
    payload = row.body["payload"]
    if not isinstance(payload.get("uri"), str):
        raise PayloadError("the event type has no uri")
    async with deps.pool.acquire() as conn, conn.transaction():
        if row.event == "event_type.deleted":
            await queries.mark_event_type_removed(conn, integration.id, payload["uri"])
        else:
            await queries.upsert_event_types(conn, integration.id, [event_type_data(payload)])
        await _finish(deps, conn, row, worker, "processed", None)


def _submission(payload: dict[str, Any]) -> queries.RoutingFormSubmission:
    """A routing form submission from its payload."""
    if not isinstance(payload.get("uri"), str):
        raise PayloadError("the routing form submission has no uri")
    return queries.RoutingFormSubmission(
        uri=payload["uri"],
        routing_form_uri=payload.get("routing_form"),
        submitter_uri=payload.get("submitter"),
        submitter_type=payload.get("submitter_type"),
        questions_and_answers=payload.get("questions_and_answers") or [],
        tracking=payload.get("tracking"),
        result=payload.get("result"),
        calendly_created_at=parse_time(payload.get("created_at")),
        calendly_updated_at=parse_time(payload.get("updated_at")),
    )


async def _routing_form(
    deps: Deps, worker: str, row: queries.ClaimedWebhookEvent, integration: queries.Integration
) -> None:
    """routing_form_submission.created: store it; the submitter links it to an invitee."""
    submission = _submission(row.body["payload"])
    uris = [submission.uri, submission.submitter_uri]
    if await _erased_delivery(deps, worker, row, integration, uris):
        return
    async with deps.pool.acquire() as conn, conn.transaction():
        await queries.insert_routing_form_submission(conn, integration.id, submission)
        await _finish(deps, conn, row, worker, "processed", None)


async def _erased_delivery(
    deps: Deps, worker: str, row: queries.ClaimedWebhookEvent, integration: queries.Integration,
    uris: list[Any],
) -> bool:  # fmt: skip
    """A delivery naming an erased invitee or submission is ignored, and nothing of its body,
    headers or dedup key is kept; False for any other."""
    named = [uri for uri in uris if isinstance(uri, str)]
    async with deps.pool.acquire() as conn:
        if not await erased_uris(conn, tombstones(deps.settings), integration.id, named):
            return False
        async with conn.transaction():
            await _finish(deps, conn, row, worker, "ignored", "erased")
            await queries.scrub_webhook_events(conn, [row.id])
    return True


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(INVITEE_EVENTS, _invitee),
    **dict.fromkeys(
        ("event_type.created", "event_type.updated", "event_type.deleted"), _event_type
    ),
    "routing_form_submission.created": _routing_form,
}


def _skip_reason(integration: queries.Integration | None, event: str) -> str | None:
    """Why a delivery is stored but not applied."""
    if integration is None or integration.status == "disconnected":
        return "integration_disconnected"
    if not integration.sync_enabled:
        return "sync_disabled"
    if event not in HANDLERS:
        return "unsupported_event"
    return None


async def _ignore(deps: Deps, worker: str, row: queries.ClaimedWebhookEvent, reason: str) -> None:
    """Record a delivery that is kept but not applied."""
    async with deps.pool.acquire() as conn:
        await _finish(deps, conn, row, worker, "ignored", reason)


async def _fail(
    deps: Deps, worker: str, row: queries.ClaimedWebhookEvent, error: str, final: bool
) -> None:
    """Retry later with backoff, or give up at once when retrying cannot help."""
    max_attempts = 0 if final else deps.settings.webhook_max_attempts
    async with deps.pool.acquire() as conn:
        status = await queries.fail_webhook_event(
            conn, row.id, worker, error[:2000], max_attempts, retry_delay(deps, row.attempts)
        )
    deps.metrics.webhooks_failed.labels(row.event, str(status == "failed").lower()).inc()
    level = log.warning if status == "failed" else log.info
    level("webhook_event_failed", status=status, attempts=row.attempts, error=error)


async def process_webhook_event(deps: Deps, worker: str, row: queries.ClaimedWebhookEvent) -> None:
    """Apply one leased delivery and record what happened to it."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration(conn, row.integration_id)
    reason = "erased" if _scrubbed(row) else _skip_reason(integration, row.event)
    try:
        if reason is not None:
            await _ignore(deps, worker, row, reason)
            return
        assert integration is not None
        await HANDLERS[row.event](deps, worker, row, integration)
    except LeaseLost:
        log.warning("webhook_event_lease_lost", webhook_event_id=row.id)
    except (PayloadError, NeedsReauth, CalendlyMissingScope) as exc:
        # retrying cannot help: the grant or the payload must change first
        await _fail(deps, worker, row, f"{type(exc).__name__}: {exc}", final=True)
    except Exception as exc:
        await _fail(deps, worker, row, f"{type(exc).__name__}: {exc}", final=False)


# --- groups ---------------------------------------------------------------------------------


@dataclass(slots=True, unsafe_hash=True)  # built per delivery: see queries.RECORDS
class _Prepared:
    """A delivery ready to apply: its row, the invitee state and the mapping."""

    row: queries.ClaimedWebhookEvent
    state: queries.InviteeState
    ctx: ApplyContext


async def process_webhook_group(
    deps: Deps, worker: str, rows: Sequence[queries.ClaimedWebhookEvent]
) -> None:
    """One integration's claimed deliveries, in order. Consecutive invitee events share one
    transaction; anything else is processed alone, and so is every row of a run that fails."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration(conn, rows[0].integration_id)
    run: list[queries.ClaimedWebhookEvent] = []
    for row in rows:
        if integration is not None and _joins_run(integration, row):
            run.append(row)
            continue
        await _apply_run(deps, worker, integration, run)
        run = []
        await process_webhook_event(deps, worker, row)
    await _apply_run(deps, worker, integration, run)


def _joins_run(integration: queries.Integration, row: queries.ClaimedWebhookEvent) -> bool:
    """Whether a delivery can be applied together with its neighbours."""
    return (
        row.event in INVITEE_EVENTS and _skip_reason(integration, row.event) is None
        and not _scrubbed(row)
    )  # fmt: skip


def _scrubbed(row: queries.ClaimedWebhookEvent) -> bool:
    """A delivery of an erased invitee whose body was scrubbed (replayed later)."""
    return row.body.get("erased") is True


async def _apply_run(
    deps: Deps, worker: str, integration: queries.Integration | None,
    run: list[queries.ClaimedWebhookEvent],
) -> None:  # fmt: skip
    """Apply a run in one transaction; if anything in it fails, process its rows one by one."""
    if integration is None or len(run) < 2:
        for row in run:
            await process_webhook_event(deps, worker, row)
        return
    try:
        prepared = await _prepare(deps, integration, run)
        results = await _apply_together(deps, worker, integration, prepared)
    except Exception as exc:
        log.info("webhook_group_split", size=len(run), error=type(exc).__name__)
        for row in run:
            await process_webhook_event(deps, worker, row)
        return
    for item, result in zip(prepared, results, strict=True):
        deps.metrics.webhooks_processed.labels(item.row.event, result.status).inc()


async def _prepare(
    deps: Deps, integration: queries.Integration, run: list[queries.ClaimedWebhookEvent]
) -> list[_Prepared]:
    """States and mappings for a run, resolving each event type once."""
    types: dict[str | None, queries.EventType | None] = {}
    events: dict[str, dict[str, Any]] = {}
    notify = notifications_on(deps, integration)
    marks = tombstones(deps.settings)
    prepared = []
    for row in run:
        payload = row.body["payload"]
        state = invitee_state(payload, await scheduled_event_of(deps, integration, payload, events))
        uri = state.event_type_uri
        if uri not in types:
            types[uri] = await resolve_event_type(deps, integration, uri)
        prepared.append(_Prepared(row, state, ApplyContext(integration, types[uri], notify, marks)))
    return prepared


async def _apply_together(
    deps: Deps, worker: str, integration: queries.Integration, prepared: list[_Prepared]
) -> list[ApplyResult]:
    """One transaction: the apply lock once, every state in order, every outcome fenced."""
    async with deps.pool.acquire() as conn, conn.transaction():
        await queries.lock_integration_apply(conn, integration.id)
        results = await apply_invitees(conn, [(p.state, p.ctx) for p in prepared])
        finished = await queries.finish_webhook_events(
            conn, worker, [p.row.id for p in prepared], [r.status for r in results],
            [r.reason for r in results],
        )  # fmt: skip
        if finished != len(prepared):
            raise LeaseLost(f"{len(prepared) - finished} webhook events of a group")
        erased = [p.row.id for p, r in zip(prepared, results, strict=True) if r.reason == "erased"]
        if erased:
            await queries.scrub_webhook_events(conn, erased)
    return results
