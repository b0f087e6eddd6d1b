"""Issue 19: a failing webhook subscription is seen before Calendly disables it.

The sandbox delivers through a relay in front of the service: while the relay answers 503 the
deliveries fail, Calendly (the sandbox) retries them and sets `retry_started_at`, and past the
(shortened) retry horizon disables the subscription. The service's periodic health check reads
it: `webhook_retrying_since` in /status and /integration, gauges in /metrics, and a disabled
subscription recreated with a gap sync from where the failure began."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from calendly_svc.integrations.webhook_health import check_due
from calendly_svc.keys import DEPS
from calendly_svc.store import queries
from tests.conftest import Api, Sandbox, free_port
from tests.helpers import appointments, book, default_event_type, eventually


class Relay:
    """The service's public address: forwards every request to the service, or answers 503
    while `failing` (a broken load balancer in front of the webhook endpoint)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.failing = False
        self.refused = 0
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward the request as it came (body, headers, query), or fail it."""
        if self.failing:
            self.refused += 1
            return web.Response(status=503)
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with self.session.request(
            request.method, self.target + request.path_qs, data=await request.read(),
            headers=headers, allow_redirects=False,
        ) as resp:  # fmt: skip
            body = await resp.read()
            kept = {k: v for k, v in resp.headers.items() if k.lower() == "content-type"}
            return web.Response(status=resp.status, body=body, headers=kept)


@pytest.fixture
async def relay(service_port: int) -> AsyncIterator[tuple[Relay, str]]:
    """A relay to the service's port, on a port of its own; and its URL."""
    state = Relay(f"http://127.0.0.1:{service_port}")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as session:
        state.session = session
        yield state, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def _service(start_service: Any, relay_url: str, **overrides: Any) -> Api:
    """The service behind the relay, checking subscriptions every half second."""
    settings: dict[str, Any] = {
        "backend_url": relay_url, "webhook_health_interval_seconds": 0.5,
        "sync_schedule_check_seconds": 0.1, "probe_cache_seconds": 0, **overrides,
    }  # fmt: skip
    return await start_service(**settings)  # type: ignore[no-any-return]


def _time(value: str | None) -> datetime | None:
    """An ISO timestamp (Calendly's trailing Z included)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


async def _retrying_since(api: Api) -> tuple[datetime | None, datetime | None]:
    """webhook_retrying_since of /status and of /integration."""
    _, status = await api.call("GET", "/status")
    _, integration = await api.call("GET", "/integration")
    return _time(status["webhook_retrying_since"]), _time(integration["webhook_retrying_since"])


async def _sandbox_hook(control: Sandbox, uri: str) -> dict[str, Any]:
    """The sandbox's record of one subscription."""
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    return next(h for h in hooks if h["uri"] == uri)


GAUGE = re.compile(r"^(calendly_svc_webhook_\w+)(?:\{(\w+)=\"(\w+)\"\})? (\S+)$", re.M)


async def _gauges(api: Api) -> dict[str, float]:
    """The webhook health series of a /metrics scrape, by name and label value."""
    text = await (await api.client.get("/metrics")).text()
    return {
        f"{name}:{value}" if label else name: float(number)
        for name, label, value, number in GAUGE.findall(text)
        if not name.endswith("_created")
    }


def _future(days: int = 2, minutes: int = 0) -> str:
    """A start time in the future (whole minutes)."""
    moment = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days, minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_retrying_subscription_shows_and_clears(
    start_service: Any, control: Sandbox, relay: tuple[Relay, str]
) -> None:
    proxy, url = relay
    api = await _service(start_service, url)
    integration = await api.connect()
    healthy = await eventually(lambda: _checked(api, "active"), within=10)
    before = await _retrying_since(api)
    proxy.failing = True
    booked = await book(control, await default_event_type(control), _future())
    started = _time((await _sandbox_hook(control, integration["webhook_uri"]))["retry_started_at"])
    seen = await eventually(lambda: _seen_retrying(api), within=10)
    retrying_gauges = await _gauges(api)
    proxy.failing = False  # the sandbox's next retry (1 s, 2 s, ... apart) is delivered
    cleared = await eventually(lambda: _cleared(api), within=20)
    healthy_gauges = await _gauges(api)
    listed = await eventually(lambda: appointments(api), within=10)
    assert healthy["state"] == "active"
    assert before == (None, None)
    assert [d["status"] for d in booked["deliveries"]] == [503]
    assert started is not None
    assert seen == (started, started)
    assert {k: v for k, v in retrying_gauges.items() if k != AGE} == {
        "calendly_svc_webhook_subscriptions:active": 0.0,
        "calendly_svc_webhook_subscriptions:retrying": 1.0,
        "calendly_svc_webhook_subscriptions:disabled": 0.0,
        "calendly_svc_webhook_subscriptions:missing": 0.0,
        "calendly_svc_webhook_subscriptions_recreated_total:disabled": 0.0,
        "calendly_svc_webhook_subscriptions_recreated_total:missing": 0.0,
        "calendly_svc_webhook_subscriptions_recreated_total:absent": 0.0,
    }
    assert 0 < retrying_gauges[AGE] < 30
    assert cleared == (None, None)
    assert healthy_gauges["calendly_svc_webhook_subscriptions:active"] == 1.0
    assert healthy_gauges["calendly_svc_webhook_subscriptions:retrying"] == 0.0
    assert healthy_gauges[AGE] == 0.0
    assert [a["calendly_invitee_uri"] for a in listed] == [booked["invitees"][0]["uri"]]


AGE = "calendly_svc_webhook_retrying_age_seconds"


async def _checked(api: Api, state: str) -> dict[str, Any] | None:
    """The integration's health row once a check recorded `state`."""
    async with api.client.server.app[DEPS].pool.acquire() as conn:
        health = await conn.fetchrow("SELECT state, note FROM webhook_health")
    return dict(health) if health is not None and health["state"] == state else None


async def _seen_retrying(api: Api) -> tuple[datetime | None, datetime | None] | None:
    """(status, integration) retrying_since once both show it."""
    since = await _retrying_since(api)
    return since if None not in since else None


async def _cleared(api: Api) -> tuple[None, None] | None:
    """(None, None) once a check saw the subscription delivering again."""
    since = await _retrying_since(api)
    return (None, None) if since == (None, None) else None


async def _gap_log(api: Api) -> dict[str, Any] | None:
    """The first finished gap sync log."""
    _, logs = await api.call("GET", "/sync-logs")
    done = [e for e in logs["items"] if e["trigger"] == "gap" and e["status"] != "running"]
    return done[0] if done else None


async def test_disabled_subscription_is_recreated_and_a_gap_sync_repairs_the_gap(
    start_service: Any, control: Sandbox, relay: tuple[Relay, str]
) -> None:
    proxy, url = relay
    api = await _service(start_service, url)
    integration = await api.connect()
    await eventually(lambda: _checked(api, "active"), within=10)
    await control.call("POST", "/_sandbox/faults", {"webhook_retry_horizon_seconds": 3})
    proxy.failing = True
    lost = await book(control, await default_event_type(control), _future())
    since, _ = await eventually(lambda: _seen_retrying(api), within=10) or (None, None)
    # the relay fails until the end: only the horizon ends the retries (disabled, recreated)
    log = await eventually(lambda: _gap_log(api), within=30)
    _, after = await api.call("GET", "/integration")
    listed = await appointments(api)
    gauges = await _gauges(api)
    hooks = (await control.call("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    assert since is not None
    assert log is not None
    assert (log["status"], log["repaired"]) == ("succeeded", 1)
    assert _time(log["window_start"]) == since
    assert log["notes"] == [
        f"webhook subscription disabled since {since:%Y-%m-%dT%H:%M:%SZ}: recreated"
    ]
    assert after["webhook_uri"] != integration["webhook_uri"]
    assert after["webhook_retrying_since"] is None
    assert [(h["uri"], h["state"]) for h in hooks if h["scope"] == "user"] == [
        (after["webhook_uri"], "active")
    ]
    assert [a["calendly_invitee_uri"] for a in listed] == [lost["invitees"][0]["uri"]]
    assert gauges["calendly_svc_webhook_subscriptions_recreated_total:disabled"] == 1.0
    assert gauges["calendly_svc_webhook_subscriptions:active"] == 1.0


async def _force_due(database_url: str) -> None:
    """Make every integration's subscription check due now."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE webhook_health SET next_check_at = now() - interval '1 second'")
    finally:
        await conn.close()


async def test_replicas_check_a_due_subscription_once(
    start_service: Any, control: Sandbox, relay: tuple[Relay, str], database_url: str
) -> None:
    _, url = relay
    api = await _service(start_service, url, webhook_health_interval_seconds=3600)
    await api.connect()
    deps = api.client.server.app[DEPS]
    counts = [await control.count("GET", "/webhook_subscriptions/{uuid}")]
    checked: list[int] = []
    for force in (_force_due_new, _force_due):  # the first check (a new row), then a later one
        await force(database_url)
        # six replicas at once, besides the service's own scheduler
        checked += await asyncio.gather(*(check_due(deps) for _ in range(6)))
        await eventually(lambda: _checked(api, "active"), within=5)
        await asyncio.sleep(0.3)
        counts.append(await control.count("GET", "/webhook_subscriptions/{uuid}"))
    assert [b - a for a, b in itertools.pairwise(counts)] == [1, 1]
    assert sum(checked) <= 2


async def test_a_revoked_grant_ends_in_needs_reauth(
    start_service: Any, control: Sandbox, relay: tuple[Relay, str], database_url: str
) -> None:
    _, url = relay
    api = await _service(start_service, url)
    await api.connect()
    await eventually(lambda: _checked(api, "active"), within=10)
    await control.call("POST", "/_sandbox/oauth/revoke_refresh_tokens", {})
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await _force_due(database_url)
    status = await eventually(lambda: _status_is(api, "needs_reauth"), within=10)
    health = await eventually(lambda: _checked(api, "active"), within=1)
    assert status["status"] == "needs_reauth"
    assert health is not None
    assert health["note"].startswith("webhook subscription not checked: needs_reauth")


async def _status_is(api: Api, value: str) -> dict[str, Any] | None:
    """GET /status once its status is `value`."""
    _, status = await api.call("GET", "/status")
    return status if status["status"] == value else None  # type: ignore[no-any-return]


async def test_calendly_failing_leaves_the_check_for_the_next_round(
    start_service: Any, control: Sandbox, relay: tuple[Relay, str], database_url: str
) -> None:
    _, url = relay
    api = await _service(start_service, url, webhook_health_interval_seconds=3600)
    await api.connect()
    await _force_due_new(database_url)
    await control.call("POST", "/_sandbox/faults", {"fail_next": 50, "fail_status": 503})
    noted = await eventually(lambda: _noted(api), within=15)
    await control.call("DELETE", "/_sandbox/faults")
    _, status = await api.call("GET", "/status")
    assert noted["state"] is None
    assert noted["note"].startswith("webhook subscription not checked: ")
    assert noted["note"].endswith("; next round")
    assert (status["status"], status["webhook_retrying_since"]) == ("active", None)


async def _force_due_new(database_url: str) -> None:
    """A just-connected integration's first check, due now."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE integrations SET connected_at = now() - interval '2 hours'")
    finally:
        await conn.close()


async def _noted(api: Api) -> dict[str, Any] | None:
    """The health row once a check left a note."""
    async with api.client.server.app[DEPS].pool.acquire() as conn:
        health = await conn.fetchrow("SELECT state, note FROM webhook_health")
    return dict(health) if health is not None and health["note"] else None


async def test_one_pending_gap_sync_per_integration(api: Api) -> None:
    integration = await api.connect()
    deps = api.client.server.app[DEPS]
    now = datetime.now(UTC)
    # one transaction: the service's scheduler never sees these rows before they are checked
    async with deps.pool.acquire() as conn, conn.transaction():
        iid = await conn.fetchval("SELECT id FROM integrations")
        await conn.execute(
            "INSERT INTO sync_jobs (integration_id, trigger, status)"
            " VALUES ($1, 'manual', 'running')",
            iid,
        )
        first = await queries.request_gap_sync(conn, iid, now - timedelta(hours=1), "later")
        second = await queries.request_gap_sync(conn, iid, now - timedelta(hours=3), "earlier")
        third = await queries.request_gap_sync(conn, iid, now - timedelta(hours=2), "between")
        blocked = await queries.enqueue_gap_syncs(conn, None, 10)
        await conn.execute("UPDATE sync_jobs SET status = 'succeeded' WHERE status = 'running'")
        queued = await queries.enqueue_gap_syncs(conn, None, 10)
        again = await queries.enqueue_gap_syncs(conn, None, 10)
        gap = await queries.gap_sync_of_job(conn, queued[0])
        with pytest.raises(asyncpg.UniqueViolationError):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO gap_syncs (integration_id, window_start, reason)"
                    " VALUES ($1, now(), 'x'), ($1, now(), 'y')",
                    iid,
                )
    assert integration["id"] == iid
    assert first == second == third
    assert (blocked, len(queued), again) == ([], 1, [])
    assert gap is not None
    assert (gap.window_start, gap.reason) == (now - timedelta(hours=3), "earlier")


async def test_a_periodic_sync_that_recreates_asks_for_the_gap_it_does_not_cover(
    start_service: Any, control: Sandbox, relay: tuple[Relay, str], database_url: str
) -> None:
    _, url = relay
    api = await _service(start_service, url, webhook_health_interval_seconds=3600)
    integration = await api.connect()
    await api.call("PUT", "/integration/sync-settings", json={"sync_past_days": 0})
    uuid = integration["webhook_uri"].rsplit("/", 1)[1]
    disabled = await control.call("POST", f"/_sandbox/webhook_subscriptions/{uuid}/disable")
    since = _time(disabled["resource"]["retry_started_at"])
    await asyncio.sleep(0.05)  # the periodic sync's window (now - 0 days) starts after it
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE integrations SET next_sync_at = now()")
    finally:
        await conn.close()
    gap = await eventually(lambda: _gap_log(api), within=20)
    _, logs = await api.call("GET", "/sync-logs")
    periodic = [e for e in logs["items"] if e["trigger"] == "periodic"]
    reason = f"webhook subscription disabled since {since:%Y-%m-%dT%H:%M:%SZ}: recreated"
    assert since is not None
    assert [e["notes"] for e in periodic] == [[f"{reason}; gap sync pending"]]
    assert gap is not None
    assert (gap["status"], gap["notes"], _time(gap["window_start"])) == (
        "succeeded",
        [reason],
        since,
    )
    assert gap["id"] > periodic[0]["id"]
