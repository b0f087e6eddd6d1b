"""Control API of the write endpoints: a user's weekly availability and plan, single-use
scheduling links (list, and book one once as its booking page would)."""

from __future__ import annotations

from datetime import time as clock
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import Field

from .api_actions import link_json
from .api_scheduling import LATEST
from .availability import PLAN_LIMITS, WEEKDAYS, Availability, SchedulingLink
from .bookings import book
from .control import missing
from .control_bookings import emit_all
from .errors import ControlError
from .models import User, utcnow
from .render import event_json, invitee_json
from .scheduling import available_slots
from .schemas import Body, Delivering, InviteeSpec, UtcDatetime, read_body
from .state import SANDBOX_STATE, SandboxState

HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]


class AvailabilityBody(Body):
    """PUT /_sandbox/users/{uuid}/availability: weekday -> [[from, to], ...] (HH:MM, local)."""

    timezone: str | None = None
    week: dict[Literal[WEEKDAYS], list[tuple[HHMM, HHMM]]]  # type: ignore[valid-type]


class PlanBody(Body):
    """PUT /_sandbox/users/{uuid}/plan."""

    plan: Literal["trial", "standard", "enterprise"]


class LinkBooking(Delivering):
    """POST /_sandbox/scheduling_links/{code}/book."""

    start_time: UtcDatetime
    invitee: InviteeSpec


def _user(request: web.Request) -> User:
    """The user named by the path's uuid, else 404."""
    user = request.app[SANDBOX_STATE].users.get(request.match_info["uuid"])
    if user is None:
        raise missing("user")
    return user


def _clock(text: str) -> clock:
    """HH:MM as a time (24:00 is the end of the day)."""
    hours, minutes = (int(part) for part in text.split(":"))
    return clock.max if hours == 24 else clock(hours, minutes)


def availability_json(user: User, availability: Availability) -> dict[str, Any]:
    """A user's availability as the control API shows it."""
    week = {
        day: [[low.strftime("%H:%M"), "24:00" if high == clock.max else high.strftime("%H:%M")]
              for low, high in availability.week.get(day, ())]
        for day in WEEKDAYS
    }  # fmt: skip
    return {"user": user.uuid, "timezone": availability.timezone, "week": week}


async def get_availability(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/users/{uuid}/availability."""
    user = _user(request)
    scheduling = request.app[SANDBOX_STATE].scheduling
    return web.json_response(availability_json(user, scheduling.availability_of(user)))


async def put_availability(request: web.Request) -> web.StreamResponse:
    """PUT /_sandbox/users/{uuid}/availability: replaces the week (a day left out is off)."""
    user = _user(request)
    body = await read_body(request, AvailabilityBody)
    zone = body.timezone or user.timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ControlError(400, "timezone must be an IANA timezone") from exc
    week = {
        day: tuple((_clock(low), _clock(high)) for low, high in intervals)
        for day, intervals in body.week.items()
    }
    if any(low >= high for intervals in week.values() for low, high in intervals):
        raise ControlError(400, "every interval must end after it starts")
    availability = Availability(zone, week)
    request.app[SANDBOX_STATE].scheduling.availability[user.uuid] = availability
    return web.json_response(availability_json(user, availability))


async def put_plan(request: web.Request) -> web.StreamResponse:
    """PUT /_sandbox/users/{uuid}/plan: the Scheduling API limits that apply to the user."""
    user = _user(request)
    body = await read_body(request, PlanBody)
    request.app[SANDBOX_STATE].scheduling.plans[user.uuid] = body.plan
    limits = [list(pair) for pair in PLAN_LIMITS[body.plan]]
    return web.json_response({"user": user.uuid, "plan": body.plan, "limits": limits})


def _link_state(state: SandboxState, link: SchedulingLink) -> dict[str, Any]:
    """A link plus whether (and by whom) it was used."""
    return {
        **link_json(state, link),
        "created_by": state.uri("users", link.creator_uuid),
        "used": link.invitee_uuid is not None,
        "invitee": state.invitee_uri_by_id(link.invitee_uuid),
    }


async def list_links(request: web.Request) -> web.StreamResponse:
    """GET /_sandbox/scheduling_links."""
    state = request.app[SANDBOX_STATE]
    items = [_link_state(state, link) for link in state.scheduling.links.values()]
    return web.json_response({"collection": items})


async def book_link(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/scheduling_links/{code}/book: the link's one booking (409 once used)."""
    state = request.app[SANDBOX_STATE]
    link = state.scheduling.links.get(request.match_info["code"])
    if link is None:
        raise missing("scheduling link")
    body = await read_body(request, LinkBooking)
    if link.invitee_uuid is not None:
        raise ControlError(409, "this single-use scheduling link was already used")
    event_type = state.event_types[link.event_type_uuid]
    slots = []
    if utcnow() < body.start_time < LATEST:
        end = body.start_time + timedelta(minutes=1)
        slots = available_slots(state, state.scheduling, event_type, body.start_time, end)
    if not slots or slots[0].start != body.start_time:
        raise ControlError(400, "the start time is not an available time")
    event, invitees = book(state, event_type, body.start_time, [body.invitee])
    link.invitee_uuid = invitees[0].uuid
    deliveries = await emit_all(state, "invitee.created", invitees) if body.deliver else []
    return web.json_response({
        "event": event_json(state, event),
        "invitees": [invitee_json(state, invitee) for invitee in invitees],
        "link": _link_state(state, link),
        "deliveries": deliveries,
    })  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register the availability, plan and scheduling link control routes."""
    router = app.router
    router.add_get("/_sandbox/users/{uuid}/availability", get_availability)
    router.add_put("/_sandbox/users/{uuid}/availability", put_availability)
    router.add_put("/_sandbox/users/{uuid}/plan", put_plan)
    router.add_get("/_sandbox/scheduling_links", list_links)
    router.add_post("/_sandbox/scheduling_links/{code}/book", book_link)
