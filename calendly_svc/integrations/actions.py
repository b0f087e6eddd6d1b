"""Acting on Calendly for the main app: cancel, no-show marks, available times, single-use links.

Every action is a row in `actions` (requested → sent → succeeded | failed | unknown). A success
applies the invitee's state as Calendly now reports it through `apply_invitee`, in the same
transaction that records the outcome, so the webhook echo that follows changes nothing.
Bookings (the idempotent, lookup-before-retry path) are in `booking`.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from calendly_svc.apply.domain import (
    ApplyContext,
    ApplyResult,
    apply_invitee,
    invitee_state,
    notifications_on,
)
from calendly_svc.apply.event_types import resolve_event_type
from calendly_svc.apply.tombstones import tombstones
from calendly_svc.calendly.client import CalendlyClient
from calendly_svc.calendly.errors import (
    CalendlyAuthError,
    CalendlyBadRequest,
    CalendlyError,
    CalendlyMissingScope,
    CalendlyNotFound,
    CalendlyOutcomeUnknown,
    CalendlyPermissionDenied,
    CalendlyRateLimited,
    NeedsReauth,
)
from calendly_svc.calendly.scopes import allows
from calendly_svc.deps import Deps
from calendly_svc.errors import Conflict, NotFound, ServiceError, Unprocessable, UpstreamError
from calendly_svc.store import queries

log = structlog.get_logger(__name__)
WRITE_EVENTS = "scheduled_events:write"
WRITE_LINKS = "scheduling_links:write"
TIMES_CACHE_SIZE = 256


class CalendlyLimit(ServiceError):
    """Calendly's per-plan limit for this call is reached (429, with Retry-After)."""

    status = 429
    code = "calendly_limit"

    def __init__(self, message: str, retry_after: float, details: Any = None) -> None:
        super().__init__(message, details)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Target:
    """An appointment of the caller's live integration."""

    integration: queries.Integration
    appointment: queries.Appointment


def require_scope(integration: queries.Integration, scope: str) -> None:
    """409 missing_scope before any call when the stored grant lacks the scope."""
    if not allows(integration.granted_scopes, scope):
        raise missing_scope([scope])


def missing_scope(scopes: list[str]) -> Conflict:
    """The user must reconnect to grant these scopes."""
    message = f"the Calendly grant lacks {' '.join(scopes)}; the user must reconnect to grant it"
    return Conflict(message, {"required_scopes": scopes}, code="missing_scope")


def failure(exc: CalendlyError | NeedsReauth, action_id: int, state: str) -> ServiceError:
    """What the main app is told when Calendly refused or failed, with what is known."""
    known = {"action_id": action_id, "state": state}
    if isinstance(exc, CalendlyRateLimited):
        message = "Calendly's limit for this call is reached; retry after Retry-After seconds"
        return CalendlyLimit(message, exc.retry_after, known)
    if isinstance(exc, CalendlyMissingScope):
        return missing_scope(exc.scopes)
    if isinstance(exc, NeedsReauth | CalendlyAuthError):
        message = "the Calendly connection must be re-authorized by the user"
        return Conflict(message, known, code="needs_reauth")
    if isinstance(exc, CalendlyBadRequest):
        message = f"Calendly refused the request: {exc.message}"
        return Unprocessable(message, known | {"calendly": exc.details}, code="calendly_rejected")
    if isinstance(exc, CalendlyOutcomeUnknown):
        message = "Calendly did not answer: the action may or may not have been applied"
        return UpstreamError(message, known)
    return UpstreamError(
        f"Calendly refused or failed: {exc.message}", known | {"status": exc.status}
    )


def error_record(error: ServiceError) -> dict[str, Any]:
    """An error as the action row keeps it."""
    return {"status": error.status, "code": error.code, "message": error.message}


def count(deps: Deps, action: str, outcome: str) -> None:
    """calendly_svc_actions_total{action,outcome}."""
    deps.metrics.actions.labels(action, outcome).inc()


async def new_action(deps: Deps, action: queries.NewAction) -> queries.ActionWrite:
    """Record an action before anything is sent."""
    async with deps.pool.acquire() as conn:
        return await queries.insert_action(conn, action)


async def mark_sent(deps: Deps, action_id: int) -> None:
    """The request leaves for Calendly now."""
    async with deps.pool.acquire() as conn:
        await queries.mark_action_sent(conn, action_id)


async def fail(
    deps: Deps, kind: str, action_id: int, exc: CalendlyError | NeedsReauth
) -> ServiceError:
    """Record a refusal (failed) or a lost answer (unknown); the error to raise."""
    state = "unknown" if isinstance(exc, CalendlyOutcomeUnknown) else "failed"
    error = failure(exc, action_id, state)
    return await record_failure(deps, kind, action_id, state, error)


async def record_failure(
    deps: Deps, kind: str, action_id: int, state: str, error: ServiceError
) -> ServiceError:
    """Store the error on the action and count it; returns it to raise."""
    async with deps.pool.acquire() as conn:
        await queries.finish_action(conn, action_id, state, None, error_record(error))
    count(deps, kind, error.code if state == "failed" else "unknown")
    log.info("calendly_action_failed", action=kind, action_id=action_id, state=state,
             error_code=error.code)  # fmt: skip
    return error


async def apply_and_finish(
    deps: Deps, integration: queries.Integration, invitee: dict[str, Any],
    event: dict[str, Any], action_id: int | None, response: Any,
) -> ApplyResult:  # fmt: skip
    """Apply the invitee as Calendly reports it and record the action's success, together."""
    state = invitee_state(invitee, event)
    event_type = await resolve_event_type(deps, integration, state.event_type_uri)
    ctx = ApplyContext(
        integration, event_type, notifications_on(deps, integration), tombstones(deps.settings)
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        result = await apply_invitee(conn, ctx, state)
        if action_id is not None:
            await queries.finish_action(
                conn, action_id, "succeeded", response, None, result.appointment_id
            )
    return result


async def read_invitee(
    deps: Deps, integration: queries.Integration, invitee_uri: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The invitee and its scheduled event as Calendly reports them now."""
    source = deps.tokens.for_integration(integration)
    return await deps.calendly.get_invitee_and_event(source, invitee_uri)


async def converge(
    deps: Deps, target: Target, action_id: int | None, response: Any
) -> queries.Appointment:
    """Re-read the appointment's invitee, apply it, and answer the appointment."""
    uri = target.appointment.calendly_invitee_uri
    try:
        invitee, event = await read_invitee(deps, target.integration, uri)
    except (CalendlyError, NeedsReauth) as exc:
        # applied at Calendly all the same: the webhook (or the next sync) brings the state
        log.warning("calendly_action_reread_failed", action_id=action_id, error=str(exc))
        if action_id is not None:
            async with deps.pool.acquire() as conn:
                await queries.finish_action(conn, action_id, "succeeded", response, None)
        return await current(deps, target.appointment)
    await apply_and_finish(deps, target.integration, invitee, event, action_id, response)
    return await current(deps, target.appointment)


async def current(deps: Deps, appointment: queries.Appointment) -> queries.Appointment:
    """The appointment as stored now."""
    async with deps.pool.acquire() as conn:
        row = await queries.get_appointment(conn, appointment.id, appointment.user_id)
    if row is None:
        raise NotFound("appointment not found", code="appointment_not_found")
    return row


async def target(deps: Deps, user_id: int, appointment_id: int, scope: str) -> Target:
    """The caller's appointment and live integration, gated on the scope (404 for another
    user's appointment)."""
    async with deps.pool.acquire() as conn:
        appointment = await queries.get_appointment(conn, appointment_id, user_id)
        integration = await queries.get_integration_by_user(conn, user_id)
    if appointment is None or integration is None or appointment.integration_id != integration.id:
        raise NotFound("appointment not found", code="appointment_not_found")
    if integration.status == "disconnected":
        raise NotFound("no Calendly account is connected", code="not_connected")
    require_scope(integration, scope)
    return Target(integration, appointment)


def _action(target: Target, kind: str, actor: int) -> queries.NewAction:
    """An action on an appointment (no idempotency key: these are idempotent by nature)."""
    appointment = target.appointment
    return queries.NewAction(
        integration_id=target.integration.id, kind=kind, actor_user_id=actor,
        appointment_id=appointment.id, event_type_id=appointment.event_type_id,
        idempotency_key=None, request_hash=None, start_time=appointment.start_time,
        invitee_email_hash=None,
    )  # fmt: skip


# --- cancel -------------------------------------------------------------------------------------


def _past(event: dict[str, Any]) -> bool:
    """Whether the event has started (Calendly refuses to cancel it)."""
    start = event.get("start_time")
    if not isinstance(start, str):
        return False
    return datetime.fromisoformat(start.replace("Z", "+00:00")) <= datetime.now(UTC)


def _group(event: dict[str, Any]) -> bool:
    """Whether more than one invitee may book the event (cancelling cancels it for all)."""
    counter = event.get("invitees_counter") or {}
    return int(counter.get("limit") or 1) > 1 or int(counter.get("active") or 0) > 1


async def _refusal(deps: Deps, target: Target, event: dict[str, Any]) -> ServiceError | None:
    """Why Calendly would refuse to cancel this event; a canceled one is applied first."""
    if event.get("status") == "canceled":
        await converge(deps, target, None, None)
        return Conflict("the event is already canceled at Calendly", code="already_canceled")
    if _past(event):
        return Conflict("the event is in the past", code="event_in_past")
    return None


async def cancel(
    deps: Deps, user_id: int, appointment_id: int, reason: str | None, whole_event: bool
) -> queries.Appointment:
    """Cancel the appointment's event at Calendly (no call when it is canceled already)."""
    target_ = await target(deps, user_id, appointment_id, WRITE_EVENTS)
    if target_.appointment.status == "canceled":
        count(deps, "cancel", "noop")
        return target_.appointment
    action = await new_action(deps, _action(target_, "cancel", user_id))
    source = deps.tokens.for_integration(target_.integration)
    try:
        event = await deps.calendly.get_event(source, target_.appointment.calendly_event_uri)
    except (CalendlyError, NeedsReauth) as exc:
        raise await fail(deps, "cancel", action.id, exc) from None
    refused = await _refusal(deps, target_, event)
    if refused is None and _group(event) and not whole_event:
        message = "a group event: cancelling it cancels it for every invitee; send whole_event"
        refused = Conflict(message, {"invitees": event.get("invitees_counter")}, code="group_event")
    if refused is not None:
        raise await record_failure(deps, "cancel", action.id, "failed", refused)
    return await _send_cancel(deps, target_, action.id, reason)


async def _send_cancel(
    deps: Deps, target_: Target, action_id: int, reason: str | None
) -> queries.Appointment:
    """Send the cancellation and converge; a refusal is explained by re-reading the event."""
    source = deps.tokens.for_integration(target_.integration)
    await mark_sent(deps, action_id)
    try:
        response = await deps.calendly.cancel_event(
            source, target_.appointment.calendly_event_uri, reason
        )
    except CalendlyPermissionDenied as exc:
        if isinstance(exc, CalendlyMissingScope):
            raise await fail(deps, "cancel", action_id, exc) from None
        raise await _explain_refusal(deps, target_, action_id, exc) from None
    except CalendlyOutcomeUnknown as exc:
        return await _check_cancel(deps, target_, action_id, exc)
    except (CalendlyError, NeedsReauth) as exc:
        raise await fail(deps, "cancel", action_id, exc) from None
    kept = {key: response.get(key) for key in ("canceler_type", "created_at")}
    appointment = await converge(deps, target_, action_id, kept)
    count(deps, "cancel", "succeeded")
    return appointment


async def _explain_refusal(
    deps: Deps, target_: Target, action_id: int, exc: CalendlyError
) -> ServiceError:
    """A 403 to a cancellation: the event's state says why (FACTS §13.3), else calendly_error."""
    source = deps.tokens.for_integration(target_.integration)
    event = await deps.calendly.get_event(source, target_.appointment.calendly_event_uri)
    refused = await _refusal(deps, target_, event)
    error = refused or failure(exc, action_id, "failed")
    return await record_failure(deps, "cancel", action_id, "failed", error)


async def _check_cancel(
    deps: Deps, target_: Target, action_id: int, exc: CalendlyOutcomeUnknown
) -> queries.Appointment:
    """No answer to a cancellation: Calendly's event says whether it was applied."""
    source = deps.tokens.for_integration(target_.integration)
    try:
        event = await deps.calendly.get_event(source, target_.appointment.calendly_event_uri)
    except (CalendlyError, NeedsReauth):
        raise await fail(deps, "cancel", action_id, exc) from None
    if event.get("status") != "canceled":
        raise await fail(deps, "cancel", action_id, exc)
    appointment = await converge(deps, target_, action_id, {"checked": "event canceled"})
    count(deps, "cancel", "succeeded")
    return appointment


# --- no-shows -----------------------------------------------------------------------------------


async def mark_no_show(deps: Deps, user_id: int, appointment_id: int) -> queries.Appointment:
    """Mark the appointment's invitee as a no-show (no call when it is marked already)."""
    target_ = await target(deps, user_id, appointment_id, WRITE_EVENTS)
    if target_.appointment.no_show:
        count(deps, "no_show", "noop")
        return target_.appointment
    if target_.appointment.status == "canceled":
        message = "a canceled appointment cannot be marked a no-show"
        raise Conflict(message, code="appointment_canceled")
    action = await new_action(deps, _action(target_, "no_show", user_id))
    source = deps.tokens.for_integration(target_.integration)
    await mark_sent(deps, action.id)
    try:
        response = await deps.calendly.create_no_show(
            source, target_.appointment.calendly_invitee_uri
        )
    except (CalendlyError, NeedsReauth) as exc:
        raise await fail(deps, "no_show", action.id, exc) from None
    appointment = await converge(deps, target_, action.id, {"uri": response.get("uri")})
    count(deps, "no_show", "succeeded")
    return appointment


async def _no_show_uri(deps: Deps, target_: Target, tried: str | None) -> str | None:
    """The invitee's no-show mark: the one this service made, else (or when that one is gone)
    the one Calendly's invitee shows."""
    invitee_uri = target_.appointment.calendly_invitee_uri
    if tried is None:
        async with deps.pool.acquire() as conn:
            stored = await queries.last_no_show_uri(conn, target_.appointment.id)
        if stored:
            return stored
    source = deps.tokens.for_integration(target_.integration)
    invitee = await deps.calendly.get_invitee(source, invitee_uri)
    mark = invitee.get("no_show")
    uri = mark.get("uri") if isinstance(mark, dict) else None
    return uri if isinstance(uri, str) and uri != tried else None


async def _delete_no_show(deps: Deps, target_: Target, action_id: int) -> str | None:
    """Delete the invitee's no-show mark at Calendly; the URI deleted (None: none was set)."""
    source = deps.tokens.for_integration(target_.integration)
    tried: str | None = None
    for _ in range(2):
        uri = await _no_show_uri(deps, target_, tried)
        if uri is None:
            return tried
        await mark_sent(deps, action_id)
        try:
            await deps.calendly.delete_no_show(source, uri)
            return uri
        except CalendlyNotFound:
            tried = uri  # gone already (or a stale mark): Calendly's invitee says which
    return tried


async def unmark_no_show(deps: Deps, user_id: int, appointment_id: int) -> queries.Appointment:
    """Unmark the no-show (no call when it is not marked)."""
    target_ = await target(deps, user_id, appointment_id, WRITE_EVENTS)
    if not target_.appointment.no_show:
        count(deps, "no_show_undo", "noop")
        return target_.appointment
    action = await new_action(deps, _action(target_, "no_show_undo", user_id))
    try:
        deleted = await _delete_no_show(deps, target_, action.id)
    except (CalendlyError, NeedsReauth) as exc:
        raise await fail(deps, "no_show_undo", action.id, exc) from None
    appointment = await converge(deps, target_, action.id, {"deleted": deleted})
    count(deps, "no_show_undo", "succeeded")
    return appointment


# --- event types: available times and single-use links -----------------------------------------


async def event_type_of(
    deps: Deps, user_id: int, event_type_id: int
) -> tuple[queries.Integration, queries.EventType]:
    """The caller's event type of their live integration (404 for another user's)."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, user_id)
        if integration is None or integration.status == "disconnected":
            raise NotFound("event type not found", code="event_type_not_found")
        event_type = await queries.get_event_type(conn, event_type_id, integration.id)
    if event_type is None or event_type.removed_at is not None:
        raise NotFound("event type not found", code="event_type_not_found")
    return integration, event_type


class _TimesCache:
    """Available times per (event type, range) for a few seconds, at most TIMES_CACHE_SIZE."""

    def __init__(self) -> None:
        self.items: OrderedDict[tuple[str, str, str], tuple[float, list[dict[str, Any]]]] = (
            OrderedDict()
        )

    def get(self, key: tuple[str, str, str]) -> list[dict[str, Any]] | None:
        """A fresh entry, or None."""
        found = self.items.get(key)
        if found is None or found[0] < time.monotonic():
            self.items.pop(key, None)
            return None
        return found[1]

    def put(self, key: tuple[str, str, str], ttl: float, value: list[dict[str, Any]]) -> None:
        """Keep an answer; the oldest entry goes when full."""
        self.items[key] = (time.monotonic() + ttl, value)
        self.items.move_to_end(key)
        while len(self.items) > TIMES_CACHE_SIZE:
            self.items.popitem(last=False)


# one cache per Calendly client (one per running app), gone with it
_CACHES: weakref.WeakKeyDictionary[CalendlyClient, _TimesCache] = weakref.WeakKeyDictionary()


async def available_times(
    deps: Deps, user_id: int, event_type_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Calendly's available times of the event type in [start, end), cached briefly."""
    integration, event_type = await event_type_of(deps, user_id, event_type_id)
    cache = _CACHES.setdefault(deps.calendly, _TimesCache())
    key = (event_type.calendly_event_type_uri, start.isoformat(), end.isoformat())
    if (found := cache.get(key)) is not None:
        return found
    source = deps.tokens.for_integration(integration)
    items = await deps.calendly.available_times(
        source, event_type.calendly_event_type_uri, start, end
    )
    if deps.settings.available_times_cache_seconds > 0:
        cache.put(key, deps.settings.available_times_cache_seconds, items)
    return items


def forget_times(deps: Deps, event_type_uri: str) -> None:
    """Drop the cached times of an event type (a booking just changed them)."""
    cache = _CACHES.get(deps.calendly)
    if cache is not None:
        for key in [k for k in cache.items if k[0] == event_type_uri]:
            cache.items.pop(key, None)


def with_prefill(booking_url: str, prefill: dict[str, str] | None) -> str:
    """The booking URL with the invitee's name and email as query parameters (Calendly's
    booking pages prefill them; see docs/api.md)."""
    if not prefill:
        return booking_url
    parts = urlsplit(booking_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(prefill.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


async def scheduling_link(
    deps: Deps, user_id: int, event_type_id: int, prefill: dict[str, str] | None
) -> queries.SchedulingLink:
    """A single-use booking link of the event type, stored with who asked for it."""
    integration, event_type = await event_type_of(deps, user_id, event_type_id)
    require_scope(integration, WRITE_LINKS)
    action = await new_action(deps, queries.NewAction(
        integration_id=integration.id, kind="scheduling_link", actor_user_id=user_id,
        appointment_id=None, event_type_id=event_type.id, idempotency_key=None,
        request_hash=None, start_time=None, invitee_email_hash=None,
    ))  # fmt: skip
    source = deps.tokens.for_integration(integration)
    await mark_sent(deps, action.id)
    try:
        link = await deps.calendly.create_scheduling_link(
            source, event_type.calendly_event_type_uri
        )
    except (CalendlyError, NeedsReauth) as exc:
        raise await fail(deps, "scheduling_link", action.id, exc) from None
    url = with_prefill(str(link["booking_url"]), prefill)
    async with deps.pool.acquire() as conn, conn.transaction():
        stored = await queries.insert_scheduling_link(
            conn, integration.id, event_type.id, user_id, url, 1, prefill
        )
        await queries.finish_action(conn, action.id, "succeeded", {"link_id": stored.id}, None)
    count(deps, "scheduling_link", "succeeded")
    return stored
