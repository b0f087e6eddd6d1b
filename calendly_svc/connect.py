"""Connecting and disconnecting a Calendly account (OAuth 2.0 with PKCE)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from calendly_svc import queries
from calendly_svc.calendly.errors import (
    CalendlyAuthError,
    CalendlyConflict,
    CalendlyError,
    CalendlyNotFound,
    CalendlyPermissionDenied,
    NeedsReauth,
)
from calendly_svc.calendly.oauth import TokenGrant
from calendly_svc.calendly.scopes import allows, missing_scopes, parse_scopes
from calendly_svc.calendly.tokens import StaticToken, TokenSource, encrypt_grant
from calendly_svc.crypto import pkce_challenge, random_token, sha256
from calendly_svc.deps import Deps
from calendly_svc.errors import BadRequest, Unprocessable, not_connected
from calendly_svc.event_types import refresh_event_types

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


def _allowed_redirect(deps: Deps, redirect_uri: str | None) -> str:
    """The redirect URI to use; anything not configured is refused."""
    default = deps.settings.oauth_callback_url
    if redirect_uri is None or redirect_uri == default:
        return default
    if redirect_uri not in deps.settings.oauth_redirect_uris:
        raise Unprocessable(
            "redirect_uri is not one of the allowed OAuth redirect URIs",
            [{"field": "redirect_uri", "message": "not listed in OAUTH_REDIRECT_URIS"}],
            code="redirect_uri_not_allowed",
        )
    return redirect_uri


async def start_authorization(deps: Deps, user_id: int, redirect_uri: str | None) -> dict[str, str]:
    """A Calendly authorize URL with a fresh single-use state and PKCE challenge."""
    redirect = _allowed_redirect(deps, redirect_uri)
    state, verifier = random_token(32), random_token(48)
    async with deps.pool.acquire() as conn:
        await queries.delete_stale_oauth_states(conn)
        await queries.insert_oauth_state(
            conn, sha256(state), user_id, deps.cipher.encrypt(verifier), redirect,
            deps.settings.oauth_state_ttl_seconds,
        )  # fmt: skip
    auth_url = deps.oauth.authorize_url(redirect, state, pkce_challenge(verifier))
    return {"auth_url": auth_url, "state": state}


async def _consume_state(deps: Deps, state: str, user_id: int) -> queries.OAuthState:
    """Use the state once (committed before anything else happens)."""
    async with deps.pool.acquire() as conn:
        pending = await queries.consume_oauth_state(conn, sha256(state), user_id)
    if pending is None:
        raise BadRequest("unknown, expired or already used OAuth state", code="invalid_state")
    return pending


async def _me(deps: Deps, grant: TokenGrant) -> dict[str, Any]:
    """/users/me; without users:read the token response's owner and organization must do."""
    scopes = parse_scopes(grant.scope)
    if not allows(scopes, "users:read"):
        log.info("users_me_skipped", reason="users:read not granted")
        return {}
    return await deps.calendly.get_me(StaticToken(grant.owner, grant.access_token, scopes))


def _account(user_id: int, grant: TokenGrant, me: dict[str, Any]) -> queries.ConnectedAccount:
    """The account row fields from the token grant and /users/me."""
    return queries.ConnectedAccount(
        user_id=user_id,
        calendly_user_uri=me.get("uri") or grant.owner,
        calendly_organization_uri=grant.organization or me.get("current_organization"),
        scheduling_url=me.get("scheduling_url"),
        name=me.get("name"),
        email=me.get("email"),
        timezone=me.get("timezone"),
    )


async def complete_authorization(
    deps: Deps, code: str, state: str, user_id: int
) -> queries.Integration:
    """Exchange the code, store the integration, subscribe to webhooks, load event types."""
    pending = await _consume_state(deps, state, user_id)
    verifier = deps.cipher.decrypt(pending.code_verifier_enc)
    try:
        grant = await deps.oauth.exchange_code(code, pending.redirect_uri, verifier)
    except CalendlyAuthError as exc:
        # a refused code is Calendly's answer to this request, not a dead integration
        if exc.title == "invalid_grant":
            raise BadRequest(
                f"Calendly refused the authorization code: {exc.message}", code="invalid_code"
            ) from exc
        raise CalendlyError(exc.status, exc.message, exc.title) from exc
    me = await _me(deps, grant)
    account = _account(pending.user_id, grant, me)
    try:
        async with deps.pool.acquire() as conn, conn.transaction():
            previous = await queries.get_integration_by_user(conn, pending.user_id)
            integration = await queries.upsert_connected_integration(
                conn, account, encrypt_grant(deps.cipher, grant)
            )
    except asyncpg.UniqueViolationError:  # the account is another user's (409 at the edge)
        await _revoke_quietly(deps, grant)
        raise
    log.info("integration_connected", integration_id=integration.id, user_id=integration.user_id)
    previous_uri = previous.webhook_uri if previous else None
    if previous is not None and previous.calendly_user_uri != account.calendly_user_uri:
        await _release_previous_account(deps, previous)
        previous_uri = None
    await ensure_webhook(deps, integration, previous_uri)
    await ensure_organization_webhook(deps, integration)
    await _load_event_types(deps, integration)
    async with deps.pool.acquire() as conn:
        fresh = await queries.get_integration(conn, integration.id)
    assert fresh is not None
    if fresh.sync_enabled:
        from calendly_svc.sync import enqueue  # sync builds on connect (subscriptions)

        await enqueue(deps, fresh, "initial")
    return fresh


async def _release_previous_account(deps: Deps, previous: queries.Integration) -> None:
    """The user reconnected with another Calendly account: the old one's subscriptions are
    removed with the OLD account's token (the new one may not touch them) and its tokens are
    revoked. Best effort, like a disconnect."""
    if previous.status != "active" or previous.refresh_token_enc is None:
        log.info("previous_account_not_released", integration_id=previous.id,
                 status=previous.status)  # fmt: skip
        if previous.status != "disconnected":
            await _hand_over_quietly(deps, previous, None)
        return
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
            source, tokens = await _previous_tokens(deps, previous)
            if previous.webhook_uri:
                await _delete_quietly(deps, source, previous.webhook_uri)
            await hand_over_organization_webhook(deps, previous, source)
            for token in tokens:
                await deps.oauth.revoke(token)
    except Exception as exc:  # logged; the new account stays connected
        log.warning("previous_account_release_failed", integration_id=previous.id,
                    error=repr(exc))  # fmt: skip
        return
    log.info("previous_account_released", integration_id=previous.id)


async def _previous_tokens(
    deps: Deps, previous: queries.Integration
) -> tuple[StaticToken, list[str]]:
    """A token of the replaced account (refreshed without storing it: the row now holds the new
    account's) and the tokens to revoke."""
    assert previous.refresh_token_enc is not None
    access = deps.cipher.decrypt(previous.access_token_enc) if previous.access_token_enc else None
    refresh = deps.cipher.decrypt(previous.refresh_token_enc)
    margin = timedelta(seconds=deps.settings.token_refresh_margin_seconds)
    expires = previous.token_expires_at
    if access is None or expires is None or expires - margin <= datetime.now(UTC):
        grant = await deps.oauth.refresh(refresh)
        access, refresh = grant.access_token, grant.refresh_token
    source = StaticToken(previous.calendly_user_uri, access, previous.granted_scopes)
    return source, [access, refresh]


async def _revoke_quietly(deps: Deps, grant: TokenGrant) -> None:
    """Best effort: revoke tokens that will not be kept (their grant is useless to us)."""
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
            for token in (grant.access_token, grant.refresh_token):
                await deps.oauth.revoke(token)
    except Exception as exc:  # logged; the caller's answer stands
        log.warning("token_revoke_failed", error=type(exc).__name__)


async def _load_event_types(deps: Deps, integration: queries.Integration) -> None:
    """Best effort at connect time: a later refresh or sync repairs a failure."""
    if not allows(integration.granted_scopes, "event_types:read"):
        log.info("event_types_load_skipped", integration_id=integration.id)
        return
    try:
        await refresh_event_types(deps, integration)
    except CalendlyError as exc:
        log.warning("event_types_load_failed", integration_id=integration.id, error=exc.message)


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
        await _delete_quietly(deps, source, previous_uri)
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
                await _delete_quietly(deps, source, hook["uri"])
        return await deps.calendly.create_webhook(source, body)


async def _delete_quietly(deps: Deps, source: TokenSource, uri: str) -> None:
    """Delete a subscription; one already gone (or not ours to delete) is not an error."""
    try:
        await deps.calendly.delete_webhook(source, uri)
    except CalendlyNotFound:
        pass
    except CalendlyError as exc:
        log.warning("webhook_delete_failed", error=exc.message, status=exc.status)


async def live_integration(deps: Deps, user_id: int) -> queries.Integration:
    """The user's integration unless there is none or it was disconnected."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, user_id)
    if integration is None or integration.status == "disconnected":
        raise not_connected()
    return integration


async def any_integration(deps: Deps, user_id: int) -> queries.Integration:
    """The user's integration in any status (its logs outlive a disconnect)."""
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, user_id)
    if integration is None:
        raise not_connected()
    return integration


async def disconnect(deps: Deps, user_id: int) -> None:
    """Remove the subscription, revoke the tokens, forget the secrets; keep the row."""
    integration = await live_integration(deps, user_id)
    if integration.status == "active":
        await _release_at_calendly(deps, integration)
    else:  # no token of its own: another admin takes the organization subscription over
        await _hand_over_quietly(deps, integration, None)
    async with deps.pool.acquire() as conn:
        await queries.mark_disconnected(conn, integration.id)
    deps.receivers.forget(integration.public_id)
    log.info("integration_disconnected", integration_id=integration.id, user_id=user_id)


async def _release_at_calendly(deps: Deps, integration: queries.Integration) -> None:
    """Best effort: a Calendly failure must not keep a user from disconnecting."""
    source = deps.tokens.for_integration(integration)
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
            await _release(deps, source, integration)
    except Exception as exc:  # logged, and disconnecting goes on
        log.warning("calendly_release_failed", integration_id=integration.id, error=repr(exc))


async def _release(deps: Deps, source: TokenSource, integration: queries.Integration) -> None:
    """Delete the subscriptions and revoke both tokens."""
    if integration.webhook_uri:
        await _delete_quietly(deps, source, integration.webhook_uri)
    await hand_over_organization_webhook(deps, integration, source)
    for token_enc in (integration.access_token_enc, integration.refresh_token_enc):
        if token_enc is not None:
            await deps.oauth.revoke(deps.cipher.decrypt(token_enc))


# A 'creating' record older than this was left by a process that stopped midway.
CREATING_STALE_SECONDS = 60.0


def _organization_webhook_body(deps: Deps, holder: queries.Integration) -> dict[str, Any]:
    """The create body of the organization subscription held by `holder`."""
    return {"url": webhook_callback_url(deps, holder) + "&scope=organization",
            "events": list(ORGANIZATION_WEBHOOK_EVENTS),
            "organization": holder.calendly_organization_uri, "scope": "organization"}  # fmt: skip


async def _hand_over_quietly(
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
            await _delete_quietly(deps, source, created["uri"])
            return "moved concurrently"
        if record.webhook_uri and record.webhook_uri != created["uri"]:
            await _delete_quietly(deps, old_source or source, record.webhook_uri)
        log.info("organization_webhook_moved", organization=record.organization_uri,
                 integration_id=candidate.id)  # fmt: skip
        return f"recreated for integration {candidate.id}"
    if record.webhook_uri and old_source is not None:
        await _delete_quietly(deps, old_source, record.webhook_uri)
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
