"""A subscription's delivery health as Calendly shows it (FACTS §8, §9): `retry_started_at` set
at the first failed delivery and cleared by the next success; failures retried until the retry
horizon, then `state: disabled` and no more deliveries. Answers held to the 2023 spec's
WebhookSubscription schema."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest
from calendly_spec import CalendlySpec, load_spec
from sandbox_helpers import Receiver, Sandbox, at

from tests.helpers import shared_calendly_dir

EVENTS = ["invitee.created", "invitee.canceled"]


@pytest.fixture
def spec() -> CalendlySpec | None:
    """The 2023 spec copy, or None without the shared folder (the schema checks are skipped)."""
    shared = shared_calendly_dir()
    return None if shared is None else load_spec(shared)


async def _owner_subscription(sandbox: Sandbox, receiver: Receiver) -> tuple[str, str]:
    """(owner token, subscription URI) of a user-scope subscription to the receiver."""
    tokens = await sandbox.connect()
    body = {"url": receiver.url, "events": EVENTS, "organization": tokens["organization"],
            "scope": "user", "user": tokens["owner"]}  # fmt: skip
    created = await sandbox.api(tokens["access_token"], "/webhook_subscriptions", "POST", json=body)
    assert created.status == 201, created
    return tokens["access_token"], created.body["resource"]["uri"]


async def _seen(sandbox: Sandbox, token: str, uri: str, spec: CalendlySpec | None) -> Any:
    """GET /webhook_subscriptions/{uuid} (checked against the spec when it is at hand)."""
    reply = await sandbox.api(token, uri)
    assert reply.status == 200, reply
    resource = reply.body["resource"]
    if spec is not None:
        assert spec.errors(spec.component("WebhookSubscription"), resource) == []
    return resource


async def _until(check: Any, within: float = 10.0) -> Any:
    """Poll an async check until it returns something truthy."""
    deadline = time.monotonic() + within
    while not (result := await check()):
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)
    return result


def _moment(value: str) -> datetime:
    """A Calendly timestamp."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_retry_started_at_is_set_by_a_failure_and_cleared_by_a_success(
    sandbox: Sandbox, receiver: Receiver, spec: CalendlySpec | None
) -> None:
    token, uri = await _owner_subscription(sandbox, receiver)
    healthy = await _seen(sandbox, token, uri, spec)
    receiver.statuses = [503, 503]
    before = time.time()
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    retrying = await _seen(sandbox, token, uri, spec)
    await receiver.wait_for(3)  # the first attempt, a failed retry, a delivered retry
    recovered = await _until(lambda: _cleared(sandbox, token, uri, spec), within=10)
    started = _moment(retrying["retry_started_at"]).timestamp()
    assert [d["status"] for d in booked["deliveries"]] == [503]
    assert (healthy["state"], healthy["retry_started_at"]) == ("active", None)
    assert retrying["state"] == "active"
    assert before - 1 <= started <= time.time()
    assert (recovered["state"], recovered["retry_started_at"]) == ("active", None)
    listed = await sandbox.api(token, "/webhook_subscriptions", params={
        "organization": recovered["organization"], "scope": "user", "user": recovered["user"]
    })  # fmt: skip
    assert [(h["state"], h["retry_started_at"]) for h in listed.body["collection"]] == [
        ("active", None)
    ]


async def _cleared(
    sandbox: Sandbox, token: str, uri: str, spec: CalendlySpec | None
) -> dict[str, Any] | None:
    """The subscription once its retry_started_at is cleared."""
    resource = await _seen(sandbox, token, uri, spec)
    return resource if resource["retry_started_at"] is None else None


async def _disabled(
    sandbox: Sandbox, token: str, uri: str, spec: CalendlySpec | None
) -> dict[str, Any] | None:
    """The subscription once it is disabled."""
    resource = await _seen(sandbox, token, uri, spec)
    return resource if resource["state"] == "disabled" else None


async def test_failing_past_the_retry_horizon_disables_the_subscription(
    sandbox: Sandbox, receiver: Receiver, spec: CalendlySpec | None
) -> None:
    await sandbox.control("POST", "/faults", {"webhook_retry_horizon_seconds": 2})
    token, uri = await _owner_subscription(sandbox, receiver)
    receiver.statuses = [500] * 1000
    started = time.monotonic()
    await sandbox.book(await sandbox.default_event_type(), at(0))
    retrying = await _seen(sandbox, token, uri, spec)
    disabled = await _until(lambda: _disabled(sandbox, token, uri, spec), within=10)
    took = time.monotonic() - started
    attempts = len(receiver.received)
    later = await sandbox.book(await sandbox.default_event_type(), at(60))
    await asyncio.sleep(1.5)
    listed = (await sandbox.control("GET", "/webhook_subscriptions"))["collection"][0]
    assert (retrying["state"], disabled["state"]) == ("active", "disabled")
    assert disabled["retry_started_at"] == retrying["retry_started_at"]
    assert 1.9 <= took < 5
    assert attempts >= 3  # the first attempt and the retries up to the horizon
    assert later["deliveries"] == []
    assert len(receiver.received) == attempts
    assert (listed["deliveries_ok"], listed["deliveries_failed"]) == (0, attempts)


async def test_control_api_enables_a_disabled_subscription_for_tests(
    sandbox: Sandbox, receiver: Receiver, spec: CalendlySpec | None
) -> None:
    token, uri = await _owner_subscription(sandbox, receiver)
    uuid = uri.rsplit("/", 1)[1]
    await sandbox.control("POST", f"/webhook_subscriptions/{uuid}/disable")
    enabled = (await sandbox.control("POST", f"/webhook_subscriptions/{uuid}/enable"))["resource"]
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    seen = await _seen(sandbox, token, uri, spec)
    unknown = await sandbox.request("POST", "/_sandbox/webhook_subscriptions/NOPE/enable")
    assert (enabled["state"], enabled["retry_started_at"]) == ("active", None)
    assert [d["status"] for d in booked["deliveries"]] == [200]
    assert (seen["state"], seen["retry_started_at"]) == ("active", None)
    assert (unknown.status, unknown.body["error"]) == (404, "webhook subscription not found")


@pytest.mark.parametrize("value", [0, -1, 86_401, "soon", None])
async def test_retry_horizon_fault_rejects_bad_values(sandbox: Sandbox, value: Any) -> None:
    reply = await sandbox.request(
        "POST", "/_sandbox/faults", json={"webhook_retry_horizon_seconds": value}
    )
    faults = await sandbox.control("GET", "/faults")
    expected = 200 if value is None else 400
    assert (reply.status, faults["webhook_retry_horizon_seconds"]) == (expected, 86_400.0)
