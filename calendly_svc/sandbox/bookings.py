"""Booking life cycle: book, bulk book, cancel, reschedule, no-show marks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from .errors import ControlError
from .models import (
    Cancellation,
    EventType,
    Invitee,
    NoShow,
    ScheduledEvent,
    new_id,
    utcnow,
)
from .schemas import InviteeSpec
from .state import SandboxState


def _bad(message: str) -> ControlError:
    """A 400 control error."""
    return ControlError(400, message)


def pick_host(state: SandboxState, event_type: EventType, email: str | None) -> str:
    """The host a booking goes to: the one asked for (round robin), else the first host."""
    if email is None:
        return event_type.hosts[0]
    if event_type.pooling_type == "collective":
        raise _bad("a collective event is hosted by every host; leave out host")
    user = state.find_user(email)
    if user is None or user.uuid not in event_type.hosts:
        raise _bad(f"{email} is not a host of this event type")
    return user.uuid


def _new_event(
    state: SandboxState,
    event_type: EventType,
    start: datetime,
    now: datetime,
    host_uuid: str | None = None,
) -> ScheduledEvent:
    """A fresh scheduled event of event_type (not yet stored): hosted by its owner, by the
    chosen host (round robin) or by every host (collective)."""
    host = state.users[host_uuid or event_type.hosts[0]]
    end = start + timedelta(minutes=event_type.duration)
    members = event_type.hosts if event_type.pooling_type == "collective" else ()
    return ScheduledEvent(
        new_id(),
        event_type.uuid,
        host.uuid,
        host.org_uuid,
        event_type.name,
        start,
        end,
        event_type.invitee_limit,
        now,
        now,
        member_uuids=members,
    )


def _invitee_from_spec(spec: InviteeSpec, event_uuid: str, now: datetime) -> Invitee:
    """An active invitee built from a booking body entry."""
    questions = tuple(
        {
            "question": qa.question,
            "answer": qa.answer,
            "position": index if qa.position is None else qa.position,
        }
        for index, qa in enumerate(spec.questions_and_answers)
    )
    return Invitee(
        uuid=new_id(),
        event_uuid=event_uuid,
        email=spec.email,
        name=spec.name,
        created_at=now,
        updated_at=now,
        first_name=spec.first_name,
        last_name=spec.last_name,
        timezone=spec.timezone,
        text_reminder_number=spec.text_reminder_number,
        questions=questions,
        tracking=spec.tracking,
    )


def active_count(state: SandboxState, event: ScheduledEvent) -> int:
    """Number of active invitees of event."""
    return sum(1 for uuid in event.invitee_uuids if state.invitees[uuid].status == "active")


def _slot_event(
    state: SandboxState,
    event_type: EventType,
    start: datetime,
    now: datetime,
    host_uuid: str | None = None,
) -> ScheduledEvent:
    """The event a booking lands in: an open group slot at that time, else a new event."""
    if event_type.kind == "group":
        existing = state.group_slots.get((start, event_type.uuid))
        if existing is not None:
            return state.events[existing]
    return _new_event(state, event_type, start, now, host_uuid)


def _attach(state: SandboxState, event: ScheduledEvent, invitees: list[Invitee]) -> None:
    """Store invitees on event, storing and indexing the event when new."""
    for invitee in invitees:
        state.invitees[invitee.uuid] = invitee
        event.invitee_uuids.append(invitee.uuid)
    if event.uuid not in state.events:
        state.add_event(event)
        if state.event_types[event.event_type_uuid].kind == "group":
            state.group_slots[(event.start, event.event_type_uuid)] = event.uuid


def book(
    state: SandboxState,
    event_type: EventType,
    start: datetime,
    specs: list[InviteeSpec],
    host: str | None = None,
) -> tuple[ScheduledEvent, list[Invitee]]:
    """Book invitees into event_type at start (group event types share one event per slot);
    `host` (an e-mail) picks a round robin type's host."""
    if event_type.deleted_at is not None or not event_type.active:
        raise _bad("event type is inactive or deleted")
    if event_type.kind == "solo" and len(specs) != 1:
        raise _bad("solo event types take exactly one invitee; create a kind=group event type")
    host_uuid = pick_host(state, event_type, host)
    now = utcnow()
    event = _slot_event(state, event_type, start, now, host_uuid)
    if active_count(state, event) + len(specs) > event.invitee_limit:
        raise _bad(f"the event is full (limit {event.invitee_limit})")
    invitees = [_invitee_from_spec(spec, event.uuid, now) for spec in specs]
    _attach(state, event, invitees)
    event.updated_at = now
    return event, invitees


def bulk_book(
    state: SandboxState, event_type: EventType, count: int, start: datetime, interval: int
) -> list[Invitee]:
    """Create `count` single-invitee bookings `interval` minutes apart, indexed in one pass."""
    now = utcnow()
    step = timedelta(minutes=interval)
    events: list[ScheduledEvent] = []
    invitees: list[Invitee] = []
    for index in range(count):
        event = _new_event(state, event_type, start + index * step, now)
        invitee = Invitee(
            new_id(), event.uuid, f"invitee{index}@example.com", f"Invitee {index}", now, now
        )
        event.invitee_uuids.append(invitee.uuid)
        state.invitees[invitee.uuid] = invitee
        events.append(event)
        invitees.append(invitee)
    state.add_events_bulk(events)
    return invitees


def cancel(
    state: SandboxState, invitee: Invitee, canceler_type: str, reason: str | None
) -> ScheduledEvent:
    """Cancel an invitee; the event is canceled too once no active invitee remains."""
    if invitee.status != "active":
        raise _bad("invitee is already canceled")
    event = state.events[invitee.event_uuid]
    now = utcnow()
    host = state.users[event.host_uuid]
    canceled_by = invitee.name if canceler_type == "invitee" else host.name
    cancellation = Cancellation(canceled_by, reason, canceler_type, now)
    invitee.status, invitee.cancellation, invitee.updated_at = "canceled", cancellation, now
    event.updated_at = now
    if active_count(state, event) == 0:
        event.status, event.cancellation = "canceled", cancellation
        state.group_slots.pop((event.start, event.event_type_uuid), None)
    return event


def reschedule(
    state: SandboxState, old: Invitee, start: datetime, host: str | None = None
) -> Invitee:
    """Move an invitee to a new event at start: new invitee linked both ways, old canceled.
    The new event keeps the old one's host unless `host` (round robin) names another."""
    if old.status != "active":
        raise _bad("only active invitees can be rescheduled")
    previous = state.events[old.event_uuid]
    event_type = state.event_types[previous.event_type_uuid]
    host_uuid = pick_host(state, event_type, host) if host else previous.host_uuid
    now = utcnow()
    event = _slot_event(state, event_type, start, now, host_uuid)
    if event.uuid == old.event_uuid:
        raise _bad("the new start time is the invitee's current slot")
    if active_count(state, event) + 1 > event.invitee_limit:
        raise _bad(f"the event is full (limit {event.invitee_limit})")
    new = _clone_for(old, event.uuid, now)
    _attach(state, event, [new])
    event.updated_at = now
    cancel(state, old, "invitee", None)
    old.rescheduled, old.new_invitee_uuid = True, new.uuid
    return new


def _clone_for(old: Invitee, event_uuid: str, now: datetime) -> Invitee:
    """A fresh active copy of old in another event, pointing back at old."""
    return replace(
        old,
        uuid=new_id(),
        event_uuid=event_uuid,
        created_at=now,
        updated_at=now,
        status="active",
        rescheduled=False,
        old_invitee_uuid=old.uuid,
        new_invitee_uuid=None,
        cancellation=None,
        no_show=None,
    )


def set_no_show(state: SandboxState, invitee: Invitee, marked: bool) -> None:
    """Mark (or unmark) an invitee as a no-show, bumping invitee and event."""
    if marked == (invitee.no_show is not None):
        raise _bad("invitee is already marked" if marked else "invitee is not marked as no-show")
    now = utcnow()
    invitee.no_show = NoShow(new_id(), now) if marked else None
    invitee.updated_at = now
    state.events[invitee.event_uuid].updated_at = now
