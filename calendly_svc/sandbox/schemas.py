"""Request bodies of the control API (pydantic; unknown fields are rejected)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from .errors import ControlError

M = TypeVar("M", bound="Body")


def _as_utc(moment: datetime) -> datetime:
    """Naive datetimes are UTC; aware ones are converted to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]


class Body(BaseModel):
    """Base of control bodies: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class Delivering(Body):
    """Bodies of endpoints that emit webhooks."""

    deliver: bool = True


class NewUser(Body):
    """POST /_sandbox/users."""

    email: Email
    name: str = Field(min_length=1)
    role: Literal["owner", "admin", "user"] | None = None
    new_organization: bool = False


class NewEventType(Delivering):
    """POST /_sandbox/event_types (a team's with pooling_type and hosts; user then optional)."""

    user: str | None = None
    name: str = Field(min_length=1)
    duration: int = Field(gt=0, le=1440)
    active: bool = True
    kind: Literal["solo", "group"] = "solo"
    invitee_limit: int | None = Field(default=None, ge=1, le=1000)
    slug: str | None = None
    pooling_type: Literal["round_robin", "collective"] | None = None
    hosts: list[Email] = Field(default_factory=list, max_length=50)
    team_name: str | None = Field(default=None, min_length=1)


class EventTypePatch(Delivering):
    """PATCH /_sandbox/event_types/{uuid}."""

    name: str | None = Field(default=None, min_length=1)
    duration: int | None = Field(default=None, gt=0, le=1440)
    active: bool | None = None


class QuestionAnswer(Body):
    """One invitee answer."""

    question: str
    answer: str
    position: int | None = None


class InviteeSpec(Body):
    """An invitee of a booking."""

    name: str = Field(min_length=1)
    email: Email
    first_name: str | None = None
    last_name: str | None = None
    text_reminder_number: str | None = None
    timezone: str | None = "America/New_York"
    questions_and_answers: list[QuestionAnswer] = Field(default_factory=list)
    tracking: dict[str, str | None] | None = None


class NewBooking(Delivering):
    """POST /_sandbox/bookings."""

    event_type: str
    start_time: UtcDatetime
    invitees: list[InviteeSpec] = Field(min_length=1)
    # round robin: which host gets the booking (default: the first host)
    host: Email | None = None


class BulkBooking(Body):
    """POST /_sandbox/bookings/bulk (no webhooks unless deliver is true)."""

    event_type: str
    count: int = Field(ge=1, le=1_000_000)
    start_time: UtcDatetime
    interval_minutes: int = Field(default=30, ge=0)
    deliver: bool = False


class InviteeRef(Delivering):
    """Bodies naming one invitee by URI."""

    invitee: str


class CancelInvitee(InviteeRef):
    """POST /_sandbox/invitees/cancel."""

    reason: str | None = None
    canceler_type: Literal["invitee", "host"] = "invitee"


class RescheduleInvitee(InviteeRef):
    """POST /_sandbox/invitees/reschedule (round robin: `host` moves it to another host)."""

    start_time: UtcDatetime
    host: Email | None = None


LimitPair = Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]


class DropAfterApply(Body):
    """Fault: unsafe calls under path_prefix are applied, then their answer is lost."""

    path_prefix: str = Field(min_length=1, pattern=r"^/")
    count: int = Field(default=1, ge=0)
    mode: Literal["drop", "error"] = "drop"


class FaultsPatch(Body):
    """POST /_sandbox/faults: only the given fields change."""

    latency_ms: int | None = Field(default=None, ge=0, le=120_000)
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    rate_limit_window_seconds: int | None = Field(default=None, ge=1, le=86_400)
    token_requests_per_minute: int | None = Field(default=None, ge=1)
    fail_next: int | None = Field(default=None, ge=0)
    fail_status: int | None = Field(default=None, ge=400, le=599)
    fail_target: Literal["api", "token", "all"] | None = None
    invalid_grant_status: Literal[400, 401] | None = None
    refresh_answers_lost: int | None = Field(default=None, ge=0)
    lost_answer_as: Literal["error", "drop"] | None = None
    legacy_grants: bool | None = None
    page_token_ttl_seconds: float | None = Field(default=None, ge=0, le=86_400)
    next_page_override: str | None = Field(default=None, max_length=2048)
    # [[requests, window seconds], ...]
    scheduling_limits: list[LimitPair] | None = Field(default=None, min_length=1, max_length=5)
    drop_response_after_apply: DropAfterApply | None = None


class UserFilter(Body):
    """Optional user (URI or e-mail) of the OAuth control endpoints."""

    user: str | None = None


async def read_body(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body (an empty body counts as {})."""
    text = await request.text()
    try:
        raw: Any = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ControlError(400, "body is not valid JSON", str(exc)) from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = json.loads(exc.json(include_url=False, include_input=False))
        raise ControlError(400, "invalid request body", details) from exc
