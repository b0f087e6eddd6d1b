"""Control API for bookings: create, bulk create, cancel, reschedule, no-show marks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .bookings import book, bulk_book, cancel, reschedule, set_no_show
from .control import missing
from .errors import ControlError
from .models import EventType, Invitee
from .render import event_json, invitee_json, invitee_payload
from .schemas import (
    BulkBooking,
    CancelInvitee,
    InviteeRef,
    NewBooking,
    RescheduleInvitee,
    read_body,
)
from .state import SANDBOX_STATE, SandboxState
from .webhooks import deliver


def find_event_type(state: SandboxState, ref: str) -> EventType:
    """An event type by URI, else 404."""
    event_type = state.find_event_type(ref)
    if event_type is None:
        raise missing("event type")
    return event_type


def find_invitee(state: SandboxState, ref: str) -> Invitee:
    """An invitee by URI, else 404."""
    invitee = state.find_invitee(ref)
    if invitee is None:
        raise missing("invitee")
    return invitee


async def emit_invitee(state: SandboxState, event: str, invitee: Invitee) -> list[Any]:
    """Deliver an invitee.* / invitee_no_show.* webhook about invitee."""
    scheduled = state.events[invitee.event_uuid]
    payload = invitee_payload(state, invitee)
    return await deliver(state, event, payload, scheduled.members, scheduled.org_uuid)


async def emit_all(state: SandboxState, event: str, invitees: list[Invitee]) -> list[Any]:
    """Deliver one webhook per invitee, in order."""
    deliveries: list[Any] = []
    for invitee in invitees:
        deliveries.extend(await emit_invitee(state, event, invitee))
    return deliveries


async def create_booking(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/bookings -> {"event", "invitees", "deliveries"}."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, NewBooking)
    event_type = find_event_type(state, body.event_type)
    event, invitees = book(state, event_type, body.start_time, body.invitees, body.host)
    deliveries = await emit_all(state, "invitee.created", invitees) if body.deliver else []
    return web.json_response(
        {
            "event": event_json(state, event),
            "invitees": [invitee_json(state, invitee) for invitee in invitees],
            "deliveries": deliveries,
        }
    )


async def create_bulk(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/bookings/bulk -> {"created": n} (+ "deliveries" when deliver is true)."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, BulkBooking)
    event_type = find_event_type(state, body.event_type)
    if event_type.deleted_at is not None or not event_type.active:
        raise ControlError(400, "event type is inactive or deleted")
    invitees = bulk_book(state, event_type, body.count, body.start_time, body.interval_minutes)
    result: dict[str, Any] = {"created": len(invitees)}
    if body.deliver:
        result["deliveries"] = await emit_all(state, "invitee.created", invitees)
    return web.json_response(result)


async def cancel_invitee(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/invitees/cancel -> {"invitee", "event", "deliveries"}."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, CancelInvitee)
    invitee = find_invitee(state, body.invitee)
    event = cancel(state, invitee, body.canceler_type, body.reason)
    deliveries = await emit_invitee(state, "invitee.canceled", invitee) if body.deliver else []
    return web.json_response(
        {
            "invitee": invitee_json(state, invitee),
            "event": event_json(state, event),
            "deliveries": deliveries,
        }
    )


async def reschedule_invitee(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/invitees/reschedule -> {"old_invitee", "new_invitee", "deliveries"}."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, RescheduleInvitee)
    old = find_invitee(state, body.invitee)
    new = reschedule(state, old, body.start_time, body.host)
    deliveries: list[Any] = []
    if body.deliver:
        # Calendly's order is undocumented; the sandbox sends the canceled half first. Each
        # half goes to its own event's hosts: after a host change, the old host gets only the
        # canceled half and the new host only the created half.
        deliveries += await emit_invitee(state, "invitee.canceled", old)
        deliveries += await emit_invitee(state, "invitee.created", new)
    return web.json_response(
        {
            "old_invitee": invitee_json(state, old),
            "new_invitee": invitee_json(state, new),
            "deliveries": deliveries,
        }
    )


async def _no_show(request: web.Request, marked: bool) -> web.StreamResponse:
    """Mark or unmark a no-show and deliver invitee_no_show.created / .deleted."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, InviteeRef)
    invitee = find_invitee(state, body.invitee)
    set_no_show(state, invitee, marked)
    event = "invitee_no_show.created" if marked else "invitee_no_show.deleted"
    deliveries = await emit_invitee(state, event, invitee) if body.deliver else []
    return web.json_response({"invitee": invitee_json(state, invitee), "deliveries": deliveries})


async def mark_no_show(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/invitees/no_show."""
    return await _no_show(request, True)


async def unmark_no_show(request: web.Request) -> web.StreamResponse:
    """DELETE /_sandbox/invitees/no_show."""
    return await _no_show(request, False)


def add_routes(app: web.Application) -> None:
    """Register the booking control routes."""
    router = app.router
    router.add_post("/_sandbox/bookings", create_booking)
    router.add_post("/_sandbox/bookings/bulk", create_bulk)
    router.add_post("/_sandbox/invitees/cancel", cancel_invitee)
    router.add_post("/_sandbox/invitees/reschedule", reschedule_invitee)
    router.add_post("/_sandbox/invitees/no_show", mark_no_show)
    router.add_delete("/_sandbox/invitees/no_show", unmark_no_show)
