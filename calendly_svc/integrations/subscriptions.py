"""Calendly webhook subscriptions: the user's, and the organization's held by one admin."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog

from calendly_svc.calendly.errors import (
    CalendlyConflict,
    CalendlyError,
    CalendlyNotFound,
    CalendlyPermissionDenied,
    NeedsReauth,
)
from calendly_svc.calendly.scopes import allows, missing_scopes
from calendly_svc.calendly.tokens import TokenSource
from calendly_svc.crypto import random_token
from calendly_svc.deps import Deps
from calendly_svc.store import queries

log = structlog.get_logger(__name__)


# Disconnecting never waits longer than this for Calendly (e.g. for a rate-limit reset).
RELEASE_TIMEOUT_SECONDS = 10.0
USER_WEBHOOK_EVENTS = (
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
    "invitee_no_show.deleted",
    "event_type.created",
    "event_type.updated",
    "event_type.deleted",
)


def webhook_callback_url(deps: Deps, integration: queries.Integration) -> str:
    """The URL Calendly delivers this integration's events to."""
    return f"{deps.settings.webhook_base_url}?integration={integration.public_id}"


async def ensure_webhook(
    deps: Deps, integration: queries.Integration, previous_uri: str | None
) -> None:
    """(Re)create the user-scope subscription with a fresh signing key; record any failure."""
    if (refusal := webhook_refusal(integration)) is not None:
        await _webhook_not_permitted(deps, integration, refusal)
        return
    source = deps.tokens.for_integration(integration)
    url = webhook_callback_url(deps, integration)
    key = random_token(32)
    body = {
        "url": url, "events": _permitted_events(integration), "scope": "user",
        "organization": integration.calendly_organization_uri,
        "user": integration.calendly_user_uri, "signing_key": key,
    }  # fmt: skip
    if previous_uri:
        await delete_quietly(deps, source, previous_uri)
    try:
        created = await _create_replacing(deps, source, integration, body)
    except CalendlyError as exc:
        log.warning("webhook_subscribe_failed", integration_id=integration.id, error=exc.message)
        async with deps.pool.acquire() as conn:
            await queries.set_webhook(conn, integration.id, None, url, None, None, exc.message)
        return
    async with deps.pool.acquire() as conn:
        await queries.set_webhook(
            conn, integration.id, created["uri"], url, created.get("state", "active"),
            deps.cipher.encrypt(key), None,
        )  # fmt: skip
        await queries.mark_webhook_created(conn, integration.id)
    log.info("webhook_subscribed", integration_id=integration.id)


# Calendly delivers an event family only to a grant with its read scope (FACTS §2.4).
EVENT_FAMILY_SCOPES = {
    "invitee": "scheduled_events:read",
    "invitee_no_show": "scheduled_events:read",
    "event_type": "event_types:read",
    "routing_form_submission": "routing_forms:read",
}
# Subscribing to routing form submissions takes all of these (organizations:read: the role).
ORGANIZATION_WEBHOOK_SCOPES = ("webhooks:write", "routing_forms:read", "organizations:read")


def _permitted_events(integration: queries.Integration) -> list[str]:
    """The user-scope events whose family's read scope was granted."""
    return [
        event for event in USER_WEBHOOK_EVENTS
        if allows(integration.granted_scopes, EVENT_FAMILY_SCOPES[event.split(".")[0]])
    ]  # fmt: skip


def webhook_refusal(integration: queries.Integration) -> str | None:
    """Why the grant allows no user-scope subscription, if it does not."""
    if not allows(integration.granted_scopes, "webhooks:write"):
        return "webhooks:write not granted"
    if not _permitted_events(integration):
        return "no event family's read scope granted"
    return None


async def _webhook_not_permitted(
    deps: Deps, integration: queries.Integration, refusal: str
) -> None:
    """No subscription (periodic syncs are the only source of changes), and why."""
    log.info("webhook_subscribe_skipped", integration_id=integration.id, reason=refusal)
    async with deps.pool.acquire() as conn:
        await queries.set_webhook(
            conn, integration.id, None, None, None, None, f"not permitted: {refusal}"
        )


ORGANIZATION_WEBHOOK_EVENTS = ("routing_form_submission.created",)
ADMIN_ROLES = frozenset({"owner", "admin"})


async def _role(deps: Deps, source: TokenSource, integration: queries.Integration) -> str | None:
    """The connecting user's role in their Calendly organization."""
    params = {"user": integration.calendly_user_uri,
              "organization": str(integration.calendly_organization_uri)}  # fmt: skip
    async for membership in deps.calendly.paginate(source, "/organization_memberships", params):
        return str(membership.get("role"))
    return None


async def ensure_organization_webhook(deps: Deps, integration: queries.Integration) -> None:
    """Routing form events exist only at organization scope: an owner/admin subscribes once."""
    source = deps.tokens.for_integration(integration)
    if missing_scopes(ORGANIZATION_WEBHOOK_SCOPES, integration.granted_scopes):
        async with deps.pool.acquire() as conn:
            await queries.set_routing_forms_webhook(conn, integration.id, "not_permitted")
        return
    try:
        state = await _organization_webhook(deps, source, integration)
    except CalendlyPermissionDenied:
        state = "not_permitted"
    except CalendlyError as exc:
        log.warning("organization_webhook_failed", integration_id=integration.id, error=exc.message)
        state = "error"
    async with deps.pool.acquire() as conn:
        await queries.set_routing_forms_webhook(conn, integration.id, state)


async def _organization_webhook(
    deps: Deps, source: TokenSource, integration: queries.Integration
) -> str:
    """Create the organization's subscription unless one exists; returns the state to show."""
    organization = integration.calendly_organization_uri
    if organization is None or await _role(deps, source, integration) not in ADMIN_ROLES:
        return "not_permitted"
    async with deps.pool.acquire() as conn:
        if await queries.claim_organization_webhook(conn, organization, integration.id) is None:
            return "active"
    url = webhook_callback_url(deps, integration) + "&scope=organization"
    body = {"url": url, "events": list(ORGANIZATION_WEBHOOK_EVENTS),
            "organization": organization, "scope": "organization"}  # fmt: skip
    try:
        created = await _create_replacing(deps, source, integration, body)
    except CalendlyError as exc:
        async with deps.pool.acquire() as conn:
            await queries.set_organization_webhook(
                conn, organization, None, url, "error", exc.message
            )
        raise
    async with deps.pool.acquire() as conn:
        await queries.set_organization_webhook(
            conn, organization, created["uri"], url, "active", None
        )
    return "active"


async def _create_replacing(
    deps: Deps, source: TokenSource, integration: queries.Integration, body: dict[str, Any]
) -> dict[str, Any]:
    """Create the subscription; on 409 delete the one holding our URL and create again."""
    try:
        return await deps.calendly.create_webhook(source, body)
    except CalendlyConflict:
        params = {"organization": str(integration.calendly_organization_uri),
                  "scope": body["scope"]}  # fmt: skip
        if body["scope"] == "user":
            params["user"] = integration.calendly_user_uri
        async for hook in deps.calendly.webhooks(source, params):
            if hook.get("callback_url") == body["url"]:
                await delete_quietly(deps, source, hook["uri"])
        return await deps.calendly.create_webhook(source, body)


async def delete_quietly(deps: Deps, source: TokenSource, uri: str) -> None:
    """Delete a subscription; one already gone (or not ours to delete) is not an error."""
    try:
        await deps.calendly.delete_webhook(source, uri)
    except CalendlyNotFound:
        pass
    except CalendlyError as exc:
        log.warning("webhook_delete_failed", error=exc.message, status=exc.status)


# A 'creating' record older than this was left by a process that stopped midway.
CREATING_STALE_SECONDS = 60.0


def _organization_webhook_body(deps: Deps, holder: queries.Integration) -> dict[str, Any]:
    """The create body of the organization subscription held by `holder`."""
    return {"url": webhook_callback_url(deps, holder) + "&scope=organization",
            "events": list(ORGANIZATION_WEBHOOK_EVENTS),
            "organization": holder.calendly_organization_uri, "scope": "organization"}  # fmt: skip


async def hand_over_quietly(
    deps: Deps, integration: queries.Integration, source: TokenSource | None
) -> None:
    """Best effort: a Calendly failure must not keep a user from disconnecting."""
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
            await hand_over_organization_webhook(deps, integration, source)
    except Exception as exc:  # logged; the periodic check repairs it later
        log.warning("organization_webhook_hand_over_failed", integration_id=integration.id,
                    error=repr(exc))  # fmt: skip


async def hand_over_organization_webhook(
    deps: Deps, integration: queries.Integration, source: TokenSource | None
) -> None:
    """The integration stops holding its organization's subscription (disconnect, or another
    account): another active admin integration of the organization takes it over, else it is
    released. `source` is the leaving holder's token, when it still has one."""
    organization = integration.calendly_organization_uri
    if organization is None:
        return
    async with deps.pool.acquire() as conn:
        record = await queries.get_organization_webhook(conn, organization)
    if record is None or record.integration_id != integration.id:
        return
    await _move_organization_webhook(deps, record, await _candidates(deps, record, integration.id),
                                     source)  # fmt: skip


async def check_organization_webhook(
    deps: Deps, integration: queries.Integration, source: TokenSource
) -> str | None:
    """Periodic check: the organization's subscription exists and is active at Calendly and its
    holder is active; otherwise it is recreated through an active admin integration (this one
    first). Returns a note for the sync log when something was repaired."""
    organization = integration.calendly_organization_uri
    if organization is None or missing_scopes(
        ORGANIZATION_WEBHOOK_SCOPES, integration.granted_scopes
    ):
        return None
    async with deps.pool.acquire() as conn:
        record = await queries.get_organization_webhook(conn, organization)
        holder = (
            await queries.get_integration(conn, record.integration_id)
            if record is not None and record.integration_id is not None
            else None
        )
    if record is None or record.state in UNHELD_STATES:
        return await _claim_unheld(deps, integration, record)
    problem = await _organization_webhook_problem(deps, integration, source, record, holder)
    if problem is None:
        return None
    candidates = await _candidates(deps, record, None)
    candidates.sort(key=lambda c: c.id != integration.id)
    old_source = source if holder is not None and holder.id == integration.id else None
    state = await _move_organization_webhook(deps, record, candidates, old_source)
    log.warning("organization_webhook_repaired", organization=organization, problem=problem,
                state=state)  # fmt: skip
    return f"organization webhook subscription {problem}: {state}"


async def _organization_webhook_problem(
    deps: Deps, integration: queries.Integration, source: TokenSource,
    record: queries.OrganizationWebhook, holder: queries.Integration | None,
) -> str | None:  # fmt: skip
    """What is wrong with the held subscription, or None when it is healthy (or another active
    holder's own check answers for it)."""
    if record.state == "creating":
        age = (datetime.now(UTC) - record.updated_at).total_seconds()
        return "left creating" if age > CREATING_STALE_SECONDS else None
    if holder is None or holder.status != "active":
        return f"held by a {holder.status if holder else 'missing'} integration"
    if holder.id != integration.id:
        return None
    if record.webhook_uri is None:
        return "absent"
    try:
        state = (await deps.calendly.get_webhook(source, record.webhook_uri)).get("state")
    except CalendlyNotFound:
        state = "missing"
    return None if state == "active" else str(state)


# Nobody holds the organization's subscription in these states (deleted: before issue 15).
UNHELD_STATES = frozenset({"released", "deleted", "error", "not_permitted"})


async def _claim_unheld(
    deps: Deps, integration: queries.Integration, record: queries.OrganizationWebhook | None
) -> str | None:
    """Nobody holds a subscription: this integration creates it unless it is known not to be
    allowed to (a plain member)."""
    if integration.routing_forms_webhook == "not_permitted":
        return None
    await ensure_organization_webhook(deps, integration)
    async with deps.pool.acquire() as conn:
        fresh = await queries.get_organization_webhook(
            conn, str(integration.calendly_organization_uri)
        )
    if fresh is None or fresh.state != "active" or fresh.integration_id != integration.id:
        return None
    log.warning("organization_webhook_created", organization=fresh.organization_uri)
    was = record.state if record is not None else "absent"
    return f"organization webhook subscription {was}: created for integration {integration.id}"


async def _candidates(
    deps: Deps, record: queries.OrganizationWebhook, exclude_id: int | None
) -> list[queries.Integration]:
    """Active integrations of the organization whose grant can hold its subscription."""
    async with deps.pool.acquire() as conn:
        ids = await queries.organization_webhook_candidates(
            conn, record.organization_uri, exclude_id
        )
        rows = [await queries.get_integration(conn, integration_id) for integration_id in ids]
    return [
        row for row in rows
        if row is not None and not missing_scopes(ORGANIZATION_WEBHOOK_SCOPES, row.granted_scopes)
    ]  # fmt: skip


async def _move_organization_webhook(
    deps: Deps, record: queries.OrganizationWebhook, candidates: list[queries.Integration],
    old_source: TokenSource | None,
) -> str:  # fmt: skip
    """Create the subscription through the first candidate that can, then delete the old one;
    with none, delete the old one (when a token can) and release the record. Returns the
    record's new state."""
    for candidate in candidates:
        source = deps.tokens.for_integration(candidate)
        created = await _create_for(deps, source, candidate)
        if created is None:
            continue
        move = queries.OrganizationWebhookMove(
            candidate.id, created["uri"], created["callback_url"], "active"
        )
        async with deps.pool.acquire() as conn:
            moved = await queries.move_organization_webhook(conn, record, move)
            if moved:
                await queries.set_routing_forms_webhook(conn, candidate.id, "active")
        if not moved:  # another replica moved it first: keep theirs
            await delete_quietly(deps, source, created["uri"])
            return "moved concurrently"
        if record.webhook_uri and record.webhook_uri != created["uri"]:
            await delete_quietly(deps, old_source or source, record.webhook_uri)
        log.info("organization_webhook_moved", organization=record.organization_uri,
                 integration_id=candidate.id)  # fmt: skip
        return f"recreated for integration {candidate.id}"
    if record.webhook_uri and old_source is not None:
        await delete_quietly(deps, old_source, record.webhook_uri)
    released = queries.OrganizationWebhookMove(None, None, None, "released")
    async with deps.pool.acquire() as conn:
        await queries.move_organization_webhook(conn, record, released)
    log.info("organization_webhook_released", organization=record.organization_uri)
    return "released (no active admin integration left)"


async def _create_for(
    deps: Deps, source: TokenSource, candidate: queries.Integration
) -> dict[str, Any] | None:
    """The subscription created through this candidate, or None when it may not (its state is
    recorded) or Calendly fails."""
    try:
        if await _role(deps, source, candidate) not in ADMIN_ROLES:
            state = "not_permitted"
        else:
            body = _organization_webhook_body(deps, candidate)
            return await _create_replacing(deps, source, candidate, body)
    except CalendlyPermissionDenied:
        state = "not_permitted"
    except (CalendlyError, NeedsReauth) as exc:
        log.warning("organization_webhook_failed", integration_id=candidate.id, error=str(exc))
        state = "error"
    async with deps.pool.acquire() as conn:
        await queries.set_routing_forms_webhook(conn, candidate.id, state)
    return None
