"""Slotted records for everything the sandbox keeps in memory."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

ADMIN_ROLES = frozenset({"owner", "admin"})

EventKey = tuple[datetime, str]


def new_id() -> str:
    """Return a fresh uuid4 string."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Return the current aware UTC time."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Format an aware UTC datetime the Calendly way (6-digit microseconds, Z)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp into aware UTC (naive means UTC); raises ValueError."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_micros(moment: datetime) -> int:
    """Return microseconds since the Unix epoch."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    """Inverse of to_micros."""
    return EPOCH + micros * MICROSECOND


@dataclass(slots=True)
class Organization:
    """A Calendly organization."""

    uuid: str
    name: str
    created_at: datetime


@dataclass(slots=True)
class User:
    """A Calendly user (member of exactly one organization in the sandbox)."""

    uuid: str
    name: str
    slug: str
    email: str
    org_uuid: str
    created_at: datetime
    updated_at: datetime
    timezone: str = "America/New_York"


@dataclass(slots=True)
class Membership:
    """A user's role in an organization."""

    uuid: str
    user_uuid: str
    org_uuid: str
    role: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class EventType:
    """A bookable event type owned by one user, or a team's (round robin or collective)."""

    uuid: str
    owner_uuid: str
    name: str
    slug: str
    duration: int
    kind: str
    invitee_limit: int
    created_at: datetime
    updated_at: datetime
    active: bool = True
    deleted_at: datetime | None = None
    # team event types: how hosts are pooled, the hosts (owner_uuid is the first) and the team
    pooling_type: str | None = None
    host_uuids: tuple[str, ...] = ()
    team_name: str | None = None

    @property
    def hosts(self) -> tuple[str, ...]:
        """Users who may host its events: the team's hosts, else the owner."""
        return self.host_uuids or (self.owner_uuid,)


@dataclass(slots=True)
class Cancellation:
    """Who canceled an invitee or event, and when."""

    canceled_by: str
    reason: str | None
    canceler_type: str
    created_at: datetime


@dataclass(slots=True)
class ScheduledEvent:
    """A booked meeting; invitee_uuids keeps booking order."""

    uuid: str
    event_type_uuid: str
    host_uuid: str
    org_uuid: str
    name: str
    start: datetime
    end: datetime
    invitee_limit: int
    created_at: datetime
    updated_at: datetime
    status: str = "active"
    invitee_uuids: list[str] = field(default_factory=list)
    cancellation: Cancellation | None = None
    # every host of the event (event_memberships); empty means host_uuid alone
    member_uuids: tuple[str, ...] = ()

    @property
    def members(self) -> tuple[str, ...]:
        """Users in event_memberships: the host first."""
        return self.member_uuids or (self.host_uuid,)

    @property
    def key(self) -> EventKey:
        """Sort key of the start-time indexes."""
        return (self.start, self.uuid)


@dataclass(slots=True)
class NoShow:
    """A no-show mark on an invitee."""

    uuid: str
    created_at: datetime


@dataclass(slots=True)
class Invitee:
    """One person booked into a scheduled event."""

    uuid: str
    event_uuid: str
    email: str
    name: str
    created_at: datetime
    updated_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    text_reminder_number: str | None = None
    questions: tuple[dict[str, object], ...] = ()
    tracking: dict[str, str | None] | None = None
    status: str = "active"
    rescheduled: bool = False
    old_invitee_uuid: str | None = None
    new_invitee_uuid: str | None = None
    cancellation: Cancellation | None = None
    no_show: NoShow | None = None


@dataclass(slots=True)
class AuthCode:
    """A pending OAuth authorization code."""

    user_uuid: str
    redirect_uri: str
    challenge: str | None
    expires_at: float
    scopes: tuple[str, ...] | None = ()


@dataclass(slots=True)
class AccessToken:
    """An issued bearer token."""

    user_uuid: str
    expires_at: float
    revoked: bool = False
    # None: a legacy (pre-scopes) grant with full access
    scopes: tuple[str, ...] | None = ()


@dataclass(slots=True)
class RefreshToken:
    """An issued refresh token; single use."""

    user_uuid: str
    revoked: bool = False
    used: bool = False
    scopes: tuple[str, ...] | None = ()


@dataclass(slots=True)
class WebhookSubscription:
    """A webhook subscription plus delivery counters (counters are sandbox-only)."""

    uuid: str
    callback_url: str
    events: tuple[str, ...]
    scope: str
    org_uuid: str
    user_uuid: str | None
    group: str | None
    creator_uuid: str
    signing_key: str | None
    created_at: datetime
    updated_at: datetime
    state: str = "active"
    retry_started_at: datetime | None = None
    deliveries_ok: int = 0
    deliveries_failed: int = 0
    # the creating token's grant: an event family is delivered only with its read scope
    grant_scopes: tuple[str, ...] | None = None


@dataclass(slots=True)
class RoutingForm:
    """A published routing form of one organization; questions grow as answers name them."""

    uuid: str
    org_uuid: str
    name: str
    created_at: datetime
    updated_at: datetime
    questions: list[dict[str, object]] = field(default_factory=list)


@dataclass(slots=True)
class RoutingFormSubmission:
    """One submitted routing form; submitter is the invitee it led to (or None)."""

    uuid: str
    form_uuid: str
    questions_and_answers: list[dict[str, object]]
    tracking: dict[str, str | None]
    result: dict[str, object]
    submitter_uuid: str | None
    created_at: datetime


@dataclass(slots=True)
class Faults:
    """Injected faults and adjustable rate limits."""

    rate_limit_per_minute: int
    rate_limit_window_seconds: int = 60
    # Calendly: 8 token requests per user per minute (authorization_code and refresh_token)
    token_requests_per_minute: int = 8
    latency_ms: int = 0
    fail_next: int = 0
    fail_status: int = 500
    # which requests fail_next answers: API calls, token requests, or both
    fail_target: str = "api"
    # Calendly answers invalid_grant with 400 or 401
    invalid_grant_status: int = 400
    # refreshes that rotate the tokens, then lose the answer (a 500 or a dropped connection)
    refresh_answers_lost: int = 0
    lost_answer_as: str = "error"
    # authorize as for an app registered before scopes existed: full access, no `scope` returned
    legacy_grants: bool = False
    # page tokens older than this get a 400 naming page_token (None: they never expire)
    page_token_ttl_seconds: float | None = None
    # every collection page's pagination.next_page is this string (a client's URL checks)
    next_page_override: str | None = None
    # the Scheduling API's limits as [[requests, window seconds], ...], replacing every plan's
    scheduling_limits: list[list[int]] | None = None
    # unsafe calls under path_prefix are applied, then answered with nothing (mode "drop": the
    # connection is aborted) or a 500 (mode "error"), `count` times:
    # {"path_prefix", "count", "mode"}
    drop_response_after_apply: dict[str, Any] | None = None
