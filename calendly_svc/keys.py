"""Typed keys for everything stored on the application and on requests."""

from __future__ import annotations

import aiohttp
import asyncpg
from aiohttp import web

from calendly_svc.crypto import SecretCipher
from calendly_svc.deps import Deps
from calendly_svc.ingest.inbox_writer import InboxWriter
from calendly_svc.metrics import Metrics
from calendly_svc.settings import Settings
from calendly_svc.worker.engine import Worker

SETTINGS = web.AppKey("settings", Settings)
CIPHER = web.AppKey("cipher", SecretCipher)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
HTTP_SESSION = web.AppKey("http_session", aiohttp.ClientSession)
DEPS = web.AppKey("deps", Deps)
METRICS = web.AppKey("metrics", Metrics)
WORKER = web.AppKey("worker", Worker)
INBOX_WRITER = web.AppKey("inbox_writer", InboxWriter)
EXPECTED_MIGRATIONS = web.AppKey("expected_migrations", frozenset)

USER_ID = web.RequestKey("user_id", int)
REQUEST_ID = web.RequestKey("request_id", str)
