"""Prometheus metrics: counters and histograms fed by the code, gauges read from Postgres at
scrape time. One registry per application (no process globals)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from calendly_svc.store import queries

PREFIX = "calendly_svc"
_ID_PARENTS = frozenset(
    {"scheduled_events", "invitees", "users", "event_types", "webhook_subscriptions",
     "organizations", "organization_memberships", "invitee_no_shows"}
)  # fmt: skip
_WORDS = frozenset({"me", "invitees", "cancellation"})
_PATH = re.compile(r"^https?://[^/]+")
WEBHOOK_STATES = ("active", "retrying", "disabled", "missing")
# what a recreated subscription was found in (absent: the integration had none)
RECREATED_FROM = ("disabled", "missing", "absent")


def endpoint_of(url: str) -> str:
    """A Calendly URL as a low-cardinality template: /scheduled_events/{uuid}/invitees."""
    parts = _PATH.sub("", url).split("?", 1)[0].strip("/").split("/")
    out = [
        "{uuid}" if i and parts[i - 1] in _ID_PARENTS and part not in _WORDS else part
        for i, part in enumerate(parts)
    ]
    return "/" + "/".join(out)


@dataclass
class Metrics:
    """Every metric the service exposes."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = field(
        default_factory=dict, repr=False
    )
    _stored_children: dict[tuple[str, bool], Counter] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        labels = ("method", "route", "status")
        self.http_requests = Counter(
            f"{PREFIX}_http_requests_total", "HTTP requests", labels, registry=self.registry
        )
        self.http_latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds", "HTTP request latency",
            ("method", "route"), registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.webhooks_received = self._counter(
            "webhooks_received_total", "Deliveries stored", ("event",)
        )
        self.webhooks_duplicate = self._counter(
            "webhooks_duplicate_total", "Redeliveries of a stored event", ("event",)
        )
        self.webhooks_rejected = self._counter(
            "webhooks_rejected_total", "Deliveries refused", ("reason",)
        )
        self.webhooks_processed = self._counter(
            "webhooks_processed_total", "Deliveries applied or ignored", ("event", "outcome")
        )
        self.webhooks_failed = self._counter(
            "webhooks_failed_total", "Processing failures (retry or final)", ("event", "final")
        )
        self.retention_deleted = self._counter(
            "retention_deleted_total", "Finished rows deleted by retention", ("table",)
        )
        self.sync_runs = self._counter("sync_runs_total", "Finished syncs", ("trigger", "status"))
        self.sync_duration = Histogram(
            f"{PREFIX}_sync_duration_seconds", "Sync duration", ("trigger",),
            registry=self.registry, buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
        )  # fmt: skip
        self.calendly_calls = self._counter(
            "calendly_api_calls_total", "Calendly API calls", ("endpoint", "status")
        )
        self.calendly_rate_limit_waits = self._counter(
            "calendly_rate_limit_waits_total", "Waits for X-RateLimit-Reset after a 429", ()
        )
        self.token_refreshes = self._counter(
            "calendly_token_refreshes_total", "Token refreshes", ("outcome",)
        )
        self.token_refresh_lost = self._counter(
            "token_refresh_lost_total",
            "Refreshes refused after an unanswered one (its rotated tokens lost): needs_reauth",
            (),
        )
        self.notifications = self._counter(
            "notifications_total", "Notifications to the main app", ("outcome",)
        )
        self.probe_queries = self._counter(
            "probe_queries_total", "Database reads made for /metrics and /readyz", ("probe",)
        )
        self.queue_depth = self._gauge("queue_depth", "Rows waiting or in flight", ("queue",))
        self.queue_oldest = self._gauge(
            "queue_oldest_age_seconds", "Age of the oldest waiting row", ("queue",)
        )
        self.integrations = self._gauge("integrations", "Integrations by status", ("status",))
        self.webhook_subscriptions = self._gauge(
            "webhook_subscriptions",
            "Active integrations' user-scope webhook subscriptions by the state last seen "
            "(active, retrying, disabled, missing); organization routing-form subscriptions "
            "are stored per organization and not counted",
            ("state",),
        )
        self.webhook_retrying_age = self._gauge(
            "webhook_retrying_age_seconds",
            "Age of the oldest retrying webhook subscription (since retry_started_at), 0 when none",
            (),
        )
        self.webhook_recreated = self._counter(
            "webhook_subscriptions_recreated_total",
            "Webhook subscriptions recreated by the service, by the state they were found in",
            ("previous_state",),
        )
        for previous in RECREATED_FROM:
            self.webhook_recreated.labels(previous)
        self.ready = self._gauge(
            "ready", "1 while /readyz would answer 200 (same cached read), else 0", ()
        )
        self.sync_repaired = self._counter(
            "sync_repaired_total", "Appointments a non-initial sync changed (repairs)", ("trigger",)
        )
        self.actions = self._counter(
            "actions_total",
            "Actions on Calendly the main app asked for, by outcome",
            ("action", "outcome"),
        )

    def _counter(self, name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        """A counter in this registry."""
        return Counter(f"{PREFIX}_{name}", doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
        """A gauge in this registry."""
        return Gauge(f"{PREFIX}_{name}", doc, labels, registry=self.registry)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:  # labels() costs more than the update; routes x statuses is small
            children = (
                self.http_requests.labels(method, route, str(status)),
                self.http_latency.labels(method, route),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def webhook_stored(self, event: str, inserted: bool) -> None:
        """Count a delivery stored (or a redelivery of a stored one) by its event."""
        child = self._stored_children.get((event, inserted))
        if child is None:  # verified deliveries only, so the events are Calendly's few
            counter = self.webhooks_received if inserted else self.webhooks_duplicate
            child = self._stored_children[(event, inserted)] = counter.labels(event)
        child.inc()

    def calendly_call(self, url: str, status: int | str) -> None:
        """Count one Calendly API call."""
        self.calendly_calls.labels(endpoint_of(url), str(status)).inc()

    async def refresh_gauges(self, conn: queries.Conn) -> None:
        """Read queue depths, oldest ages and integrations by status from Postgres."""
        for queue in await queries.queue_gauges(conn):
            self.queue_depth.labels(queue.queue).set(queue.depth)
            self.queue_oldest.labels(queue.queue).set(queue.oldest_seconds or 0)
        counts = await queries.integrations_by_status(conn)
        for status in ("active", "needs_reauth", "disconnected"):
            self.integrations.labels(status).set(counts.get(status, 0))
        await self._refresh_webhook_gauges(conn)

    async def _refresh_webhook_gauges(self, conn: queries.Conn) -> None:
        """Subscriptions by state (every state, 0 when none) and the oldest retrying age."""
        rows = {row.state: row for row in await queries.webhook_health_gauges(conn)}
        for state in WEBHOOK_STATES:
            row = rows.get(state)
            self.webhook_subscriptions.labels(state).set(row.n if row else 0)
        retrying = rows.get("retrying")
        self.webhook_retrying_age.set((retrying.oldest_retrying_seconds or 0) if retrying else 0)

    def exposition(self) -> bytes:
        """The text format."""
        return generate_latest(self.registry)


@dataclass
class Timer:
    """Seconds since creation."""

    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds so far."""
        return time.perf_counter() - self.started
