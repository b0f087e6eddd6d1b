"""JSON shapes of sandbox resources; every URI and URL (scheduling, cancel and reschedule pages
included) starts with the state's base_url, the sandbox's public URL."""

from __future__ import annotations

from typing import Any

from .models import (
    Cancellation,
    EventType,
    Invitee,
    Membership,
    ScheduledEvent,
    User,
    WebhookSubscription,
    iso,
)
from .state import SandboxState, slugify

Json = dict[str, Any]

POOLING_DESCRIPTIONS = {"collective": "Collective", "round_robin": "Round Robin"}
LOCATION = {"type": "physical", "location": "Sandbox Office", "additional_info": None}
TRACKING_KEYS = (
    "utm_campaign",
    "utm_source",
    "utm_medium",
    "utm_content",
    "utm_term",
    "salesforce_uuid",
)


def user_json(state: SandboxState, user: User) -> Json:
    """A User resource."""
    return {
        "uri": state.uri("users", user.uuid),
        "name": user.name,
        "slug": user.slug,
        "email": user.email,
        "scheduling_url": f"{state.base_url}/{user.slug}",
        "timezone": user.timezone,
        "time_notation": "12h",
        "avatar_url": None,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "current_organization": state.uri("organizations", user.org_uuid),
        "resource_type": "User",
        "locale": "en",
    }


def membership_json(state: SandboxState, membership: Membership) -> Json:
    """An OrganizationMembership resource."""
    return {
        "uri": state.uri("organization_memberships", membership.uuid),
        "role": membership.role,
        "user": user_json(state, state.users[membership.user_uuid]),
        "organization": state.uri("organizations", membership.org_uuid),
        "created_at": iso(membership.created_at),
        "updated_at": iso(membership.updated_at),
    }


def kind_description(kind: str, pooling_type: str | None) -> str:
    """Calendly's label of an event type's kind (required by its EventType schema)."""
    if pooling_type is not None:
        return POOLING_DESCRIPTIONS[pooling_type]
    return "Group" if kind == "group" else "One-on-One"


def profile_json(state: SandboxState, event_type: EventType) -> Json:
    """The event type's profile: its owner's, or its team's (owned by the organization)."""
    owner = state.users[event_type.owner_uuid]
    if event_type.pooling_type is None:
        return {"type": "User", "name": owner.name, "owner": state.uri("users", owner.uuid)}
    # a team profile's owner URI is not documented; the sandbox names the team's organization
    team_owner = state.uri("organizations", owner.org_uuid)
    return {"type": "Team", "name": event_type.team_name, "owner": team_owner}


def _scheduling_page(state: SandboxState, event_type: EventType) -> str:
    """The public booking page of the owner, or of the team."""
    if event_type.team_name is not None:
        return f"{state.base_url}/team/{slugify(event_type.team_name)}/{event_type.slug}"
    return f"{state.base_url}/{state.users[event_type.owner_uuid].slug}/{event_type.slug}"


def event_type_json(state: SandboxState, event_type: EventType) -> Json:
    """An EventType resource."""
    return {
        "uri": state.uri("event_types", event_type.uuid),
        "name": event_type.name,
        "active": event_type.active,
        "booking_method": "instant",
        "slug": event_type.slug,
        "scheduling_url": _scheduling_page(state, event_type),
        "duration": event_type.duration,
        "duration_options": None,
        "kind": event_type.kind,
        "kind_description": kind_description(event_type.kind, event_type.pooling_type),
        "pooling_type": event_type.pooling_type,
        "type": "StandardEventType",
        "color": "#8247f5",
        "created_at": iso(event_type.created_at),
        "updated_at": iso(event_type.updated_at),
        "internal_note": None,
        "description_plain": None,
        "description_html": None,
        "profile": profile_json(state, event_type),
        "secret": False,
        "deleted_at": iso(event_type.deleted_at) if event_type.deleted_at else None,
        "admin_managed": False,
        "locations": [{"kind": "physical", "location": "Sandbox Office"}],
        "position": 0,
        "custom_questions": [],
        "locale": "en",
        "is_paid": False,
    }


def cancellation_json(cancellation: Cancellation) -> Json:
    """A Cancellation object."""
    return {
        "canceled_by": cancellation.canceled_by,
        "reason": cancellation.reason,
        "canceler_type": cancellation.canceler_type,
        "created_at": iso(cancellation.created_at),
    }


def invitees_counter(state: SandboxState, event: ScheduledEvent) -> Json:
    """The event's invitees_counter."""
    active = sum(1 for uuid in event.invitee_uuids if state.invitees[uuid].status == "active")
    return {"total": len(event.invitee_uuids), "active": active, "limit": event.invitee_limit}


def membership_of_event(state: SandboxState, user_uuid: str) -> Json:
    """One entry of an event's event_memberships."""
    user = state.users[user_uuid]
    return {"user": state.uri("users", user.uuid), "user_email": user.email, "user_name": user.name}


def event_json(state: SandboxState, event: ScheduledEvent) -> Json:
    """A scheduled Event resource (cancellation only when canceled)."""
    body: Json = {
        "uri": state.uri("scheduled_events", event.uuid),
        "name": event.name,
        "meeting_notes_plain": None,
        "meeting_notes_html": None,
        "status": event.status,
        "start_time": iso(event.start),
        "end_time": iso(event.end),
        "event_type": state.uri("event_types", event.event_type_uuid),
        "location": dict(LOCATION),
        "invitees_counter": invitees_counter(state, event),
        "created_at": iso(event.created_at),
        "updated_at": iso(event.updated_at),
        "event_memberships": [membership_of_event(state, uuid) for uuid in event.members],
        "event_guests": [],
        "calendar_event": None,
    }
    if event.cancellation is not None:
        body["cancellation"] = cancellation_json(event.cancellation)
    return body


def tracking_json(invitee: Invitee) -> Json:
    """The invitee's tracking object (all keys present)."""
    given = invitee.tracking or {}
    return {key: given.get(key) for key in TRACKING_KEYS}


def invitee_json(state: SandboxState, invitee: Invitee) -> Json:
    """An Invitee resource (cancellation only when canceled)."""
    body: Json = {
        "uri": state.invitee_uri(invitee),
        "email": invitee.email,
        "first_name": invitee.first_name,
        "last_name": invitee.last_name,
        "name": invitee.name,
        "status": invitee.status,
        "questions_and_answers": [dict(item) for item in invitee.questions],
        "timezone": invitee.timezone,
        "event": state.uri("scheduled_events", invitee.event_uuid),
        "created_at": iso(invitee.created_at),
        "updated_at": iso(invitee.updated_at),
        "tracking": tracking_json(invitee),
        "text_reminder_number": invitee.text_reminder_number,
        "rescheduled": invitee.rescheduled,
        "old_invitee": state.invitee_uri_by_id(invitee.old_invitee_uuid),
        "new_invitee": state.invitee_uri_by_id(invitee.new_invitee_uuid),
        "cancel_url": f"{state.base_url}/cancellations/{invitee.uuid}",
        "reschedule_url": f"{state.base_url}/reschedulings/{invitee.uuid}",
        "routing_form_submission": None,
        "payment": None,
        "no_show": no_show_json(state, invitee),
        "reconfirmation": None,
        "scheduling_method": None,
        "invitee_scheduled_by": None,
    }
    if invitee.cancellation is not None:
        body["cancellation"] = cancellation_json(invitee.cancellation)
    return body


def no_show_json(state: SandboxState, invitee: Invitee) -> Json | None:
    """The invitee's no_show object, or None."""
    if invitee.no_show is None:
        return None
    return {
        "uri": state.uri("invitee_no_shows", invitee.no_show.uuid),
        "created_at": iso(invitee.no_show.created_at),
    }


def invitee_payload(state: SandboxState, invitee: Invitee) -> Json:
    """Webhook payload of invitee.* / invitee_no_show.*: the invitee plus its event."""
    body = invitee_json(state, invitee)
    body["scheduled_event"] = event_json(state, state.events[invitee.event_uuid])
    return body


def subscription_json(state: SandboxState, sub: WebhookSubscription) -> Json:
    """A WebhookSubscription resource (signing key is write-only)."""
    return {
        "uri": state.uri("webhook_subscriptions", sub.uuid),
        "callback_url": sub.callback_url,
        "created_at": iso(sub.created_at),
        "updated_at": iso(sub.updated_at),
        "retry_started_at": iso(sub.retry_started_at) if sub.retry_started_at else None,
        "state": sub.state,
        "events": list(sub.events),
        "scope": sub.scope,
        "organization": state.uri("organizations", sub.org_uuid),
        "user": state.uri("users", sub.user_uuid) if sub.user_uuid else None,
        "group": sub.group,
        "creator": state.uri("users", sub.creator_uuid),
    }
