"""Booking through Calendly's Scheduling API (POST /invitees) without ever booking twice.

The Idempotency-Key names one action row per integration: the request that inserted it sends,
concurrent requests with the key wait for its outcome. Calendly dedupes nothing (FACTS §13.7),
so a booking whose answer was lost ('unknown') is never re-sent blind: before sending, when this
action or an earlier one for the same event type, start time and e-mail is unknown or in flight,
the user's events at that start are listed and their invitees searched for the e-mail; a booking
found is the result.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from calendly_svc.apply.domain import creation_refusal, normalize_email
from calendly_svc.apply.times import parse_time
from calendly_svc.apply.tombstones import Tombstones, tombstones
from calendly_svc.calendly.errors import CalendlyBadRequest, CalendlyError, NeedsReauth
from calendly_svc.deps import Deps
from calendly_svc.errors import Conflict, Unprocessable, UpstreamError
from calendly_svc.integrations.actions import (
    WRITE_EVENTS,
    apply_and_finish,
    count,
    event_type_of,
    fail,
    failure,
    forget_times,
    mark_sent,
    new_action,
    record_failure,
    require_scope,
)
from calendly_svc.store import queries

log = structlog.get_logger(__name__)
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Booking:
    """A validated booking request: Calendly's body and what identifies it."""

    event_type_id: int
    start_time: datetime
    email: str
    calendly: dict[str, Any]  # the POST /invitees body, event_type left out

    def request_hash(self, keyed: Tombstones) -> bytes:
        """The keyed hash of the normalized request (same key + another hash = reused key)."""
        normal = {"event_type_id": self.event_type_id, "body": self.calendly}
        return keyed.mark("request:" + json.dumps(normal, sort_keys=True))

    def email_hash(self, keyed: Tombstones) -> bytes:
        """The keyed hash of the normalized e-mail (the action row keeps no e-mail)."""
        return keyed.mark("email:" + (normalize_email(self.email) or ""))


@dataclass(frozen=True, slots=True)
class Place:
    """Where the booking goes: the caller's integration and event type."""

    integration: queries.Integration
    event_type: queries.EventType


def utc_text(moment: datetime) -> str:
    """Calendly's UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def book(deps: Deps, user_id: int, key: str, booking: Booking) -> queries.Appointment:
    """Book once per key; a repeat answers the first outcome without calling Calendly."""
    integration, event_type = await event_type_of(deps, user_id, booking.event_type_id)
    if (refusal := creation_refusal(event_type)) is not None:
        message = "this event type is not bookable through the service"
        raise Conflict(message, {"reason": refusal}, code="event_type_not_bookable")
    require_scope(integration, WRITE_EVENTS)
    place = Place(integration, event_type)
    keyed = tombstones(deps.settings)
    request_hash = booking.request_hash(keyed)
    action = await new_action(deps, queries.NewAction(
        integration_id=integration.id, kind="book", actor_user_id=user_id, appointment_id=None,
        event_type_id=event_type.id, idempotency_key=key, request_hash=request_hash,
        start_time=booking.start_time, invitee_email_hash=booking.email_hash(keyed),
    ))  # fmt: skip
    if action.kind != "book" or action.request_hash != request_hash:
        message = "this Idempotency-Key was used with another request"
        raise Unprocessable(message, {"action_id": action.id}, code="idempotency_key_reused")
    if action.inserted:
        return await _send(deps, place, action.id, booking, look_first=False)
    return await _repeat(deps, place, action.id, booking)


async def _repeat(
    deps: Deps, place: Place, action_id: int, booking: Booking
) -> queries.Appointment:
    """A key seen before: its outcome, once the request that holds it has one."""
    deadline = time.monotonic() + deps.settings.action_wait_seconds
    stale = deps.settings.calendly_timeout_seconds + deps.settings.action_wait_seconds
    while True:
        async with deps.pool.acquire() as conn:
            action = await queries.get_action(conn, action_id)
            assert action is not None
            claimed = action.state != "succeeded" and await queries.claim_action(
                conn, action_id, stale
            )
        if action.state == "succeeded":
            return await _answer(deps, place, action)
        if claimed:
            # failed: nothing was booked; unknown or abandoned: look before sending again
            count(deps, "book", "retried")
            return await _send(deps, place, action_id, booking, action.state != "failed")
        if time.monotonic() > deadline:
            message = "a request with this Idempotency-Key is still in progress; retry later"
            raise Conflict(message, {"action_id": action_id}, code="idempotency_key_in_progress")
        await asyncio.sleep(POLL_SECONDS)


async def _answer(deps: Deps, place: Place, action: queries.Action) -> queries.Appointment:
    """The appointment a succeeded booking made."""
    async with deps.pool.acquire() as conn:
        found = None
        if action.appointment_id is not None:
            found = await queries.get_appointment(
                conn, action.appointment_id, place.integration.user_id
            )
        uri = (action.calendly_response or {}).get("uri")
        if found is None and isinstance(uri, str):
            by_invitee = await queries.appointment_by_invitee(conn, place.integration.id, uri)
            if by_invitee is not None:
                found = await queries.get_appointment(
                    conn, by_invitee.id, place.integration.user_id
                )
    if found is None:
        message = "booked at Calendly, but no appointment holds the booking yet; retry shortly"
        raise UpstreamError(message, {"action_id": action.id, "state": action.state})
    return found


async def _send(
    deps: Deps, place: Place, action_id: int, booking: Booking, look_first: bool
) -> queries.Appointment:
    """Look for an earlier attempt's booking when one may exist; else send this one."""
    async with deps.pool.acquire() as conn:
        earlier = await queries.unsettled_bookings(
            conn, place.integration.id, place.event_type.id, booking.start_time,
            booking.email_hash(tombstones(deps.settings)), action_id,
        )  # fmt: skip
    if look_first or earlier:
        try:
            found = await _find(deps, place, booking)
        except (CalendlyError, NeedsReauth) as exc:
            error = failure(exc, action_id, "unknown")
            raise await record_failure(deps, "book", action_id, "unknown", error) from None
        if found is not None:
            return await _found(deps, place, action_id, earlier, found)
    source = deps.tokens.for_integration(place.integration)
    body = {"event_type": place.event_type.calendly_event_type_uri, **booking.calendly}
    await mark_sent(deps, action_id)
    try:
        invitee = await deps.calendly.create_invitee(source, body)
    except CalendlyBadRequest as exc:
        raise await _refused(deps, place, action_id, booking, exc) from None
    except (CalendlyError, NeedsReauth) as exc:
        raise await fail(deps, "book", action_id, exc) from None
    forget_times(deps, place.event_type.calendly_event_type_uri)
    appointment = await _apply(deps, place, action_id, invitee, earlier)
    count(deps, "book", "succeeded")
    return appointment


def _summary(invitee: dict[str, Any], with_uri: bool = False) -> dict[str, Any]:
    """What the action row keeps of the booked invitee: its event, and its URI only until an
    appointment holds it (an erasure never has to look here)."""
    kept = {"event": invitee.get("event")}
    return kept | {"uri": invitee.get("uri")} if with_uri else kept


async def _apply(
    deps: Deps, place: Place, action_id: int, invitee: dict[str, Any], earlier: list[int]
) -> queries.Appointment:
    """Apply the new booking and record the success (and that of the earlier attempts)."""
    try:
        source = deps.tokens.for_integration(place.integration)
        event = await deps.calendly.get_event(source, str(invitee.get("event") or ""))
    except (CalendlyError, NeedsReauth) as exc:
        # booked all the same: the webhook (or the next sync) creates the appointment
        log.warning("calendly_booking_reread_failed", action_id=action_id, error=str(exc))
        async with deps.pool.acquire() as conn:
            await queries.finish_action(
                conn, action_id, "succeeded", _summary(invitee, with_uri=True), None
            )
        raise UpstreamError(
            "booked at Calendly; the appointment follows with the webhook",
            {"action_id": action_id, "state": "succeeded"},
        ) from None
    action = await _booked(deps, place, action_id, earlier, (invitee, event))
    return await _answer(deps, place, action)


async def _booked(
    deps: Deps, place: Place, action_id: int, earlier: list[int],
    booked: tuple[dict[str, Any], dict[str, Any]],
) -> queries.Action:  # fmt: skip
    """Apply the booking, record it as this action's success and the earlier attempts'; the
    action as stored."""
    invitee, event = booked
    summary = _summary(invitee)
    result = await apply_and_finish(deps, place.integration, invitee, event, action_id, summary)
    if earlier:
        async with deps.pool.acquire() as conn:
            await queries.settle_bookings(
                conn, place.integration.id, earlier, summary, result.appointment_id
            )
    async with deps.pool.acquire() as conn:
        action = await queries.get_action(conn, action_id)
    assert action is not None
    return action


async def _found(
    deps: Deps, place: Place, action_id: int, earlier: list[int],
    found: tuple[dict[str, Any], dict[str, Any]],
) -> queries.Appointment:  # fmt: skip
    """An earlier attempt did book: that booking is this one's result."""
    log.info("calendly_booking_found", action_id=action_id, earlier=earlier)
    action = await _booked(deps, place, action_id, earlier, found)
    count(deps, "book", "found")
    return await _answer(deps, place, action)


async def _find(
    deps: Deps, place: Place, booking: Booking
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The user's active booking of this event type at this start by this e-mail, if any."""
    source = deps.tokens.for_integration(place.integration)
    start = booking.start_time
    email = normalize_email(booking.email)
    events = deps.calendly.scheduled_events(
        source, place.integration.calendly_user_uri, utc_text(start),
        utc_text(start + timedelta(minutes=1)),
    )  # fmt: skip
    async for event in events:
        if not _same_slot(event, place.event_type.calendly_event_type_uri, start):
            continue
        async for invitee in deps.calendly.invitees(source, str(event["uri"])):
            if invitee.get("status") == "active" and normalize_email(invitee.get("email")) == email:
                return invitee, event
    return None


def _same_slot(event: dict[str, Any], event_type_uri: str, start: datetime) -> bool:
    """An active event of this event type starting at this time."""
    try:
        starts = parse_time(event.get("start_time"))
    except ValueError:
        return False
    return (
        event.get("status") == "active"
        and event.get("event_type") == event_type_uri
        and isinstance(event.get("uri"), str)
        and starts == start
    )


async def _refused(
    deps: Deps, place: Place, action_id: int, booking: Booking, exc: CalendlyBadRequest
) -> Exception:
    """A 400 to a booking: the slot is gone only if the available times no longer offer it
    (FACTS §13.7); otherwise Calendly refused the request's details."""
    source = deps.tokens.for_integration(place.integration)
    start = booking.start_time
    try:
        times = await deps.calendly.available_times(
            source, place.event_type.calendly_event_type_uri, start, start + timedelta(hours=1)
        )
    except (CalendlyError, NeedsReauth) as check:
        return await fail(deps, "book", action_id, check)
    offered = any(_starts_at(item, start) for item in times)
    if not offered:
        error: Conflict | Unprocessable = Conflict(
            "the slot is taken or not offered", {"action_id": action_id}, code="slot_unavailable"
        )
    else:
        error = Unprocessable(
            f"Calendly refused the booking: {exc.message}",
            {"action_id": action_id, "calendly": exc.details}, code="calendly_rejected",
        )  # fmt: skip
    return await record_failure(deps, "book", action_id, "failed", error)


def _starts_at(item: dict[str, Any], start: datetime) -> bool:
    """Whether an available time starts at this moment."""
    try:
        return parse_time(item.get("start_time")) == start
    except ValueError:
        return False
