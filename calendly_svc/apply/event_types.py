"""Event types: loading them from Calendly and mapping them to local services."""

from __future__ import annotations

from typing import Any

from calendly_svc.apply.times import parse_time
from calendly_svc.calendly.errors import CalendlyNotFound
from calendly_svc.calendly.scopes import allows
from calendly_svc.deps import Deps
from calendly_svc.errors import NotFound
from calendly_svc.store import queries


def event_type_data(item: dict[str, Any]) -> queries.EventTypeData:
    """The columns we keep from a Calendly EventType."""
    return queries.EventTypeData(
        uri=item["uri"],
        name=item.get("name") or "",
        slug=item.get("slug"),
        duration=item.get("duration"),
        active=bool(item.get("active")) and not item.get("deleted_at"),
        kind=item.get("kind"),
        scheduling_url=item.get("scheduling_url"),
        updated_at=parse_time(item.get("updated_at")),
    )


async def refresh_event_types(deps: Deps, integration: queries.Integration) -> dict[str, int]:
    """Read every page of the user's event types; upsert them and mark the vanished ones."""
    source = deps.tokens.for_integration(integration)
    items = [
        event_type_data(item)
        async for item in deps.calendly.event_types(source, integration.calendly_user_uri)
    ]
    async with deps.pool.acquire() as conn, conn.transaction():
        written = await queries.upsert_event_types(conn, integration.id, items)
        removed = await queries.mark_event_types_removed(
            conn, integration.id, [item.uri for item in items]
        )
    added = sum(row.inserted for row in written)
    return {"added": added, "updated": len(written) - added, "removed": removed}


async def load_event_type(
    deps: Deps, integration: queries.Integration, uri: str
) -> queries.EventType | None:
    """Read one event type from Calendly and store it; None when Calendly does not know it."""
    source = deps.tokens.for_integration(integration)
    try:
        item = await deps.calendly.get_event_type(source, uri)
    except CalendlyNotFound:
        return None
    data = event_type_data(item)
    async with deps.pool.acquire() as conn:
        await queries.upsert_event_types(conn, integration.id, [data])
        return await queries.get_event_type_by_uri(conn, integration.id, data.uri)


async def list_event_types(deps: Deps, integration_id: int) -> list[queries.EventType]:
    """The integration's current event types."""
    async with deps.pool.acquire() as conn:
        return await queries.list_event_types(conn, integration_id)


async def update_mapping(
    deps: Deps, integration_id: int, event_type_id: int, changes: dict[str, Any]
) -> queries.EventType:
    """Change an event type's service mapping; 404 when it is not this integration's."""
    async with deps.pool.acquire() as conn:
        row = await queries.update_event_type_mapping(conn, event_type_id, integration_id, changes)
    if row is None:
        raise NotFound("event type not found", code="event_type_not_found")
    return row


async def resolve_event_type(
    deps: Deps, integration: queries.Integration, uri: str | None
) -> queries.EventType | None:
    """The local event type for a URI, reading that one type from Calendly when it is unknown."""
    if uri is None:
        return None
    async with deps.pool.acquire() as conn:
        found = await queries.get_event_type_by_uri(conn, integration.id, uri)
    if found is not None:
        return found
    if not allows(integration.granted_scopes, "event_types:read"):
        return None  # applied unmapped, as an invitee of an unknown event type would be
    return await load_event_type(deps, integration, uri)
