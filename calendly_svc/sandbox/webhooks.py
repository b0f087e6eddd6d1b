"""Webhook signing, inline delivery and background retries.

Calendly (FACTS §9): a delivery answered with anything but 2xx (or not answered) is retried
with exponential backoff; `retry_started_at` marks the first failure since the last success and
a success clears it. When nothing has succeeded for the retry horizon (24 h; the fault
`webhook_retry_horizon_seconds` shortens it) the subscription becomes `disabled` and gets no
more deliveries. 410 deletes it at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .models import WebhookSubscription, iso, utcnow
from .scopes import receives
from .state import SANDBOX_STATE, SandboxState

SIGNATURE_HEADER = "Calendly-Webhook-Signature"
DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=15)
RETRY_FIRST_DELAY = 1.0
RETRY_MAX_DELAY = 60.0


def signature_header(key: str, body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256(key, "{t}." + body)>`."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(slots=True)
class Delivery:
    """Outcome of the first delivery attempt to one subscription."""

    subscription: str
    event: str
    status: int | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        """The delivery as reported by control endpoints."""
        return {
            "subscription": self.subscription,
            "event": self.event,
            "status": self.status,
            "error": self.error,
        }


@dataclass(slots=True, frozen=True)
class Notification:
    """One webhook event: name, creation time and payload (snapshotted at dispatch)."""

    event: str
    created_at: str
    payload: dict[str, Any]


def succeeded(status: int | None) -> bool:
    """Only 2xx counts as delivered."""
    return status is not None and 200 <= status < 300


class WebhookDispatcher:
    """Delivers notifications to matching subscriptions; owns the retry tasks."""

    def __init__(self, state: SandboxState, session: aiohttp.ClientSession) -> None:
        self.state = state
        self.session = session
        self.tasks: set[asyncio.Task[None]] = set()

    def matching(
        self, event: str, hosts: tuple[str, ...], org_uuid: str
    ) -> list[WebhookSubscription]:
        """Active subscriptions for event whose scope covers a host / the organization."""
        return [
            sub
            for sub in self.state.subscriptions.values()
            if sub.state == "active"
            and event in sub.events
            and _in_scope(sub, hosts, org_uuid)
            and receives(sub.grant_scopes, event)
        ]

    async def dispatch(
        self, event: str, payload: dict[str, Any], hosts: tuple[str, ...], org_uuid: str
    ) -> list[Delivery]:
        """Deliver one event to every matching subscription concurrently (once each)."""
        note = Notification(event, iso(utcnow()), payload)
        subs = self.matching(event, hosts, org_uuid)
        return list(await asyncio.gather(*(self._first_attempt(sub, note) for sub in subs)))

    async def _first_attempt(self, sub: WebhookSubscription, note: Notification) -> Delivery:
        """Deliver once inline; schedule retries when it failed with anything but 410."""
        uri = self.state.uri("webhook_subscriptions", sub.uuid)
        status, error = await self._send(sub, note)
        self._record(sub, status)
        if not succeeded(status) and status != 410:
            self._spawn(self._retry(sub, note))
        return Delivery(uri, note.event, status, error)

    async def _send(
        self, sub: WebhookSubscription, note: Notification
    ) -> tuple[int | None, str | None]:
        """POST the signed envelope; returns (status, error)."""
        body = json.dumps(_envelope(self.state, sub, note)).encode()
        key = sub.signing_key or self.state.config.webhook_signing_key
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(key, body, int(time.time())),
        }
        try:
            async with self.session.post(
                sub.callback_url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(self, sub: WebhookSubscription, status: int | None) -> None:
        """Update counters; 410 deletes the subscription at once; failing past the retry
        horizon disables it."""
        if succeeded(status):
            sub.deliveries_ok += 1
            sub.retry_started_at = None
            return
        sub.deliveries_failed += 1
        if status == 410:
            self.state.subscriptions.pop(sub.uuid, None)
            return
        now = utcnow()
        if sub.retry_started_at is None:
            sub.retry_started_at = now
        if self._horizon_left(sub) <= 0 and sub.state == "active":
            sub.state, sub.updated_at = "disabled", now

    def _horizon_left(self, sub: WebhookSubscription) -> float:
        """Seconds until the subscription's failures reach the retry horizon."""
        horizon = self.state.faults.webhook_retry_horizon_seconds
        if sub.retry_started_at is None:
            return horizon
        return horizon - (utcnow() - sub.retry_started_at).total_seconds()

    def _live(self, sub: WebhookSubscription) -> bool:
        """Still subscribed (not deleted) and not disabled."""
        return self.state.subscriptions.get(sub.uuid) is sub and sub.state == "active"

    async def _retry(self, sub: WebhookSubscription, note: Notification) -> None:
        """Retry with exponential backoff until delivered, or until the horizon disables the
        subscription (the last attempt falls on the horizon)."""
        delay = RETRY_FIRST_DELAY
        while True:
            await asyncio.sleep(max(0.0, min(delay, self._horizon_left(sub))))
            if not self._live(sub):
                return
            status, _ = await self._send(sub, note)
            self._record(sub, status)
            if succeeded(status) or not self._live(sub):
                return
            delay = min(delay * 2, RETRY_MAX_DELAY)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a background task tracked for shutdown."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """Cancel and await every background task."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()


def _in_scope(sub: WebhookSubscription, hosts: tuple[str, ...], org_uuid: str) -> bool:
    """Organization scope covers its org; user scope covers its user (any host of the event)."""
    if sub.scope == "organization":
        return sub.org_uuid == org_uuid
    if sub.scope == "user":
        return sub.user_uuid in hosts
    return False


def _envelope(state: SandboxState, sub: WebhookSubscription, note: Notification) -> dict[str, Any]:
    """The delivered body: event, created_at, created_by, payload."""
    return {
        "event": note.event,
        "created_at": note.created_at,
        "created_by": state.uri("users", sub.creator_uuid),
        "payload": note.payload,
    }


async def deliver(
    state: SandboxState,
    event: str,
    payload: dict[str, Any],
    hosts: tuple[str, ...],
    org_uuid: str,
) -> list[dict[str, Any]]:
    """Dispatch through the running dispatcher; no-op (empty list) when none is running."""
    if state.dispatcher is None:
        return []
    deliveries = await state.dispatcher.dispatch(event, payload, hosts, org_uuid)
    return [delivery.to_json() for delivery in deliveries]


async def webhook_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one ClientSession and the retry task set for the app's lifetime."""
    state = app[SANDBOX_STATE]
    async with aiohttp.ClientSession(timeout=DELIVERY_TIMEOUT) as session:
        state.dispatcher = WebhookDispatcher(state, session)
        try:
            yield
        finally:
            await state.dispatcher.close()
            state.dispatcher = None
