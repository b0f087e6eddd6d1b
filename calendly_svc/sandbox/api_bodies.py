"""Request bodies of the emulated write endpoints, refused as Calendly does: 400 Invalid Argument
with one `details` entry per offending parameter."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ApiError

B = TypeVar("B", bound="ApiBody")
INVALID = "The supplied parameters are invalid."
TRACKING_KEYS = (
    "utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid",
)  # fmt: skip


def _zone(name: str) -> str:
    """An IANA timezone name."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be a valid IANA timezone") from exc
    return name


Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Zone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_zone)]
Text = Annotated[str, Field(min_length=1, max_length=255)]


class ApiBody(BaseModel):
    """Base of API bodies: unknown fields are ignored, as JSON APIs usually do."""

    model_config = ConfigDict(extra="ignore", strict=True)


class CancellationBody(ApiBody):
    """POST /scheduled_events/{uuid}/cancellation (FACTS §13.3)."""

    reason: str | None = Field(default=None, max_length=10_000)


class NoShowBody(ApiBody):
    """POST /invitee_no_shows (FACTS §13.4)."""

    invitee: str = Field(min_length=1, max_length=2048)


class SchedulingLinkBody(ApiBody):
    """POST /scheduling_links (FACTS §13.5): every field required, one value each allowed."""

    max_event_count: int = Field(ge=1, le=1)  # strict: true and "1" are refused
    owner: str = Field(min_length=1, max_length=2048)
    owner_type: Literal["EventType"]


class InviteeFields(ApiBody):
    """`invitee` of POST /invitees: email, timezone, and name or first_name."""

    email: Email
    timezone: Zone
    name: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    text_reminder_number: str | None = Field(default=None, pattern=r"^\+[0-9 ]{6,20}$")

    @model_validator(mode="after")
    def _named(self) -> InviteeFields:
        if self.name is None and self.first_name is None:
            raise ValueError("name or first_name is required")
        return self

    @property
    def full_name(self) -> str:
        """The name Calendly shows: name, else first and last name."""
        if self.name is not None:
            return self.name
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class LocationFields(ApiBody):
    """`location` of POST /invitees."""

    kind: Text
    location: str | None = Field(default=None, max_length=1024)


class Answer(ApiBody):
    """One of `questions_and_answers`: all three fields required."""

    question: str = Field(min_length=1, max_length=1024)
    answer: str = Field(max_length=10_000)
    position: int = Field(ge=0)


class InviteeBody(ApiBody):
    """POST /invitees, the Scheduling API (FACTS §13.7)."""

    event_type: str = Field(min_length=1, max_length=2048)
    start_time: str = Field(min_length=1, max_length=64)
    invitee: InviteeFields
    location: LocationFields | None = None
    questions_and_answers: list[Answer] = Field(default_factory=list, max_length=50)
    tracking: dict[str, str | None] | None = None
    event_guests: list[Email] = Field(default_factory=list, max_length=10)

    @field_validator("tracking")
    @classmethod
    def _tracking(cls, value: dict[str, str | None] | None) -> dict[str, str | None] | None:
        if value is not None and sorted(value) != sorted(TRACKING_KEYS):
            raise ValueError(f"tracking needs exactly the keys {', '.join(TRACKING_KEYS)}")
        return value


def _parameter(location: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted parameter name."""
    return ".".join(str(part) for part in location) or "body"


async def read_api_body(request: web.Request, model: type[B], required: bool = True) -> B:
    """Parse and validate a JSON object body; 400 Invalid Argument naming each parameter."""
    text = await request.read()
    if not text.strip() and not required:
        return model.model_validate({})
    try:
        raw: Any = json.loads(text)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ApiError(400, INVALID, [{"parameter": "body", "message": "must be JSON"}]) from exc
    if not isinstance(raw, dict):
        details = [{"parameter": "body", "message": "must be a JSON object"}]
        raise ApiError(400, INVALID, details)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = [
            {"parameter": _parameter(error["loc"]), "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ApiError(400, INVALID, details) from exc
