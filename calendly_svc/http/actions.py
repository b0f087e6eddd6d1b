"""Acting on Calendly for the main app: cancel, no-shows, available times, bookings, links."""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from calendly_svc.errors import BadRequest
from calendly_svc.http import responses, schemas
from calendly_svc.http.middleware import error_response
from calendly_svc.http.operations import CALENDLY, DB, Errors, Reply, operation
from calendly_svc.http.validation import body, path_int, query, validate
from calendly_svc.http.views import appointment_model
from calendly_svc.integrations import actions, booking
from calendly_svc.keys import DEPS, USER_ID
from calendly_svc.store import queries

routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.Response]]

APPOINTMENT: Errors = {
    404: ["not_found", "appointment_not_found", "not_connected"],
    422: ["calendly_rejected"],
}
EVENT_TYPE: Errors = {404: ["not_found", "event_type_not_found"], 422: ["calendly_rejected"]}
LIMIT: Errors = {429: ["calendly_limit"]}
RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}


def limited(handler: Handler) -> Handler:
    """Calendly's per-plan limit leaves as 429 calendly_limit with Retry-After."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except actions.CalendlyLimit as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.details)
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
            return response

    return wrapper


async def optional_body(request: web.Request, model: type[M]) -> M:
    """A body that may be left out (no body means {})."""
    if not request.body_exists:
        return validate(model, {})
    return await body(request, model)


async def _answer(
    request: web.Request, row: queries.Appointment, status: int = 200
) -> web.Response:
    """The appointment with its client, as GET /appointments/{id} answers it."""
    async with request.app[DEPS].pool.acquire() as conn:
        clients = await queries.get_clients(conn, [row.client_id]) if row.client_id else []
    client = clients[0] if clients else None
    return responses.reply(appointment_model(row, client), status=status)


@routes.post(f"{PREFIX}/appointments/{{appointment_id}}/cancel")
@operation(
    id="cancelAppointment",
    summary="Cancel the appointment at Calendly (the invitee gets Calendly's cancellation "
    "e-mail); an appointment canceled already is answered as it is, without a call",
    tag="actions", path={"appointment_id": "the appointment's id"}, body=schemas.CancelBody,
    responses={200: Reply("The appointment, canceled by the host", responses.Appointment)},
    errors=[APPOINTMENT, CALENDLY, LIMIT, DB,
            {409: ["already_canceled", "event_in_past", "group_event"]}],
)  # fmt: skip
@limited
async def cancel(request: web.Request) -> web.Response:
    """Cancel at Calendly and answer the appointment."""
    appointment_id = path_int(request, "appointment_id")
    data = await optional_body(request, schemas.CancelBody)
    row = await actions.cancel(
        request.app[DEPS], request[USER_ID], appointment_id, data.reason, data.whole_event
    )
    return await _answer(request, row)


@routes.put(f"{PREFIX}/appointments/{{appointment_id}}/no-show")
@operation(
    id="markNoShow", summary="Mark the invitee as a no-show at Calendly (no call when marked)",
    tag="actions", path={"appointment_id": "the appointment's id"},
    responses={200: Reply("The appointment, no_show true", responses.Appointment)},
    errors=[APPOINTMENT, CALENDLY, LIMIT, DB, {409: ["appointment_canceled"]}],
)  # fmt: skip
@limited
async def mark_no_show(request: web.Request) -> web.Response:
    """Mark the no-show and answer the appointment."""
    appointment_id = path_int(request, "appointment_id")
    row = await actions.mark_no_show(request.app[DEPS], request[USER_ID], appointment_id)
    return await _answer(request, row)


@routes.delete(f"{PREFIX}/appointments/{{appointment_id}}/no-show")
@operation(
    id="unmarkNoShow", summary="Unmark the no-show at Calendly (no call when not marked)",
    tag="actions", path={"appointment_id": "the appointment's id"},
    responses={200: Reply("The appointment, no_show false", responses.Appointment)},
    errors=[APPOINTMENT, CALENDLY, LIMIT, DB],
)  # fmt: skip
@limited
async def unmark_no_show(request: web.Request) -> web.Response:
    """Unmark the no-show and answer the appointment."""
    appointment_id = path_int(request, "appointment_id")
    row = await actions.unmark_no_show(request.app[DEPS], request[USER_ID], appointment_id)
    return await _answer(request, row)


@routes.get(f"{PREFIX}/event-types/{{event_type_id}}/available-times")
@operation(
    id="listAvailableTimes",
    summary="Calendly's free times of the event type in the range (cached a few seconds)",
    tag="actions", path={"event_type_id": "the event type's id"},
    query=schemas.AvailableTimesQuery, responses={200: responses.AvailableTimes},
    errors=[EVENT_TYPE, CALENDLY, LIMIT, DB],
)  # fmt: skip
@limited
async def available_times(request: web.Request) -> web.Response:
    """The event type's available times."""
    event_type_id = path_int(request, "event_type_id")
    params = query(request, schemas.AvailableTimesQuery)
    found = await actions.available_times(
        request.app[DEPS], request[USER_ID], event_type_id, params.start_time, params.end_time
    )
    items = [_available(item) for item in found if item.get("status", "available") == "available"]
    return responses.reply(responses.AvailableTimes(items=items))


def _available(item: dict[str, Any]) -> responses.AvailableTime:
    """One of Calendly's available times."""
    return responses.AvailableTime(
        start_time=item["start_time"], invitees_remaining=item.get("invitees_remaining") or 0,
        scheduling_url=item.get("scheduling_url"),
    )  # fmt: skip


@routes.post(f"{PREFIX}/appointments")
@operation(
    id="bookAppointment",
    summary="Book a time for a patient through Calendly's Scheduling API; the same "
    "Idempotency-Key and body answer the first outcome without booking again",
    tag="actions", headers=schemas.IdempotencyHeaders, body=schemas.BookingBody,
    responses={201: Reply("The appointment booked", responses.Appointment)},
    errors=[EVENT_TYPE, CALENDLY, LIMIT, DB,
            {400: ["idempotency_key_required"],
             409: ["slot_unavailable", "idempotency_key_in_progress", "event_type_not_bookable"],
             422: ["idempotency_key_reused", "calendly_rejected"]}],
)  # fmt: skip
@limited
async def book(request: web.Request) -> web.Response:
    """Book once per Idempotency-Key."""
    raw_key = request.headers.get("Idempotency-Key")
    if raw_key is None or not raw_key.strip():
        message = "POST /appointments requires an Idempotency-Key header"
        raise BadRequest(message, code="idempotency_key_required")
    key = validate(schemas.IdempotencyHeaders, {"Idempotency-Key": raw_key}).key
    data = await body(request, schemas.BookingBody)
    row = await booking.book(request.app[DEPS], request[USER_ID], key, _booking(data))
    return await _answer(request, row, status=201)


def _booking(data: schemas.BookingBody) -> booking.Booking:
    """Calendly's POST /invitees body (event_type is added once the event type is known)."""
    invitee = {"name": data.invitee.name, "email": data.invitee.email,
               "timezone": data.invitee.timezone}  # fmt: skip
    if data.invitee.phone is not None:
        invitee["text_reminder_number"] = data.invitee.phone
    calendly: dict[str, object] = {
        "start_time": booking.utc_text(data.start_time), "invitee": invitee,
    }  # fmt: skip
    if data.location is not None:
        calendly["location"] = data.location.model_dump(exclude_none=True)
    if data.questions_and_answers:
        calendly["questions_and_answers"] = [a.model_dump() for a in data.questions_and_answers]
    return booking.Booking(
        event_type_id=data.event_type_id, start_time=data.start_time, email=data.invitee.email,
        calendly=calendly,
    )  # fmt: skip


@routes.post(f"{PREFIX}/event-types/{{event_type_id}}/scheduling-links")
@operation(
    id="createSchedulingLink",
    summary="A single-use booking link of the event type, stored with who asked for it "
    "(prefilled with the invitee's name and e-mail when given)",
    tag="actions", path={"event_type_id": "the event type's id"},
    body=schemas.SchedulingLinkBody,
    responses={201: Reply("The link", responses.SchedulingLink)},
    errors=[EVENT_TYPE, CALENDLY, LIMIT, DB],
)  # fmt: skip
@limited
async def scheduling_link(request: web.Request) -> web.Response:
    """Create a single-use link."""
    event_type_id = path_int(request, "event_type_id")
    data = await optional_body(request, schemas.SchedulingLinkBody)
    prefill = data.prefill.model_dump() if data.prefill is not None else None
    link = await actions.scheduling_link(
        request.app[DEPS], request[USER_ID], event_type_id, prefill
    )
    model = responses.SchedulingLink(
        id=link.id, booking_url=link.booking_url, max_event_count=link.max_event_count,
        created_at=link.created_at,
    )  # fmt: skip
    return responses.reply(model, status=201)
