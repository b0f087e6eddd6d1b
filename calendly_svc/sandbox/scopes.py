"""OAuth scopes as Calendly enforces them (apps created since 2026-03-03): the catalog, the scope
each emulated endpoint requires, and the read scope each webhook event family needs."""

from __future__ import annotations

from collections.abc import Collection

from .errors import ApiError

# Calendly's scope catalog (developer.calendly.com "scopes"; FACTS §13.1).
CATALOG = frozenset({
    "activity_log:read", "availability:read", "availability:write", "data_compliance:write",
    "event_types:read", "event_types:write", "groups:read", "locations:read",
    "organizations:read", "organizations:write", "outgoing_communications:read",
    "routing_forms:read", "scheduled_events:read", "scheduled_events:write",
    "scheduling_links:write", "shares:write", "users:read", "webhooks:read", "webhooks:write",
})  # fmt: skip

# (method, route template) -> required scope, for every API route the sandbox serves.
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("GET", "/users/me"): "users:read",
    ("GET", "/users/{uuid}"): "users:read",
    ("GET", "/organization_memberships"): "organizations:read",
    ("GET", "/event_types"): "event_types:read",
    ("GET", "/event_types/{uuid}"): "event_types:read",
    ("GET", "/scheduled_events"): "scheduled_events:read",
    ("GET", "/scheduled_events/{uuid}"): "scheduled_events:read",
    ("GET", "/scheduled_events/{uuid}/invitees"): "scheduled_events:read",
    ("GET", "/scheduled_events/{uuid}/invitees/{invitee_uuid}"): "scheduled_events:read",
    ("POST", "/webhook_subscriptions"): "webhooks:write",
    ("GET", "/webhook_subscriptions"): "webhooks:read",
    ("GET", "/webhook_subscriptions/{uuid}"): "webhooks:read",
    ("DELETE", "/webhook_subscriptions/{uuid}"): "webhooks:write",
    ("GET", "/routing_forms"): "routing_forms:read",
    ("GET", "/routing_forms/{uuid}"): "routing_forms:read",
    ("GET", "/routing_form_submissions"): "routing_forms:read",
    ("GET", "/routing_form_submissions/{uuid}"): "routing_forms:read",
    ("POST", "/scheduled_events/{uuid}/cancellation"): "scheduled_events:write",
    ("POST", "/invitee_no_shows"): "scheduled_events:write",
    ("GET", "/invitee_no_shows/{uuid}"): "scheduled_events:read",
    ("DELETE", "/invitee_no_shows/{uuid}"): "scheduled_events:write",
    ("POST", "/invitees"): "scheduled_events:write",
    ("POST", "/scheduling_links"): "scheduling_links:write",
    ("GET", "/event_type_available_times"): "availability:read",
}

# Routes whose scope is unconfirmed: any of these is accepted too (FACTS §13.1: the catalog
# lists available times under event_types:read, its reference page under availability:read).
ALSO_ACCEPTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/event_type_available_times"): ("event_types:read",),
}

# The read scope a grant needs to receive each webhook event family.
EVENT_FAMILY_SCOPES = {
    "invitee": "scheduled_events:read",
    "invitee_no_show": "scheduled_events:read",
    "event_type": "event_types:read",
    "routing_form_submission": "routing_forms:read",
}


def allows(granted: Collection[str] | None, scope: str) -> bool:
    """A `:write` scope includes the `:read` of its domain; None is a legacy full grant."""
    if granted is None or scope in granted:
        return True
    domain, _, access = scope.partition(":")
    return access == "read" and f"{domain}:write" in granted


def check_route(granted: Collection[str] | None, method: str, template: str) -> None:
    """403 Permission Denied when the grant lacks the route's scope."""
    required = ROUTE_SCOPES.get((method, template))
    if required is None:
        return
    accepted = (required, *ALSO_ACCEPTED.get((method, template), ()))
    if any(allows(granted, scope) for scope in accepted):
        return
    details = [{"parameter": "scope", "message": f"This request requires the {required} scope."}]
    raise ApiError(403, f"Insufficient scope: {required} is required.", details)


def receives(granted: Collection[str] | None, event: str) -> bool:
    """Whether a subscription created under this grant gets the event delivered."""
    scope = EVENT_FAMILY_SCOPES.get(event.split(".")[0])
    return scope is None or allows(granted, scope)
