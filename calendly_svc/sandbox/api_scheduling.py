"""API v2 scheduling endpoints: an event type's available times, and the Scheduling API
(`POST /invitees`) with its per-plan limits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from aiohttp import web

from .api import resource
from .api_actions import lose_answer, usable_event_type
from .api_bodies import InviteeBody, read_api_body
from .availability import PLAN_LIMITS, take_booking_call
from .bookings import book
from .control_bookings import emit_invitee
from .errors import ApiError, calendly_error, invalid_argument
from .middleware import caller
from .models import EventType, parse_iso, utcnow
from .render import invitee_json
from .scheduling import Slot, available_slots
from .schemas import InviteeSpec, QuestionAnswer
from .state import SANDBOX_STATE, SandboxState

# since 2026-07-09 (FACTS §13.6; it was 7 days)
MAX_SPAN = timedelta(days=31)
# times beyond this are refused (date arithmetic near year 9999 overflows)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
SLOT_UNAVAILABLE = "The selected time is not available."


def _moment(text: str, name: str) -> datetime:
    """An ISO-8601 date-time as aware UTC; 400 naming the parameter otherwise."""
    try:
        return parse_iso(text)
    except (ValueError, OverflowError) as exc:
        raise invalid_argument(name, "must be an ISO-8601 date-time") from exc


def _required_time(query: Mapping[str, str], name: str) -> datetime:
    """A required ISO-8601 query parameter."""
    if name not in query:
        raise invalid_argument(name, "is required")
    return _moment(query[name], name)


def _range(query: Mapping[str, str]) -> tuple[datetime, datetime]:
    """start_time and end_time: start not in the past, end after start, at most 31 days."""
    start, end = _required_time(query, "start_time"), _required_time(query, "end_time")
    if start < utcnow() - timedelta(minutes=1):
        raise invalid_argument("start_time", "must be in the future")
    if end <= start:
        raise invalid_argument("end_time", "must be after start_time")
    if end - start > MAX_SPAN:
        raise invalid_argument("end_time", "the date range can be no greater than 31 days")
    if end > LATEST:
        raise invalid_argument("end_time", "is too far in the future")
    return start, end


def scheduling_url(state: SandboxState, event_type: EventType, slot: Slot) -> str:
    """The booking page opened on the slot (Calendly's shape: page/<time>?month=&date=)."""
    owner = state.users[event_type.owner_uuid]
    moment = slot.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f"month={slot.start:%Y-%m}&date={slot.start:%Y-%m-%d}"
    return f"{state.base_url}/{owner.slug}/{event_type.slug}/{moment}?{query}"


async def list_available_times(request: web.Request) -> web.StreamResponse:
    """GET /event_type_available_times?event_type&start_time&end_time (no pagination)."""
    state, me, query = request.app[SANDBOX_STATE], caller(request), request.query
    if "event_type" not in query:
        raise invalid_argument("event_type", "is required")
    event_type = usable_event_type(state, me, query["event_type"], "event_type")
    start, end = _range(query)
    slots = available_slots(state, state.scheduling, event_type, max(start, utcnow()), end)
    items = [
        {
            "status": "available",
            "invitees_remaining": slot.invitees_remaining,
            "start_time": slot.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scheduling_url": scheduling_url(state, event_type, slot),
        }
        for slot in slots
    ]
    return web.json_response({"collection": items})


def _over_limit(state: SandboxState, user_uuid: str) -> web.Response | None:
    """A 429 with the limit's headers when the caller spent a Scheduling API window."""
    limits = state.faults.scheduling_limits
    pairs = (
        tuple((n, s) for n, s in limits)
        if limits
        else PLAN_LIMITS[state.scheduling.plan_of(user_uuid)]
    )
    refusal = take_booking_call(state.scheduling, user_uuid, pairs)
    if refusal is None:
        return None
    state.stats.rate_limited += 1
    response = calendly_error(429)
    response.headers.update(refusal.headers())
    return response


def _check_location(event_type: EventType, body: InviteeBody) -> None:
    """A location must be one the event type offers (the sandbox's types offer `physical`)."""
    if body.location is not None and body.location.kind != "physical":
        raise invalid_argument("location.kind", "must match a location of the event type")


def _spec(body: InviteeBody) -> InviteeSpec:
    """The booking entry of the invitee."""
    person = body.invitee
    answers = [
        QuestionAnswer(question=qa.question, answer=qa.answer, position=qa.position)
        for qa in body.questions_and_answers
    ]
    return InviteeSpec(
        name=person.full_name,
        email=person.email,
        first_name=person.first_name,
        last_name=person.last_name,
        text_reminder_number=person.text_reminder_number,
        timezone=person.timezone,
        questions_and_answers=answers,
        tracking=body.tracking,
    )


async def create_invitee(request: web.Request) -> web.StreamResponse:
    """POST /invitees: book an available time as a UI booking would (invitee.created)."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    refused = _over_limit(state, me.uuid)
    if refused is not None:
        return refused
    body = await read_api_body(request, InviteeBody)
    event_type = usable_event_type(state, me, body.event_type, "event_type")
    start = _moment(body.start_time, "start_time")
    _check_location(event_type, body)
    slots = []
    if utcnow() < start < LATEST:
        end = start + timedelta(minutes=1)
        slots = available_slots(state, state.scheduling, event_type, start, end)
    if not slots or slots[0].start != start:
        details = [{"parameter": "start_time", "message": "is not an available time"}]
        raise ApiError(400, SLOT_UNAVAILABLE, details)
    host = None
    if event_type.pooling_type == "round_robin":
        host = state.users[slots[0].hosts[0]].email
    _, invitees = book(state, event_type, start, [_spec(body)], host)
    await emit_invitee(state, "invitee.created", invitees[0])
    return lose_answer(request, resource(invitee_json(state, invitees[0]), 201))


def add_routes(app: web.Application) -> None:
    """Register the available times and Scheduling API routes."""
    app.router.add_get("/event_type_available_times", list_available_times)
    app.router.add_post("/invitees", create_invitee)
