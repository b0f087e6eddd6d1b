"""Signed notifications to the main app: at least once, in order per appointment."""

from __future__ import annotations

import json
import time

import aiohttp
import structlog

from calendly_svc.deps import Deps
from calendly_svc.ingest.signatures import signature_header
from calendly_svc.store import queries
from calendly_svc.worker.processing import retry_delay

log = structlog.get_logger(__name__)
SIGNATURE_HEADER = "X-Calendly-Svc-Signature"


def notification_body(row: queries.OutboxRow) -> bytes:
    """The JSON the main app receives."""
    body = {
        "id": row.id,
        "type": row.type,
        "occurred_at": row.created_at.isoformat(),
        "appointment": row.payload,
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def _post(deps: Deps, body: bytes) -> str | None:
    """POST a notification; None on a 2xx, else what went wrong."""
    settings = deps.settings
    assert settings.main_app_webhook_url is not None
    assert settings.main_app_webhook_secret is not None
    key = settings.main_app_webhook_secret.get_secret_value()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(key, body, int(time.time())),
    }
    timeout = aiohttp.ClientTimeout(total=settings.outbox_timeout_seconds)
    try:
        async with deps.calendly.session.post(
            settings.main_app_webhook_url, data=body, headers=headers, timeout=timeout
        ) as resp:
            await resp.read()
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


async def deliver(deps: Deps, worker: str, row: queries.OutboxRow) -> None:
    """Send one notification; on failure retry with backoff, after the last attempt give up."""
    if not deps.settings.main_app_webhook_url:
        error: str | None = "MAIN_APP_WEBHOOK_URL is not set"
    else:
        error = await _post(deps, notification_body(row))
    async with deps.pool.acquire() as conn:
        if error is None:
            await queries.finish_outbox(conn, row.id, worker)
            deps.metrics.notifications.labels("delivered").inc()
            return
        status = await queries.fail_outbox(
            conn, row.id, worker, error, deps.settings.outbox_max_attempts,
            retry_delay(deps, row.attempts),
        )  # fmt: skip
    deps.metrics.notifications.labels("failed" if status == "failed" else "retry").inc()
    level = log.warning if status == "failed" else log.info
    level("notification_failed", outbox_id=row.id, status=status, error=error)
