"""The aiohttp application factory and its resource lifecycles."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from calendly_svc.calendly.client import CalendlyClient, RetryPolicy
from calendly_svc.calendly.oauth import OAuthClient
from calendly_svc.calendly.ratelimit import RateLimiters
from calendly_svc.calendly.tokens import TokenManager
from calendly_svc.crypto import SecretCipher
from calendly_svc.deps import Deps
from calendly_svc.http import health
from calendly_svc.http.middleware import auth_middleware, error_middleware, request_id_middleware
from calendly_svc.http.openapi import document_bytes
from calendly_svc.http.openapi_route import OPENAPI_DOCUMENT
from calendly_svc.http.routes import ROUTE_TABLES
from calendly_svc.ingest.inbox_writer import InboxWriter
from calendly_svc.ingest.waker import Waker
from calendly_svc.keys import (
    CIPHER,
    DB_POOL,
    DEPS,
    EXPECTED_MIGRATIONS,
    HTTP_SESSION,
    INBOX_WRITER,
    METRICS,
    SETTINGS,
    WORKER,
)
from calendly_svc.metrics import Metrics
from calendly_svc.settings import Settings
from calendly_svc.store import channels
from calendly_svc.store.db import create_pool, migration_ids
from calendly_svc.store.receivers import ReceiverCache
from calendly_svc.worker.engine import run_until_stopped
from calendly_svc.worker.queues import standard_worker

log = structlog.get_logger(__name__)
MAX_BODY_BYTES = 1024 * 1024


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """The database pool, first in and last out."""
    settings = app[SETTINGS]
    app[DB_POOL] = await create_pool(
        settings.database_url, settings.db_pool_min_size, settings.db_pool_max_size
    )
    yield
    await app[DB_POOL].close()


async def _inbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """Batched inserts of webhook deliveries, and coalesced NOTIFYs for them."""
    waker = Waker(app[DB_POOL], channels.INBOX, app[SETTINGS].webhook_wake_interval_seconds)
    writer = app[INBOX_WRITER] = InboxWriter(app[DB_POOL], waker, app[SETTINGS].inbox_flushers)
    waker.start()
    writer.start()
    yield
    await writer.close()
    await waker.close()


def _deps(app: web.Application, session: aiohttp.ClientSession) -> Deps:
    """Wire the Calendly client, OAuth client and token manager."""
    settings = app[SETTINGS]
    oauth = OAuthClient(
        session, settings.calendly_auth_base_url, settings.calendly_client_id,
        settings.calendly_client_secret.get_secret_value(), settings.calendly_timeout_seconds,
        scopes=settings.calendly_scopes,
    )  # fmt: skip
    retry = RetryPolicy(
        max_retries=settings.calendly_max_retries,
        base_delay=settings.calendly_retry_base_seconds,
        max_reset_wait=settings.calendly_max_reset_wait_seconds,
    )
    metrics = app[METRICS]
    limiters = RateLimiters(
        settings.calendly_rate_limit, settings.calendly_rate_limit_window_seconds
    )
    client = CalendlyClient(
        session, settings.calendly_api_base_url, limiters, retry,
        settings.calendly_timeout_seconds, metrics,
    )  # fmt: skip
    tokens = TokenManager(
        app[DB_POOL], app[CIPHER], oauth, settings.token_refresh_margin_seconds, metrics
    )
    return Deps(
        settings, app[DB_POOL], app[CIPHER], client, oauth, tokens, metrics, ReceiverCache()
    )


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One outbound HTTP session, with the clients and limiters built on it."""
    async with aiohttp.ClientSession(raise_for_status=False) as session:
        app[HTTP_SESSION] = session
        app[DEPS] = _deps(app, session)
        yield


async def _worker_ctx(app: web.Application) -> AsyncIterator[None]:
    """The background worker, started last and stopped first."""
    if not app[SETTINGS].worker_enabled:
        yield
        return
    worker = app[WORKER] = standard_worker(app[DEPS])
    stop = await run_until_stopped(worker, app[SETTINGS].worker_shutdown_grace_seconds)
    yield
    await stop()


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open and close with its lifecycle."""
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware, auth_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[CIPHER] = SecretCipher(settings.token_encryption_key)
    app[METRICS] = Metrics()
    app[EXPECTED_MIGRATIONS] = migration_ids()
    health.install(app)
    app.cleanup_ctx.append(_pool_ctx)
    app.cleanup_ctx.append(_inbox_ctx)
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(_worker_ctx)
    for table in ROUTE_TABLES:
        app.add_routes(table)
    app[OPENAPI_DOCUMENT] = document_bytes(app.router)
    return app
