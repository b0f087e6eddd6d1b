"""The Calendly client: token refresh and rotation, single flight, invalid_grant, 429, 5xx."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calendly_svc.calendly.client import CalendlyClient, RetryPolicy
from calendly_svc.calendly.errors import (
    CalendlyBadRequest,
    CalendlyNotFound,
    CalendlyOutcomeUnknown,
    CalendlyPermissionDenied,
    CalendlyRateLimited,
    CalendlyUnavailable,
    NeedsReauth,
)
from calendly_svc.calendly.ratelimit import RateLimiters
from calendly_svc.calendly.tokens import TokenManager
from calendly_svc.deps import Deps
from calendly_svc.keys import DEPS
from calendly_svc.store import queries
from tests.conftest import Api, Sandbox, free_port
from tests.helpers import book, default_event_type


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


# --- acting on Calendly: the write endpoints and their unsafe-call rules ---------------------

DAY = datetime(2030, 1, 1, tzinfo=UTC)  # a Tuesday; the sandbox user works 14:00-22:00Z


def _booking_body(event_type: str, start: datetime, email: str = "pat@example.com") -> Any:
    """A minimal Scheduling API body."""
    return {"event_type": event_type, "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "invitee": {"name": "Pat", "email": email, "timezone": "Europe/Paris"}}  # fmt: skip


async def test_write_methods_act_on_calendly(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    source, client = deps.tokens.for_integration(integration), deps.calendly
    event_type = await default_event_type(control)
    times = await client.available_times(source, event_type, DAY, DAY + timedelta(days=1))
    invitee = await client.create_invitee(source, _booking_body(event_type, DAY.replace(hour=14)))
    after = await client.available_times(source, event_type, DAY, DAY + timedelta(days=1))
    mark = await client.create_no_show(source, invitee["uri"])
    read = await client.get_no_show(source, mark["uri"])
    await client.delete_no_show(source, mark["uri"])
    unmarked = await client.get_invitee(source, invitee["uri"])
    link = await client.create_scheduling_link(source, event_type)
    canceled = await client.cancel_event(source, invitee["event"], "Double-booked")
    event = await client.get_event(source, invitee["event"])
    assert (len(times), times[0]["start_time"], len(after)) == (16, "2030-01-01T14:00:00Z", 15)
    assert (invitee["email"], read, unmarked["no_show"]) == ("pat@example.com", mark, None)
    assert (link["owner"], link["owner_type"]) == (event_type, "EventType")
    assert (canceled["reason"], canceled["canceler_type"], event["status"]) == (
        "Double-booked", "host", "canceled",
    )  # fmt: skip


async def test_write_refusals_keep_calendlys_message(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    source, client = deps.tokens.for_integration(integration), deps.calendly
    event_type = await default_event_type(control)
    made = await book(control, event_type, "2030-01-01T15:00:00Z", deliver=False)
    await client.cancel_event(source, made["event"]["uri"], None)
    with pytest.raises(CalendlyPermissionDenied) as canceled:
        await client.cancel_event(source, made["event"]["uri"], None)
    bad = _booking_body(event_type, DAY.replace(hour=3))  # outside working hours
    with pytest.raises(CalendlyBadRequest) as taken:
        await client.create_invitee(source, bad)
    with pytest.raises(CalendlyNotFound):
        await client.get_no_show(source, f"{control.url}/invitee_no_shows/unknown")
    assert (canceled.value.status, canceled.value.message) == (403, "Event is already canceled")
    assert (taken.value.status, taken.value.details) == (
        400, [{"parameter": "start_time", "message": "is not an available time"}],
    )  # fmt: skip


async def _events_at(client: CalendlyClient, source: Any, user: str) -> list[str]:
    """Start times of the user's scheduled events on DAY."""
    end = (DAY + timedelta(days=1)).isoformat()
    return [
        e["start_time"] async for e in client.scheduled_events(source, user, DAY.isoformat(), end)
    ]


async def test_a_lost_answer_raises_outcome_unknown_and_is_not_resent(
    api: Api, control: Sandbox
) -> None:
    deps, integration = await _setup(api)
    source, client = deps.tokens.for_integration(integration), deps.calendly
    event_type = await default_event_type(control)
    fault = {"path_prefix": "/invitees", "count": 1, "mode": "drop"}
    await control.call("POST", "/_sandbox/faults", {"drop_response_after_apply": fault})
    with pytest.raises(CalendlyOutcomeUnknown):
        await client.create_invitee(source, _booking_body(event_type, DAY.replace(hour=14)))
    events = await _events_at(client, source, integration.calendly_user_uri)
    assert (await control.count("POST", "/invitees"), events) == (
        1, ["2030-01-01T14:00:00.000000Z"],
    )  # fmt: skip


async def test_a_5xx_on_an_unsafe_call_is_outcome_unknown_after_one_call(
    api: Api, control: Sandbox
) -> None:
    deps, integration = await _setup(api)
    source = deps.tokens.for_integration(integration)
    client = _client(deps, RateLimiters(500), base_delay=0.01, max_retries=5)
    event_type = await default_event_type(control)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 1, "fail_status": 502})
    with pytest.raises(CalendlyOutcomeUnknown) as error:
        await client.create_invitee(source, _booking_body(event_type, DAY.replace(hour=14)))
    # the sandbox failed it before applying; the client cannot know that, so it never re-sends
    events = await _events_at(client, source, integration.calendly_user_uri)
    assert (error.value.status, await control.count("POST", "/invitees"), events) == (502, 1, [])


async def test_a_429_on_an_unsafe_call_is_raised_at_once_with_the_reset(
    api: Api, control: Sandbox
) -> None:
    deps, integration = await _setup(api)
    source, client = deps.tokens.for_integration(integration), deps.calendly
    event_type = await default_event_type(control)
    await control.call("POST", "/_sandbox/faults", {"scheduling_limits": [[1, 60]]})
    await client.create_invitee(source, _booking_body(event_type, DAY.replace(hour=14)))
    with pytest.raises(CalendlyRateLimited) as limited:
        await client.create_invitee(source, _booking_body(event_type, DAY.replace(hour=15)))
    me = await client.get_me(source)  # the user's other calls are not held back
    assert 0 < limited.value.retry_after <= 60
    assert (limited.value.status, await control.count("POST", "/invitees")) == (429, 2)
    assert me["uri"] == integration.calendly_user_uri


async def test_safe_reads_still_retry_5xx(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    source = deps.tokens.for_integration(integration)
    client = _client(deps, RateLimiters(500), base_delay=0.01, max_retries=5)
    event_type = await default_event_type(control)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 2, "fail_status": 500})
    times = await client.available_times(source, event_type, DAY, DAY + timedelta(days=1))
    assert (len(times), await control.count("GET", "/event_type_available_times")) == (16, 3)


async def test_available_times_over_20_days_take_3_calls_merged_in_order(
    api: Api, control: Sandbox
) -> None:
    deps, integration = await _setup(api)
    source, client = deps.tokens.for_integration(integration), deps.calendly
    event_type = await default_event_type(control)
    times = await client.available_times(source, event_type, DAY, DAY + timedelta(days=20))
    starts = [t["start_time"] for t in times]
    # 20 days from a Tuesday: 14 working days of 16 half-hour slots
    assert (await control.count("GET", "/event_type_available_times"), len(starts)) == (3, 14 * 16)
    assert starts == sorted(set(starts))


async def test_an_unsafe_call_refused_before_sending_is_retried(api: Api, control: Sandbox) -> None:
    deps, integration = await _setup(api)
    source = deps.tokens.for_integration(integration)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: the connection is refused
    policy = RetryPolicy(max_retries=2, base_delay=0.01)
    client = CalendlyClient(deps.calendly.session, dead, RateLimiters(500), policy)
    with pytest.raises(CalendlyUnavailable) as error:
        await client.create_invitee(source, _booking_body("x", DAY))
    # never sent, so retried like any call, and not an unknown outcome
    assert (type(error.value), client.calls) == (CalendlyUnavailable, 3)


async def test_a_timeout_on_an_unsafe_call_is_outcome_unknown_and_not_resent(
    api: Api, control: Sandbox
) -> None:
    deps, integration = await _setup(api)
    source = deps.tokens.for_integration(integration)
    policy = RetryPolicy(base_delay=0.01)
    client = CalendlyClient(deps.calendly.session, deps.calendly.api_base_url,
                            RateLimiters(500), policy, timeout=0.3)  # fmt: skip
    event_type = await default_event_type(control)
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 800})
    with pytest.raises(CalendlyOutcomeUnknown):
        await client.create_invitee(source, _booking_body(event_type, DAY.replace(hour=14)))
    await asyncio.sleep(0.8)  # past the injected latency: a re-send would have arrived
    assert (client.calls, await control.count("POST", "/invitees")) == (1, 1)
