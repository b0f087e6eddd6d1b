"""Connecting and disconnecting a Calendly account (OAuth 2.0 with PKCE)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from calendly_svc.apply.event_types import refresh_event_types
from calendly_svc.calendly.errors import (
    CalendlyAuthError,
    CalendlyError,
)
from calendly_svc.calendly.oauth import TokenGrant
from calendly_svc.calendly.scopes import allows, parse_scopes
from calendly_svc.calendly.tokens import StaticToken, TokenSource, encrypt_grant
from calendly_svc.crypto import pkce_challenge, random_token, sha256
from calendly_svc.deps import Deps
from calendly_svc.errors import BadRequest, Unprocessable
from calendly_svc.integrations.lookup import live_integration
from calendly_svc.integrations.subscriptions import (
    RELEASE_TIMEOUT_SECONDS,
    delete_quietly,
    ensure_organization_webhook,
    ensure_webhook,
    hand_over_organization_webhook,
    hand_over_quietly,
)
from calendly_svc.integrations.sync import enqueue
from calendly_svc.store import queries

log = structlog.get_logger(__name__)


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
            await hand_over_quietly(deps, previous, None)
        return
    try:
        async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
            source, tokens = await _previous_tokens(deps, previous)
            if previous.webhook_uri:
                await delete_quietly(deps, source, previous.webhook_uri)
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


async def disconnect(deps: Deps, user_id: int) -> None:
    """Remove the subscription, revoke the tokens, forget the secrets; keep the row."""
    integration = await live_integration(deps, user_id)
    if integration.status == "active":
        await _release_at_calendly(deps, integration)
    else:  # no token of its own: another admin takes the organization subscription over
        await hand_over_quietly(deps, integration, None)
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
        await delete_quietly(deps, source, integration.webhook_uri)
    await hand_over_organization_webhook(deps, integration, source)
    for token_enc in (integration.access_token_enc, integration.refresh_token_enc):
        if token_enc is not None:
            await deps.oauth.revoke(deps.cipher.decrypt(token_enc))
