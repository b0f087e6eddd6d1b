"""The in-memory store of one sandbox: entities, indexes, lookups."""

from __future__ import annotations

import re
from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from .availability import SchedulingState
from .config import SandboxConfig
from .models import (
    ADMIN_ROLES,
    AccessToken,
    AuthCode,
    EventKey,
    EventType,
    Faults,
    Invitee,
    Membership,
    Organization,
    RefreshToken,
    RoutingForm,
    RoutingFormSubmission,
    ScheduledEvent,
    User,
    WebhookSubscription,
    new_id,
    utcnow,
)
from .ratelimit import RateLimiter


class Delivered(Protocol):
    """The outcome of one delivery attempt, as the control API reports it."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        ...


class Dispatcher(Protocol):
    """What the state needs of the running webhook dispatcher (webhooks.WebhookDispatcher)."""

    async def dispatch(
        self, event: str, payload: dict[str, Any], hosts: tuple[str, ...], org_uuid: str
    ) -> Sequence[Delivered]:
        """Deliver one event to every matching subscription."""
        ...

    async def close(self) -> None:
        """Cancel and await every background task."""
        ...


DEFAULT_BASE_URL = "http://127.0.0.1:8081"
DEFAULT_GROUP_LIMIT = 10


def slugify(text: str) -> str:
    """Lower-case, dash-separated slug of text."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def uri_id(ref: str, kind: str) -> str | None:
    """The uuid of a `.../{kind}/{uuid}` URI (any host), or None when the shape differs."""
    parts = [part for part in urlsplit(ref).path.split("/") if part]
    if len(parts) >= 2 and parts[-2] == kind:
        return parts[-1]
    return None


@dataclass
class Stats:
    """Request counters reported by GET /_sandbox/stats."""

    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    rate_limited: int = 0
    token_grants: dict[str, int] = field(
        default_factory=lambda: {"authorization_code": 0, "refresh_token": 0}
    )
    tokens_revoked: int = 0
    token_rate_limited: int = 0

    def record(self, method: str, path: str) -> None:
        """Count one request to a route template."""
        key = (method, path)
        self.requests[key] = self.requests.get(key, 0) + 1

    def to_json(self) -> dict[str, object]:
        """The stats body."""
        requests = [
            {"method": method, "path": path, "count": count}
            for (method, path), count in sorted(self.requests.items())
        ]
        return {
            "requests": requests,
            "rate_limited": self.rate_limited,
            "token_grants": dict(self.token_grants),
            "tokens_revoked": self.tokens_revoked,
            "token_rate_limited": self.token_rate_limited,
        }


class SandboxState:
    """Everything one sandbox instance knows; stored under SANDBOX_STATE."""

    def __init__(self, config: SandboxConfig, base_url: str | None = None) -> None:
        self.config = config
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.orgs: dict[str, Organization] = {}
        self.users: dict[str, User] = {}
        self.user_by_email: dict[str, str] = {}
        self.memberships: dict[str, Membership] = {}
        self.membership_of_user: dict[str, Membership] = {}
        self.event_types: dict[str, EventType] = {}
        self.events: dict[str, ScheduledEvent] = {}
        self.events_by_host: dict[str, list[EventKey]] = {}
        self.events_by_org: dict[str, list[EventKey]] = {}
        self.group_slots: dict[EventKey, str] = {}
        self.invitees: dict[str, Invitee] = {}
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.subscriptions: dict[str, WebhookSubscription] = {}
        self.routing_forms: dict[str, RoutingForm] = {}
        self.submissions: dict[str, RoutingFormSubmission] = {}
        self.faults = self.default_faults()
        self.rate_limiter = RateLimiter()
        self.stats = Stats()
        self.dispatcher: Dispatcher | None = None
        # availability, plans and links of the write endpoints (api_actions)
        self.scheduling = SchedulingState()
        self.default_org, self.default_user = self._seed()

    def _seed(self) -> tuple[Organization, User]:
        """Create the default organization, owner and 30-minute event type."""
        org = self.add_organization("Sandbox Organization")
        user = self.add_user(self.config.default_user_email, "Sandbox User", org.uuid, "owner")
        self.add_event_type(user, "30 Minute Meeting", 30, slug="30min")
        return org, user

    def default_faults(self) -> Faults:
        """Faults as configured, with nothing injected."""
        return Faults(rate_limit_per_minute=self.config.rate_limit_per_minute)

    # URIs

    def uri(self, kind: str, uuid: str) -> str:
        """Full URI of a top-level resource."""
        return f"{self.base_url}/{kind}/{uuid}"

    def invitee_uri(self, invitee: Invitee) -> str:
        """Full URI of an invitee (nested under its event)."""
        return f"{self.base_url}/scheduled_events/{invitee.event_uuid}/invitees/{invitee.uuid}"

    def invitee_uri_by_id(self, uuid: str | None) -> str | None:
        """Invitee URI for an optional invitee uuid."""
        invitee = self.invitees.get(uuid) if uuid else None
        return self.invitee_uri(invitee) if invitee else None

    # organizations and users

    def add_organization(self, name: str) -> Organization:
        """Create an organization."""
        org = Organization(uuid=new_id(), name=name, created_at=utcnow())
        self.orgs[org.uuid] = org
        return org

    def add_user(self, email: str, name: str, org_uuid: str, role: str) -> User:
        """Create a user with a membership in org_uuid."""
        now = utcnow()
        slug = slugify(email.split("@", 1)[0])
        user = User(new_id(), name, slug, email, org_uuid, now, now)
        self.users[user.uuid] = user
        self.user_by_email[email.lower()] = user.uuid
        membership = Membership(new_id(), user.uuid, org_uuid, role, now, now)
        self.memberships[membership.uuid] = membership
        self.membership_of_user[user.uuid] = membership
        return user

    def find_user(self, ref: str) -> User | None:
        """A user by URI or e-mail address."""
        if "@" in ref and "/" not in ref:
            uuid = self.user_by_email.get(ref.lower())
        else:
            uuid = uri_id(ref, "users")
        return self.users.get(uuid) if uuid else None

    def find_org(self, ref: str) -> Organization | None:
        """An organization by URI."""
        uuid = uri_id(ref, "organizations")
        return self.orgs.get(uuid) if uuid else None

    def role_of(self, user_uuid: str, org_uuid: str) -> str | None:
        """The user's role in org_uuid, or None when not a member."""
        membership = self.membership_of_user.get(user_uuid)
        if membership is None or membership.org_uuid != org_uuid:
            return None
        return membership.role

    def is_admin(self, user_uuid: str, org_uuid: str) -> bool:
        """True for owners and admins of org_uuid."""
        return self.role_of(user_uuid, org_uuid) in ADMIN_ROLES

    # event types and events

    def add_event_type(
        self,
        owner: User,
        name: str,
        duration: int,
        *,
        kind: str = "solo",
        invitee_limit: int | None = None,
        slug: str | None = None,
        active: bool = True,
    ) -> EventType:
        """Create an event type owned by owner."""
        now = utcnow()
        limit = invitee_limit or (1 if kind == "solo" else DEFAULT_GROUP_LIMIT)
        event_type = EventType(
            new_id(), owner.uuid, name, slug or slugify(name), duration, kind, limit, now, now
        )
        event_type.active = active
        self.event_types[event_type.uuid] = event_type
        return event_type

    def make_team_type(
        self, event_type: EventType, pooling_type: str, hosts: list[User], team_name: str
    ) -> None:
        """Turn a new event type into a team's: the first host owns it, all of them host it."""
        event_type.pooling_type, event_type.team_name = pooling_type, team_name
        event_type.owner_uuid = hosts[0].uuid
        event_type.host_uuids = tuple(dict.fromkeys(host.uuid for host in hosts))

    def find_event_type(self, ref: str) -> EventType | None:
        """An event type by URI."""
        uuid = uri_id(ref, "event_types")
        return self.event_types.get(uuid) if uuid else None

    def find_event(self, ref: str) -> ScheduledEvent | None:
        """A scheduled event by URI."""
        uuid = uri_id(ref, "scheduled_events")
        return self.events.get(uuid) if uuid else None

    def find_invitee(self, ref: str) -> Invitee | None:
        """An invitee by URI."""
        uuid = uri_id(ref, "invitees")
        return self.invitees.get(uuid) if uuid else None

    def add_event(self, event: ScheduledEvent) -> None:
        """Store a scheduled event and insert it into the start-time indexes."""
        self.events[event.uuid] = event
        for member in event.members:
            insort(self.events_by_host.setdefault(member, []), event.key)
        insort(self.events_by_org.setdefault(event.org_uuid, []), event.key)

    def add_events_bulk(self, events: list[ScheduledEvent]) -> None:
        """Store many events, re-sorting each touched index once."""
        hosts: set[str] = set()
        orgs: set[str] = set()
        for event in events:
            self.events[event.uuid] = event
            for member in event.members:
                self.events_by_host.setdefault(member, []).append(event.key)
                hosts.add(member)
            self.events_by_org.setdefault(event.org_uuid, []).append(event.key)
            orgs.add(event.org_uuid)
        for host in hosts:
            self.events_by_host[host].sort()
        for org in orgs:
            self.events_by_org[org].sort()

    def event_invitees(self, event: ScheduledEvent) -> list[Invitee]:
        """The event's invitees in booking order."""
        return [self.invitees[uuid] for uuid in event.invitee_uuids]


SANDBOX_STATE: web.AppKey[SandboxState] = web.AppKey("calendly_sandbox_state", SandboxState)
