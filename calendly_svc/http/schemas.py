"""Request bodies and query strings of the public API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

Id = Annotated[int, Field(gt=0, lt=2**63)]


def _no_nul(value: str) -> str:
    """Postgres text cannot hold NUL characters."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _in_utc_range(value: datetime) -> datetime:
    """The same instant in UTC; Postgres and Python need it between years 1 and 9999."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant is out of range in UTC") from None


# Strings that are stored or queried, and timestamps that are compared in SQL.
DbText = AfterValidator(_no_nul)
Moment = Annotated[AwareDatetime, AfterValidator(_in_utc_range)]
# Values that travel in a URL: printable ASCII keeps a request line within the HTTP server's limit.
UrlSafe = Field(pattern=r"^[!-~]*$")
# Our cursors are unpadded base64url; anything else is answered 400 invalid_cursor.
Cursor = Annotated[
    str,
    Field(
        max_length=200,
        json_schema_extra={"pattern": "^[A-Za-z0-9_=-]*$"},
        description="opaque cursor: the previous page's next_cursor",
    ),
]


def about(text: str) -> Any:
    """A field's description (the OpenAPI document shows it on the query parameter)."""
    return Field(description=text)


class Strict(BaseModel):
    """Unknown keys and loose types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _null_only_where_nullable(schema: JsonDict, model: type[Any]) -> None:
    """Document what _no_null_for_required enforces: null only for the `nullable` fields."""
    properties: Any = schema.get("properties", {})
    for name, prop in properties.items():
        branches = prop.get("anyOf")
        if name in model.nullable or branches is None:
            continue
        kept = [branch for branch in branches if branch != {"type": "null"}]
        del prop["anyOf"]
        prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})


class Partial(Strict):
    """A subset update: absent means unchanged; null only where a field allows it."""

    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra=_null_only_where_nullable
    )
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        """Reject an explicit null for a field that cannot be cleared."""
        for name in self.model_fields_set - self.nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        """Only the fields the caller sent."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class AuthUrlQuery(BaseModel):
    """GET /auth-url."""

    model_config = ConfigDict(extra="forbid")
    redirect_uri: (
        Annotated[
            str,
            Field(min_length=1, max_length=2048),
            UrlSafe,
            about(
                "defaults to BACKEND_URL/api/v1/calendly/oauth/callback; any other must be listed "
                "in OAUTH_REDIRECT_URIS"
            ),
        ]
        | None
    ) = None


class OAuthCallbackBody(Strict):
    """POST /oauth-callback."""

    code: Annotated[str, Field(min_length=1, max_length=4096)]
    state: Annotated[str, Field(min_length=1, max_length=512)]


class BrowserCallbackQuery(BaseModel):
    """GET /oauth/callback as Calendly redirects the browser to it."""

    model_config = ConfigDict(extra="ignore")
    code: (
        Annotated[str, Field(max_length=1024), UrlSafe, about("authorization code from Calendly")]
        | None
    ) = None
    state: (
        Annotated[str, Field(max_length=512), UrlSafe, about("the state issued by GET /auth-url")]
        | None
    ) = None
    error: (
        Annotated[
            str, Field(max_length=200), UrlSafe, about("Calendly's error when the user refused")
        ]
        | None
    ) = None
    error_description: (
        Annotated[str, Field(max_length=500), about("Calendly's description of that error")] | None
    ) = None


class ToggleBody(Strict):
    """PUT /integration/toggle."""

    sync_enabled: bool


class SyncSettingsBody(Partial):
    """PUT /integration/sync-settings: any subset."""

    nullable: ClassVar[frozenset[str]] = frozenset({"default_service_id"})
    sync_past_days: Annotated[int, Field(ge=0, le=365)] | None = None
    sync_future_days: Annotated[int, Field(ge=1, le=365)] | None = None
    auto_confirm_bookings: bool | None = None
    create_client_if_not_exists: bool | None = None
    default_service_id: Id | None = None
    notification_on_booking: bool | None = None


class MappingBody(Partial):
    """PUT /event-types/{id}/mapping: any subset; service_id may be null."""

    nullable: ClassVar[frozenset[str]] = frozenset({"service_id"})
    service_id: Id | None = None
    is_active: bool | None = None
    auto_create_appointment: bool | None = None


Limit = Annotated[int, Field(ge=1, le=200, description="page size")]


class AppointmentsQuery(BaseModel):
    """GET /appointments."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    status: Annotated[
        Literal["pending", "confirmed", "canceled"] | None,
        about("only appointments in this status"),
    ] = None
    start_from: Moment | None = Field(
        default=None, alias="from", description="only appointments starting at or after this time"
    )
    start_to: Moment | None = Field(
        default=None, alias="to", description="only appointments starting before this time"
    )
    updated_after: Annotated[Moment | None, about("only appointments changed after this time")] = (
        None
    )
    limit: Limit = 50
    cursor: Cursor | None = None


class ClientsQuery(BaseModel):
    """GET /clients."""

    model_config = ConfigDict(extra="forbid")
    email: (
        Annotated[
            str,
            Field(min_length=1, max_length=320),
            DbText,
            about("only the client with this email (case-insensitive)"),
        ]
        | None
    ) = None
    limit: Limit = 50
    cursor: Cursor | None = None


class WebhookEventsQuery(BaseModel):
    """GET /webhook-events."""

    model_config = ConfigDict(extra="forbid")
    status: Annotated[
        Literal["received", "processing", "processed", "ignored", "failed"] | None,
        about("only deliveries in this state"),
    ] = None
    event: (
        Annotated[
            str, Field(min_length=1, max_length=100), DbText, about("only this Calendly event")
        ]
        | None
    ) = None
    limit: Limit = 50
    cursor: Cursor | None = None


class RoutingFormSubmissionsQuery(BaseModel):
    """GET /routing-form-submissions."""

    model_config = ConfigDict(extra="forbid")
    limit: Limit = 50
    cursor: Cursor | None = None


class ManualSyncBody(Strict):
    """POST /sync/manual: optional window override; `full` skips nothing."""

    past_days: Annotated[int, Field(ge=0, le=365)] | None = None
    future_days: Annotated[int, Field(ge=1, le=365)] | None = None
    full: bool = False


class SyncLogsQuery(BaseModel):
    """GET /sync-logs."""

    model_config = ConfigDict(extra="forbid")
    limit: Limit = 50
    cursor: Cursor | None = None


def _no_default(schema: JsonDict) -> None:
    """Optional, but not defaulted: absent means Calendly did not send it."""
    schema.pop("default", None)


class WebhookEnvelope(BaseModel):
    """A Calendly delivery (documents the body; inbox.parse_envelope reads the raw bytes)."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": True})
    event: Annotated[str, Field(examples=["invitee.created"])]
    created_at: Annotated[str, Field(examples=["2026-11-29T10:00:00.000000Z"])]
    created_by: str = Field(default="", json_schema_extra=_no_default)
    payload: dict[str, Any]


# --- actions on Calendly ------------------------------------------------------------------------

# What a mail address typed by a person looks like (Calendly validates it again); `+` is fine.
EMAIL = r"^[^@\s\x00]{1,64}@[^@\s\x00]+\.[^@\s\x00.]+$"
MAX_TIMES_RANGE = timedelta(days=60)
PAST_GRACE = timedelta(minutes=1)
MAX_AHEAD = timedelta(days=3660)  # no booking page offers times ten years ahead


def _iana(value: str) -> str:
    """An IANA time zone name (Europe/Lisbon, America/Sao_Paulo)."""
    if ".." in value or value.startswith("/"):
        raise ValueError("must be an IANA time zone, e.g. America/Sao_Paulo")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("must be an IANA time zone, e.g. America/Sao_Paulo") from None
    return value


def _not_blank(value: str) -> str:
    """Text with something besides spaces, without its outer spaces."""
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _future(value: datetime) -> datetime:
    """An instant not in the past, nor more than ten years ahead."""
    now = datetime.now(UTC)
    if value < now - PAST_GRACE:
        raise ValueError("must not be in the past")
    if value > now + MAX_AHEAD:
        raise ValueError("must be within ten years from now")
    return value


Name = Annotated[str, Field(min_length=1, max_length=255), DbText, AfterValidator(_not_blank)]
Email = Annotated[str, Field(max_length=254, pattern=EMAIL), DbText]
FutureMoment = Annotated[Moment, Field(strict=False), AfterValidator(_future)]


class CancelBody(Strict):
    """POST /appointments/{id}/cancel."""

    reason: Annotated[str, Field(max_length=10_000), DbText] | None = None
    whole_event: Annotated[
        bool, about("cancel a group event for every invitee (Calendly cancels the whole event)")
    ] = False


class BookingInvitee(Strict):
    """Who is booked."""

    name: Name
    email: Email
    timezone: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_iana)]
    phone: (
        Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$"), about("E.164, for text reminders")]
        | None
    ) = None


class BookingLocation(Strict):
    """One of the event type's locations (Calendly: kind, and the text some kinds need)."""

    kind: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
    location: Annotated[str, Field(min_length=1, max_length=1024), DbText] | None = None


class BookingAnswer(Strict):
    """An answer to one of the event type's questions (the question's exact text)."""

    question: Annotated[str, Field(min_length=1, max_length=1024), DbText]
    answer: Annotated[str, Field(max_length=10_000), DbText]
    position: Annotated[int, Field(ge=0, le=100)]


class BookingBody(Strict):
    """POST /appointments."""

    event_type_id: Id
    start_time: Annotated[FutureMoment, about("a time GET .../available-times offered")]
    invitee: BookingInvitee
    location: BookingLocation | None = None
    questions_and_answers: Annotated[list[BookingAnswer], Field(max_length=50)] | None = None


class IdempotencyHeaders(BaseModel):
    """The header a booking requires."""

    key: str = Field(
        alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[!-~]+$",
        description="retry-safe key: the same key and body answer the first outcome",
    )  # fmt: skip


class AvailableTimesQuery(BaseModel):
    """GET /event-types/{id}/available-times."""

    model_config = ConfigDict(extra="forbid")
    start_time: Annotated[FutureMoment, about("from (with an offset; not in the past)")]
    end_time: Annotated[Moment, about("until (with an offset; at most 60 days after start)")]

    @model_validator(mode="after")
    def _range(self) -> Self:
        """end after start, within MAX_TIMES_RANGE; a start a moment ago means now."""
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if self.end_time - self.start_time > MAX_TIMES_RANGE:
            raise ValueError("the range may span at most 60 days")
        self.start_time = max(self.start_time, datetime.now(UTC) + timedelta(seconds=1))
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be in the future")
        return self


class Prefill(Strict):
    """The invitee the link is meant for."""

    name: Name
    email: Email


class SchedulingLinkBody(Strict):
    """POST /event-types/{id}/scheduling-links."""

    prefill: Prefill | None = None
