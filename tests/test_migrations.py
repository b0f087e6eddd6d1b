"""Every migration rolls back, and the schema comes back the same when re-applied."""

from __future__ import annotations

import asyncio

import asyncpg
from yoyo import get_backend, read_migrations

from calendly_svc.store.db import _yoyo_url, apply_migrations_sync, migrations_path

SCHEMA = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = 'public'
UNION ALL
SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
ORDER BY 1, 2, 3
"""


def _roll_back(dsn: str, ids: list[str]) -> list[str]:
    """Roll back these migrations (newest first); returns the ids still applied afterwards."""
    backend = get_backend(_yoyo_url(dsn))
    try:
        with migrations_path() as path, backend.lock():
            migrations = read_migrations(str(path))
            chosen = backend.to_rollback(migrations).filter(lambda m: m.id in ids)
            backend.rollback_migrations(chosen)
        return [m.id for m in backend.to_rollback(migrations)][::-1]
    finally:
        backend.connection.close()


async def _schema(dsn: str) -> list[tuple[str, str, str]]:
    """Tables, columns and indexes of the public schema (yoyo's own tables left out)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(SCHEMA)
    finally:
        await conn.close()
    return [tuple(row) for row in rows if not row[0].startswith(("_yoyo", "yoyo"))]


async def test_each_migration_rolls_back_completely(database_url: str) -> None:
    """Rolling back the newest k migrations and re-applying them gives the same schema; a
    rollback that left something behind makes the re-apply fail."""
    with migrations_path() as path:
        ids = [m.id for m in read_migrations(str(path))]
    migrated = await _schema(database_url)
    for k in reversed(range(len(ids))):
        left = await asyncio.to_thread(_roll_back, database_url, ids[k:])
        assert ids[:k] == left
        assert ids[k:] == await asyncio.to_thread(apply_migrations_sync, database_url)
        assert migrated == await _schema(database_url)
    assert await asyncio.to_thread(_roll_back, database_url, ids) == []
    assert await _schema(database_url) == []


# ANALYZE samples 300 rows per unit of a table's largest statistics target; while it runs it
# holds back the cleanup horizon that inbox claims depend on (migrations 0009 and 0011)
BUSY_TABLES = ["webhook_events", "appointments", "calendly_invitees", "clients"]


async def test_the_busy_tables_are_analyzed_from_a_small_sample(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        oversampled = await conn.fetch(
            """SELECT attrelid::regclass::text AS table_name, attname, attstattarget
            FROM pg_attribute
            WHERE attrelid = ANY ($1::text[]::regclass[]) AND attnum > 0 AND NOT attisdropped
              AND (attstattarget IS NULL OR attstattarget NOT BETWEEN 0 AND 10)""",
            BUSY_TABLES,
        )
    finally:
        await conn.close()
    assert [tuple(row) for row in oversampled] == []
