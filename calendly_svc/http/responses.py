"""Response bodies of the public API: each field is defined here once.

The handlers build these models and answer with `reply(model)`; calendly_svc/http/openapi.py
turns the same models into the document's component schemas. Every model is closed
(extra="forbid"); a field without a default is required; `X | None` is nullable, never
optional; a field with a default is optional: it appears only when the handler sets it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

# A stored id: a positive bigint.
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Count = Annotated[int, Field(ge=0)]
# A timestamp from Postgres, as datetime.isoformat() writes it (UTC: "+00:00").
Time = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
# A timestamp kept verbatim inside stored JSON (never re-parsed, so never re-written).
TimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
JsonObject = dict[str, Any]

PublicStatus = Literal["not_connected", "active", "disabled", "needs_reauth"]
SyncStatus = Literal["running", "succeeded", "partial", "failed"]
RoutingFormsWebhook = Literal["active", "not_permitted", "error"]
Trigger = Literal["initial", "manual", "periodic", "gap"]
RetryingSince = Annotated[
    Time | None,
    Field(
        description="When Calendly began failing to deliver to the webhook subscription "
        "(its retry_started_at, as the last health check saw it); null while deliveries "
        "succeed. Calendly disables a subscription after 24 hours of failures."
    ),
]
GrantedScopes = Annotated[
    list[str] | None,
    Field(
        description="OAuth scopes Calendly granted; null when its token response named none "
        "(a legacy grant with full access)"
    ),
]
MissingScopes = Annotated[
    list[str],
    Field(description="Scopes the service's features need that were not granted ([] when unknown)"),
]


class Closed(BaseModel):
    """A response body with exactly its fields."""

    model_config = ConfigDict(extra="forbid")


def reply(model: BaseModel, status: int = 200) -> web.Response:
    """The model as a JSON response (a field with a default is left out unless it was set)."""
    # pydantic's own serializer: as fast as json.dumps of a dict, so the webhook edge pays nothing
    body = model.model_dump_json(exclude_unset=True)
    return web.Response(text=body, status=status, content_type="application/json")


JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def receipt_reply(stored_id: int, duplicate: bool) -> web.Response:
    """A WebhookReceipt, formatted without building the model: every delivery gets one (a test
    holds it equal to the model's own JSON)."""
    body = b'{"id":%d,"duplicate":%b}' % (stored_id, b"true" if duplicate else b"false")
    return web.Response(body=body, headers=JSON_HEADERS)


class ErrorDetail(Closed):
    """What went wrong."""

    code: Annotated[str, Field(pattern="^[a-z][a-z0-9_]*$")]
    message: str
    details: Annotated[Any, Field(description="null, or a list or object that explains the error")]


class Error(Closed):
    """The one error body."""

    error: ErrorDetail


class Health(Closed):
    """The process is up."""

    status: Literal["ok"]


class Ready(Closed):
    """The database answers and every migration is applied."""

    status: Literal["ready"]


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: JsonObject
    paths: JsonObject


class AuthUrl(Closed):
    """A Calendly authorization URL and the state bound to it."""

    auth_url: Annotated[str, Field(json_schema_extra={"format": "uri"})]
    state: str


class BrowserAuthorized(Closed):
    """Calendly's code and state, for the main app to POST to /oauth-callback."""

    status: Literal["authorized"]
    code: str
    state: str
    next: str


class Status(Closed):
    """Whether the user is connected and how the integration is doing."""

    connected: bool
    status: PublicStatus
    sync_enabled: bool
    scheduling_url: str | None
    webhook_active: bool
    last_sync_at: Time | None
    last_sync_status: SyncStatus | None
    routing_forms_webhook: RoutingFormsWebhook | None
    granted_scopes: GrantedScopes
    missing_scopes: MissingScopes
    webhook_retrying_since: RetryingSince


class SyncSettings(Closed):
    """The sync settings of an integration."""

    sync_past_days: Annotated[int, Field(ge=0, le=365)]
    sync_future_days: Annotated[int, Field(ge=1, le=365)]
    auto_confirm_bookings: bool
    create_client_if_not_exists: bool
    default_service_id: Id | None
    notification_on_booking: bool


class Integration(Closed):
    """The integration without secrets."""

    id: Id
    public_id: UUID
    user_id: Id
    status: PublicStatus
    status_reason: str | None
    sync_enabled: bool
    calendly_user_uri: str
    calendly_organization_uri: str | None
    scheduling_url: str | None
    name: str | None
    email: str | None
    timezone: str | None
    webhook_url: str | None
    webhook_uri: str | None
    webhook_active: bool
    webhook_error: str | None
    routing_forms_webhook: RoutingFormsWebhook | None
    granted_scopes: GrantedScopes
    missing_scopes: MissingScopes
    sync_settings: SyncSettings
    last_sync_at: Time | None
    last_sync_status: SyncStatus | None
    connected_at: Time
    created_at: Time
    updated_at: Time
    webhook_retrying_since: RetryingSince


class EventType(Closed):
    """One event type and its mapping."""

    id: Id
    calendly_event_type_uri: str
    name: str
    slug: str | None
    duration_minutes: int | None
    active: bool
    scheduling_url: str | None
    service_id: Id | None
    is_active: bool
    auto_create_appointment: bool
    updated_at: Time


class EventTypeList(Closed):
    """The user's event types."""

    items: list[EventType]


class EventTypeRefresh(Closed):
    """The user's event types and what the refresh changed."""

    items: list[EventType]
    added: Count
    updated: Count
    removed: Count


class Client(Closed):
    """A client."""

    id: Id
    name: str | None
    email: str
    phone: str | None
    first_name: str | None
    last_name: str | None
    timezone: str | None
    created_at: Time
    updated_at: Time


class ErasedCounts(Closed):
    """How many rows of each kind the erasure removed or anonymized (calendly_svc.apply.erasure)."""

    clients: Count
    appointments: Count
    invitees: Count
    reschedule_waits: Count
    events_seen: Count
    routing_form_submissions: Count
    webhook_events: Count
    outbox: Count
    tombstones: Count
    actions: Count
    scheduling_links: Count


class ClientErasure(Closed):
    """What erasing a client removed, counted per kind."""

    client_id: Id
    erased: ErasedCounts


class ClientSummary(Closed):
    """The client block embedded in an appointment."""

    id: Id
    name: str | None
    email: str
    phone: str | None


class Cancellation(Closed):
    """Who canceled, why and when (as Calendly reported it)."""

    canceled_by: str | None
    reason: str | None
    canceler_type: str | None
    canceled_at: str | None


class EarlierSlot(Closed):
    """A slot the appointment was rescheduled from."""

    calendly_invitee_uri: str
    calendly_event_uri: str | None
    start_time: TimeText | None
    end_time: TimeText | None


class Appointment(Closed):
    """An appointment with its client."""

    id: Id
    status: Literal["pending", "confirmed", "canceled"]
    no_show: bool
    start_time: Time
    end_time: Time
    timezone: str | None
    service_id: Id | None
    event_type_id: Id | None
    client: ClientSummary | None
    location: JsonObject | None
    questions_and_answers: list[JsonObject]
    cancellation: Cancellation | None
    reschedule_count: Count
    history: list[EarlierSlot]
    calendly_event_uri: str
    calendly_invitee_uri: str
    cancel_url: str | None
    reschedule_url: str | None
    created_at: Time
    updated_at: Time


class WebhookReceipt(Closed):
    """A stored delivery (or a duplicate counted)."""

    id: Id
    duplicate: bool


class WebhookEvent(Closed):
    """One entry of the webhook log."""

    id: Id
    event: str
    status: Literal["received", "processing", "processed", "ignored", "failed"]
    reason: str | None
    error: str | None
    attempts: Count
    duplicates: Count
    payload_uri: str | None
    calendly_created_at: Time | None
    received_at: Time
    processed_at: Time | None


class SyncQueued(Closed):
    """The sync queued now, or the one already queued or running."""

    job_id: Id
    status: Literal["queued", "running"]
    deduplicated: Annotated[
        Literal[True], Field(description="present when the sync already existed")
    ] = True


class SyncJob(Closed):
    """A sync job."""

    job_id: Id
    status: Literal["queued", "running", "succeeded", "failed"]
    trigger: Trigger
    attempts: Count
    created_at: Time
    started_at: Time | None
    finished_at: Time | None
    sync_log_id: Id | None
    error: str | None


class SyncLog(Closed):
    """One sync log."""

    id: Id
    trigger: Trigger
    status: SyncStatus
    full_pass: bool
    started_at: Time
    finished_at: Time | None
    window_start: Time
    window_end: Time
    events_seen: Count
    invitees_fetched: Count
    appointments_created: Count
    appointments_updated: Count
    appointments_canceled: Count
    clients_created: Count
    repaired: Count
    api_calls: Count
    rate_limited_waits: Count
    notes: list[Any]
    error: str | None


class RoutingFormSubmission(Closed):
    """A routing form submission."""

    id: Id
    calendly_uri: str
    routing_form: str | None
    questions_and_answers: list[JsonObject]
    submitter: str | None
    result: JsonObject | None
    created_at: Time


# Keyset pages: the items and the cursor to the next page (null on the last).
NextCursor = Annotated[
    str | None, Field(description="the cursor to the next page; null on the last")
]


class ClientPage(Closed):
    """A page of clients."""

    items: list[Client]
    next_cursor: NextCursor


class AppointmentPage(Closed):
    """A page of appointments."""

    items: list[Appointment]
    next_cursor: NextCursor


class WebhookEventPage(Closed):
    """A page of the webhook log."""

    items: list[WebhookEvent]
    next_cursor: NextCursor


class SyncLogPage(Closed):
    """A page of sync logs."""

    items: list[SyncLog]
    next_cursor: NextCursor


class RoutingFormSubmissionPage(Closed):
    """A page of routing form submissions."""

    items: list[RoutingFormSubmission]
    next_cursor: NextCursor


class AvailableTime(Closed):
    """A time Calendly offers for the event type."""

    start_time: Time
    invitees_remaining: Count
    scheduling_url: str | None


class AvailableTimes(Closed):
    """The event type's available times in the range, by start time."""

    items: list[AvailableTime]


class SchedulingLink(Closed):
    """A single-use booking link (prefilled when asked)."""

    id: Id
    booking_url: str
    max_event_count: Count
    created_at: Time
