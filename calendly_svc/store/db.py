"""Connection pool and schema migrations (yoyo)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg
import structlog
from yoyo import get_backend, read_migrations

MIGRATIONS_DIR: Traversable = resources.files("calendly_svc") / "_migrations"
log = structlog.get_logger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Decode json/jsonb as Python objects."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def keep_session(_conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (one round trip per acquire saved).

    Safe because pooled connections never keep session state: advisory locks are transaction
    scoped, LISTEN uses its own connection, nothing SETs. asyncpg still rolls back an open
    transaction and drops listeners on release.
    """


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections speak JSON."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=keep_session
    )
    return pool


def _yoyo_url(dsn: str) -> str:
    """yoyo picks its driver from the scheme; use psycopg 3."""
    return "postgresql+psycopg://" + dsn.split("://", 1)[1]


@contextlib.contextmanager
def migrations_path(directory: Traversable = MIGRATIONS_DIR) -> Iterator[Path]:
    """The shipped migrations as a filesystem path (yoyo reads paths) for the block's duration."""
    with resources.as_file(directory) as path:
        yield path


def migration_ids(directory: Traversable = MIGRATIONS_DIR) -> frozenset[str]:
    """Ids of every migration shipped with the code."""
    with migrations_path(directory) as path:
        return frozenset(m.id for m in read_migrations(str(path)))


def apply_migrations_sync(dsn: str, directory: Traversable = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations under yoyo's lock; returns the ids applied."""
    backend = get_backend(_yoyo_url(dsn))
    try:
        with migrations_path(directory) as path, backend.lock():
            pending = backend.to_apply(read_migrations(str(path)))
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()


async def apply_migrations(dsn: str) -> list[str]:
    """Apply pending migrations without blocking the event loop."""
    applied = await asyncio.to_thread(apply_migrations_sync, dsn)
    log.info("migrations_applied", count=len(applied), ids=applied)
    return applied


async def missing_migrations(conn: asyncpg.Connection, expected: frozenset[str]) -> set[str]:
    """Migrations the code expects that the database has not applied."""
    try:
        rows = await conn.fetch("SELECT migration_id FROM _yoyo_migration")
    except asyncpg.UndefinedTableError:
        return set(expected)
    return set(expected) - {row["migration_id"] for row in rows}
