"""Typed async wrappers over the named queries in sql/*.sql; the caller owns the transaction."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, TypeVar
from uuid import UUID

import asyncpg
import orjson

from calendly_svc.store.queries_loader import load_queries
from calendly_svc.store.storable import loads, storable_json

# asyncpg ships no type information; a pool's proxy stands in for a Connection.
Conn: TypeAlias = asyncpg.Connection
T = TypeVar("T")


def _sql(name: str) -> str:
    """The text of a named query."""
    return load_queries()[name]


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    """A row dataclass's field names in declaration order (computed once per class)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in dataclasses.fields(cls))
    return names


def _build(cls: type[T], record: Mapping[str, Any]) -> T:
    """A row dataclass from a record, taking only the dataclass's fields by name: a column the
    next release's migration adds (or a query's extra column) never breaks this release."""
    return cls(*[record[name] for name in _field_names(cls)])


def _row(cls: type[T], record: asyncpg.Record | None) -> T | None:
    """A frozen dataclass from a record, or None."""
    return None if record is None else _build(cls, record)


async def _fetch_one(conn: Conn, cls: type[T], name: str, *args: Any) -> T | None:
    """Run a named query returning at most one row."""
    return _row(cls, await conn.fetchrow(_sql(name), *args))


async def _fetch_all(conn: Conn, cls: type[T], name: str, *args: Any) -> list[T]:
    """Run a named query returning rows."""
    return [_build(cls, r) for r in await conn.fetch(_sql(name), *args)]


# RECORDS: the rows built for every delivery (the inbox's, the apply path's) are plain slots
# dataclasses with a field hash, not frozen ones: a frozen dataclass's __init__ sets each field
# through object.__setattr__, about 5x the cost (6.3 against 1.2 µs for InviteeState's 25
# fields). Nothing assigns to them; build a changed copy with dataclasses.replace.


async def _fetch_planned(conn: Conn, name: str, *args: Any) -> list[asyncpg.Record]:
    """Run a named query planned for these arguments and the tables as they are now."""
    # An unnamed statement is planned at each call; a cached generic plan made while a table
    # was small keeps scanning it as it grows (until autovacuum's next analyze).
    statement = await conn.prepare(_sql(name), name="")
    rows: list[asyncpg.Record] = await statement.fetch(*args)
    return rows


@dataclass(frozen=True, slots=True)
class Integration:
    """A main-app user's connection to one Calendly account."""

    id: int
    public_id: UUID
    user_id: int
    status: str
    status_reason: str | None
    sync_enabled: bool
    calendly_user_uri: str
    calendly_organization_uri: str | None
    scheduling_url: str | None
    name: str | None
    email: str | None
    timezone: str | None
    access_token_enc: bytes | None
    refresh_token_enc: bytes | None
    token_expires_at: datetime | None
    granted_scopes: list[str] | None
    webhook_uri: str | None
    webhook_url: str | None
    webhook_state: str | None
    webhook_signing_key_enc: bytes | None
    webhook_error: str | None
    sync_past_days: int
    sync_future_days: int
    auto_confirm_bookings: bool
    create_client_if_not_exists: bool
    default_service_id: int | None
    notification_on_booking: bool
    last_sync_at: datetime | None
    last_sync_status: str | None
    connected_at: datetime
    disconnected_at: datetime | None
    created_at: datetime
    updated_at: datetime
    routing_forms_webhook: str | None
    next_sync_at: datetime | None
    last_full_sync_at: datetime | None
    refresh_unanswered_at: datetime | None


@dataclass(frozen=True, slots=True)
class OAuthState:
    """A pending authorization: single use, bound to a user, short-lived."""

    state_hash: bytes
    user_id: int
    code_verifier_enc: bytes
    redirect_uri: str
    expires_at: datetime
    used_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventType:
    """A Calendly event type and its mapping to a local service."""

    id: int
    integration_id: int
    calendly_event_type_uri: str
    name: str
    slug: str | None
    duration_minutes: int | None
    active: bool
    kind: str | None
    scheduling_url: str | None
    service_id: int | None
    is_active: bool
    auto_create_appointment: bool
    removed_at: datetime | None
    calendly_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UpsertedRow:
    """Id of a row an upsert wrote, and whether it was new."""

    id: int
    inserted: bool


@dataclass(frozen=True, slots=True)
class ConnectedAccount:
    """What a successful OAuth exchange tells about the Calendly account."""

    user_id: int
    calendly_user_uri: str
    calendly_organization_uri: str | None
    scheduling_url: str | None
    name: str | None
    email: str | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class EncryptedTokens:
    """An access/refresh pair as stored."""

    access_token_enc: bytes
    refresh_token_enc: bytes
    expires_at: datetime
    scopes: list[str] | None


@dataclass(frozen=True, slots=True)
class EventTypeData:
    """Calendly's view of an event type, ready for the batch upsert."""

    uri: str
    name: str
    slug: str | None
    duration: int | None
    active: bool
    kind: str | None
    scheduling_url: str | None
    updated_at: datetime | None


# --- integrations ---------------------------------------------------------------------------


async def get_integration(conn: Conn, integration_id: int) -> Integration | None:
    """The integration by id."""
    return await _fetch_one(conn, Integration, "get_integration", integration_id)


async def get_integration_by_user(conn: Conn, user_id: int) -> Integration | None:
    """The user's integration in any status."""
    return await _fetch_one(conn, Integration, "get_integration_by_user", user_id)


async def get_integration_by_public_id(conn: Conn, public_id: UUID) -> Integration | None:
    """The integration a webhook URL names."""
    return await _fetch_one(conn, Integration, "get_integration_by_public_id", public_id)


async def lock_integration(conn: Conn, integration_id: int) -> Integration | None:
    """The integration, row-locked until the transaction ends."""
    return await _fetch_one(conn, Integration, "lock_integration", integration_id)


async def upsert_connected_integration(
    conn: Conn, account: ConnectedAccount, tokens: EncryptedTokens
) -> Integration:
    """Store a fresh connection (insert or reconnect)."""
    row = await _fetch_one(
        conn, Integration, "upsert_connected_integration",
        account.user_id, account.calendly_user_uri, account.calendly_organization_uri,
        account.scheduling_url, account.name, account.email, account.timezone,
        tokens.access_token_enc, tokens.refresh_token_enc, tokens.expires_at, tokens.scopes,
    )  # fmt: skip
    assert row is not None
    return row


async def update_tokens(conn: Conn, integration_id: int, tokens: EncryptedTokens) -> None:
    """Replace the rotated token pair."""
    await conn.execute(
        _sql("update_tokens"), integration_id, tokens.access_token_enc,
        tokens.refresh_token_enc, tokens.expires_at, tokens.scopes,
    )  # fmt: skip


async def mark_refresh_unanswered(conn: Conn, integration_id: int) -> None:
    """Remember that a refresh request got no answer."""
    await conn.execute(_sql("mark_refresh_unanswered"), integration_id)


async def mark_needs_reauth(conn: Conn, integration_id: int, reason: str) -> Integration | None:
    """Drop dead tokens; None when the integration was not active."""
    return await _fetch_one(conn, Integration, "mark_needs_reauth", integration_id, reason)


async def set_webhook(
    conn: Conn, integration_id: int, uri: str | None, url: str | None, state: str | None,
    signing_key_enc: bytes | None, error: str | None,
) -> Integration | None:  # fmt: skip
    """Record the webhook subscription (or why there is none)."""
    return await _fetch_one(
        conn, Integration, "set_webhook", integration_id, uri, url, state, signing_key_enc, error
    )


async def set_sync_enabled(conn: Conn, user_id: int, enabled: bool) -> Integration | None:
    """Toggle syncing for the user's live integration."""
    return await _fetch_one(conn, Integration, "set_sync_enabled", user_id, enabled)


async def update_sync_settings(
    conn: Conn, user_id: int, changes: dict[str, Any]
) -> Integration | None:
    """Apply a subset of sync settings; absent keys keep their value."""
    return await _fetch_one(
        conn, Integration, "update_sync_settings", user_id,
        changes.get("sync_past_days"), changes.get("sync_future_days"),
        changes.get("auto_confirm_bookings"), changes.get("create_client_if_not_exists"),
        changes.get("notification_on_booking"),
        "default_service_id" in changes, changes.get("default_service_id"),
    )  # fmt: skip


async def mark_disconnected(conn: Conn, integration_id: int) -> Integration | None:
    """Forget the secrets; the row stays so late webhooks can be answered 410."""
    return await _fetch_one(conn, Integration, "mark_disconnected", integration_id)


# --- oauth states -----------------------------------------------------------------------------


async def insert_oauth_state(
    conn: Conn, state_hash: bytes, user_id: int, verifier_enc: bytes, redirect_uri: str,
    ttl_seconds: int,
) -> None:  # fmt: skip
    """Remember a pending authorization."""
    await conn.execute(
        _sql("insert_oauth_state"), state_hash, user_id, verifier_enc, redirect_uri, ttl_seconds
    )


async def consume_oauth_state(conn: Conn, state_hash: bytes, user_id: int) -> OAuthState | None:
    """Use a state once; None when unknown, expired, used or another user's."""
    return await _fetch_one(conn, OAuthState, "consume_oauth_state", state_hash, user_id)


async def delete_stale_oauth_states(conn: Conn) -> None:
    """Housekeeping of long-expired states."""
    await conn.execute(_sql("delete_stale_oauth_states"))


# --- event types ------------------------------------------------------------------------------


async def list_event_types(conn: Conn, integration_id: int) -> list[EventType]:
    """The integration's event types that still exist at Calendly."""
    return await _fetch_all(conn, EventType, "list_event_types", integration_id)


async def get_event_type(conn: Conn, event_type_id: int, integration_id: int) -> EventType | None:
    """One event type of this integration."""
    return await _fetch_one(conn, EventType, "get_event_type", event_type_id, integration_id)


def _columns(items: Sequence[Any]) -> list[list[Any]]:
    """Transpose dataclass rows into one list per field, for UNNEST."""
    fields = [f.name for f in dataclasses.fields(items[0])] if items else []
    return [[getattr(item, name) for item in items] for name in fields]


async def upsert_event_types(
    conn: Conn, integration_id: int, items: Sequence[EventTypeData]
) -> list[UpsertedRow]:
    """Insert new and update changed event types in one statement."""
    if not items:
        return []
    return await _fetch_all(
        conn, UpsertedRow, "upsert_event_types", integration_id, *_columns(items)
    )


async def mark_event_types_removed(conn: Conn, integration_id: int, keep_uris: list[str]) -> int:
    """Mark every event type not in keep_uris as removed; returns how many."""
    return len(await conn.fetch(_sql("mark_event_types_removed"), integration_id, keep_uris))


async def update_event_type_mapping(
    conn: Conn, event_type_id: int, integration_id: int, changes: dict[str, Any]
) -> EventType | None:
    """Apply a subset of the mapping fields."""
    return await _fetch_one(
        conn, EventType, "update_event_type_mapping", event_type_id, integration_id,
        "service_id" in changes, changes.get("service_id"),
        changes.get("is_active"), changes.get("auto_create_appointment"),
    )  # fmt: skip


async def mark_event_type_removed(conn: Conn, integration_id: int, uri: str) -> None:
    """Calendly deleted this event type."""
    await conn.execute(_sql("mark_event_type_removed"), integration_id, uri)


async def get_event_type_by_uri(conn: Conn, integration_id: int, uri: str) -> EventType | None:
    """The event type with this Calendly URI."""
    return await _fetch_one(conn, EventType, "get_event_type_by_uri", integration_id, uri)


# --- webhook inbox ----------------------------------------------------------------------------


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class ClaimedWebhookEvent:
    """A leased delivery: what processing it needs (the body parsed; {} if it does not parse)."""

    id: int
    integration_id: int
    event: str
    body: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A delivery as stored in the inbox, and what became of it."""

    id: int
    integration_id: int
    event: str
    dedup_key: str
    payload_uri: str | None
    calendly_created_at: datetime | None
    headers: dict[str, Any]
    body: str  # the raw text as signed
    status: str
    reason: str | None
    error: str | None
    attempts: int
    duplicates: int
    run_after: datetime
    locked_by: str | None
    locked_at: datetime | None
    received_at: datetime
    processed_at: datetime | None
    updated_at: datetime


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class NewWebhookEvent:
    """A verified delivery about to be stored; headers and body are JSON text."""

    integration_id: int
    event: str
    dedup_key: str
    payload_uri: str | None
    calendly_created_at: datetime | None
    headers: str
    body: str


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class StoredEvent:
    """The row a stored delivery went to, and whether it was new."""

    id: int
    integration_id: int
    dedup_key: str
    inserted: bool


async def insert_webhook_events(
    conn: Conn, events: Sequence[NewWebhookEvent], repeats: Sequence[int]
) -> list[StoredEvent]:
    """Store distinct deliveries in one statement; redeliveries only count as duplicates."""
    return await _fetch_all(
        conn, StoredEvent, "insert_webhook_events", *_columns(events), list(repeats)
    )


async def notify(conn: Conn, channel: str, payload: str = "") -> None:
    """NOTIFY, delivered when the transaction commits."""
    await conn.execute(_sql("notify"), channel, payload)


async def claim_webhook_events(
    conn: Conn, worker: str, limit: int, lease_seconds: float
) -> list[ClaimedWebhookEvent]:
    """Lease due rows (and rows whose lease ran out), oldest first, integration by integration."""
    async with conn.transaction():
        await conn.execute(_sql("lock_inbox_claims"))
        rows = await conn.fetch(_sql("claim_webhook_events"), worker, limit, lease_seconds)
    return sorted((_claimed(row) for row in rows), key=lambda row: row.id)


def _claimed(row: asyncpg.Record) -> ClaimedWebhookEvent:
    """A claimed row with its body parsed (the edge stored only bodies that parse) and made
    storable (NUL and unpaired surrogates become U+FFFD)."""
    try:
        body = storable_json(row["body"], loads(row["body"]))
    except (ValueError, RecursionError):
        body = {}
    return ClaimedWebhookEvent(
        row["id"], row["integration_id"], row["event"], body if isinstance(body, dict) else {},
        row["attempts"],
    )  # fmt: skip


async def heartbeat_webhook_events(conn: Conn, worker: str, ids: list[int]) -> None:
    """Extend the leases this worker holds."""
    await conn.execute(_sql("heartbeat_webhook_events"), worker, ids)


async def finish_webhook_event(
    conn: Conn, event_id: int, worker: str, status: str, reason: str | None
) -> bool:
    """Mark processed/ignored; False when the lease was lost to another worker."""
    done = await conn.fetchval(_sql("finish_webhook_event"), event_id, worker, status, reason)
    return bool(done == 1)


async def finish_webhook_events(
    conn: Conn, worker: str, ids: list[int], statuses: list[str], reasons: list[str | None]
) -> int:
    """Record a group's outcomes; returns how many rows this worker still held."""
    rows = await conn.fetch(_sql("finish_webhook_events"), worker, ids, statuses, reasons)
    return len(rows)


async def fail_webhook_event(
    conn: Conn, event_id: int, worker: str, error: str, max_attempts: int, delay: float
) -> str | None:
    """Schedule a retry or give up; returns the new status (None if the lease was lost)."""
    status: str | None = await conn.fetchval(
        _sql("fail_webhook_event"), event_id, worker, error, max_attempts, delay
    )
    return status


async def release_webhook_events(conn: Conn, worker: str) -> None:
    """Give back every row this worker still holds."""
    await conn.execute(_sql("release_webhook_events"), worker)


async def list_webhook_events(
    conn: Conn, integration_id: int, status: str | None, event: str | None,
    before_id: int | None, limit: int,
) -> list[WebhookEvent]:  # fmt: skip
    """The webhook log, newest first."""
    return await _fetch_all(
        conn, WebhookEvent, "list_webhook_events", integration_id, status, event, before_id, limit
    )


async def get_webhook_event(conn: Conn, event_id: int, integration_id: int) -> WebhookEvent | None:
    """One logged delivery of this integration."""
    return await _fetch_one(conn, WebhookEvent, "get_webhook_event", event_id, integration_id)


async def replay_webhook_event(
    conn: Conn, event_id: int, integration_id: int
) -> WebhookEvent | None:
    """Queue a delivery again; None if unknown or being processed right now."""
    return await _fetch_one(conn, WebhookEvent, "replay_webhook_event", event_id, integration_id)


async def _purge(conn: Conn, name: str, days: int, limit: int) -> int:
    """Run a retention purge with its primary-key plan; how many rows it deleted."""
    async with conn.transaction():
        await conn.execute(_sql("plan_purge_by_primary_key"))
        deleted: int = await conn.fetchval(_sql(name), days, limit)
    return deleted


async def purge_webhook_events(conn: Conn, days: int, limit: int) -> int:
    """Delete the settled deliveries unchanged for `days` among the `limit` oldest; how many."""
    return await _purge(conn, "purge_webhook_events", days, limit)


async def purge_sync_jobs(conn: Conn, days: int, limit: int) -> int:
    """Delete the sync jobs finished `days` ago among the `limit` oldest; how many."""
    return await _purge(conn, "purge_sync_jobs", days, limit)


async def purge_sync_logs(conn: Conn, days: int, limit: int) -> int:
    """Delete the sync logs finished `days` ago among the `limit` oldest; how many."""
    return await _purge(conn, "purge_sync_logs", days, limit)


async def purge_outbox(conn: Conn, days: int, limit: int) -> int:
    """Delete the notifications delivered or failed `days` ago among the `limit` oldest."""
    return await _purge(conn, "purge_outbox", days, limit)


# --- invitees, appointments, clients ------------------------------------------------------------


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class InviteeState:
    """One invitee's state as Calendly reported it, with its scheduled event's details."""

    uri: str
    event_uri: str
    event_type_uri: str | None
    status: str
    rescheduled: bool
    old_invitee_uri: str | None
    new_invitee_uri: str | None
    email: str | None
    name: str | None
    first_name: str | None
    last_name: str | None
    text_reminder_number: str | None
    timezone: str | None
    questions_and_answers: list[Any]
    cancellation: dict[str, Any] | None
    no_show: bool
    start_time: datetime | None
    end_time: datetime | None
    location: dict[str, Any] | None
    cancel_url: str | None
    reschedule_url: str | None
    routing_form_submission_uri: str | None
    calendly_created_at: datetime | None
    calendly_updated_at: datetime
    event_updated_at: datetime | None


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class StoredInvitee(InviteeState):
    """A stored invitee snapshot: the state plus where it belongs."""

    integration_id: int
    appointment_id: int | None
    seen_at: datetime


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class AppointmentChange:
    """The projected columns an apply may change."""

    client_id: int | None
    status: str
    no_show: bool
    start_time: datetime
    end_time: datetime
    timezone: str | None
    location: dict[str, Any] | None
    questions_and_answers: list[Any]
    cancellation: dict[str, Any] | None
    reschedule_count: int
    history: list[Any]
    calendly_event_uri: str
    calendly_invitee_uri: str
    cancel_url: str | None
    reschedule_url: str | None


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class NewAppointment(AppointmentChange):
    """Columns of an appointment being created: the projection plus what never changes."""

    user_id: int
    integration_id: int
    event_type_id: int | None
    service_id: int | None
    confirmation: str


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class Appointment(NewAppointment):
    """A booking as the main app sees it."""

    id: int
    merged_into: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class Client:
    """A client of the professional."""

    id: int
    user_id: int
    email: str
    email_normalized: str
    name: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    timezone: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class ClientWrite(Client):
    """A client row an upsert returned."""

    inserted: bool


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class ClientData:
    """What an invitee tells about its client."""

    user_id: int
    email: str
    email_normalized: str
    name: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    timezone: str | None


def _values(item: Any) -> list[Any]:
    """A dataclass's field values in declaration order, as query arguments."""
    return [getattr(item, f.name) for f in dataclasses.fields(item)]


async def lock_integration_apply(conn: Conn, integration_id: int) -> None:
    """Take the integration's apply lock until the transaction ends."""
    await conn.execute(_sql("lock_integration_apply"), integration_id)


@dataclass(slots=True, unsafe_hash=True)  # see RECORDS
class InviteeWrite:
    """What upserting one invitee state found: written or stale, and its chain's appointments."""

    uri: str
    written: bool
    found: list[int]


def _records(items: Sequence[Any]) -> str:
    """Dataclass rows as one JSON array of objects, for json_to_recordset (passed as text: the
    pool's json codec would encode it again): one parameter in place of an array per field,
    whose encoding costs asyncpg a type check per element."""
    return orjson.dumps(items, option=orjson.OPT_NAIVE_UTC).decode()


async def upsert_invitees(
    conn: Conn, integration_id: int, states: Sequence[InviteeState]
) -> dict[str, InviteeWrite]:
    """Store each snapshot unless a newer one is stored (distinct URIs); results by URI."""
    rows = await _fetch_planned(conn, "upsert_invitees", integration_id, _records(states))
    return {row["uri"]: _build(InviteeWrite, row) for row in rows}


async def lock_appointments(conn: Conn, ids: list[int]) -> list[Appointment]:
    """Row-lock appointments in id order."""
    return await _fetch_all(conn, Appointment, "lock_appointments", ids)


async def attach_invitees(
    conn: Conn, integration_id: int, uri: str, appointment_id: int, merged: list[int]
) -> None:
    """Attach the invitee (and the invitees of merged appointments) to the appointment."""
    await conn.execute(_sql("attach_invitees"), integration_id, uri, appointment_id, merged)


async def mark_appointments_merged(conn: Conn, ids: list[int], target: int) -> list[Appointment]:
    """Retire appointments found to be the same booking as the target."""
    return await _fetch_all(conn, Appointment, "mark_appointments_merged", ids, target)


async def chain_invitees(conn: Conn, appointment_id: int) -> list[StoredInvitee]:
    """Every invitee snapshot of one appointment."""
    return await _fetch_all(conn, StoredInvitee, "chain_invitees", appointment_id)


async def known_invitees(conn: Conn, integration_id: int, uris: list[str]) -> set[str]:
    """The URIs a stored invitee has, or names as its old or new invitee."""
    rows = await _fetch_planned(conn, "known_invitees", integration_id, uris)
    return {row["uri"] for row in rows}


async def insert_bookings(
    conn: Conn, appointments: Sequence[NewAppointment], states: Sequence[InviteeState]
) -> dict[str, int]:
    """Create first-seen bookings with their invitees' snapshots; new ids by invitee URI."""
    rows = await conn.fetch(_sql("insert_bookings"), _records(appointments), _records(states))
    return {row["calendly_invitee_uri"]: row["id"] for row in rows}


async def get_appointments(conn: Conn, ids: list[int]) -> list[Appointment]:
    """Appointments by id, in id order."""
    return await _fetch_all(conn, Appointment, "get_appointments", ids)


async def update_appointment(
    conn: Conn, appointment_id: int, change: AppointmentChange
) -> Appointment | None:
    """Write the projection; None when nothing differs."""
    return await _fetch_one(
        conn, Appointment, "update_appointment", appointment_id, *_values(change)
    )


async def get_appointment(conn: Conn, appointment_id: int, user_id: int) -> Appointment | None:
    """One of the user's appointments."""
    return await _fetch_one(conn, Appointment, "get_appointment", appointment_id, user_id)


@dataclass(frozen=True, slots=True)
class AppointmentFilter:
    """GET /appointments filters and keyset position."""

    status: str | None
    start_from: datetime | None
    start_to: datetime | None
    updated_after: datetime | None
    before_updated_at: datetime | None
    before_id: int | None
    limit: int


async def list_appointments(
    conn: Conn, user_id: int, filters: AppointmentFilter
) -> list[Appointment]:
    """The user's appointments, newest change first."""
    return await _fetch_all(conn, Appointment, "list_appointments", user_id, *_values(filters))


async def appointment_by_invitee(
    conn: Conn, integration_id: int, invitee_uri: str
) -> Appointment | None:
    """The appointment an invitee belongs to."""
    return await _fetch_one(
        conn, Appointment, "appointment_by_invitee", integration_id, invitee_uri
    )


# --- reschedule waits (a canceled half waiting for its created half) ---------------------------


@dataclass(frozen=True, slots=True)
class RescheduleWait:
    """A claimed wait: the canceled half, the created half it names, the attempts so far."""

    integration_id: int
    old_invitee_uri: str
    new_invitee_uri: str
    attempts: int


async def insert_reschedule_wait(
    conn: Conn, integration_id: int, old_uri: str, new_uri: str
) -> None:
    """Start waiting for new_uri's created half, unless it is stored already."""
    await conn.execute(_sql("insert_reschedule_wait"), integration_id, old_uri, new_uri)


async def end_reschedule_wait(conn: Conn, integration_id: int, new_uri: str) -> None:
    """The created half is applied: stop waiting for it."""
    await conn.execute(_sql("end_reschedule_wait"), integration_id, new_uri)


async def claim_reschedule_waits(
    conn: Conn, wait_seconds: float, claim: str, limit: int, lease_seconds: float
) -> list[RescheduleWait]:
    """Lease the waits that are due (SKIP LOCKED: replicas take different ones)."""
    return await _fetch_all(
        conn, RescheduleWait, "claim_reschedule_waits", wait_seconds, claim, limit, lease_seconds
    )


async def retry_reschedule_wait(
    conn: Conn, wait: RescheduleWait, claim: str, delay: float, error: str
) -> None:
    """Hand a wait back to be tried again after `delay` seconds."""
    await conn.execute(
        _sql("retry_reschedule_wait"), wait.integration_id, wait.old_invitee_uri, claim, delay,
        error,
    )  # fmt: skip


async def finish_reschedule_wait(conn: Conn, wait: RescheduleWait, claim: str) -> bool:
    """Delete a wait this claim still holds; False when the lease was lost or it ended."""
    found = await conn.fetchval(
        _sql("finish_reschedule_wait"), wait.integration_id, wait.old_invitee_uri, claim
    )
    return found is not None


async def mark_reschedule_moved(conn: Conn, wait: RescheduleWait, claim: str) -> bool:
    """Record that the booking went to another host; False when the claim was lost."""
    found = await conn.fetchval(
        _sql("mark_reschedule_moved"), wait.integration_id, wait.old_invitee_uri, claim
    )
    return found is not None


async def moved_invitees(conn: Conn, integration_id: int, uris: list[str]) -> frozenset[str]:
    """Which of these invitees were rescheduled to another host."""
    rows = await conn.fetch(_sql("moved_invitees"), integration_id, uris)
    return frozenset(row["old_invitee_uri"] for row in rows)


async def upsert_clients(conn: Conn, items: Sequence[ClientData]) -> list[ClientWrite]:
    """Create clients or fill their missing fields (distinct emails)."""
    return await _fetch_all(conn, ClientWrite, "upsert_clients", _records(items))


async def fill_clients(conn: Conn, items: Sequence[ClientData]) -> list[ClientWrite]:
    """Fill existing clients' missing fields; clients that do not exist are left out."""
    return await _fetch_all(conn, ClientWrite, "fill_clients", _records(items))


async def get_clients(conn: Conn, ids: list[int]) -> list[Client]:
    """Clients by id."""
    return await _fetch_all(conn, Client, "get_clients", ids)


async def list_clients(
    conn: Conn, user_id: int, email: str | None, after_id: int | None, limit: int
) -> list[Client]:
    """The user's clients in id order."""
    return await _fetch_all(conn, Client, "list_clients", user_id, email, after_id, limit)


# --- outbox -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A notification to the main app."""

    id: int
    user_id: int
    appointment_id: int
    type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    run_after: datetime
    locked_by: str | None
    locked_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification to the main app: an appointment's new state, as the API shows it."""

    user_id: int
    appointment_id: int
    type: str
    payload: dict[str, Any]


async def insert_outbox(conn: Conn, notifications: Sequence[Notification]) -> None:
    """Queue notifications, in order, in the caller's transaction."""
    await conn.execute(
        _sql("insert_outbox"),
        [n.user_id for n in notifications], [n.appointment_id for n in notifications],
        [n.type for n in notifications], [json.dumps(n.payload) for n in notifications],
    )  # fmt: skip


async def claim_outbox(
    conn: Conn, worker: str, limit: int, lease_seconds: float
) -> list[OutboxRow]:
    """Lease the next notification of each appointment."""
    return await _fetch_all(conn, OutboxRow, "claim_outbox", worker, limit, lease_seconds)


async def heartbeat_outbox(conn: Conn, worker: str, ids: list[int]) -> None:
    """Extend this worker's outbox leases."""
    await conn.execute(_sql("heartbeat_outbox"), worker, ids)


async def finish_outbox(conn: Conn, row_id: int, worker: str) -> bool:
    """Mark delivered; False when the lease was lost."""
    return bool(await conn.execute(_sql("finish_outbox"), row_id, worker) == "UPDATE 1")


async def fail_outbox(
    conn: Conn, row_id: int, worker: str, error: str, max_attempts: int, delay: float
) -> str | None:
    """Schedule a retry or give up."""
    status: str | None = await conn.fetchval(
        _sql("fail_outbox"), row_id, worker, error, max_attempts, delay
    )
    return status


async def release_outbox(conn: Conn, worker: str) -> None:
    """Give back this worker's outbox leases."""
    await conn.execute(_sql("release_outbox"), worker)


# --- routing forms and organization subscriptions ----------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutingFormSubmission:
    """A routing form submission as delivered."""

    uri: str
    routing_form_uri: str | None
    submitter_uri: str | None
    submitter_type: str | None
    questions_and_answers: list[Any]
    tracking: dict[str, Any] | None
    result: dict[str, Any] | None
    calendly_created_at: datetime | None
    calendly_updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrganizationWebhook:
    """The organization-scope subscription of one Calendly organization."""

    organization_uri: str
    integration_id: int | None
    webhook_uri: str | None
    webhook_url: str | None
    state: str
    error: str | None
    created_at: datetime
    updated_at: datetime


async def insert_routing_form_submission(
    conn: Conn, integration_id: int, submission: RoutingFormSubmission
) -> None:
    """Store a submission (once)."""
    await conn.execute(_sql("insert_routing_form_submission"), integration_id, *_values(submission))


@dataclass(frozen=True, slots=True)
class StoredSubmission:
    """A stored routing form submission as the API lists it."""

    id: int
    uri: str
    routing_form_uri: str | None
    submitter_uri: str | None
    questions_and_answers: list[Any]
    result: dict[str, Any] | None
    calendly_created_at: datetime | None
    created_at: datetime


async def list_routing_form_submissions(
    conn: Conn, organization_uri: str, before_id: int | None, limit: int
) -> list[StoredSubmission]:
    """An organization's submissions, newest first."""
    return await _fetch_all(
        conn, StoredSubmission, "list_routing_form_submissions", organization_uri, before_id, limit
    )


async def claim_organization_webhook(
    conn: Conn, organization_uri: str, integration_id: int
) -> OrganizationWebhook | None:
    """Become the creator of the organization's subscription; None when one is active."""
    return await _fetch_one(
        conn, OrganizationWebhook, "claim_organization_webhook", organization_uri, integration_id
    )


async def set_organization_webhook(
    conn: Conn, organization_uri: str, uri: str | None, url: str | None, state: str,
    error: str | None,
) -> None:  # fmt: skip
    """Record the organization subscription's outcome."""
    await conn.execute(_sql("set_organization_webhook"), organization_uri, uri, url, state, error)


async def set_routing_forms_webhook(conn: Conn, integration_id: int, state: str) -> None:
    """Record whether routing form events reach this integration."""
    await conn.execute(_sql("set_routing_forms_webhook"), integration_id, state)


async def get_organization_webhook(conn: Conn, organization_uri: str) -> OrganizationWebhook | None:
    """The organization's subscription record."""
    return await _fetch_one(conn, OrganizationWebhook, "get_organization_webhook", organization_uri)


async def organization_webhook_candidates(
    conn: Conn, organization_uri: str, exclude_id: int | None
) -> list[int]:
    """Ids of the organization's active integrations but one, known admins first."""
    rows = await conn.fetch(_sql("organization_webhook_candidates"), organization_uri, exclude_id)
    return [int(row["id"]) for row in rows]


@dataclass(frozen=True, slots=True)
class OrganizationWebhookMove:
    """The organization subscription's new holder and state."""

    integration_id: int | None
    webhook_uri: str | None
    webhook_url: str | None
    state: str
    error: str | None = None


async def move_organization_webhook(
    conn: Conn, seen: OrganizationWebhook, move: OrganizationWebhookMove
) -> bool:
    """Replace the holder and subscription `seen` names; False when they changed meanwhile."""
    moved = await conn.fetchval(
        _sql("move_organization_webhook"), seen.organization_uri, seen.integration_id,
        seen.webhook_uri, move.integration_id, move.webhook_uri, move.webhook_url, move.state,
        move.error,
    )  # fmt: skip
    return moved is not None


# --- sync -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncJob:
    """A queued, running or finished sync."""

    id: int
    integration_id: int
    trigger: str
    status: str
    past_days: int | None
    future_days: int | None
    full_pass: bool
    attempts: int
    run_after: datetime
    locked_by: str | None
    locked_at: datetime | None
    sync_log_id: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class SyncLog:
    """What one sync did."""

    id: int
    integration_id: int
    trigger: str
    status: str
    full_pass: bool
    started_at: datetime
    finished_at: datetime | None
    window_start: datetime
    window_end: datetime
    events_seen: int
    invitees_fetched: int
    appointments_created: int
    appointments_updated: int
    appointments_canceled: int
    clients_created: int
    repaired: int
    api_calls: int
    rate_limited_waits: int
    notes: list[Any]
    error: str | None


@dataclass(slots=True)
class SyncCounts:
    """The counters a sync keeps while it runs and records when it ends."""

    events_seen: int = 0
    invitees_fetched: int = 0
    appointments_created: int = 0
    appointments_updated: int = 0
    appointments_canceled: int = 0
    clients_created: int = 0
    repaired: int = 0
    api_calls: int = 0
    rate_limited_waits: int = 0


@dataclass(frozen=True, slots=True)
class EventSeen:
    """What the last sync saw of a scheduled event."""

    event_uri: str
    calendly_updated_at: datetime | None
    invitees_total: int | None
    invitees_active: int | None


async def enqueue_sync(
    conn: Conn, integration_id: int, trigger: str, past_days: int | None,
    future_days: int | None, full_pass: bool,
) -> SyncJob | None:  # fmt: skip
    """Queue a sync; None when one is already queued or running."""
    return await _fetch_one(
        conn, SyncJob, "enqueue_sync", integration_id, trigger, past_days, future_days, full_pass
    )


async def active_sync_job(conn: Conn, integration_id: int) -> SyncJob | None:
    """The integration's queued or running sync."""
    return await _fetch_one(conn, SyncJob, "active_sync_job", integration_id)


async def get_sync_job(conn: Conn, job_id: int, integration_id: int) -> SyncJob | None:
    """One sync job of this integration."""
    return await _fetch_one(conn, SyncJob, "get_sync_job", job_id, integration_id)


async def enqueue_due_syncs(conn: Conn, interval_seconds: float) -> int:
    """Queue periodic syncs for every integration that is due; returns how many."""
    return len(await conn.fetch(_sql("enqueue_due_syncs"), interval_seconds))


async def schedule_next_sync(conn: Conn, integration_id: int, delay_seconds: float) -> None:
    """When the next periodic sync of this integration is due."""
    await conn.execute(_sql("schedule_next_sync"), integration_id, delay_seconds)


async def claim_sync_jobs(
    conn: Conn, worker: str, limit: int, lease_seconds: float
) -> list[SyncJob]:
    """Lease due jobs (and jobs whose lease ran out)."""
    return await _fetch_all(conn, SyncJob, "claim_sync_jobs", worker, limit, lease_seconds)


async def heartbeat_sync_jobs(conn: Conn, worker: str, ids: list[int]) -> None:
    """Extend this worker's job leases."""
    await conn.execute(_sql("heartbeat_sync_jobs"), worker, ids)


async def finish_sync_job(
    conn: Conn, job_id: int, worker: str, status: str, error: str | None, log_id: int | None
) -> bool:
    """Record a job's outcome; False when the lease was lost."""
    result = await conn.execute(_sql("finish_sync_job"), job_id, worker, status, error, log_id)
    return bool(result == "UPDATE 1")


async def release_sync_jobs(conn: Conn, worker: str) -> None:
    """Hand back this worker's running jobs."""
    await conn.execute(_sql("release_sync_jobs"), worker)


async def insert_sync_log(
    conn: Conn, integration_id: int, trigger: str, full_pass: bool, start: datetime, end: datetime
) -> SyncLog:
    """Open a sync log."""
    row = await _fetch_one(
        conn, SyncLog, "insert_sync_log", integration_id, trigger, full_pass, start, end
    )
    assert row is not None
    return row


async def finish_sync_log(
    conn: Conn, log_id: int, status: str, counts: SyncCounts, notes: list[Any], error: str | None
) -> SyncLog | None:
    """Close a sync log with its counters."""
    return await _fetch_one(
        conn, SyncLog, "finish_sync_log", log_id, status, *_values(counts), notes, error
    )


async def list_sync_logs(
    conn: Conn, integration_id: int, before_id: int | None, limit: int
) -> list[SyncLog]:
    """Sync logs, newest first."""
    return await _fetch_all(conn, SyncLog, "list_sync_logs", integration_id, before_id, limit)


async def record_sync_result(conn: Conn, integration_id: int, status: str, full_pass: bool) -> None:
    """The integration's last sync time and status."""
    await conn.execute(_sql("record_sync_result"), integration_id, status, full_pass)


async def events_seen(conn: Conn, integration_id: int, uris: list[str]) -> dict[str, EventSeen]:
    """What the last sync saw of these events, by URI."""
    rows = await _fetch_all(conn, EventSeen, "events_seen", integration_id, uris)
    return {row.event_uri: row for row in rows}


async def mark_events_seen(conn: Conn, integration_id: int, seen: Sequence[EventSeen]) -> None:
    """Remember events a sync has fully applied."""
    if not seen:
        return
    await conn.execute(_sql("mark_events_seen"), integration_id, *_columns(seen))


async def attach_sync_log(conn: Conn, job_id: int, worker: str, log_id: int) -> None:
    """Remember the log a job's current run writes."""
    await conn.execute(_sql("attach_sync_log"), job_id, worker, log_id)


async def abandon_sync_log(conn: Conn, log_id: int, error: str) -> None:
    """Close a log whose run was interrupted."""
    await conn.execute(_sql("abandon_sync_log"), log_id, error)


# --- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueGauge:
    """Depth and oldest age of one queue."""

    queue: str
    depth: int
    oldest_seconds: float | None


async def queue_gauges(conn: Conn) -> list[QueueGauge]:
    """Inbox, outbox and sync job queues."""
    return await _fetch_all(conn, QueueGauge, "queue_gauges")


async def integrations_by_status(conn: Conn) -> dict[str, int]:
    """How many integrations are in each status."""
    rows = await conn.fetch(_sql("integrations_by_status"))
    return {row["status"]: row["n"] for row in rows}


# --- key rotation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntegrationSecrets:
    """An integration's encrypted columns."""

    id: int
    access_token_enc: bytes | None
    refresh_token_enc: bytes | None
    webhook_signing_key_enc: bytes | None


@dataclass(frozen=True, slots=True)
class StateSecret:
    """A pending OAuth state's encrypted verifier."""

    state_hash: bytes
    code_verifier_enc: bytes


async def encrypted_secrets(conn: Conn) -> list[IntegrationSecrets]:
    """Every integration holding a secret (unlocked: rotation writes by compare-and-set)."""
    return await _fetch_all(conn, IntegrationSecrets, "encrypted_secrets")


async def integration_secrets(conn: Conn, integration_id: int) -> IntegrationSecrets | None:
    """One integration's encrypted columns as stored now."""
    return await _fetch_one(conn, IntegrationSecrets, "integration_secrets", integration_id)


async def replace_secrets(conn: Conn, old: IntegrationSecrets, new: IntegrationSecrets) -> bool:
    """Store re-encrypted secrets unless the row changed since `old` was read."""
    found = await conn.fetchval(_sql("replace_secrets"), *_values(old), *_values(new)[1:])
    return found is not None


async def oauth_state_secrets(conn: Conn) -> list[StateSecret]:
    """Verifiers of states not used yet."""
    return await _fetch_all(conn, StateSecret, "oauth_state_secrets")


async def replace_oauth_state_secret(conn: Conn, old: StateSecret, new: StateSecret) -> bool:
    """Store a re-encrypted verifier unless it changed since `old` was read."""
    found = await conn.fetchval(
        _sql("replace_oauth_state_secret"), old.state_hash, old.code_verifier_enc,
        new.code_verifier_enc,
    )  # fmt: skip
    return found is not None


# --- erasure (DELETE /clients/{id}) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErasureInvitee:
    """An invitee snapshot of the person being erased: its URIs, appointment and event."""

    uri: str
    old_invitee_uri: str | None
    new_invitee_uri: str | None
    appointment_id: int | None
    event_uri: str


@dataclass(frozen=True, slots=True)
class ErasureAppointment:
    """An appointment of the person being erased: what names invitees and events."""

    id: int
    calendly_event_uri: str
    calendly_invitee_uri: str
    history: list[Any]


async def erased_uri_hashes(conn: Conn, integration_id: int, hashes: list[bytes]) -> set[bytes]:
    """Which of these URI hashes are tombstones of the integration."""
    rows = await conn.fetch(_sql("erased_uri_hashes"), integration_id, hashes)
    return {bytes(row["uri_hash"]) for row in rows}


async def get_user_client(conn: Conn, client_id: int, user_id: int) -> Client | None:
    """One of the user's clients."""
    return await _fetch_one(conn, Client, "get_user_client", client_id, user_id)


async def erasure_invitees(
    conn: Conn, integration_id: int, appointment_ids: list[int], email: str
) -> list[ErasureInvitee]:
    """The invitees of these appointments or with this normalised email."""
    return await _fetch_all(
        conn, ErasureInvitee, "erasure_invitees", integration_id, appointment_ids, email
    )


async def erasure_appointments(
    conn: Conn, user_id: int, client_id: int, appointment_ids: list[int], invitee_uris: list[str]
) -> list[ErasureAppointment]:
    """The user's appointments of the client, these ids (and merged into them) or invitees."""
    return await _fetch_all(
        conn, ErasureAppointment, "erasure_appointments", user_id, client_id, appointment_ids,
        invitee_uris,
    )  # fmt: skip


async def insert_tombstones(conn: Conn, integration_ids: list[int], hashes: list[bytes]) -> None:
    """Record erased URI hashes (pairs by position)."""
    await conn.execute(_sql("insert_tombstones"), integration_ids, hashes)


async def _deleted(conn: Conn, name: str, *args: Any) -> int:
    """Run a DELETE/UPDATE … RETURNING; how many rows it touched."""
    return len(await conn.fetch(_sql(name), *args))


async def anonymize_appointments(conn: Conn, ids: list[int]) -> int:
    """Strip what identifies the invitee from these appointments."""
    return await _deleted(conn, "anonymize_appointments", ids)


async def delete_erased_invitees(conn: Conn, integration_id: int, uris: list[str]) -> int:
    """Delete invitee snapshots."""
    return await _deleted(conn, "delete_erased_invitees", integration_id, uris)


async def delete_erased_reschedule_waits(conn: Conn, integration_id: int, uris: list[str]) -> int:
    """Delete the reschedule waits naming these invitees."""
    return await _deleted(conn, "delete_erased_reschedule_waits", integration_id, uris)


async def delete_erased_events_seen(conn: Conn, integration_id: int, event_uris: list[str]) -> int:
    """Delete what syncs recorded of these events."""
    return await _deleted(conn, "delete_erased_events_seen", integration_id, event_uris)


async def delete_erased_submissions(
    conn: Conn, integration_id: int, organization_uri: str | None, submitters: list[str],
    email_pattern: str,
) -> list[tuple[int, str]]:  # fmt: skip
    """Delete the person's routing form submissions: (integration id, submission URI) each."""
    rows = await conn.fetch(
        _sql("delete_erased_submissions"), integration_id, organization_uri, submitters,
        email_pattern,
    )  # fmt: skip
    return [(row["integration_id"], row["uri"]) for row in rows]


async def delete_erased_webhook_events(
    conn: Conn, integration_ids: list[int], uris: list[str], email_pattern: str
) -> int:
    """Delete the stored deliveries whose body names a URI (lower case) or the email."""
    return await _deleted(
        conn, "delete_erased_webhook_events", integration_ids, uris, email_pattern
    )


async def erase_link_prefills(conn: Conn, integration_id: int, email_pattern: str) -> int:
    """Clear the prefill (and the booking URL's query) of links made out to the email."""
    return await _deleted(conn, "erase_link_prefills", integration_id, email_pattern)


async def scrub_erased_actions(
    conn: Conn, integration_id: int, email_hashes: list[bytes], uris: list[str]
) -> int:
    """Clear the keyed hashes and invitee URI that tie actions to the erased person."""
    return await _deleted(conn, "scrub_erased_actions", integration_id, email_hashes, uris)


async def delete_erased_outbox(
    conn: Conn, user_id: int, appointment_ids: list[int], uris: list[str], email_pattern: str
) -> int:
    """Delete the notifications about these appointments or naming a URI or the email."""
    return await _deleted(
        conn, "delete_erased_outbox", user_id, appointment_ids, uris, email_pattern
    )


async def delete_client(conn: Conn, client_id: int, user_id: int) -> int:
    """Delete one of the user's clients."""
    return await _deleted(conn, "delete_client", client_id, user_id)


async def scrub_webhook_events(conn: Conn, ids: list[int]) -> None:
    """Keep nothing of these deliveries but their event, status and times."""
    await conn.execute(_sql("scrub_webhook_events"), ids)


# --- webhook subscription health (issue 19) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookHealth:
    """What the last check saw of an integration's user-scope subscription."""

    integration_id: int
    state: str | None
    retry_started_at: datetime | None
    checked_at: datetime | None
    healthy_at: datetime | None
    note: str | None
    next_check_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookHealthBefore:
    """What was known of a subscription before a check recorded its answer."""

    previous_state: str | None
    previous_retry_started_at: datetime | None
    previous_healthy_at: datetime | None


@dataclass(frozen=True, slots=True)
class WebhookHealthGauge:
    """Subscriptions in one state, and the oldest retrying one's age."""

    state: str
    n: int
    oldest_retrying_seconds: float | None


@dataclass(frozen=True, slots=True)
class GapSync:
    """A sync asked to cover the time a subscription was not delivering."""

    id: int
    integration_id: int
    window_start: datetime
    reason: str
    requested_at: datetime
    sync_job_id: int | None


async def claim_webhook_checks(conn: Conn, interval_seconds: float, limit: int) -> list[int]:
    """Integration ids whose subscription check is due, claimed for this caller."""
    rows = await conn.fetch(_sql("claim_webhook_checks"), interval_seconds, limit)
    return [row["integration_id"] for row in rows]


async def record_webhook_health(
    conn: Conn, integration_id: int, state: str, retry_started_at: datetime | None,
    note: str | None, interval_seconds: float,
) -> WebhookHealthBefore:  # fmt: skip
    """Store what a check saw; returns what was known before."""
    row = await conn.fetchrow(
        _sql("record_webhook_health"), integration_id, state, retry_started_at, note,
        interval_seconds,
    )  # fmt: skip
    return _build(WebhookHealthBefore, row)


async def note_webhook_check(conn: Conn, integration_id: int, note: str) -> None:
    """A check that read nothing: why."""
    await conn.execute(_sql("note_webhook_check"), integration_id, note)


async def get_webhook_health(conn: Conn, integration_id: int) -> WebhookHealth | None:
    """The subscription health last recorded, if any."""
    return await _fetch_one(conn, WebhookHealth, "get_webhook_health", integration_id)


async def last_delivery_received(conn: Conn, integration_id: int) -> datetime | None:
    """When the integration's newest stored delivery arrived."""
    value: datetime | None = await conn.fetchval(_sql("last_delivery_received"), integration_id)
    return value


async def webhook_health_gauges(conn: Conn) -> list[WebhookHealthGauge]:
    """Active integrations' subscriptions by state."""
    return await _fetch_all(conn, WebhookHealthGauge, "webhook_health_gauges")


async def request_gap_sync(
    conn: Conn, integration_id: int, window_start: datetime, reason: str
) -> int:
    """Ask for a gap sync (merged into the integration's pending one); returns its id."""
    value: int = await conn.fetchval(_sql("request_gap_sync"), integration_id, window_start, reason)
    return value


async def enqueue_gap_syncs(conn: Conn, integration_id: int | None, limit: int) -> list[int]:
    """Turn pending gap syncs into sync jobs; returns the job ids."""
    rows = await conn.fetch(_sql("enqueue_gap_syncs"), integration_id, limit)
    return [row["sync_job_id"] for row in rows]


async def gap_sync_of_job(conn: Conn, sync_job_id: int) -> GapSync | None:
    """The gap a sync job covers."""
    return await _fetch_one(conn, GapSync, "gap_sync_of_job", sync_job_id)


async def try_lock_webhook_repair(conn: Conn, integration_id: int) -> bool:
    """Whether this transaction now holds the integration's subscription repair lock."""
    locked: bool = await conn.fetchval(_sql("try_lock_webhook_repair"), integration_id)
    return locked


async def mark_webhook_created(conn: Conn, integration_id: int) -> None:
    """A new subscription replaced the one a check saw: healthy."""
    await conn.execute(_sql("mark_webhook_created"), integration_id)


# --- actions on Calendly (migration 0017) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAction:
    """An action the main app asks for, before it is sent."""

    integration_id: int
    kind: str
    actor_user_id: int
    appointment_id: int | None
    event_type_id: int | None
    idempotency_key: str | None
    request_hash: bytes | None
    start_time: datetime | None
    invitee_email_hash: bytes | None


@dataclass(frozen=True, slots=True)
class Action:
    """An action as stored: how far it got and what Calendly answered."""

    id: int
    integration_id: int
    kind: str
    actor_user_id: int
    appointment_id: int | None
    event_type_id: int | None
    idempotency_key: str | None
    request_hash: bytes | None
    start_time: datetime | None
    invitee_email_hash: bytes | None
    state: str
    calendly_response: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ActionWrite(Action):
    """An action insert-or-get returned, and whether this call inserted it."""

    inserted: bool


@dataclass(frozen=True, slots=True)
class SchedulingLink:
    """A single-use booking link and who asked for it."""

    id: int
    integration_id: int
    event_type_id: int | None
    requested_by: int
    booking_url: str
    max_event_count: int
    prefill: dict[str, Any] | None
    created_at: datetime


async def insert_action(conn: Conn, action: NewAction) -> ActionWrite:
    """Insert an action, or get the one with the same idempotency key."""
    row = await _fetch_one(conn, ActionWrite, "insert_action", *_values(action))
    assert row is not None
    return row


async def get_action(conn: Conn, action_id: int) -> Action | None:
    """One action by id."""
    return await _fetch_one(conn, Action, "get_action", action_id)


async def claim_action(conn: Conn, action_id: int, stale_seconds: float) -> bool:
    """Take an action over to send it; False when another request has it in flight."""
    return await conn.fetchval(_sql("claim_action"), action_id, stale_seconds) is not None


async def mark_action_sent(conn: Conn, action_id: int) -> None:
    """The request is about to leave for Calendly."""
    await conn.execute(_sql("mark_action_sent"), action_id)


async def finish_action(
    conn: Conn, action_id: int, state: str, response: Any, error: dict[str, Any] | None,
    appointment_id: int | None = None,
) -> None:  # fmt: skip
    """Record an action's outcome."""
    await conn.execute(_sql("finish_action"), action_id, state, response, error, appointment_id)


async def unsettled_bookings(
    conn: Conn, integration_id: int, event_type_id: int, start_time: datetime,
    email_hash: bytes, exclude: int,
) -> list[int]:  # fmt: skip
    """Earlier bookings of this slot and person whose outcome is unknown or in flight."""
    rows = await conn.fetch(
        _sql("unsettled_bookings"), integration_id, event_type_id, start_time, email_hash, exclude
    )
    return [row["id"] for row in rows]


async def settle_bookings(
    conn: Conn, integration_id: int, ids: list[int], response: Any, appointment_id: int | None
) -> None:
    """Earlier attempts whose booking was found at Calendly succeeded with it."""
    await conn.execute(_sql("settle_bookings"), integration_id, ids, response, appointment_id)


async def last_no_show_uri(conn: Conn, appointment_id: int) -> str | None:
    """The URI of the no-show mark this service last made on the appointment's invitee."""
    uri: str | None = await conn.fetchval(_sql("last_no_show_uri"), appointment_id)
    return uri


async def insert_scheduling_link(
    conn: Conn, integration_id: int, event_type_id: int, requested_by: int, booking_url: str,
    max_event_count: int, prefill: dict[str, Any] | None,
) -> SchedulingLink:  # fmt: skip
    """Store a single-use link."""
    row = await _fetch_one(
        conn, SchedulingLink, "insert_scheduling_link", integration_id, event_type_id,
        requested_by, booking_url, max_event_count, prefill,
    )  # fmt: skip
    assert row is not None
    return row


async def purge_actions(conn: Conn, hours: int, limit: int) -> int:
    """Delete the actions settled `hours` ago among the `limit` oldest."""
    return await _purge(conn, "purge_actions", hours, limit)
