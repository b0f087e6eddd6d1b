"""Token endpoint faults: outages, invalid_grant as 400 or 401, and refresh answers lost after
Calendly rotated the tokens."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from calendly_svc.keys import DEPS
from calendly_svc.store import queries
from tests.conftest import Api, Sandbox


async def _stored(api: Api) -> queries.Integration:
    """User 1's integration as stored now."""
    async with api.client.server.app[DEPS].pool.acquire() as conn:
        row = await queries.get_integration_by_user(conn, 1)
    assert row is not None
    return row


async def _metric(api: Api, name: str, **labels: str) -> float:
    """One sample of GET /metrics (0 when absent)."""
    text = await (await api.client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def _needs_refresh(control: Sandbox, **faults: Any) -> None:
    """Expire every access token (the next call refreshes) and set token faults."""
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await control.call("POST", "/_sandbox/faults", faults)


@pytest.mark.parametrize("status", [400, 401])
async def test_invalid_grant_as_400_or_401_needs_reauth(
    api: Api, control: Sandbox, status: int
) -> None:
    await api.connect()
    await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {})
    await _needs_refresh(control, invalid_grant_status=status)
    refresh, error = await api.call("POST", "/event-types/refresh")
    _, body = await api.call("GET", "/status")
    stored = await _stored(api)
    assert (refresh, error["error"]["code"], body["status"]) == (
        409,
        "needs_reauth",
        "needs_reauth",
    )
    assert stored.status_reason == "refresh failed: The refresh token has been revoked"
    assert await _metric(api, "calendly_svc_token_refresh_lost_total") == 0


async def test_token_endpoint_outage_is_retryable_and_spends_nothing(
    api: Api, control: Sandbox
) -> None:
    await api.connect()
    await _needs_refresh(control, fail_next=1, fail_status=503, fail_target="token")
    failed, error = await api.call("POST", "/event-types/refresh")
    during = await _stored(api)
    retried, _ = await api.call("POST", "/event-types/refresh")
    after = await _stored(api)
    assert (failed, error["error"]["code"], error["error"]["details"]) == (
        502,
        "calendly_error",
        {"status": 503},
    )
    assert (during.status, during.refresh_unanswered_at is not None) == ("active", True)
    # nothing rotated: the next refresh with the same token works and clears the mark
    assert (retried, after.status, after.refresh_unanswered_at) == (200, "active", None)
    assert await _metric(api, "calendly_svc_token_refresh_lost_total") == 0


@pytest.mark.parametrize("lost_as", ["error", "drop"])
async def test_lost_refresh_answer_ends_needs_reauth_and_is_counted(
    api: Api, control: Sandbox, lost_as: str
) -> None:
    await api.connect()
    await _needs_refresh(control, refresh_answers_lost=1, lost_answer_as=lost_as)
    failed, error = await api.call("POST", "/event-types/refresh")
    # the refresh is not re-sent blind: the call fails, the next one tries the stored token
    grants = (await control.call("GET", "/_sandbox/stats"))["token_grants"]["refresh_token"]
    again, reauth = await api.call("POST", "/event-types/refresh")
    stored = await _stored(api)
    assert (failed, error["error"]["code"], grants) == (502, "calendly_error", 1)
    assert (again, reauth["error"]["code"], stored.status) == (409, "needs_reauth", "needs_reauth")
    assert stored.status_reason == (
        "refresh failed: The refresh token has already been used (the previous refresh got no "
        "answer: its new tokens were most likely lost)"
    )
    assert await _metric(api, "calendly_svc_token_refresh_lost_total") == 1
    assert (
        await _metric(api, "calendly_svc_calendly_token_refreshes_total", outcome="unanswered") == 1
    )
