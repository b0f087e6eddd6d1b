"""OAuth 2.0 endpoints: authorize (auto-approve), token (code + PKCE, rotating refresh), revoke."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy, MultiMapping
from yarl import URL

from .errors import OAuthError
from .models import AccessToken, AuthCode, RefreshToken, User
from .scopes import CATALOG
from .state import SANDBOX_STATE, SandboxState

CODE_TTL_SECONDS = 600


def _invalid_request(description: str) -> OAuthError:
    """A 400 invalid_request."""
    return OAuthError(400, "invalid_request", description)


def _invalid_grant(description: str) -> OAuthError:
    """A 400 invalid_grant."""
    return OAuthError(400, "invalid_grant", description)


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def authorize(request: web.Request) -> web.StreamResponse:
    """GET /oauth/authorize: approve at once and redirect with a code."""
    state = request.app[SANDBOX_STATE]
    query = request.query
    _check_authorize_client(state, query)
    redirect_uri = query.get("redirect_uri")
    if not redirect_uri:
        raise _invalid_request("redirect_uri is required")
    challenge = _challenge(query)
    user = _login_user(state, query.get("login_hint"))
    scopes = _requested_scopes(query.get("scope", ""))
    if isinstance(scopes, str):
        raise _redirect(query, {"error": "invalid_scope", "error_description": scopes})
    code = secrets.token_urlsafe(32)
    granted = None if state.faults.legacy_grants else scopes
    state.codes[code] = AuthCode(
        user.uuid, redirect_uri, challenge, time.time() + CODE_TTL_SECONDS, granted
    )
    raise _redirect(query, {"code": code})


def _redirect(query: MultiMapping[str], params: dict[str, str]) -> web.HTTPFound:
    """Back to redirect_uri with these parameters and the request's state."""
    if "state" in query:
        params["state"] = query["state"]
    return web.HTTPFound(str(URL(query["redirect_uri"]).update_query(params)))


def _requested_scopes(raw: str) -> tuple[str, ...] | str:
    """The space-separated scopes asked for (granted as asked), or why they are refused."""
    scopes = tuple(dict.fromkeys(raw.split()))
    unknown = [scope for scope in scopes if scope not in CATALOG]
    if unknown:
        return f"Unknown scope: {' '.join(unknown)}"
    return scopes


def _check_authorize_client(state: SandboxState, query: MultiMapping[str]) -> None:
    """Reject unknown clients and response types other than code."""
    if query.get("client_id") != state.config.client_id:
        raise OAuthError(400, "invalid_client", "Unknown client_id")
    if query.get("response_type") != "code":
        raise OAuthError(400, "unsupported_response_type", "response_type must be code")


def _challenge(query: MultiMapping[str]) -> str | None:
    """The PKCE challenge of an authorize request (S256 only)."""
    challenge = query.get("code_challenge")
    method = query.get("code_challenge_method")
    if challenge is None and method is None:
        return None
    if not challenge or method != "S256":
        raise _invalid_request("code_challenge with code_challenge_method=S256 is required")
    return challenge


def _login_user(state: SandboxState, login_hint: str | None) -> User:
    """The user picked by login_hint, else the default user."""
    if not login_hint:
        return state.default_user
    uuid = state.user_by_email.get(login_hint.lower())
    if uuid is None:
        raise _invalid_request(f"No sandbox user with e-mail {login_hint}")
    return state.users[uuid]


async def token(request: web.Request) -> web.StreamResponse:
    """POST /oauth/token: authorization_code and refresh_token grants."""
    state = request.app[SANDBOX_STATE]
    _check_basic_auth(state, request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise _invalid_request("body must be application/x-www-form-urlencoded")
    form = await request.post()
    grant_type = str(form.get("grant_type", ""))
    refused = _over_token_limit(state, grant_type, form)
    if refused is not None:
        return refused
    if state.faults.fail_next > 0 and state.faults.fail_target in ("token", "all"):
        return _injected_token_failure(state)
    try:
        user, scopes = _redeem(state, grant_type, form)
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            exc.status = state.faults.invalid_grant_status
        raise
    state.stats.token_grants[grant_type] += 1
    issued = issue_tokens(state, user, scopes)
    if grant_type == "refresh_token" and state.faults.refresh_answers_lost > 0:
        state.faults.refresh_answers_lost -= 1
        return _lost_answer(request, state)
    return web.json_response(issued)


def _redeem(
    state: SandboxState, grant_type: str, form: MultiDictProxy[Any]
) -> tuple[User, tuple[str, ...] | None]:
    """The user and scopes of a valid code or refresh token (spending it)."""
    if grant_type == "authorization_code":
        return _redeem_code(state, _form_str(form, "code"), form)
    if grant_type == "refresh_token":
        return _redeem_refresh(state, _form_str(form, "refresh_token"))
    raise OAuthError(400, "unsupported_grant_type", "grant_type is not supported")


def _injected_token_failure(state: SandboxState) -> web.Response:
    """Answer one token request with fail_status before anything is redeemed (fail_next)."""
    state.faults.fail_next -= 1
    status = state.faults.fail_status
    error = "server_error" if status >= 500 else "too_many_requests" if status == 429 else (
        "invalid_request")  # fmt: skip
    return OAuthError(status, error, "Injected failure").response()


def _lost_answer(request: web.Request, state: SandboxState) -> web.Response:
    """The tokens were rotated, but the caller never learns the new pair."""
    if state.faults.lost_answer_as == "drop" and request.transport is not None:
        request.transport.abort()
    return OAuthError(
        500, "server_error", "The server encountered an unexpected condition"
    ).response()


def _over_token_limit(
    state: SandboxState, grant_type: str, form: MultiDictProxy[Any]
) -> web.Response | None:
    """A 429 once the grant's user has made its token requests for the minute; the code or
    refresh token of a refused request stays unspent."""
    owner = _grant_owner(state, grant_type, form)
    if owner is None:  # an invalid grant is refused as such below
        return None
    limit = state.faults.token_requests_per_minute
    decision = state.rate_limiter.hit(f"token:{owner}", limit, 60)
    if decision.allowed:
        return None
    state.stats.token_rate_limited += 1
    body = {"error": "too_many_requests", "error_description": "Too many token requests"}
    return web.json_response(body, status=429, headers=decision.headers())


def _grant_owner(state: SandboxState, grant_type: str, form: MultiDictProxy[Any]) -> str | None:
    """The user uuid a code or refresh token belongs to, without spending it."""
    value = form.get("code" if grant_type == "authorization_code" else "refresh_token")
    stores: dict[str, Any] = {
        "authorization_code": state.codes,
        "refresh_token": state.refresh_tokens,
    }
    record = stores.get(grant_type, {}).get(value) if isinstance(value, str) else None
    return None if record is None else str(record.user_uuid)


def _form_str(form: MultiDictProxy[Any], name: str) -> str:
    """A required string field of the form body."""
    value = form.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid_request(f"{name} is required")
    return value


def _check_basic_auth(state: SandboxState, request: web.Request) -> None:
    """Client authentication by HTTP Basic client_id:client_secret."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        decoded = ""
    client_id, _, secret = decoded.partition(":")
    if scheme.lower() != "basic" or not _client_ok(state, client_id, secret):
        raise OAuthError(401, "invalid_client", "Client authentication failed")


def _client_ok(state: SandboxState, client_id: str, secret: str) -> bool:
    """Constant-time check of client credentials."""
    id_ok = hmac.compare_digest(client_id.encode(), state.config.client_id.encode())
    secret_ok = hmac.compare_digest(secret.encode(), state.config.client_secret.encode())
    return id_ok and secret_ok


def _redeem_code(
    state: SandboxState, code: str, form: MultiDictProxy[Any]
) -> tuple[User, tuple[str, ...] | None]:
    """Validate and consume an authorization code; consumed only on success."""
    record = state.codes.get(code)
    if record is None:
        raise _invalid_grant("The authorization code is invalid or was already used")
    if record.expires_at <= time.time():
        del state.codes[code]
        raise _invalid_grant("The authorization code has expired")
    if form.get("redirect_uri") != record.redirect_uri:
        raise _invalid_grant("redirect_uri does not match the authorization request")
    if record.challenge is not None:
        _check_verifier(record.challenge, form.get("code_verifier"))
    del state.codes[code]
    return state.users[record.user_uuid], record.scopes


def _check_verifier(challenge: str, verifier: object) -> None:
    """The PKCE verifier must hash to the stored S256 challenge."""
    if not isinstance(verifier, str) or not verifier:
        raise _invalid_grant("code_verifier is required")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise _invalid_grant("code_verifier does not match the code_challenge")


def _redeem_refresh(state: SandboxState, refresh_token: str) -> tuple[User, tuple[str, ...] | None]:
    """Validate and spend a single-use refresh token; the new pair keeps its grant's scopes."""
    record = state.refresh_tokens.get(refresh_token)
    if record is None:
        raise _invalid_grant("The refresh token is invalid")
    if record.revoked:
        raise _invalid_grant("The refresh token has been revoked")
    if record.used:
        raise _invalid_grant("The refresh token has already been used")
    record.used = True
    return state.users[record.user_uuid], record.scopes


def issue_tokens(state: SandboxState, user: User, scopes: tuple[str, ...] | None) -> dict[str, Any]:
    """Mint an access + refresh pair for user; the token endpoint's 200 body (a legacy grant,
    scopes None, names no scope)."""
    now = time.time()
    ttl = state.config.access_token_ttl_seconds
    access, refresh = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    state.access_tokens[access] = AccessToken(user.uuid, now + ttl, scopes=scopes)
    state.refresh_tokens[refresh] = RefreshToken(user.uuid, scopes=scopes)
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": access,
        "refresh_token": refresh,
        "created_at": int(now),
        "expires_in": ttl,
        "owner": state.uri("users", user.uuid),
        "organization": state.uri("organizations", user.org_uuid),
    }
    if scopes is not None:
        body["scope"] = " ".join(scopes)
    return body


async def revoke(request: web.Request) -> web.StreamResponse:
    """POST /oauth/revoke: revoke an access or refresh token (unknown tokens are ignored)."""
    state = request.app[SANDBOX_STATE]
    form = await request.post()
    if "Authorization" in request.headers:
        _check_basic_auth(state, request)
    elif not _client_ok(state, str(form.get("client_id", "")), str(form.get("client_secret", ""))):
        raise OAuthError(401, "invalid_client", "Client authentication failed")
    value = _form_str(form, "token")
    for record in (state.access_tokens.get(value), state.refresh_tokens.get(value)):
        if record is not None and not record.revoked:
            record.revoked = True
            state.stats.tokens_revoked += 1
    return web.json_response({})


def add_routes(app: web.Application) -> None:
    """Register the OAuth routes."""
    app.router.add_get("/oauth/authorize", authorize)
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/oauth/revoke", revoke)
