"""GET /metrics: HTTP, webhook, sync, Calendly and queue figures in Prometheus format."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api, Sandbox
from tests.helpers import book, default_event_type, envelope, invitee_payload, post_webhook, settled
from tests.test_sync import sync_now


async def _scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by name and sorted labels."""
    resp = await api.client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((f"calendly_svc_{name}", tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_what_happened(api: Api, control: Sandbox) -> None:
    integration = await api.connect()
    await book(control, await default_event_type(control), "2030-01-07T10:00:00Z")
    booking = await book(
        control, await default_event_type(control), "2030-01-08T10:00:00Z", deliver=False
    )
    delivery = envelope(
        "invitee.created", await invitee_payload(control, booking["invitees"][0]["uri"])
    )
    await post_webhook(api, integration["public_id"], delivery)
    await post_webhook(api, integration["public_id"], delivery)
    await post_webhook(api, integration["public_id"], delivery, key="wrong")
    await post_webhook(api, integration["public_id"], b"{nope")
    await settled(api)
    await sync_now(api)
    await api.call("GET", "/nope")
    samples = await _scrape(api)
    assert _value(samples, "webhooks_received_total", event="invitee.created") == 2
    assert _value(samples, "webhooks_duplicate_total", event="invitee.created") == 1
    assert _value(samples, "webhooks_rejected_total", reason="invalid_signature") == 1
    assert _value(samples, "webhooks_rejected_total", reason="invalid_json") == 1
    assert (
        _value(samples, "webhooks_processed_total", event="invitee.created", outcome="processed")
        == 2
    )
    assert _value(samples, "sync_runs_total", trigger="initial", status="succeeded") == 1
    assert _value(samples, "sync_runs_total", trigger="manual", status="succeeded") == 1
    assert _value(samples, "sync_duration_seconds_count", trigger="manual") == 1
    assert _value(samples, "calendly_api_calls_total", endpoint="/users/me", status="200") == 1
    assert (
        _value(samples, "calendly_api_calls_total", endpoint="/scheduled_events", status="200") == 2
    )
    assert (
        _value(
            samples,
            "http_requests_total",
            method="POST",
            route="/api/v1/calendly/webhook",
            status="401",
        )
        == 1
    )
    assert (
        _value(samples, "http_requests_total", method="GET", route="unmatched", status="404") == 1
    )
    assert (
        _value(
            samples,
            "http_request_duration_seconds_count",
            method="POST",
            route="/api/v1/calendly/webhook",
        )
        == 5  # the sandbox's own delivery and four hand-written ones
    )
    assert _value(samples, "queue_depth", queue="webhook_inbox") == 0
    assert _value(samples, "queue_depth", queue="sync_jobs") == 0
    assert _value(samples, "integrations", status="active") == 1


async def test_token_refreshes_and_rate_limit_waits(api: Api, control: Sandbox) -> None:
    await api.connect()
    await control.call("POST", "/_sandbox/oauth/expire_access_tokens", {})
    await control.call("POST", "/_sandbox/faults", {"fail_next": 1, "fail_status": 429})
    await api.call("POST", "/event-types/refresh")
    samples = await _scrape(api)
    assert _value(samples, "calendly_token_refreshes_total", outcome="ok") == 1
    assert _value(samples, "calendly_rate_limit_waits_total") == 1
    assert _value(samples, "calendly_api_calls_total", endpoint="/event_types", status="429") == 1
    assert _value(samples, "calendly_api_calls_total", endpoint="/event_types", status="401") == 1


async def test_inbox_gauges_count_waiting_deliveries_and_age_the_oldest(api: Api) -> None:
    from calendly_svc.keys import DB_POOL

    pool = api.client.server.app[DB_POOL]
    integration = await pool.fetchval(
        "INSERT INTO integrations (user_id, status, calendly_user_uri) "
        "VALUES (1, 'disconnected', 'https://api.calendly.com/users/G') RETURNING id"
    )
    for age in (90, 30):  # stored that long ago, due in an hour (no worker takes them meanwhile)
        await pool.execute(
            "WITH w AS (INSERT INTO webhook_events (integration_id, event, dedup_key, body, "
            "received_at) VALUES ($1, 'invitee.created', $2::text, '{}', now() - make_interval("
            "secs => $3::integer)) RETURNING id, integration_id) INSERT INTO webhook_queue "
            "(id, integration_id, run_after) SELECT id, integration_id, now() + interval '1 hour' "
            "FROM w",
            integration, f"k{age}", age,
        )  # fmt: skip
    samples = await _scrape(api)
    assert _value(samples, "queue_depth", queue="webhook_inbox") == 2
    assert 90 <= _value(samples, "queue_oldest_age_seconds", queue="webhook_inbox") < 100


async def test_metrics_survive_a_database_outage(api: Api) -> None:
    from calendly_svc.keys import DB_POOL

    await api.client.server.app[DB_POOL].close()
    resp = await api.client.get("/metrics")
    assert resp.status == 200
    assert "calendly_svc_http_requests_total" in await resp.text()


def test_endpoint_templates() -> None:
    from calendly_svc.metrics import endpoint_of

    assert endpoint_of("https://api.calendly.com/scheduled_events/AB12/invitees?count=100") == (
        "/scheduled_events/{uuid}/invitees"
    )
    assert endpoint_of("https://api.calendly.com/users/me") == "/users/me"
    assert (
        endpoint_of("http://127.0.0.1:9/webhook_subscriptions/x-y")
        == "/webhook_subscriptions/{uuid}"
    )
