"""Calendly's OAuth endpoints: code exchange, refresh and revoke."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import structlog

from calendly_svc.calendly.errors import CalendlyAuthError, CalendlyError, CalendlyUnavailable
from calendly_svc.calendly.scopes import NEEDED_SCOPES

log = structlog.get_logger(__name__)
_AUTH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A token endpoint answer."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str | None
    owner: str
    organization: str | None


def _grant(body: dict[str, Any]) -> TokenGrant:
    """Read a 200 token response."""
    expires_in = int(body.get("expires_in") or 7200)
    return TokenGrant(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        scope=body.get("scope"),
        owner=body["owner"],
        organization=body.get("organization"),
    )


def _oauth_error(status: int, body: Any) -> CalendlyError:
    """Map an OAuth error body ({error, error_description}) to an exception."""
    body = body if isinstance(body, dict) else {}
    code = str(body.get("error") or "")
    message = str(body.get("error_description") or code or f"HTTP {status}")
    if code in _AUTH_ERRORS:
        return CalendlyAuthError(status, message, code)
    if status == 429 or status >= 500:
        return CalendlyUnavailable(status, message, code or None)
    return CalendlyError(status, message, code or None)


class OAuthClient:
    """Talks to the authorization server with HTTP Basic client authentication."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, client_id: str, client_secret: str,
        timeout: float = 30.0, scopes: Sequence[str] = NEEDED_SCOPES,
    ) -> None:  # fmt: skip
        self._session = session
        self.scopes = tuple(scopes)
        self._base = base_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        pair = f"{client_id}:{client_secret}".encode()
        self._basic = "Basic " + base64.b64encode(pair).decode("ascii")

    def authorize_url(self, redirect_uri: str, state: str, challenge: str) -> str:
        """The browser URL that starts the authorization code flow with PKCE."""
        query = urlencode({
            "client_id": self._client_id, "response_type": "code", "redirect_uri": redirect_uri,
            "state": state, "code_challenge_method": "S256", "code_challenge": challenge,
            "scope": " ".join(self.scopes),
        }, quote_via=quote)  # fmt: skip
        return f"{self._base}/oauth/authorize?{query}"

    async def _post(self, path: str, form: dict[str, str], auth: bool = True) -> dict[str, Any]:
        """POST a form; raise a mapped error unless 2xx."""
        headers = {"Authorization": self._basic} if auth else {}
        try:
            async with self._session.post(
                f"{self._base}{path}", data=form, headers=headers, timeout=self._timeout
            ) as resp:
                body = await resp.json(content_type=None) if resp.content_length != 0 else {}
                if resp.status >= 400:
                    raise _oauth_error(resp.status, body)
                return body if isinstance(body, dict) else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CalendlyUnavailable(
                None, f"OAuth server unreachable: {type(exc).__name__}"
            ) from exc

    async def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> TokenGrant:
        """Trade an authorization code (and its PKCE verifier) for tokens."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}  # fmt: skip
        return _grant(await self._post("/oauth/token", form))

    async def refresh(self, refresh_token: str) -> TokenGrant:
        """Rotate the token pair; the refresh token used is dead afterwards."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return _grant(await self._post("/oauth/token", form))

    async def revoke(self, token: str) -> None:
        """Revoke an access or refresh token."""
        form = {"client_id": self._client_id, "client_secret": self._client_secret, "token": token}
        await self._post("/oauth/revoke", form, auth=False)
