"""Connecting a Calendly account: auth URL, single-use state, PKCE, the callbacks."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg

from calendly_svc.crypto import SecretCipher
from calendly_svc.keys import CIPHER
from tests.conftest import Api, Sandbox


async def _hooks(control: Sandbox, scope: str) -> list[dict[str, Any]]:
    """The sandbox's webhook subscriptions of one scope."""
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    return [hook for hook in hooks if hook["scope"] == scope]


def _query(url: str) -> dict[str, str]:
    """A URL's query as a flat dict."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def test_auth_url_carries_state_and_pkce(api: Api) -> None:
    status, body = await api.call("GET", "/auth-url")
    params = _query(body["auth_url"])
    assert status == 200
    assert body["auth_url"].startswith(f"{api.sandbox_url}/oauth/authorize?")
    assert params["state"] == body["state"]
    assert params["client_id"] == "sandbox-client"
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    expected_redirect = f"http://127.0.0.1:{api.client.port}/api/v1/calendly/oauth/callback"
    assert params["redirect_uri"] == expected_redirect


async def test_auth_url_refuses_unlisted_redirect(api: Api) -> None:
    allowed = "https://app.example.com/calendly/return"
    ok_status, ok = await api.call("GET", "/auth-url", params={"redirect_uri": allowed})
    status, body = await api.call("GET", "/auth-url", params={"redirect_uri": "https://evil.test/"})
    assert (ok_status, _query(ok["auth_url"])["redirect_uri"]) == (200, allowed)
    assert (status, body["error"]["code"]) == (422, "redirect_uri_not_allowed")
    assert body["error"]["details"][0]["field"] == "redirect_uri"


async def test_auth_url_rejects_unknown_query_params(api: Api) -> None:
    status, body = await api.call("GET", "/auth-url", params={"scope": "x"})
    assert (status, body["error"]["details"][0]["field"]) == (422, "scope")


async def test_round_trip_connects(api: Api, control: Sandbox) -> None:
    integration = await api.connect(user=1)
    hooks = await _hooks(control, "user")
    [org_hook] = await _hooks(control, "organization")
    assert integration["status"] == "active"
    assert integration["email"] == "sandbox@example.com"
    assert integration["calendly_user_uri"].startswith(f"{api.sandbox_url}/users/")
    assert integration["calendly_organization_uri"].startswith(f"{api.sandbox_url}/organizations/")
    assert integration["webhook_active"] is True
    assert integration["webhook_url"] == (
        f"http://127.0.0.1:{api.client.port}/api/v1/calendly/webhook"
        f"?integration={integration['public_id']}"
    )
    assert [(h["callback_url"], h["state"], h["scope"]) for h in hooks] == [
        (integration["webhook_url"], "active", "user")
    ]
    assert sorted(hooks[0]["events"]) == sorted(
        [
            "invitee.created",
            "invitee.canceled",
            "invitee_no_show.created",
            "invitee_no_show.deleted",
            "event_type.created",
            "event_type.updated",
            "event_type.deleted",
        ]
    )
    assert (org_hook["events"], org_hook["state"]) == (
        ["routing_form_submission.created"],
        "active",
    )
    assert org_hook["callback_url"] == integration["webhook_url"] + "&scope=organization"
    assert integration["routing_forms_webhook"] == "active"
    assert integration["sync_settings"] == {
        "sync_past_days": 7,
        "sync_future_days": 60,
        "auto_confirm_bookings": True,
        "create_client_if_not_exists": True,
        "default_service_id": None,
        "notification_on_booking": True,
    }


async def test_status_after_connect(api: Api) -> None:
    await api.connect(user=1)
    status, body = await api.call("GET", "/status")
    assert status == 200
    assert body["connected"] is True
    assert body["status"] == "active"
    assert body["webhook_active"] is True
    assert body["scheduling_url"].startswith(api.sandbox_url + "/")
    # connecting ran an initial sync
    assert body["last_sync_at"] is not None
    assert body["last_sync_status"] == "succeeded"


async def test_state_is_single_use(api: Api) -> None:
    code, state = await api.authorize(user=1)
    first, _ = await api.call("POST", "/oauth-callback", 1, json={"code": code, "state": state})
    status, body = await api.call("POST", "/oauth-callback", 1, json={"code": code, "state": state})
    assert first == 200
    assert (status, body["error"]["code"]) == (400, "invalid_state")


async def test_state_of_another_user_is_refused_and_kept(api: Api) -> None:
    code, state = await api.authorize(user=1)
    status, body = await api.call("POST", "/oauth-callback", 2, json={"code": code, "state": state})
    owner, _ = await api.call("POST", "/oauth-callback", 1, json={"code": code, "state": state})
    assert (status, body["error"]["code"]) == (400, "invalid_state")
    assert owner == 200


async def test_unknown_and_expired_state(api: Api, database_url: str) -> None:
    code, state = await api.authorize(user=1)
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
    await conn.close()
    expired, body = await api.call(
        "POST", "/oauth-callback", 1, json={"code": code, "state": state}
    )
    unknown, other = await api.call("POST", "/oauth-callback", 1, json={"code": code, "state": "x"})
    assert (expired, body["error"]["code"]) == (400, "invalid_state")
    assert (unknown, other["error"]["code"]) == (400, "invalid_state")


async def test_callback_body_validation(api: Api) -> None:
    bad_json, b1 = await api.call("POST", "/oauth-callback", data=b"{nope")
    missing, b2 = await api.call("POST", "/oauth-callback", json={"code": "x"})
    wrong_type, b3 = await api.call("POST", "/oauth-callback", json={"code": 1, "state": "s"})
    not_object, b4 = await api.call("POST", "/oauth-callback", json=["code"])
    assert (bad_json, b1["error"]["code"]) == (400, "invalid_json")
    assert (missing, b2["error"]["details"][0]["field"]) == (422, "state")
    assert (wrong_type, b3["error"]["details"][0]["field"]) == (422, "code")
    assert (not_object, b4["error"]["code"]) == (400, "invalid_json")


async def test_code_calendly_refuses_is_400_invalid_code(api: Api) -> None:
    _, state = await api.authorize(user=1)
    status, body = await api.call(
        "POST", "/oauth-callback", 1, json={"code": "forged", "state": state}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_code")
    assert body["error"]["message"].startswith("Calendly refused the authorization code")


async def test_calendly_outage_during_connect_is_502(api: Api, control: Sandbox) -> None:
    code, state = await api.authorize(user=1)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 50, "fail_status": 503})
    status, body = await api.call("POST", "/oauth-callback", 1, json={"code": code, "state": state})
    after, current = await api.call("GET", "/status")
    assert (status, body["error"]["code"]) == (502, "calendly_error")
    assert (after, current["connected"]) == (200, False)


async def test_reconnect_updates_the_same_integration(api: Api, control: Sandbox) -> None:
    first = await api.connect(user=1)
    second = await api.connect(user=1)
    hooks = await _hooks(control, "user")
    assert (second["id"], second["public_id"]) == (first["id"], first["public_id"])
    assert second["webhook_uri"] != first["webhook_uri"]
    assert [h["uri"] for h in hooks] == [second["webhook_uri"]]
    assert len(await _hooks(control, "organization")) == 1


async def test_reconnect_after_lost_subscription_uri_replaces_on_409(
    api: Api, control: Sandbox, database_url: str
) -> None:
    first = await api.connect(user=1)
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE integrations SET webhook_uri = NULL")
    await conn.close()
    second = await api.connect(user=1)
    hooks = await _hooks(control, "user")
    assert second["webhook_active"] is True
    assert [h["uri"] for h in hooks] == [second["webhook_uri"]]
    assert first["webhook_uri"] != second["webhook_uri"]


async def test_one_calendly_account_per_user(api: Api, control: Sandbox) -> None:
    await api.connect(user=1)
    code, state = await api.authorize(user=2)
    revoked_before = (await control.call("GET", "/_sandbox/stats"))["tokens_revoked"]
    status, body = await api.call("POST", "/oauth-callback", 2, json={"code": code, "state": state})
    revoked = (await control.call("GET", "/_sandbox/stats"))["tokens_revoked"] - revoked_before
    types_status, _ = await api.call("POST", "/event-types/refresh", 1)
    assert (status, body["error"]["code"]) == (409, "calendly_account_in_use")
    # the tokens user 2's attempt obtained are revoked; user 1's integration keeps working
    assert (revoked, types_status) == (2, 200)


async def test_another_sandbox_user_connects_separately(api: Api, control: Sandbox) -> None:
    await control.call("POST", "/_sandbox/users", {"email": "pro@example.com", "name": "Pro"})
    first = await api.connect(user=1)
    second = await api.connect(user=2, email="pro@example.com")
    _, status = await api.call("GET", "/status", user=2)
    assert (first["email"], second["email"]) == ("sandbox@example.com", "pro@example.com")
    assert first["calendly_user_uri"] != second["calendly_user_uri"]
    # a plain member may not subscribe at organization scope: routing forms stay unavailable
    assert (first["routing_forms_webhook"], second["routing_forms_webhook"]) == (
        "active",
        "not_permitted",
    )
    assert status["routing_forms_webhook"] == "not_permitted"


async def _browser_get(url: str) -> aiohttp.ClientResponse:
    """Follow the sandbox's authorize redirect into the service, as a browser would (the body
    is read, so .json() still works after the session closed)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url, allow_redirects=False) as authorize:
            location = authorize.headers["Location"]
        async with session.get(location, allow_redirects=False) as resp:
            await resp.read()
            return resp


async def _grants(control: Sandbox) -> dict[str, int]:
    """The sandbox's token grants so far, by grant type."""
    grants: dict[str, int] = (await control.call("GET", "/_sandbox/stats"))["token_grants"]
    return grants


async def test_an_auth_link_approved_by_someone_else_connects_nobody(
    api: Api, control: Sandbox
) -> None:
    await control.call("POST", "/_sandbox/users", {"email": "victim@example.com", "name": "V"})
    # user 1 makes an auth link and sends it to V, who approves it with their own account
    _, start = await api.call("GET", "/auth-url", 1)
    resp = await _browser_get(start["auth_url"] + "&login_hint=victim@example.com")
    forwarded = await resp.json()
    grants = await _grants(control)
    # V's browser reaches the main app's page, which completes the flow as V (user 2)
    status, body = await api.call(
        "POST", "/oauth-callback", 2, json={"code": forwarded["code"], "state": forwarded["state"]}
    )
    exchanged = (await _grants(control))["authorization_code"] - grants["authorization_code"]
    _, attacker = await api.call("GET", "/status", 1)
    victim = await api.connect(2, "victim@example.com")
    assert (resp.status, forwarded["status"], forwarded["state"]) == (
        200,
        "authorized",
        start["state"],
    )
    assert (status, body["error"]["code"]) == (400, "invalid_state")
    assert exchanged == 0  # the refused state's code was never exchanged
    assert attacker["connected"] is False
    assert (victim["status"], victim["email"]) == ("active", "victim@example.com")


async def test_browser_callback_forwards_code_and_state_to_the_main_app(
    start_service: Any, control: Sandbox
) -> None:
    api = await start_service(oauth_complete_url="https://app.example.com/calendly/done?tab=cal")
    _, start = await api.call("GET", "/auth-url", 5)
    grants = await _grants(control)
    resp = await _browser_get(start["auth_url"])
    denied = await api.client.get(
        "/api/v1/calendly/oauth/callback?error=access_denied&state=s1", allow_redirects=False
    )
    browser_grants = await _grants(control)
    _, before = await api.call("GET", "/status", 5)
    forwarded = _query(resp.headers["Location"])
    status, integration = await api.call(
        "POST", "/oauth-callback", 5, json={"code": forwarded["code"], "state": forwarded["state"]}
    )
    assert resp.status == 302
    assert resp.headers["Location"].startswith("https://app.example.com/calendly/done?tab=cal&")
    assert (forwarded["tab"], forwarded["state"], len(forwarded["code"]) > 20) == (
        "cal",
        start["state"],
        True,
    )
    assert (resp.headers["Cache-Control"], resp.headers["Referrer-Policy"]) == (
        "no-store",
        "no-referrer",
    )
    assert (denied.status, denied.headers["Location"]) == (
        302,
        "https://app.example.com/calendly/done?tab=cal&state=s1&error=access_denied",
    )
    assert browser_grants == grants  # the browser's leg exchanges nothing
    assert before["connected"] is False
    assert (status, integration["status"]) == (200, "active")


async def test_deprecated_success_redirect_url_receives_code_and_state(
    start_service: Any,
) -> None:
    api = await start_service(oauth_success_redirect_url="https://app.example.com/settings")
    _, start = await api.call("GET", "/auth-url", 5)
    resp = await _browser_get(start["auth_url"])
    _, current = await api.call("GET", "/status", 5)
    assert resp.status == 302
    assert _query(resp.headers["Location"])["state"] == start["state"]
    assert current["connected"] is False


async def test_browser_callback_without_frontend_answers_json(api: Api) -> None:
    _, body = await api.call("GET", "/auth-url", 5)
    resp = await _browser_get(body["auth_url"])
    forwarded = await resp.json()
    denied = await api.client.get("/api/v1/calendly/oauth/callback?error=access_denied&state=x")
    denied_body = await denied.json()
    _, current = await api.call("GET", "/status", 5)
    assert (resp.status, forwarded["status"], forwarded["state"]) == (
        200,
        "authorized",
        body["state"],
    )
    assert current["connected"] is False
    assert (denied.status, denied_body["error"]["code"]) == (400, "authorization_failed")


async def test_no_plaintext_secret_is_stored(api: Api, database_url: str) -> None:
    await api.connect(user=1)
    await api.call("GET", "/auth-url", 1)
    cipher: SecretCipher = api.client.server.app[CIPHER]
    conn = await asyncpg.connect(database_url)
    row = await conn.fetchrow("SELECT * FROM integrations")
    dump = " ".join(
        [str(r) for r in await conn.fetch("SELECT row_to_json(i)::text FROM integrations i")]
        + [str(r) for r in await conn.fetch("SELECT row_to_json(s)::text FROM oauth_states s")]
    )
    states = await conn.fetch("SELECT code_verifier_enc FROM oauth_states")
    await conn.close()
    secrets = [
        cipher.decrypt(row["access_token_enc"]),
        cipher.decrypt(row["refresh_token_enc"]),
        cipher.decrypt(row["webhook_signing_key_enc"]),
        *[cipher.decrypt(s["code_verifier_enc"]) for s in states],
    ]
    assert all(len(secret) >= 20 for secret in secrets)
    for secret in secrets:
        assert secret not in dump
        assert secret.encode().hex() not in dump
        assert base64.b64encode(secret.encode()).decode() not in dump


async def _refresh_with(control: Sandbox, refresh_token: str) -> tuple[int, Any]:
    """A refresh at the sandbox's token endpoint with this refresh token."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    auth = "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()
    async with control.session.post(
        f"{control.url}/oauth/token", data=form, headers={"Authorization": auth}
    ) as resp:
        return resp.status, await resp.json()


async def test_reconnecting_with_another_account_releases_the_old_one(
    api: Api, control: Sandbox, database_url: str
) -> None:
    await control.call(
        "POST", "/_sandbox/users", {"email": "y@example.com", "name": "Y", "new_organization": True}
    )
    first = await api.connect(1)  # Calendly user X (owner of the default organization)
    cipher: SecretCipher = api.client.server.app[CIPHER]
    conn = await asyncpg.connect(database_url)
    old_refresh = cipher.decrypt(
        await conn.fetchval("SELECT refresh_token_enc FROM integrations WHERE user_id = 1")
    )
    await conn.close()
    second = await api.connect(1, "y@example.com")  # the same main-app user, as Calendly user Y
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    refreshed, refusal = await _refresh_with(control, old_refresh)
    assert (second["id"], second["email"]) == (first["id"], "y@example.com")
    assert first["webhook_uri"] not in [h["uri"] for h in hooks]
    assert sorted((h["scope"], h["organization"], h["state"]) for h in hooks) == [
        ("organization", second["calendly_organization_uri"], "active"),
        ("user", second["calendly_organization_uri"], "active"),
    ]
    assert [h["uri"] for h in hooks if h["scope"] == "user"] == [second["webhook_uri"]]
    assert (refreshed, refusal["error"]) == (400, "invalid_grant")
