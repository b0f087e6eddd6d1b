"""OAuth: authorize, code exchange with PKCE, refresh rotation, expiry, revocation."""

from __future__ import annotations

import pytest
from sandbox_helpers import REDIRECT_URI, Sandbox, basic_auth, pkce_pair
from yarl import URL

from calendly_svc.sandbox import SandboxConfig


def code_form(code: str, verifier: str | None, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """Form body of an authorization_code grant."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return form


async def test_round_trip_with_pkce(sandbox: Sandbox) -> None:
    verifier, challenge = pkce_pair()
    query = {
        "client_id": "sandbox-client",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI + "?keep=1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "xyz",
        "scope": "users:read webhooks:write",
    }
    redirect = await sandbox.request("GET", "/oauth/authorize", params=query)
    location = URL(redirect.headers["Location"])
    assert (redirect.status, location.query["state"], location.query["keep"]) == (302, "xyz", "1")

    reply = await sandbox.token_request(
        code_form(location.query["code"], verifier, REDIRECT_URI + "?keep=1")
    )
    assert reply.status == 200
    body = reply.body
    expected_keys = {
        "token_type", "access_token", "refresh_token", "scope", "created_at",
        "expires_in", "owner", "organization",
    }  # fmt: skip
    assert expected_keys == set(body)
    expected = ("Bearer", 7200, "users:read webhooks:write")
    assert expected == (body["token_type"], body["expires_in"], body["scope"])
    assert isinstance(body["created_at"], int)
    me = await sandbox.api(body["access_token"], "/users/me")
    assert (200, body["owner"], body["organization"]) == (
        me.status,
        me.body["resource"]["uri"],
        me.body["resource"]["current_organization"],
    )
    assert me.body["resource"]["email"] == "sandbox@example.com"
    assert body["owner"].startswith(sandbox.url + "/users/")


async def test_wrong_verifier_then_right_then_reuse(sandbox: Sandbox) -> None:
    verifier, challenge = pkce_pair()
    code = await sandbox.authorize(challenge)

    wrong = await sandbox.token_request(code_form(code, "not-the-verifier"))
    assert (wrong.status, wrong.body["error"]) == (400, "invalid_grant")
    missing = await sandbox.token_request(code_form(code, None))
    assert (missing.status, missing.body["error"]) == (400, "invalid_grant")

    right = await sandbox.token_request(code_form(code, verifier))
    assert right.status == 200
    reuse = await sandbox.token_request(code_form(code, verifier))
    assert (reuse.status, reuse.body["error"]) == (400, "invalid_grant")
    assert "error_description" in reuse.body


async def test_redirect_uri_must_match(sandbox: Sandbox) -> None:
    code = await sandbox.authorize()
    reply = await sandbox.token_request(code_form(code, None, "http://evil.example/cb"))
    assert (reply.status, reply.body["error"]) == (400, "invalid_grant")


async def test_expired_code(sandbox: Sandbox) -> None:
    code = await sandbox.authorize()
    sandbox.server.state.codes[code].expires_at = 0
    reply = await sandbox.token_request(code_form(code, None))
    assert (reply.status, reply.body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "auth",
    [basic_auth("sandbox-client", "wrong"), basic_auth("other", "sandbox-secret"), "Bearer x", ""],
)
async def test_client_authentication(sandbox: Sandbox, auth: str) -> None:
    code = await sandbox.authorize()
    headers = {"Authorization": auth} if auth else {}
    reply = await sandbox.request(
        "POST", "/oauth/token", data=code_form(code, None), headers=headers
    )
    assert (reply.status, reply.body["error"]) == (401, "invalid_client")
    assert reply.body["error_description"]


async def test_unsupported_grant_type(sandbox: Sandbox) -> None:
    reply = await sandbox.token_request({"grant_type": "password"})
    assert (reply.status, reply.body["error"]) == (400, "unsupported_grant_type")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"client_id": "nope"}, "invalid_client"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"login_hint": "nobody@example.com"}, "invalid_request"),
        ({"code_challenge": "abc", "code_challenge_method": "plain"}, "invalid_request"),
    ],
)
async def test_authorize_rejections(sandbox: Sandbox, params: dict[str, str], error: str) -> None:
    query = {
        "client_id": "sandbox-client",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        **params,
    }
    reply = await sandbox.request("GET", "/oauth/authorize", params=query)
    assert (400, error) == (reply.status, reply.body["error"])


async def test_login_hint_picks_user(sandbox: Sandbox) -> None:
    user = await sandbox.add_user("member@example.com")
    tokens = await sandbox.connect(login_hint="member@example.com")
    assert tokens["owner"] == user["uri"]


async def test_refresh_rotation(sandbox: Sandbox) -> None:
    first = await sandbox.connect()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = await sandbox.token_request(refresh)
    assert second.status == 200
    assert first["refresh_token"] != second.body["refresh_token"]
    assert first["access_token"] != second.body["access_token"]
    assert (first["owner"], first["organization"]) == (
        second.body["owner"],
        second.body["organization"],
    )

    reused = await sandbox.token_request(refresh)
    assert (reused.status, reused.body["error"]) == (400, "invalid_grant")

    third = await sandbox.token_request(
        {"grant_type": "refresh_token", "refresh_token": second.body["refresh_token"]}
    )
    assert third.status == 200
    me = await sandbox.api(third.body["access_token"], "/users/me")
    assert me.status == 200
    stats = await sandbox.control("GET", "/stats")
    assert stats["token_grants"] == {"authorization_code": 1, "refresh_token": 2}


async def test_eight_token_requests_per_user_per_minute(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()  # the minute's first
    for _ in range(7):
        reply = await sandbox.token_request(
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        )
        tokens = reply.body
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    ninth = await sandbox.token_request(refresh)
    limit = (ninth.headers["X-RateLimit-Limit"], ninth.headers["X-RateLimit-Remaining"])
    await sandbox.control("POST", "/faults", {"token_requests_per_minute": 8})  # a new window
    later = await sandbox.token_request(refresh)  # the refused request spent nothing
    stats = await sandbox.control("GET", "/stats")
    assert (ninth.status, ninth.body["error"], limit) == (429, "too_many_requests", ("8", "0"))
    assert int(ninth.headers["X-RateLimit-Reset"]) in range(1, 61)
    assert (later.status, stats["token_rate_limited"]) == (200, 1)


async def test_unknown_refresh_token(sandbox: Sandbox) -> None:
    reply = await sandbox.token_request({"grant_type": "refresh_token", "refresh_token": "nope"})
    assert (reply.status, reply.body["error"]) == (400, "invalid_grant")


async def test_control_revoke_refresh_tokens(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    result = await sandbox.control(
        "POST", "/oauth/revoke_refresh_tokens", {"user": "sandbox@example.com"}
    )
    assert result == {"revoked": 1}
    reply = await sandbox.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (reply.status, reply.body["error"]) == (400, "invalid_grant")


async def test_access_token_expiry(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    assert (await sandbox.api(tokens["access_token"], "/users/me")).status == 200
    result = await sandbox.control("POST", "/oauth/expire_access_tokens", {})
    assert result == {"expired": 1}
    reply = await sandbox.api(tokens["access_token"], "/users/me")
    expected = {"title": "Unauthenticated", "message": "The access token is expired"}
    assert (401, expected) == (reply.status, reply.body)
    refreshed = await sandbox.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (await sandbox.api(refreshed.body["access_token"], "/users/me")).status == 200


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(access_token_ttl_seconds=0)])
async def test_ttl_from_config(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    assert tokens["expires_in"] == 0
    reply = await sandbox.api(tokens["access_token"], "/users/me")
    assert (reply.status, reply.body["message"]) == (401, "The access token is expired")


async def test_invalid_and_missing_tokens(sandbox: Sandbox) -> None:
    expected = {"title": "Unauthenticated", "message": "The access token is invalid"}
    unknown = await sandbox.api("nope", "/users/me")
    missing = await sandbox.request("GET", "/users/me")
    assert [(401, expected), (401, expected)] == [
        (unknown.status, unknown.body),
        (missing.status, missing.body),
    ]


async def test_revoke_endpoint(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    form = {
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "token": tokens["access_token"],
    }
    reply = await sandbox.request("POST", "/oauth/revoke", data=form)
    assert (reply.status, reply.body) == (200, {})
    api = await sandbox.api(tokens["access_token"], "/users/me")
    assert (api.status, api.body["message"]) == (401, "The access token is revoked")

    form["token"] = tokens["refresh_token"]
    assert (await sandbox.request("POST", "/oauth/revoke", data=form)).status == 200
    refresh = await sandbox.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert (refresh.status, refresh.body["error"]) == (400, "invalid_grant")

    form["client_secret"] = "wrong"
    bad = await sandbox.request("POST", "/oauth/revoke", data=form)
    assert (bad.status, bad.body["error"]) == (401, "invalid_client")


def test_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALENDLY_CLIENT_ID", "cid")
    monkeypatch.setenv("CALENDLY_CLIENT_SECRET", "csecret")
    monkeypatch.delenv("CALENDLY_WEBHOOK_SIGNING_KEY", raising=False)
    expected = SandboxConfig(client_id="cid", client_secret="csecret")
    assert expected == SandboxConfig.from_env()
