"""Typed async wrappers over the named queries in sql/*.sql; the caller owns the transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, TypeVar
from uuid import UUID

import asyncpg

from calendly_svc.queries_loader import load_queries

# asyncpg ships no type information; a pool's proxy stands in for a Connection.
Conn: TypeAlias = asyncpg.Connection
T = TypeVar("T")


def _sql(name: str) -> str:
    """The text of a named query."""
    return load_queries()[name]


def _row(cls: type[T], record: asyncpg.Record | None) -> T | None:
    """A frozen dataclass from a record, or None."""
    return None if record is None else cls(**dict(record))


async def _fetch_one(conn: Conn, cls: type[T], name: str, *args: Any) -> T | None:
    """Run a named query returning at most one row."""
    return _row(cls, await conn.fetchrow(_sql(name), *args))


async def _fetch_all(conn: Conn, cls: type[T], name: str, *args: Any) -> list[T]:
    """Run a named query returning rows."""
    return [cls(**dict(r)) for r in await conn.fetch(_sql(name), *args)]


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
    token_scope: str | None
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
    scope: str | None


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
        tokens.access_token_enc, tokens.refresh_token_enc, tokens.expires_at, tokens.scope,
    )  # fmt: skip
    assert row is not None
    return row


async def update_tokens(conn: Conn, integration_id: int, tokens: EncryptedTokens) -> None:
    """Replace the rotated token pair."""
    await conn.execute(
        _sql("update_tokens"), integration_id, tokens.access_token_enc,
        tokens.refresh_token_enc, tokens.expires_at, tokens.scope,
    )  # fmt: skip


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


async def consume_oauth_state(
    conn: Conn, state_hash: bytes, user_id: int | None
) -> OAuthState | None:
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
