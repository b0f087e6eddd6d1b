"""Access tokens for Calendly calls, refreshed single-flight across tasks and processes."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
import structlog

from calendly_svc.calendly.errors import (
    CalendlyAuthError,
    CalendlyError,
    CalendlyUnavailable,
    NeedsReauth,
)
from calendly_svc.calendly.oauth import OAuthClient, TokenGrant
from calendly_svc.calendly.scopes import parse_scopes
from calendly_svc.crypto import SecretCipher
from calendly_svc.metrics import Metrics
from calendly_svc.store import queries

log = structlog.get_logger(__name__)


class TokenSource(Protocol):
    """Supplies the bearer token for one Calendly user's calls."""

    user: str
    # The grant's scopes; None when unknown (a legacy grant with full access).
    scopes: list[str] | None

    async def token(self, rejected: str | None = None) -> str:
        """A token to use; `rejected` is one Calendly just refused (refresh past it)."""
        ...

    async def invalidate(self, reason: str) -> None:
        """Calendly refused even a fresh token: record it and raise."""
        ...


@dataclass
class StaticToken:
    """A token obtained moments ago (e.g. during connect); never refreshed."""

    user: str
    access_token: str
    scopes: list[str] | None = None

    async def token(self, rejected: str | None = None) -> str:
        """The token; refusing it is an authentication failure."""
        if rejected is not None:
            await self.invalidate("the access token was rejected")
        return self.access_token

    async def invalidate(self, reason: str) -> None:
        """Nothing to refresh: the connect attempt fails."""
        raise CalendlyAuthError(401, reason)


def encrypt_grant(cipher: SecretCipher, grant: TokenGrant) -> queries.EncryptedTokens:
    """The grant's tokens, encrypted for storage."""
    return queries.EncryptedTokens(
        access_token_enc=cipher.encrypt(grant.access_token),
        refresh_token_enc=cipher.encrypt(grant.refresh_token),
        expires_at=grant.expires_at,
        scopes=parse_scopes(grant.scope),
    )


class TokenManager:
    """Hands out valid access tokens for integrations, refreshing when needed."""

    def __init__(
        self, pool: asyncpg.Pool, cipher: SecretCipher, oauth: OAuthClient, margin_seconds: int,
        metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        self._pool = pool
        self._cipher = cipher
        self._oauth = oauth
        self._margin = timedelta(seconds=margin_seconds)
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self.refreshes = 0
        self._metrics = metrics

    def for_integration(self, integration: queries.Integration) -> IntegrationTokens:
        """A token source bound to one integration."""
        return IntegrationTokens(
            self, integration.id, integration.calendly_user_uri, integration.granted_scopes
        )

    def _usable(self, row: queries.Integration | None, rejected: str | None) -> str | None:
        """The stored access token if it is fresh and not the one just rejected."""
        if row is None:
            raise NeedsReauth("integration not found")
        if row.status != "active" or row.access_token_enc is None:
            raise NeedsReauth(row.status_reason or f"integration is {row.status}")
        if row.token_expires_at is None or row.token_expires_at - self._margin <= datetime.now(UTC):
            return None
        token = self._cipher.decrypt(row.access_token_enc)
        return None if token == rejected else token

    async def token(self, integration_id: int, rejected: str | None) -> str:
        """A fresh access token, refreshing at most once however many callers ask."""
        async with self._pool.acquire() as conn:
            row = await queries.get_integration(conn, integration_id)
        token = self._usable(row, rejected)
        if token is not None:
            return token
        lock = self._locks.setdefault(integration_id, asyncio.Lock())
        async with lock:
            return await self._refresh(integration_id, rejected)

    async def _refresh(self, integration_id: int, rejected: str | None) -> str:
        """Refresh under the row lock; re-read first, another process may have done it."""
        failure: CalendlyError | None = None
        async with self._pool.acquire() as conn, conn.transaction():
            row = await queries.lock_integration(conn, integration_id)
            token = self._usable(row, rejected)
            if token is not None:
                return token
            assert row is not None
            assert row.refresh_token_enc is not None
            try:
                grant = await self._oauth.refresh(self._cipher.decrypt(row.refresh_token_enc))
            except CalendlyAuthError as exc:
                failure = exc
                await queries.mark_needs_reauth(conn, integration_id, self._refused(row, exc))
            except CalendlyUnavailable as exc:
                # never re-sent here: after a 5xx or no answer the token may be spent (README)
                failure = exc
                if exc.status is None or exc.status >= 500:
                    self._count("unanswered")
                    await queries.mark_refresh_unanswered(conn, integration_id)
            else:
                await queries.update_tokens(
                    conn, integration_id, encrypt_grant(self._cipher, grant)
                )
                self.refreshes += 1
                self._count("ok")
                log.info("calendly_token_refreshed", integration_id=integration_id)
                return grant.access_token
        if isinstance(failure, CalendlyUnavailable):
            log.warning("calendly_token_refresh_failed", integration_id=integration_id,
                        status=failure.status, error=failure.message)  # fmt: skip
            raise failure
        assert failure is not None
        log.warning(
            "integration_needs_reauth", integration_id=integration_id, reason=failure.message
        )
        raise NeedsReauth(failure.message) from failure

    def _refused(self, row: queries.Integration, exc: CalendlyAuthError) -> str:
        """Count a refused refresh; the reason to store. After an unanswered refresh, Calendly
        most likely rotated the token and the answer carrying the new pair was lost."""
        self._count("invalid_grant")
        if row.refresh_unanswered_at is None:
            return f"refresh failed: {exc.message}"
        if self._metrics is not None:
            self._metrics.token_refresh_lost.inc()
        log.warning("calendly_token_refresh_lost", integration_id=row.id,
                    unanswered_at=row.refresh_unanswered_at.isoformat())  # fmt: skip
        return (
            f"refresh failed: {exc.message} (the previous refresh got no answer: its new "
            "tokens were most likely lost)"
        )

    def _count(self, outcome: str) -> None:
        """Count a refresh by outcome."""
        if self._metrics is not None:
            self._metrics.token_refreshes.labels(outcome).inc()

    async def mark_rejected(self, integration_id: int, reason: str) -> None:
        """Calendly refused a freshly refreshed token: the grant is dead."""
        async with self._pool.acquire() as conn:
            if await queries.mark_needs_reauth(conn, integration_id, reason):
                log.warning(
                    "integration_needs_reauth", integration_id=integration_id, reason=reason
                )
        raise NeedsReauth(reason)


@dataclass
class IntegrationTokens:
    """Token source for a stored integration."""

    manager: TokenManager
    integration_id: int
    user: str
    scopes: list[str] | None = None

    async def token(self, rejected: str | None = None) -> str:
        """A valid access token for this integration."""
        return await self.manager.token(self.integration_id, rejected)

    async def invalidate(self, reason: str) -> None:
        """Mark the integration needs_reauth and raise NeedsReauth."""
        await self.manager.mark_rejected(self.integration_id, reason)
