"""`make soak`: replicas behind a round-robin proxy, one Postgres, one sandbox, and chaos.

For a bounded time a stream of bookings, cancels, reschedules, no-shows and duplicate deliveries
runs while one replica is SIGKILLed (and later replaced), Postgres is restarted once and the
sandbox answers bursts of 429 and 5xx. Then the deliveries settle, the inbox drains, a full sync
per professional repairs what webhooks lost, and everything is checked against the sandbox.

`python -m tests.bench.soak --seconds N` prints a report; exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import asyncpg
from aiohttp import web

from calendly_svc.calendly.scopes import NEEDED_SCOPES
from calendly_svc.devenv import restart_embedded_postgres, stop_embedded_postgres
from calendly_svc.ingest.inbox import dedup_key
from calendly_svc.ingest.signatures import SignatureError, signature_header, verify
from tests.bench.stack import (
    SIGNING_KEY,
    TOKEN,
    Client,
    Process,
    Stack,
    free_port,
    scalar,
    stack,
)

API = "/api/v1/calendly"
WEBHOOK_PATH = f"{API}/webhook"
NOTIFY_PATH = "/_main_app/notifications"
DUPLICATE_AGENT = "soak-duplicate"
MAIN_APP_SECRET = "soak-main-app-secret"
LEASE_SECONDS = 4.0
OUTAGE_HOLD_SECONDS = 1.0
# the sandbox retries a failed delivery 1, 2, 4, 8 and 16 s apart, then drops it
SANDBOX_GIVE_UP_SECONDS = 31 + 10
RETRYABLE = frozenset({0, 502, 503})
# one sandbox delivery in DROP_EVERY never reaches a replica: lost to webhooks, left to the syncs
DROP_EVERY = 20
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
OPERATIONS = ("book", "cancel", "reschedule", "no_show", "duplicate")
WEIGHTS = (35, 12, 20, 15, 18)
COMPARED = ("status", "no_show", "start_time", "end_time", "reschedule_count", "calendly_event_uri")
NOTIFIED = ("status", "no_show", "start_time", "end_time", "calendly_invitee_uri")

Key = tuple[str, str]
T = TypeVar("T")

# queued/pending rows due longer than a lease ago, or running/processing rows whose lease ran out
JOBS_STUCK = """SELECT count(*) FROM sync_jobs
WHERE (status = 'queued' AND run_after < now() - make_interval(secs => $1::float8))
   OR (status = 'running' AND locked_at < now() - make_interval(secs => $1::float8))"""
OUTBOX_STUCK = """SELECT count(*) FROM outbox
WHERE (status = 'pending' AND run_after < now() - make_interval(secs => $1::float8))
   OR (status = 'processing' AND locked_at < now() - make_interval(secs => $1::float8))"""
OUTBOX_FAILED = "SELECT count(*) FROM outbox WHERE status = 'failed'"
REPAIRED = "SELECT coalesce(sum(repaired), 0) FROM sync_logs WHERE trigger <> 'initial'"
LOGS_LEFT_RUNNING = """SELECT count(*) FROM sync_logs l WHERE l.status = 'running'
AND NOT EXISTS (SELECT 1 FROM sync_jobs j WHERE j.sync_log_id = l.id AND j.status = 'running')"""
INBOX_PENDING = "SELECT count(*) FROM webhook_queue"
# deliveries in the queue that are not pending, or pending ones missing from it
INBOX_QUEUE_MISMATCHES = """SELECT count(*) FROM webhook_events w
FULL JOIN webhook_queue q USING (id)
WHERE (q.id IS NULL) = (w.status IN ('received', 'processing'))"""
JOBS_ACTIVE = "SELECT count(*) FROM sync_jobs WHERE status IN ('queued', 'running')"
OUTBOX_PENDING = "SELECT count(*) FROM outbox WHERE status IN ('pending', 'processing')"
INBOX_ROWS = """SELECT i.public_id::text AS public_id, w.id, w.dedup_key, w.status, w.reason,
w.duplicates FROM webhook_events w JOIN integrations i ON i.id = w.integration_id"""


class SoakError(Exception):
    """A phase of the soak could not go on (an unexpected answer, a job that never ended)."""


@dataclass(frozen=True)
class Options:
    """How long, how many professionals, how fast, and the seed."""

    seconds: float = 120.0
    professionals: int = 3
    replicas: int = 3
    rate: float = 4.0
    seed: int = 20240611


def replica_env(proxy_url: str) -> dict[str, str]:
    """Replica settings: every public URL is the proxy's; short leases and retries."""
    return {
        "BACKEND_URL": proxy_url,
        "MAIN_APP_WEBHOOK_URL": f"{proxy_url}{NOTIFY_PATH}",
        "MAIN_APP_WEBHOOK_SECRET": MAIN_APP_SECRET,
        "WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "WORKER_POLL_SECONDS": "0.5",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "2",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "2",
        "CALENDLY_RETRY_BASE_SECONDS": "0.1",
        "SYNC_INTERVAL_SECONDS": "10",
        "SYNC_SCHEDULE_CHECK_SECONDS": "1",
    }


async def until(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.2) -> bool:
    """Poll check() until it holds (True) or the deadline passes (False)."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


# --- the load balancer and the main app's notification endpoint ---------------------------------


@dataclass
class WebhookLog:
    """What the proxy saw of POST /webhook, per (integration public id, dedup key)."""

    attempts: Counter[Key] = field(default_factory=Counter)
    acks: dict[Key, list[int]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    first_failure: dict[Key, float] = field(default_factory=dict)
    captured: dict[str, list[bytes]] = field(default_factory=dict)
    ordinal: dict[Key, int] = field(default_factory=dict)
    dropped: set[Key] = field(default_factory=set)
    subject: dict[Key, str] = field(default_factory=dict)

    @property
    def acknowledged(self) -> int:
        """Every 200 a replica gave."""
        return sum(len(ids) for ids in self.acks.values())

    def missed(self) -> set[str]:
        """Invitees a dropped or (so far) unacknowledged delivery was about."""
        return {self.subject[key] for key in self.dropped | self.first_failure.keys()}

    def drops(self, key: Key, from_sandbox: bool) -> bool:
        """Whether this sandbox delivery is one never let through (each retry of it included)."""
        if not from_sandbox:
            return False
        place = self.ordinal.setdefault(key, len(self.ordinal))
        if place % DROP_EVERY != DROP_EVERY - 1:
            return False
        self.dropped.add(key)
        return True

    def record(self, key: Key, body: bytes, answer: Upstream, from_sandbox: bool) -> None:
        """Count one forwarded delivery and its outcome."""
        self.statuses[answer.status] += 1
        if answer.reached:
            self.attempts[key] += 1
        if from_sandbox:
            self.captured.setdefault(key[0], []).append(body)
        if answer.status == 200:
            self.acks.setdefault(key, []).append(acknowledged_id(answer.body))
            self.first_failure.pop(key, None)
        elif from_sandbox:
            self.first_failure.setdefault(key, time.monotonic())


def acknowledged_id(body: bytes) -> int:
    """The inbox id of a 200 answer (-1 when it names none, which the checks report)."""
    try:
        return int(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return -1


@dataclass(frozen=True)
class Upstream:
    """A replica's answer (or the proxy's own 502); reached: a replica may have seen it."""

    status: int
    body: bytes
    content_type: str
    reached: bool


def _bad_gateway(reason: str, reached: bool) -> Upstream:
    """The proxy's own error answer, in the service's error shape."""
    body = json.dumps({"error": {"code": "bad_gateway", "message": reason, "details": None}})
    return Upstream(502, body.encode(), "application/json", reached)


def webhook_key(request: web.Request, body: bytes) -> tuple[Key, str] | None:
    """((public id, dedup key), payload URI) of a webhook POST, None for anything else."""
    if request.method != "POST" or request.path != WEBHOOK_PATH:
        return None
    try:
        envelope = json.loads(body)
        key = (request.query.get("integration", ""), dedup_key(envelope))
        return key, str(envelope["payload"].get("uri"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class Proxy:
    """Round-robin reverse proxy over the replicas; the next one is tried on a refused connect."""

    def __init__(self) -> None:
        self.upstreams: list[str] = []
        self.webhooks = WebhookLog()
        self.notifications: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.refused = 0
        self.broken = 0
        self.url = ""
        self._turn = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Proxy:
        """Listen on a free port."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        """Stop listening and close the upstream session."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Serve notifications here; forward everything else and record webhook outcomes."""
        body = await request.read()
        if request.path == NOTIFY_PATH:
            return self._notification(request, body)
        seen = webhook_key(request, body)
        from_sandbox = request.headers.get("User-Agent") != DUPLICATE_AGENT
        if seen is not None:
            self.webhooks.subject[seen[0]] = seen[1]
            if self.webhooks.drops(seen[0], from_sandbox):
                return web.json_response({"error": "dropped by the soak"}, status=503)
        answer = await self._forward(request, body)
        if seen is not None:
            self.webhooks.record(seen[0], body, answer, from_sandbox)
        return web.Response(
            status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type}
        )

    async def _forward(self, request: web.Request, body: bytes) -> Upstream:
        """Send to the next replica; on a refused connection, to the one after it."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        upstreams, turn = list(self.upstreams), next(self._turn)
        for offset in range(len(upstreams)):
            base = upstreams[(turn + offset) % len(upstreams)]
            try:
                async with self._session.request(
                    request.method, base + request.path_qs, data=body, headers=headers,
                    allow_redirects=False,
                ) as resp:  # fmt: skip
                    content_type = resp.headers.get("Content-Type", "application/json")
                    return Upstream(resp.status, await resp.read(), content_type, True)
            except aiohttp.ClientConnectorError:
                self.refused += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.broken += 1
                return _bad_gateway(f"{type(exc).__name__} from {base}", True)
        return _bad_gateway("no replica accepted the connection", False)

    def _notification(self, request: web.Request, body: bytes) -> web.Response:
        """The main app: verify the signature, keep the notification, answer 200."""
        header = request.headers.get("X-Calendly-Svc-Signature")
        try:
            verify(header, body, [MAIN_APP_SECRET], time.time(), 300, 60)
        except SignatureError:
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        self.notifications.append(json.loads(body))
        return web.json_response({"ok": True})


# --- the deployment ------------------------------------------------------------------------------


def live_replicas(bench: Stack) -> list[Process]:
    """Replicas whose process has not exited."""
    return [s for s in bench.services if s.proc.returncode is None]


async def ready(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether one replica's /readyz answers 200."""
    try:
        async with session.get(f"{url}/readyz") as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


# --- the soak's state ----------------------------------------------------------------------------


@dataclass
class Chain:
    """One booking as the harness drives it: its current invitee and what it may do next."""

    invitee: str
    active: bool = True
    no_show: bool = False


@dataclass
class Professional:
    """A connected sandbox user."""

    user_id: int
    email: str
    event_type: str = ""
    public_id: str = ""
    chains: list[Chain] = field(default_factory=list)


@dataclass
class Tally:
    """What the workload did."""

    bookings: int = 0
    cancels: int = 0
    reschedules: int = 0
    no_shows: int = 0
    no_show_clears: int = 0
    duplicates: int = 0
    duplicates_refused: int = 0
    first_attempts_failed: int = 0

    def deliveries(self, made: dict[str, Any]) -> None:
        """Count the sandbox's first delivery attempts that failed."""
        failed = [d for d in made.get("deliveries", []) if d.get("status") != 200]
        self.first_attempts_failed += len(failed)


@dataclass
class ChaosLog:
    """What was broken, when, and how the deployment recovered."""

    killed: int = 0
    replaced: int = 0
    postgres_restarts: int = 0
    outage_seconds: float = 0.0
    recovery_seconds: float = 0.0
    bursts: list[tuple[int, int]] = field(default_factory=list)
    unconsumed: int = 0
    victims: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def injected(self, wanted: Callable[[int], bool]) -> int:
        """Failures the sandbox served for statuses matching wanted."""
        total = sum(size for status, size in self.bursts if wanted(status))
        if self.bursts and wanted(self.bursts[-1][0]):
            total -= self.unconsumed
        return total


@dataclass
class PreRepair:
    """Before the repairing sync: bookings touched by missed deliveries, and differences."""

    touched: int = 0
    differing: int = 0


@dataclass
class Soak:
    """Everything one run shares."""

    options: Options
    bench: Stack
    proxy: Proxy
    session: aiohttp.ClientSession
    started: float = field(default_factory=time.monotonic)
    base_time: datetime = field(
        default_factory=lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )
    pros: list[Professional] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    chaos: ChaosLog = field(default_factory=ChaosLog)
    timings: dict[str, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    repaired: int = 0
    pre_repair: PreRepair = field(default_factory=lambda: PreRepair())

    @property
    def sandbox_url(self) -> str:
        """The sandbox's base URL."""
        assert self.bench.sandbox is not None
        return self.bench.sandbox.url

    @property
    def client(self) -> Client:
        """The stack's client, pointed at the proxy."""
        return Client(self.session, self.proxy.url, self.sandbox_url)

    def elapsed(self) -> float:
        """Seconds since the workload started."""
        return time.monotonic() - self.started

    async def at(self, offset: float) -> None:
        """Sleep until offset seconds into the workload."""
        await asyncio.sleep(max(0.0, self.started + offset - time.monotonic()))

    def event(self, text: str) -> None:
        """Log a chaos event with its time."""
        self.chaos.events.append(f"t+{self.elapsed():.1f}s {text}")


async def api(
    ctx: Soak, method: str, path: str, user: int, body: Any = None,
    params: dict[str, str] | None = None, within: float = 30.0,
) -> Any:  # fmt: skip
    """A main-app call through the proxy, retried while the service is briefly unavailable."""
    headers = {"Authorization": f"Bearer {TOKEN}", "X-User-Id": str(user)}
    deadline = time.monotonic() + within
    while True:
        status, data = await _request(
            ctx.session, method, f"{ctx.proxy.url}{API}{path}", headers, body, params
        )
        if status in RETRYABLE and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            continue
        if status in RETRYABLE or status >= 400:
            raise SoakError(f"{method} {path}: {status} {data}")
        return data


async def _request(
    session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: Any,
    params: dict[str, str] | None,
) -> tuple[int, Any]:  # fmt: skip
    """(status, parsed JSON) of one request; status 0 when it did not get an answer."""
    try:
        async with session.request(method, url, json=body, params=params, headers=headers) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"


# --- set-up --------------------------------------------------------------------------------------


async def start_deployment(ctx: Soak) -> None:
    """A generous sandbox rate limit (bursts are injected), then the replicas behind the proxy."""
    await ctx.client.control("POST", "/_sandbox/faults", {"rate_limit_per_minute": 1_000_000})
    env = replica_env(ctx.proxy.url)
    replicas = await asyncio.gather(
        *(ctx.bench.start_service(**env) for _ in range(ctx.options.replicas))
    )
    ctx.proxy.upstreams.extend(r.url for r in replicas)


async def connect_professional(ctx: Soak, n: int) -> Professional:
    """A sandbox user with its own event type, connected through the proxy."""
    pro = Professional(user_id=101 + n, email=f"pro{n}@soak.example.com")
    await ctx.client.control("POST", "/_sandbox/users", {"email": pro.email, "name": f"Pro {n}"})
    made = await ctx.client.control(
        "POST", "/_sandbox/event_types",
        {"user": pro.email, "name": "Soak", "duration": 30, "deliver": False},
    )  # fmt: skip
    pro.event_type = made["resource"]["uri"]
    integration = await ctx.client.connect(pro.user_id, pro.email)
    pro.public_id = integration["public_id"]
    return pro


async def connect_all(ctx: Soak) -> None:
    """Connect every professional, one after another; check their subscriptions."""
    for n in range(ctx.options.professionals):
        ctx.pros.append(await connect_professional(ctx, n))
    await check_subscriptions(ctx)


async def check_subscriptions(ctx: Soak) -> None:
    """Every professional's webhook subscription must point at the proxy."""
    subs = (await ctx.client.control("GET", "/_sandbox/webhook_subscriptions"))["collection"]
    urls = [s["callback_url"] for s in subs if s["state"] == "active"]
    for pro in ctx.pros:
        wanted = f"{ctx.proxy.url}{WEBHOOK_PATH}?integration={pro.public_id}"
        if wanted not in urls:
            ctx.violations.append(f"no active subscription for {pro.email} at the proxy")


# --- the workload --------------------------------------------------------------------------------


def slot(ctx: Soak, rng: random.Random) -> str:
    """A quarter-hour start between 1 and 21 days ahead."""
    quarters = rng.randrange(4 * 24, 4 * 24 * 21)
    return (ctx.base_time + timedelta(minutes=15 * quarters)).isoformat()


def active(pro: Professional) -> list[Chain]:
    """Bookings that may still be canceled, rescheduled or marked."""
    return [c for c in pro.chains if c.active]


async def book(ctx: Soak, pro: Professional, rng: random.Random) -> None:
    """A new booking (invitee.created)."""
    person = rng.randrange(40)
    invitee = {"name": f"Client {person}", "email": f"client{person}@soak.example.com"}
    body = {"event_type": pro.event_type, "start_time": slot(ctx, rng), "invitees": [invitee]}
    made = await ctx.client.control("POST", "/_sandbox/bookings", body)
    pro.chains.append(Chain(made["invitees"][0]["uri"]))
    ctx.tally.bookings += 1
    ctx.tally.deliveries(made)


async def cancel(ctx: Soak, pro: Professional, rng: random.Random) -> None:
    """A cancel by the invitee or the host (invitee.canceled)."""
    chain = rng.choice(active(pro))
    body = {
        "invitee": chain.invitee,
        "reason": "soak",
        "canceler_type": rng.choice(("invitee", "host")),
    }
    made = await ctx.client.control("POST", "/_sandbox/invitees/cancel", body)
    chain.active = False
    ctx.tally.cancels += 1
    ctx.tally.deliveries(made)


async def reschedule(ctx: Soak, pro: Professional, rng: random.Random) -> None:
    """A reschedule (invitee.canceled + invitee.created, linked)."""
    chain = rng.choice(active(pro))
    body = {"invitee": chain.invitee, "start_time": slot(ctx, rng)}
    made = await ctx.client.control("POST", "/_sandbox/invitees/reschedule", body)
    chain.invitee, chain.no_show = made["new_invitee"]["uri"], False
    ctx.tally.reschedules += 1
    ctx.tally.deliveries(made)


async def no_show(ctx: Soak, pro: Professional, rng: random.Random) -> None:
    """Mark a booking as a no-show, or clear the mark."""
    chain = rng.choice(active(pro))
    method = "DELETE" if chain.no_show else "POST"
    made = await ctx.client.control(
        method, "/_sandbox/invitees/no_show", {"invitee": chain.invitee}
    )
    chain.no_show = not chain.no_show
    if chain.no_show:
        ctx.tally.no_shows += 1
    else:
        ctx.tally.no_show_clears += 1
    ctx.tally.deliveries(made)


async def duplicate(ctx: Soak, pro: Professional, rng: random.Random) -> None:
    """Post a delivery the sandbox made twice more, at once (to two replicas)."""
    body = rng.choice(ctx.proxy.webhooks.captured[pro.public_id])
    results = await asyncio.gather(post_signed(ctx, pro, body), post_signed(ctx, pro, body))
    ctx.tally.duplicates += len(results)
    ctx.tally.duplicates_refused += results.count(False)


async def post_signed(ctx: Soak, pro: Professional, body: bytes, within: float = 15.0) -> bool:
    """POST a delivery signed with the app's key, retried like Calendly until a 200."""
    url = f"{ctx.proxy.url}{WEBHOOK_PATH}?integration={pro.public_id}"
    deadline = time.monotonic() + within
    while True:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": DUPLICATE_AGENT,
            "Calendly-Webhook-Signature": signature_header(SIGNING_KEY, body, int(time.time())),
        }
        try:
            async with ctx.session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status == 200:
                    return True
        except (aiohttp.ClientError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.3)


STEPS: dict[str, Callable[[Soak, Professional, random.Random], Awaitable[None]]] = {
    "book": book,
    "cancel": cancel,
    "reschedule": reschedule,
    "no_show": no_show,
    "duplicate": duplicate,
}


def choose(ctx: Soak, pro: Professional, rng: random.Random) -> str:
    """The next operation; book while there is too little to act on."""
    kind = rng.choices(OPERATIONS, WEIGHTS)[0]
    if kind == "duplicate":
        return kind if ctx.proxy.webhooks.captured.get(pro.public_id) else "book"
    return kind if len(active(pro)) >= 3 else "book"


async def actor(ctx: Soak, pro: Professional, rng: random.Random, end: float) -> None:
    """One professional's bookings and changes, paced, until the end of the run."""
    pause = 1.0 / ctx.options.rate
    while time.monotonic() < end:
        await STEPS[choose(ctx, pro, rng)](ctx, pro, rng)
        await asyncio.sleep(pause)


# --- the chaos -----------------------------------------------------------------------------------


async def kill_replica(ctx: Soak, rng: random.Random) -> None:
    """SIGKILL one replica; the proxy keeps it in rotation and fails over on refusals."""
    victim = rng.choice(live_replicas(ctx.bench))
    victim.proc.kill()
    await victim.proc.wait()
    ctx.chaos.killed += 1
    ctx.chaos.victims.append(victim.url)
    ctx.event(f"SIGKILL {victim.url}")


async def restart_postgres(ctx: Soak) -> None:
    """Stop Postgres, hold the outage a moment, start it again; replicas must recover."""
    began = time.monotonic()
    ctx.event("Postgres stopping")
    await asyncio.to_thread(stop_embedded_postgres, ctx.bench.postgres)
    await asyncio.sleep(OUTAGE_HOLD_SECONDS)
    await asyncio.to_thread(restart_embedded_postgres, ctx.bench.postgres)
    ctx.chaos.outage_seconds = time.monotonic() - began
    ctx.chaos.postgres_restarts += 1
    ctx.event("Postgres started")
    back = time.monotonic()

    async def all_ready() -> bool:
        replicas = live_replicas(ctx.bench)
        return all(await asyncio.gather(*(ready(ctx.session, r.url) for r in replicas)))

    if not await until(all_ready, within=60):
        ctx.violations.append("replicas not ready 60 s after Postgres came back")
    ctx.chaos.recovery_seconds = time.monotonic() - back
    ctx.event("every live replica ready again")


async def replace_replica(ctx: Soak) -> None:
    """A fresh replica joins the rotation once it is ready."""
    service = await ctx.bench.start_service(**replica_env(ctx.proxy.url))
    ctx.proxy.upstreams.append(service.url)
    ctx.chaos.replaced += 1
    ctx.event(f"replacement {service.url} in rotation")


async def faults(ctx: Soak) -> dict[str, Any]:
    """The sandbox's current faults."""
    result: dict[str, Any] = await ctx.client.control("GET", "/_sandbox/faults")
    return result


async def nudge_sync(ctx: Soak, rng: random.Random) -> None:
    """Ask for a sync, so the service calls Calendly while faults are injected."""
    pro = rng.choice(ctx.pros)
    await api(ctx, "POST", "/sync/manual", pro.user_id, {}, within=10)


async def fault_bursts(ctx: Soak, rng: random.Random, end: float) -> None:
    """429 and 5xx bursts (fail_next) until end; a new burst only once the last is spent."""
    statuses = itertools.cycle((429, 503, 429, 500))
    ctx.event("fault bursts begin")
    while time.monotonic() < end:
        if (await faults(ctx))["fail_next"] == 0:
            status, size = next(statuses), rng.randint(2, 5)
            body = {"fail_next": size, "fail_status": status}
            await ctx.client.control("POST", "/_sandbox/faults", body)
            ctx.chaos.bursts.append((status, size))
        await nudge_sync(ctx, rng)
        await asyncio.sleep(0.3)
    await spend_last_burst(ctx, rng)
    ctx.event("fault bursts end")


async def spend_last_burst(ctx: Soak, rng: random.Random) -> None:
    """Let syncs use up the last burst (bounded), then clear what is left."""

    async def spent() -> bool:
        if (await faults(ctx))["fail_next"] == 0:
            return True
        await nudge_sync(ctx, rng)
        return False

    if not await until(spent, within=10, every=0.3):
        ctx.chaos.unconsumed = int((await faults(ctx))["fail_next"])
    await ctx.client.control("POST", "/_sandbox/faults", {"fail_next": 0})


async def chaos(ctx: Soak, rng: random.Random) -> None:
    """The timeline: kill, Postgres restart, replacement, fault bursts."""
    seconds = ctx.options.seconds
    await ctx.at(0.15 * seconds)
    await kill_replica(ctx, rng)
    await ctx.at(0.3 * seconds)
    await restart_postgres(ctx)
    replacement = asyncio.create_task(replace_replica(ctx))
    await ctx.at(0.5 * seconds)
    await fault_bursts(ctx, rng, ctx.started + 0.85 * seconds)
    await replacement


async def run_workload(ctx: Soak) -> None:
    """Actors and chaos side by side; both are bounded in time."""
    ctx.started = time.monotonic()
    end = ctx.started + ctx.options.seconds
    seed = ctx.options.seed
    actors = [actor(ctx, pro, random.Random(seed + pro.user_id), end) for pro in ctx.pros]
    await asyncio.gather(chaos(ctx, random.Random(seed)), *actors)


# --- settling ------------------------------------------------------------------------------------


async def deliveries_settled(ctx: Soak) -> int:
    """Wait until every failed sandbox delivery was acknowledged or given up; returns the lost."""
    log = ctx.proxy.webhooks

    async def settled() -> bool:
        now = time.monotonic()
        return all(now - first > SANDBOX_GIVE_UP_SECONDS for first in log.first_failure.values())

    await until(settled, within=SANDBOX_GIVE_UP_SECONDS + 5)
    return len(log.first_failure)


async def drained(ctx: Soak, what: str, sql: str, within: float = 60.0) -> None:
    """Wait until a count query says 0; a violation when it does not."""

    async def empty() -> bool:
        return int(await scalar(ctx.bench.dsn, sql)) == 0

    if not await until(empty, within=within, every=0.25):
        ctx.violations.append(f"{what} not drained within {within:.0f} s")


async def wait_job(ctx: Soak, pro: Professional, job_id: int) -> dict[str, Any]:
    """Poll a sync job until it finishes."""
    result: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal result
        result = await api(ctx, "GET", f"/sync/jobs/{job_id}", pro.user_id)
        return result["status"] in ("succeeded", "failed")

    if not await until(finished, within=180, every=0.2):
        raise SoakError(f"sync job {job_id} of {pro.email} did not finish")
    return result


async def repair(ctx: Soak, pro: Professional) -> dict[str, Any]:
    """A full manual sync of a wide window that ran to success; returns its log."""
    body = {"full": True, "past_days": 7, "future_days": 365}
    for _ in range(6):
        queued = await api(ctx, "POST", "/sync/manual", pro.user_id, body)
        job = await wait_job(ctx, pro, int(queued["job_id"]))
        if queued.get("deduplicated") or job["sync_log_id"] is None:
            continue
        logs = await api(ctx, "GET", "/sync-logs", pro.user_id, params={"limit": "20"})
        entry: dict[str, Any] = next(e for e in logs["items"] if e["id"] == job["sync_log_id"])
        if entry["status"] == "succeeded":
            return entry
    raise SoakError(f"no successful full sync for {pro.email}")


async def before_repair(ctx: Soak) -> None:
    """Bookings no dropped or lost delivery was about must already be right, before any repair."""
    missed = ctx.proxy.webhooks.missed()
    for pro in ctx.pros:
        known = await truth(ctx, pro)
        touched = {known.root_of[uri] for uri in missed if uri in known.root_of}
        items = await appointments_of(ctx, pro)
        problems = compare(known, items)
        ctx.pre_repair.touched += len(touched)
        ctx.pre_repair.differing += len(problems)
        ctx.violations += [
            f"before the repairing sync, {pro.email}: {p}"
            for root, p in problems
            if root not in touched
        ]


async def settle(ctx: Soak) -> int:
    """Deliveries, inbox, syncs; then the repairing sync and the outbox. Returns lost deliveries."""
    lost = await deliveries_settled(ctx)
    await drained(ctx, "inbox", INBOX_PENDING)
    await drained(ctx, "sync jobs", JOBS_ACTIVE)
    await before_repair(ctx)
    began = time.monotonic()
    entries = await asyncio.gather(*(repair(ctx, pro) for pro in ctx.pros))
    ctx.timings["repair sync"] = time.monotonic() - began
    ctx.repaired = sum(int(e["repaired"]) for e in entries)
    await drained(ctx, "outbox", OUTBOX_PENDING)
    return lost


# --- the sandbox's truth -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the appointment of one booking chain must show."""

    root: str
    invitee: str
    event: str
    status: str
    no_show: bool
    start_time: datetime
    end_time: datetime
    reschedule_count: int


@dataclass(frozen=True)
class Truth:
    """Expected appointments by current invitee URI, and the booking of every invitee."""

    expected: dict[str, Expected]
    root_of: dict[str, str]


async def sandbox_token(ctx: Soak, email: str) -> str:
    """An access token of one sandbox user through the OAuth code flow (the harness's own)."""
    redirect = "http://127.0.0.1:9/callback"
    query = urlencode({"client_id": "sandbox-client", "response_type": "code",
                       "redirect_uri": redirect, "login_hint": email,
                       "scope": " ".join(NEEDED_SCOPES)})  # fmt: skip
    url = f"{ctx.sandbox_url}/oauth/authorize?{query}"
    async with ctx.session.get(url, allow_redirects=False) as resp:
        code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
    auth = {"Authorization": "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()}
    url = f"{ctx.sandbox_url}/oauth/token"
    async with ctx.session.post(url, data=form, headers=auth) as resp:
        return str((await resp.json())["access_token"])


async def collection(
    ctx: Soak, url: str, token: str, params: dict[str, str] | None
) -> list[dict[str, Any]]:
    """Every item of a sandbox collection (following next_page)."""
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    headers = {"Authorization": f"Bearer {token}"}
    while next_url:
        async with ctx.session.get(next_url, params=params, headers=headers) as resp:
            if resp.status != 200:
                raise SoakError(f"sandbox GET {next_url}: {resp.status} {await resp.text()}")
            page = await resp.json()
        items += page["collection"]
        next_url, params = page["pagination"].get("next_page"), None
    return items


async def truth(ctx: Soak, pro: Professional) -> Truth:
    """The expected appointment of every booking chain, read through the sandbox's API."""
    token = await sandbox_token(ctx, pro.email)
    headers = {"Authorization": f"Bearer {token}"}
    async with ctx.session.get(f"{ctx.sandbox_url}/users/me", headers=headers) as resp:
        user_uri = (await resp.json())["resource"]["uri"]
    events = await collection(
        ctx, f"{ctx.sandbox_url}/scheduled_events", token, {"user": user_uri, "count": "100"}
    )
    limit = asyncio.Semaphore(8)

    async def invitees_of(event: dict[str, Any]) -> list[dict[str, Any]]:
        async with limit:
            return await collection(ctx, f"{event['uri']}/invitees", token, {"count": "100"})

    pages = await asyncio.gather(*(invitees_of(e) for e in events))
    return chains({e["uri"]: e for e in events}, [i for page in pages for i in page])


def chains(events: dict[str, dict[str, Any]], invitees: list[dict[str, Any]]) -> Truth:
    """Follow every original booking through its reschedules to its current invitee."""
    by_uri = {i["uri"]: i for i in invitees}
    result = Truth({}, {})
    for root in (i for i in invitees if not i["old_invitee"]):
        current, hops = root, 0
        result.root_of[root["uri"]] = root["uri"]
        while current["new_invitee"] and hops < len(invitees):
            current, hops = by_uri[current["new_invitee"]], hops + 1
            result.root_of[current["uri"]] = root["uri"]
        event = events[current["event"]]
        result.expected[current["uri"]] = Expected(
            root=root["uri"], invitee=current["uri"], event=event["uri"],
            status="canceled" if current["status"] == "canceled" else "confirmed",
            no_show=current["no_show"] is not None,
            start_time=datetime.fromisoformat(event["start_time"]),
            end_time=datetime.fromisoformat(event["end_time"]), reschedule_count=hops,
        )  # fmt: skip
    return result


# --- verification --------------------------------------------------------------------------------


@dataclass
class Findings:
    """Figures for the report."""

    acknowledged: int = 0
    inbox: Counter[str] = field(default_factory=Counter)
    ignored_reasons: Counter[str] = field(default_factory=Counter)
    duplicates_counted: int = 0
    lost: int = 0
    repaired: int = 0
    appointments: int = 0
    sandbox_appointments: int = 0
    mismatches: list[str] = field(default_factory=list)
    jobs_stuck: int = 0
    logs_left_running: int = 0
    outbox_stuck: int = 0
    queue_mismatches: int = 0
    outbox_failed: int = 0
    notifications: int = 0
    notification_problems: list[str] = field(default_factory=list)
    repaired_by_all_syncs: int = 0
    sandbox_rate_limited: int = 0
    exit_codes: list[int] = field(default_factory=list)


async def check_inbox(ctx: Soak, found: Findings) -> None:
    """Every acknowledged delivery is one inbox row (duplicates counted) that was applied."""
    conn = await asyncpg.connect(ctx.bench.dsn)
    try:
        rows = await conn.fetch(INBOX_ROWS)
    finally:
        await conn.close()
    stored: dict[Key, list[Any]] = {}
    for row in rows:
        stored.setdefault((row["public_id"], row["dedup_key"]), []).append(row)
        found.inbox[row["status"]] += 1
        found.duplicates_counted += row["duplicates"]
        if row["status"] == "ignored":
            found.ignored_reasons[str(row["reason"])] += 1
    log = ctx.proxy.webhooks
    found.acknowledged = log.acknowledged
    for key, ids in log.acks.items():
        problem = acknowledged_problem(stored.get(key, []), ids, log.attempts[key])
        if problem:
            ctx.violations.append(f"webhook {key[1]}: {problem}")


def acknowledged_problem(rows: list[Any], ids: list[int], attempts: int) -> str | None:
    """What is wrong with the storage of one acknowledged delivery, if anything."""
    if len(rows) != 1:
        return f"{len(rows)} inbox rows for one dedup key"
    row = rows[0]
    if set(ids) != {row["id"]}:
        return f"acknowledged as {sorted(set(ids))}, stored as {row['id']}"
    if not len(ids) - 1 <= row["duplicates"] <= attempts - 1:
        return f"{row['duplicates']} duplicates counted for {len(ids)} acks of {attempts} attempts"
    if row["status"] not in ("processed", "ignored"):
        return f"ended {row['status']}"
    return None


async def appointments_of(ctx: Soak, pro: Professional) -> list[dict[str, Any]]:
    """Every appointment of a professional, through the service's API (all pages)."""
    items: list[dict[str, Any]] = []
    params = {"limit": "200"}
    while True:
        page = await api(ctx, "GET", "/appointments", pro.user_id, params=params)
        items += page["items"]
        if not page["next_cursor"]:
            return items
        params = {"limit": "200", "cursor": page["next_cursor"]}


def differences(expected: Expected, appointment: dict[str, Any]) -> list[str]:
    """Fields where the service disagrees with the sandbox."""
    wanted = {
        "status": expected.status, "no_show": expected.no_show,
        "start_time": expected.start_time, "end_time": expected.end_time,
        "reschedule_count": expected.reschedule_count, "calendly_event_uri": expected.event,
    }  # fmt: skip
    got = dict(appointment)
    for name in ("start_time", "end_time"):
        got[name] = datetime.fromisoformat(appointment[name])
    return [
        f"{name} {got[name]!r} != {wanted[name]!r}"
        for name in COMPARED
        if got[name] != wanted[name]
    ]


def compare(truth: Truth, items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(booking, problem): missing, duplicated, stale or wrong appointments (one per booking)."""
    per_booking = Counter(truth.root_of.get(a["calendly_invitee_uri"], "") for a in items)
    problems = [
        (root, f"{count} appointments for the booking {root or '(unknown to the sandbox)'}")
        for root, count in per_booking.items()
        if count > 1 or not root
    ]
    for appointment in items:
        uri, number = appointment["calendly_invitee_uri"], appointment["id"]
        root, exp = truth.root_of.get(uri, ""), truth.expected.get(uri)
        if exp is None and root:
            problems.append((root, f"appointment {number} shows a superseded invitee {uri}"))
        elif exp is not None and (diff := differences(exp, appointment)):
            problems.append((root, f"appointment {number} of {root}: {'; '.join(diff)}"))
    missing = {e.root for e in truth.expected.values()} - set(per_booking)
    problems += [(root, f"no appointment for the booking {root}") for root in sorted(missing)]
    return problems


async def check_appointments(ctx: Soak, found: Findings) -> dict[int, dict[str, Any]]:
    """The service's appointments against the sandbox; returns them by id."""
    by_id: dict[int, dict[str, Any]] = {}
    for pro in ctx.pros:
        known = await truth(ctx, pro)
        items = await appointments_of(ctx, pro)
        found.appointments += len(items)
        found.sandbox_appointments += len(known.expected)
        found.mismatches += [f"{pro.email}: {p}" for _, p in compare(known, items)]
        by_id.update((a["id"], a) for a in items)
    ctx.violations += found.mismatches
    return by_id


async def check_queues(ctx: Soak, found: Findings) -> None:
    """No sync job or outbox row stuck past the lease; no sync log left running."""
    dsn = ctx.bench.dsn
    found.jobs_stuck = int(await scalar(dsn, JOBS_STUCK, LEASE_SECONDS))
    found.outbox_stuck = int(await scalar(dsn, OUTBOX_STUCK, LEASE_SECONDS))
    found.outbox_failed = int(await scalar(dsn, OUTBOX_FAILED))
    found.logs_left_running = int(await scalar(dsn, LOGS_LEFT_RUNNING))
    found.queue_mismatches = int(await scalar(dsn, INBOX_QUEUE_MISMATCHES))
    checks = {
        "inbox rows whose queue entry disagrees with their status": found.queue_mismatches,
        "sync jobs stuck": found.jobs_stuck,
        "outbox rows stuck": found.outbox_stuck,
        "outbox rows failed": found.outbox_failed,
        "sync logs left running": found.logs_left_running,
    }
    for what, count in checks.items():
        if count:
            ctx.violations.append(f"{count} {what}")


def check_notifications(
    ctx: Soak, found: Findings, appointments: dict[int, dict[str, Any]]
) -> None:
    """In order per appointment, and the last one of each shows the appointment's final state."""
    received: dict[int, list[dict[str, Any]]] = {}
    for note in ctx.proxy.notifications:
        received.setdefault(int(note["appointment"]["id"]), []).append(note)
    found.notifications = len(ctx.proxy.notifications)
    problems = found.notification_problems
    for appointment_id, notes in received.items():
        firsts = list(dict.fromkeys(int(n["id"]) for n in notes))
        if firsts != sorted(firsts):
            problems.append(f"appointment {appointment_id}: notifications out of order {firsts}")
    for appointment_id, appointment in appointments.items():
        mine = received.get(appointment_id)
        last = max(mine, key=lambda n: int(n["id"]))["appointment"] if mine else None
        if last is None:
            problems.append(f"appointment {appointment_id}: never notified")
        elif any(last[name] != appointment[name] for name in NOTIFIED):
            problems.append(f"appointment {appointment_id}: last notification is stale")
    if ctx.proxy.bad_signatures:
        problems.append(f"{ctx.proxy.bad_signatures} notifications with a bad signature")
    ctx.violations += problems


async def verify_all(ctx: Soak, lost: int) -> Findings:
    """Every check; violations are appended to the context."""
    found = Findings(lost=lost, repaired=ctx.repaired)
    await check_inbox(ctx, found)
    for status in ("received", "processing", "failed"):
        if found.inbox[status]:
            ctx.violations.append(f"{found.inbox[status]} inbox rows {status}")
    appointments = await check_appointments(ctx, found)
    await check_queues(ctx, found)
    check_notifications(ctx, found, appointments)
    found.repaired_by_all_syncs = int(await scalar(ctx.bench.dsn, REPAIRED))
    found.sandbox_rate_limited = int(
        (await ctx.client.control("GET", "/_sandbox/stats"))["rate_limited"]
    )
    await check_replicas(ctx, found)
    if ctx.tally.duplicates_refused:
        ctx.violations.append(f"{ctx.tally.duplicates_refused} duplicate posts never acknowledged")
    return found


async def check_replicas(ctx: Soak, found: Findings) -> None:
    """Replicas never killed still run (they rode out the outage) and exit 0 on SIGTERM."""
    for replica in ctx.bench.services:
        if replica.url in ctx.chaos.victims:
            continue
        if replica.proc.returncode is not None:
            ctx.violations.append(f"replica {replica.url} exited ({replica.proc.returncode})")
            continue
        code = await asyncio.wait_for(replica.stop(), 30)
        found.exit_codes.append(code)
        if code != 0:
            ctx.violations.append(f"replica {replica.url} exited {code} on SIGTERM")


# --- the report ----------------------------------------------------------------------------------


@dataclass
class LogDigest:
    """Warnings and errors the replicas logged, by kind, with one sample of each error."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    def add(self, line: str) -> None:
        """Count one log line; keep the first error of a kind (path and exception)."""
        try:
            entry = json.loads(line)
            kind = f"{entry['level']} {entry['event']}"
        except (ValueError, KeyError, TypeError):
            self.counts["unstructured line"] += 1
            return
        self.counts[kind] += 1
        if entry["level"] in ("error", "critical") and kind not in self.samples:
            trace = str(entry.get("exception") or "").strip().splitlines() or [""]
            self.samples[kind] = f"{entry.get('path', '')} {trace[-1]}".strip()


def log_digest(directory: Path) -> LogDigest:
    """What every replica's log file says."""
    digest = LogDigest()
    for path in sorted(directory.glob("service-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            digest.add(line)
    return digest


@dataclass
class Report:
    """The figures of one soak and its violations."""

    options: Options
    tally: Tally
    chaos: ChaosLog
    found: Findings
    proxy: dict[str, Any]
    timings: dict[str, float]
    logs: LogDigest
    pre_repair: PreRepair
    violations: list[str]

    def summary(self) -> str:
        """The one-line result."""
        t, c, f = self.tally, self.chaos, self.found
        return (
            f"soak: {t.bookings} bookings, {t.cancels} cancels, {t.reschedules} reschedules, "
            f"{t.no_shows + t.no_show_clears} no-shows ({t.no_show_clears} cleared), "
            f"{t.duplicates} duplicates posted; {f.acknowledged} webhooks acknowledged; "
            f"{c.killed} replica killed, Postgres restarted {_times(c.postgres_restarts)}, "
            f"{c.injected(lambda s: s == 429)} 429 / {c.injected(lambda s: s >= 500)} 5xx "
            f"injected; inbox {f.inbox['processed']} processed / {f.inbox['ignored']} ignored / "
            f"{f.inbox['received'] + f.inbox['processing']} stuck / {f.inbox['failed']} failed; "
            f"appointments {f.appointments} = sandbox {f.sandbox_appointments}, mismatches "
            f"{len(f.mismatches)}; jobs stuck {f.jobs_stuck}; outbox stuck {f.outbox_stuck}"
        )

    def text(self) -> str:
        """The summary, the details and the verdict."""
        lines = [self.summary(), *self.details()]
        lines += [f"VIOLATION {v}" for v in self.violations[:50]]
        if len(self.violations) > 50:
            lines.append(f"... and {len(self.violations) - 50} more violations")
        lines.append(
            "soak: PASS" if not self.violations else f"soak: FAIL ({len(self.violations)})"
        )
        return "\n".join(lines)

    def details(self) -> list[str]:
        """Everything else worth knowing about the run."""
        t, c, f, o = self.tally, self.chaos, self.found, self.options
        timings = ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items())
        logs = ", ".join(f"{k} x{n}" for k, n in self.logs.counts.most_common(10)) or "none"
        samples = "; ".join(f"{k}: {v}" for k, v in self.logs.samples.items()) or "none"
        bursts_429 = sum(1 for status, _ in c.bursts if status == 429)
        return [
            f"  run: {o.seconds:.0f} s, {o.professionals} professionals, {o.replicas} replicas, "
            f"{o.rate:g} ops/s each, seed {o.seed}",
            f"  timings (s): {timings}",
            f"  chaos: {'; '.join(c.events)}",
            f"  Postgres outage {c.outage_seconds:.1f} s, live replicas ready "
            f"{c.recovery_seconds:.1f} s after it came back; {c.replaced} replacement replica; "
            f"{len(c.bursts)} bursts ({bursts_429} of 429, {len(c.bursts) - bursts_429} of 5xx), "
            f"{c.unconsumed} left unconsumed; the sandbox counted {f.sandbox_rate_limited} 429s",
            f"  proxy: webhook answers {dict(sorted(self.proxy['statuses'].items()))}, "
            f"{self.proxy['refused']} refused connects failed over, "
            f"{self.proxy['broken']} broken exchanges answered 502",
            f"  deliveries: {t.first_attempts_failed} first attempts failed, "
            f"{self.proxy['dropped']} dropped at the proxy on purpose (every retry), {f.lost} "
            f"others lost after the sandbox's retries; {f.duplicates_counted} duplicates counted",
            f"  inbox ignored by reason: {dict(f.ignored_reasons)}",
            f"  before the repairing sync: {self.pre_repair.differing} differences from the "
            f"sandbox, allowed only in the {self.pre_repair.touched} bookings a dropped or lost "
            f"delivery was about",
            f"  syncs repaired {f.repaired_by_all_syncs} appointment changes in all "
            f"(the final full syncs {f.repaired}); sync logs left running "
            f"{f.logs_left_running}; outbox failed {f.outbox_failed}",
            f"  notifications: {f.notifications} received, {len(f.notification_problems)} problems",
            f"  replicas exit codes on SIGTERM: {f.exit_codes}",
            f"  replica warnings/errors: {logs}",
            f"  replica errors, first of each kind: {samples}",
        ]


def _times(n: int) -> str:
    """'once', 'twice', 'N times'."""
    return {0: "0 times", 1: "once", 2: "twice"}.get(n, f"{n} times")


# --- the entry points ----------------------------------------------------------------------------


async def _timed(ctx: Soak, label: str, step: Awaitable[T]) -> T:
    """Run one phase and record how long it took."""
    began = time.monotonic()
    result = await step
    ctx.timings[label] = time.monotonic() - began
    return result


async def _phases(ctx: Soak) -> Findings:
    """Deploy, connect, run with chaos, settle, verify."""
    await _timed(ctx, "deploy", start_deployment(ctx))
    await _timed(ctx, "connect", connect_all(ctx))
    await _timed(ctx, "workload", run_workload(ctx))
    lost = await _timed(ctx, "settle", settle(ctx))
    return await _timed(ctx, "verify", verify_all(ctx, lost))


async def run_soak(options: Options) -> Report:
    """The whole soak on a fresh stack; the report carries every violation."""
    began = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        Proxy() as proxy,
        stack() as bench,
        aiohttp.ClientSession(timeout=timeout) as session,
    ):
        ctx = Soak(options, bench, proxy, session)
        found = await _phases(ctx)
        logs = log_digest(bench.directory)
    ctx.timings["total"] = time.monotonic() - began
    figures = {
        "statuses": proxy.webhooks.statuses,
        "refused": proxy.refused,
        "broken": proxy.broken,
        "dropped": len(proxy.webhooks.dropped),
    }
    return Report(
        options, ctx.tally, ctx.chaos, found, figures, ctx.timings, logs, ctx.pre_repair,
        ctx.violations,
    )  # fmt: skip


def parse_options(argv: Iterable[str] | None = None) -> Options:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--professionals", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--rate", type=float, default=4.0, help="operations/s per professional")
    parser.add_argument("--seed", type=int, default=Options.seed)
    args = parser.parse_args(list(argv) if argv is not None else None)
    return Options(args.seconds, args.professionals, args.replicas, args.rate, args.seed)


def main(argv: Iterable[str] | None = None) -> int:
    """Run, print the report; non-zero on any violation."""
    report = asyncio.run(run_soak(parse_options(argv)))
    print(report.text())
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
