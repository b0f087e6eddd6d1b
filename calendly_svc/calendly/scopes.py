"""Calendly OAuth scopes: what the service requests, and what each endpoint it calls needs."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from calendly_svc.metrics import endpoint_of

# The one list of scopes the service asks for (FACTS §2.4); CALENDLY_SCOPES overrides it.
NEEDED_SCOPES: tuple[str, ...] = (
    "users:read",
    "event_types:read",
    "scheduled_events:read",
    "webhooks:write",
    "routing_forms:read",
    "organizations:read",
    # acting on Calendly (FACTS §13.2): book, cancel, no-shows; single-use links; available
    # times (whose scope is unconfirmed between availability:read and event_types:read)
    "scheduled_events:write",
    "scheduling_links:write",
    "availability:read",
)

# Method + endpoint template (metrics.endpoint_of) -> the scope Calendly requires (FACTS §13.1).
ENDPOINT_SCOPES: dict[tuple[str, str], str] = {
    ("GET", "/users/{uuid}"): "users:read",
    ("GET", "/users/me"): "users:read",
    ("GET", "/event_types"): "event_types:read",
    ("GET", "/event_types/{uuid}"): "event_types:read",
    ("GET", "/scheduled_events"): "scheduled_events:read",
    ("GET", "/scheduled_events/{uuid}"): "scheduled_events:read",
    ("GET", "/scheduled_events/{uuid}/invitees"): "scheduled_events:read",
    ("GET", "/scheduled_events/{uuid}/invitees/{uuid}"): "scheduled_events:read",
    ("GET", "/invitee_no_shows/{uuid}"): "scheduled_events:read",
    ("GET", "/organization_memberships"): "organizations:read",
    ("GET", "/organization_memberships/{uuid}"): "organizations:read",
    ("GET", "/webhook_subscriptions"): "webhooks:read",
    ("GET", "/webhook_subscriptions/{uuid}"): "webhooks:read",
    ("POST", "/webhook_subscriptions"): "webhooks:write",
    ("DELETE", "/webhook_subscriptions/{uuid}"): "webhooks:write",
    ("POST", "/scheduled_events/{uuid}/cancellation"): "scheduled_events:write",
    ("POST", "/invitee_no_shows"): "scheduled_events:write",
    ("DELETE", "/invitee_no_shows/{uuid}"): "scheduled_events:write",
    ("POST", "/invitees"): "scheduled_events:write",
    ("POST", "/scheduling_links"): "scheduling_links:write",
    # the reference page and the 2026 spec; the catalog says event_types:read (FACTS §13.1)
    ("GET", "/event_type_available_times"): "availability:read",
}

_SEPARATORS = re.compile(r"[\s,]+")
SCOPE_PATTERN = re.compile(r"[a-z_]+:(read|write)")


def parse_scopes(text: str | None) -> list[str] | None:
    """A space- or comma-separated scope list, deduplicated in order; None stays None."""
    if text is None:
        return None
    return list(dict.fromkeys(part for part in _SEPARATORS.split(text) if part))


def required_scope(method: str, url: str) -> str | None:
    """The scope an API call needs, when the table knows the endpoint."""
    return ENDPOINT_SCOPES.get((method.upper(), endpoint_of(url)))


def allows(granted: Collection[str] | None, scope: str) -> bool:
    """Whether a grant covers a scope; a `:write` scope includes the same domain's `:read`.
    An unknown grant (None) is a legacy one with full access."""
    if granted is None or scope in granted:
        return True
    domain, _, access = scope.partition(":")
    return access == "read" and f"{domain}:write" in granted


def missing_scopes(needed: Iterable[str], granted: Collection[str] | None) -> list[str]:
    """The needed scopes a grant lacks ([] for an unknown, legacy grant)."""
    return [scope for scope in needed if not allows(granted, scope)]
