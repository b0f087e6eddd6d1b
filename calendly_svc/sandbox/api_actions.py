"""API v2 write endpoints acting on bookings: cancel an event, mark / unmark / read no-shows,
create single-use scheduling links; plus the fault that loses an applied call's answer."""

from __future__ import annotations

import secrets

from aiohttp import web

from .api import resource
from .api_bodies import CancellationBody, NoShowBody, SchedulingLinkBody, read_api_body
from .api_events import can_read_event
from .availability import SchedulingLink
from .control_bookings import emit_invitee
from .errors import calendly_error, forbidden, invalid_argument, not_found
from .middleware import caller
from .models import (
    Cancellation,
    EventType,
    Invitee,
    NoShow,
    ScheduledEvent,
    User,
    iso,
    new_id,
    utcnow,
)
from .render import cancellation_json
from .state import SANDBOX_STATE, SandboxState, uri_id

# Calendly's 403 messages for a cancellation (its 2023 spec, FACTS §13.3)
NOT_ALLOWED_TO_CANCEL = "You are not allowed to cancel this event"
EVENT_IN_PAST = "Event in the past"
ALREADY_CANCELED = "Event is already canceled"
# Sandbox choices where Calendly's behaviour is unconfirmed (FACTS §13.4; docs/design.md)
NO_SHOW_OF_CANCELED = "You cannot mark a canceled invitee as a no show"
ALREADY_NO_SHOW = "is already marked as a no show"


def uri_uuid(ref: str, kind: str) -> str | None:
    """The uuid of a `.../{kind}/{uuid}` URI; None for another shape or an unparsable URL."""
    try:
        return uri_id(ref, kind)
    except ValueError:
        return None


def lose_answer(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """The drop_response_after_apply fault: the call was applied, its answer is lost."""
    state = request.app[SANDBOX_STATE]
    fault = state.faults.drop_response_after_apply
    if not fault or fault.get("count", 0) <= 0 or not request.path.startswith(fault["path_prefix"]):
        return response
    fault["count"] -= 1
    if fault.get("mode", "drop") == "drop" and request.transport is not None:
        request.transport.abort()
    return calendly_error(500)


def actionable_event(state: SandboxState, me: User, event: ScheduledEvent | None) -> ScheduledEvent:
    """An event the caller may act on: 404 for none or another organization's, 403 for a
    member of the organization who neither hosts it nor administers the organization."""
    if event is None or state.role_of(me.uuid, event.org_uuid) is None:
        raise not_found("Scheduled event not found")
    if not can_read_event(state, me, event):
        raise forbidden(NOT_ALLOWED_TO_CANCEL)
    return event


async def cancel_event(request: web.Request) -> web.StreamResponse:
    """POST /scheduled_events/{uuid}/cancellation: the event and every active invitee are
    canceled by the host; one invitee.canceled webhook per invitee."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    event = actionable_event(state, me, state.events.get(request.match_info["uuid"]))
    body = await read_api_body(request, CancellationBody, required=False)
    if event.status == "canceled":
        raise forbidden(ALREADY_CANCELED)
    now = utcnow()
    if event.start <= now:
        raise forbidden(EVENT_IN_PAST)
    cancellation = Cancellation(me.name, body.reason, "host", now)
    canceled = [i for i in state.event_invitees(event) if i.status == "active"]
    for invitee in canceled:
        invitee.status, invitee.cancellation, invitee.updated_at = "canceled", cancellation, now
    event.status, event.cancellation, event.updated_at = "canceled", cancellation, now
    state.group_slots.pop((event.start, event.event_type_uuid), None)
    for invitee in canceled:
        await emit_invitee(state, "invitee.canceled", invitee)
    return lose_answer(request, resource(cancellation_json(cancellation), 201))


def no_show_json(state: SandboxState, invitee: Invitee, mark: NoShow) -> dict[str, str]:
    """An InviteeNoShow resource."""
    return {
        "uri": state.uri("invitee_no_shows", mark.uuid),
        "invitee": state.invitee_uri(invitee),
        "created_at": iso(mark.created_at),
    }


def _marked_invitee(request: web.Request) -> tuple[Invitee, NoShow]:
    """The invitee whose no-show mark the path names (404 when unknown or not the caller's)."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    uuid = request.match_info["uuid"]
    for invitee in state.invitees.values():
        if invitee.no_show is not None and invitee.no_show.uuid == uuid:
            event = state.events[invitee.event_uuid]
            if can_read_event(state, me, event):
                return invitee, invitee.no_show
            break
    raise not_found("Invitee no show not found")


async def create_no_show(request: web.Request) -> web.StreamResponse:
    """POST /invitee_no_shows {invitee}: 201 InviteeNoShow, invitee_no_show.created webhook."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    body = await read_api_body(request, NoShowBody)
    uuid = uri_uuid(body.invitee, "invitees")
    if uuid is None:
        raise invalid_argument("invitee", "must be an invitee URI")
    invitee = state.invitees.get(uuid)
    event = state.events[invitee.event_uuid] if invitee is not None else None
    if invitee is None or event is None or not can_read_event(state, me, event):
        raise not_found("Invitee not found")
    if invitee.status != "active":
        raise forbidden(NO_SHOW_OF_CANCELED)
    if invitee.no_show is not None:
        raise invalid_argument("invitee", ALREADY_NO_SHOW)
    now = utcnow()
    invitee.no_show = mark = NoShow(new_id(), now)
    invitee.updated_at = event.updated_at = now
    await emit_invitee(state, "invitee_no_show.created", invitee)
    return lose_answer(request, resource(no_show_json(state, invitee, mark), 201))


async def get_no_show(request: web.Request) -> web.StreamResponse:
    """GET /invitee_no_shows/{uuid}."""
    invitee, mark = _marked_invitee(request)
    return resource(no_show_json(request.app[SANDBOX_STATE], invitee, mark))


async def delete_no_show(request: web.Request) -> web.StreamResponse:
    """DELETE /invitee_no_shows/{uuid}: 204, invitee_no_show.deleted webhook."""
    state = request.app[SANDBOX_STATE]
    invitee, _ = _marked_invitee(request)
    now = utcnow()
    invitee.no_show = None
    invitee.updated_at = state.events[invitee.event_uuid].updated_at = now
    await emit_invitee(state, "invitee_no_show.deleted", invitee)
    return lose_answer(request, web.Response(status=204))


def usable_event_type(state: SandboxState, me: User, ref: str, parameter: str) -> EventType:
    """An event type named by URI: 400 malformed, 404 unknown or deleted, 403 another
    organization's."""
    uuid = uri_uuid(ref, "event_types")
    if uuid is None:
        raise invalid_argument(parameter, "must be an event type URI")
    event_type = state.event_types.get(uuid)
    if event_type is None or event_type.deleted_at is not None:
        raise not_found("Event type not found")
    if state.role_of(me.uuid, state.users[event_type.owner_uuid].org_uuid) is None:
        raise forbidden()
    return event_type


def link_json(state: SandboxState, link: SchedulingLink) -> dict[str, str]:
    """The scheduling link resource."""
    event_type = state.event_types[link.event_type_uuid]
    return {
        "booking_url": f"{state.base_url}/d/{link.code}/{event_type.slug}",
        "owner": state.uri("event_types", event_type.uuid),
        "owner_type": "EventType",
    }


async def create_scheduling_link(request: web.Request) -> web.StreamResponse:
    """POST /scheduling_links: a single-use booking URL of an event type."""
    state, me = request.app[SANDBOX_STATE], caller(request)
    body = await read_api_body(request, SchedulingLinkBody)
    event_type = usable_event_type(state, me, body.owner, "owner")
    if not event_type.active:
        raise invalid_argument("owner", "the event type is not active")
    code = f"{secrets.token_hex(2)}-{secrets.token_hex(2)}"
    link = SchedulingLink(code, event_type.uuid, me.uuid, utcnow())
    state.scheduling.links[code] = link
    return lose_answer(request, resource(link_json(state, link), 201))


def add_routes(app: web.Application) -> None:
    """Register the cancellation, no-show and scheduling link routes."""
    app.router.add_post("/scheduled_events/{uuid}/cancellation", cancel_event)
    app.router.add_post("/invitee_no_shows", create_no_show)
    app.router.add_get("/invitee_no_shows/{uuid}", get_no_show)
    app.router.add_delete("/invitee_no_shows/{uuid}", delete_no_show)
    app.router.add_post("/scheduling_links", create_scheduling_link)
