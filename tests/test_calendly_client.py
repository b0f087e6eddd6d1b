"""The Calendly client: token refresh and rotation, single flight, invalid_grant, 429, 5xx."""

from __future__ import annotations

import asyncio

import pytest

from calendly_svc.calendly.client import CalendlyClient, RetryPolicy
from calendly_svc.calendly.errors import CalendlyUnavailable, NeedsReauth
from calendly_svc.calendly.ratelimit import RateLimiters
from calendly_svc.calendly.tokens import TokenManager
from calendly_svc.deps import Deps
from calendly_svc.keys import DEPS
from calendly_svc.store import queries
from tests.conftest import Api, Sandbox


async def _setup(api: Api) -> tuple[Deps, queries.Integration]:
    """Connect user 1 and return the app's deps and the stored integration."""
    await api.connect()
    deps = api.client.server.app[DEPS]
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, 1)
    assert integration is not None
    return deps, integration


async def _grants(control: Sandbox) -> int:
    """Refresh-token grants the sandbox has served."""
    return int((await control.call("GET", "/_sandbox/stats"))["token_grants"]["refresh_token"])


async def _stored(deps: Deps) -> queries.Integration:
    """The integration as stored now."""
    async with deps.pool.acquire() as conn:
        row = await queries.get_integration_by_user(conn, 1)
    assert row is not None
    return row


async def test_expired_access_token_is_refreshed_and_rotated(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    before = await _grants(control)
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    me = await deps.calendly.get_me(deps.tokens.for_integration(integration))
    after = await _stored(deps)
    assert me["email"] == "sandbox@example.com"
    assert await _grants(control) - before == 1
    assert deps.cipher.decrypt(after.refresh_token_enc) != deps.cipher.decrypt(  # type: ignore[arg-type]
        integration.refresh_token_enc  # type: ignore[arg-type]
    )
    assert after.token_expires_at > integration.token_expires_at  # type: ignore[operator]


async def test_token_expiring_within_margin_is_refreshed_first(
    api: Api, control: Sandbox, database_url: str
) -> None:
    deps, integration = await _setup(api)
    async with deps.pool.acquire() as conn:
        await conn.execute(
            "UPDATE integrations SET token_expires_at = now() + interval '4 minutes'"
        )
    before_calls = await control.count("GET", "/users/me")
    before = await _grants(control)
    await deps.calendly.get_me(deps.tokens.for_integration(integration))
    assert await _grants(control) - before == 1
    assert await control.count("GET", "/users/me") - before_calls == 1


async def test_concurrent_refreshes_exchange_once(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    before = await _grants(control)
    # a second manager stands in for another replica sharing the database
    other = TokenManager(deps.pool, deps.cipher, deps.oauth, 300)
    sources = [deps.tokens.for_integration(integration), other.for_integration(integration)] * 5
    results = await asyncio.gather(*(deps.calendly.get_me(s) for s in sources))
    assert [r["email"] for r in results] == ["sandbox@example.com"] * 10
    assert await _grants(control) - before == 1
    assert (await _stored(deps)).status == "active"


async def test_invalid_grant_marks_needs_reauth(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {})
    with pytest.raises(NeedsReauth):
        await deps.calendly.get_me(deps.tokens.for_integration(integration))
    stored = await _stored(deps)
    status, body = await api.call("GET", "/status")
    refresh, error = await api.call("POST", "/event-types/refresh")
    assert (stored.status, stored.access_token_enc, stored.refresh_token_enc) == (
        "needs_reauth",
        None,
        None,
    )
    assert (status, body["status"], body["connected"]) == (200, "needs_reauth", True)
    assert (refresh, error["error"]["code"]) == (409, "needs_reauth")


async def test_a_refresh_over_the_token_limit_is_retryable_and_spends_nothing(
    api: Api, control: Sandbox
) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/faults", {"token_requests_per_minute": 1})
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await deps.calendly.get_me(deps.tokens.for_integration(integration))  # the minute's one
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    refused, error = await api.call("POST", "/event-types/refresh")
    stored = await _stored(deps)
    await control.call("POST", "/_sandbox/faults", {"token_requests_per_minute": 8})
    retried, _ = await api.call("POST", "/event-types/refresh")
    stats = await control.call("GET", "/_sandbox/stats")
    # a 429 from the token endpoint is an outage, not a dead grant: the stored refresh token
    # was not spent, and the next attempt refreshes with it
    assert (refused, error["error"]["code"], error["error"]["details"], stored.status) == (
        502,
        "calendly_error",
        {"status": 429},
        "active",
    )
    assert (retried, stats["token_rate_limited"]) == (200, 1)


async def test_reconnect_clears_needs_reauth(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {})
    with pytest.raises(NeedsReauth):
        await deps.calendly.get_me(deps.tokens.for_integration(integration))
    reconnected = await api.connect()
    assert (reconnected["status"], reconnected["status_reason"]) == ("active", None)


def _client(deps: Deps, limiters: RateLimiters, **retry: float) -> CalendlyClient:
    """A client on the app's session with its own limiter and retry policy."""
    session = deps.calendly.session
    return CalendlyClient(session, deps.calendly.api_base_url, limiters, RetryPolicy(**retry))


async def test_429_waits_for_reset_and_completes(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    await control.call(
        "POST", "/_sandbox/faults", {"rate_limit_per_minute": 3, "rate_limit_window_seconds": 1}
    )
    # all nine start before any limit is known, so the sandbox must answer 429s
    client = _client(deps, RateLimiters(1000, window_seconds=1), base_delay=0.01)
    source = deps.tokens.for_integration(integration)
    results = await asyncio.gather(*(client.get_me(source) for _ in range(9)))
    stats = await control.call("GET", "/_sandbox/stats")
    assert len(results) == 9
    assert stats["rate_limited"] >= 1
    assert client.rate_limited_waits == stats["rate_limited"]


async def test_limiter_adopts_reported_limit(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/faults", {"rate_limit_per_minute": 50})
    limiters = RateLimiters(500)
    client = _client(deps, limiters)
    await client.get_me(deps.tokens.for_integration(integration))
    assert limiters.limit_of(integration.calendly_user_uri) == 50


async def test_5xx_burst_is_retried(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 3, "fail_status": 502})
    client = _client(deps, RateLimiters(500), base_delay=0.01, max_retries=5)
    me = await client.get_me(deps.tokens.for_integration(integration))
    assert me["email"] == "sandbox@example.com"
    assert await control.count("GET", "/users/me") >= 4


async def test_persistent_5xx_gives_up(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 10, "fail_status": 500})
    client = _client(deps, RateLimiters(500), base_delay=0.01, max_retries=2)
    with pytest.raises(CalendlyUnavailable) as error:
        await client.get_me(deps.tokens.for_integration(integration))
    assert error.value.status == 500


async def test_pagination_follows_next_page(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    for n in range(230):
        body = {"user": integration.calendly_user_uri, "name": f"E{n}", "duration": 15}
        await control.call("POST", "/_sandbox/event_types", body)
    source = deps.tokens.for_integration(integration)
    before = await control.count("GET", "/event_types")
    items = [i async for i in deps.calendly.event_types(source, integration.calendly_user_uri)]
    assert len(items) == 231
    assert len({i["uri"] for i in items}) == 231
    assert await control.count("GET", "/event_types") - before == 3


async def test_next_page_must_stay_on_the_api_host(api: Api) -> None:
    deps, integration = await _setup(api)
    source = deps.tokens.for_integration(integration)
    from calendly_svc.calendly.errors import CalendlyError

    with pytest.raises(CalendlyError):
        await deps.calendly.request(source, "GET", "https://evil.example/users/me")


async def test_no_secret_is_logged(
    api: Api, control: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    deps, integration = await _setup(api)
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await deps.calendly.get_me(deps.tokens.for_integration(integration))
    stored = await _stored(deps)
    out, err = capfd.readouterr()
    secrets = [
        deps.cipher.decrypt(stored.access_token_enc),
        deps.cipher.decrypt(stored.refresh_token_enc),
    ]  # type: ignore[arg-type]
    assert "calendly_token_refreshed" in err
    assert all(secret not in out + err for secret in secrets)
