"""The apply path's lookups stay index probes while tables grow faster than statistics do."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from calendly_svc.store import queries
from calendly_svc.store.db import create_pool
from calendly_svc.store.queries_loader import load_queries

ROWS = 5000
HOST = "https://api.calendly.com/scheduled_events"

# A fresh deployment's first minutes: thousands of rows and no ANALYZE yet (autovacuum's first
# pass is up to a minute away), so the planner knows the sizes but not the data.
SEED = [
    """INSERT INTO integrations (user_id, status, calendly_user_uri)
    VALUES (1, 'disconnected', 'https://api.calendly.com/users/PLANS')""",
    """INSERT INTO calendly_invitees (
        integration_id, uri, event_uri, status, rescheduled, old_invitee_uri,
        questions_and_answers, no_show, calendly_updated_at
    )
    SELECT 1, $1::text || '/E' || n || '/invitees/I' || n, $1::text || '/E' || n, 'active', false,
           CASE WHEN n % 10 = 0 THEN $1::text || '/E' || (n - 1) || '/invitees/I' || (n - 1) END,
           '[]', false, now()
    FROM generate_series(1, $2::integer) AS n""",
    """INSERT INTO webhook_events (integration_id, event, dedup_key, body)
    SELECT 1, 'invitee.created', 'k' || n, '{}' FROM generate_series(1, $1::integer) AS n""",
    "INSERT INTO webhook_queue (id, integration_id) SELECT id, 1 FROM webhook_events",
]


def _uri(n: int) -> str:
    """A seeded invitee's URI."""
    return f"{HOST}/E{n}/invitees/I{n}"


def _state(n: int) -> queries.InviteeState:
    """A seeded invitee's state, as a delivery would report it."""
    fields = dict.fromkeys(queries.InviteeState.__dataclass_fields__)
    fields.update(uri=_uri(n), event_uri=f"{HOST}/E{n}", status="active", rescheduled=False)
    fields.update(questions_and_answers=[], no_show=False, calendly_updated_at=datetime.now(UTC))
    return queries.InviteeState(**fields)


async def _seed(conn: asyncpg.Connection) -> None:
    """An integration, its invitees and a queued backlog of deliveries."""
    await conn.execute(SEED[0])
    await conn.execute(SEED[1], HOST, ROWS)
    await conn.execute(SEED[2], ROWS)
    await conn.execute(SEED[3])


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a database seeded with an unanalyzed backlog and invitee table."""
    pool = await create_pool(database_url)
    async with pool.acquire() as conn:
        await _seed(conn)
    yield pool
    await pool.close()


def _walk(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a JSON plan."""
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


async def _nodes(conn: asyncpg.Connection, name: str, *args: Any) -> list[tuple[str, str]]:
    """(node type, index or relation) of the scans, hashes and sorts the query would run now."""
    text = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {load_queries()[name]}", *args)
    root = json.loads(text) if isinstance(text, str) else text
    return [
        (node["Node Type"], node.get("Index Name") or node.get("Relation Name", ""))
        for node in _walk(root[0]["Plan"])
        if "Relation Name" in node or node["Node Type"].startswith(("Hash", "Sort"))
    ]


async def test_known_invitees_probes_indexes_and_finds_links_both_ways(
    pool: asyncpg.Pool,
) -> None:
    uris = [_uri(n) for n in (1, 9, 20, 2500)] + [f"{HOST}/E0/invitees/unknown"]
    async with pool.acquire() as conn:
        found = await queries.known_invitees(conn, 1, uris)
        nodes = await _nodes(conn, "known_invitees", 1, uris)
    assert {_uri(1), _uri(9), _uri(20), _uri(2500)} == found
    assert nodes == [
        ("Index Only Scan", "calendly_invitees_pkey"),
        ("Index Only Scan", "calendly_invitees_old_idx"),
        ("Index Only Scan", "calendly_invitees_new_idx"),
    ]


async def test_upsert_invitees_probes_indexes_for_links(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        linked = dataclasses.replace(_state(9), old_invitee_uri=_uri(8), new_invitee_uri=_uri(10))
        nodes = await _nodes(conn, "upsert_invitees", 1, queries._records([linked]))
    probes = [n for n in nodes if n[1].startswith("calendly_invitees_")]
    assert probes == [
        ("Index Scan", "calendly_invitees_pkey"),
        ("Index Scan", "calendly_invitees_old_idx"),
        ("Index Scan", "calendly_invitees_new_idx"),
    ]


async def test_claim_walks_the_backlog_in_order_without_sorting_it(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():  # planned as the claim is, after lock_inbox_claims
            await conn.execute(load_queries()["lock_inbox_claims"])
            nodes = await _nodes(conn, "claim_webhook_events", "w", 50, 30.0)
        claimed = await queries.claim_webhook_events(conn, "w", 50, 30.0)
    assert list(range(1, 51)) == [row.id for row in claimed]
    assert ("Index Scan", "webhook_queue_pkey") in nodes
    assert [n for n in nodes if n[0] in ("Sort", "Seq Scan", "Bitmap Heap Scan")] == []


async def test_invitee_lookups_are_planned_at_each_call(pool: asyncpg.Pool) -> None:
    # a prepared statement could switch to a generic plan made while the table was small
    async with pool.acquire() as conn:
        for _ in range(8):
            await queries.known_invitees(conn, 1, [_uri(1)])
            await queries.upsert_invitees(conn, 1, [_state(1)])
        kept = await conn.fetch("SELECT statement FROM pg_prepared_statements")
    texts = " ".join(row["statement"] for row in kept)
    assert (
        load_queries()["known_invitees"] in texts,
        load_queries()["upsert_invitees"] in texts,
    ) == (False, False)


# each inbox statement with arguments of the shape the worker and the API pass
INBOX_STATEMENTS: list[tuple[str, tuple[Any, ...]]] = [
    ("finish_webhook_event", (7, "w", "processed", None)),
    ("finish_webhook_events", ("w", [7, 8], ["processed", "ignored"], [None, "stale_state"])),
    ("heartbeat_webhook_events", ("w", [7, 8])),
    ("fail_webhook_event", (7, "w", "boom", 5, 1.0)),
    ("release_webhook_events", ("w",)),
    ("replay_webhook_event", (7, 1)),
]


@pytest.mark.parametrize("vacuumed_empty", [False, True])
async def test_inbox_statements_reach_rows_through_primary_keys(
    database_url: str, vacuumed_empty: bool
) -> None:
    # the queue empties whenever the workers keep up; autovacuum then records it as empty, and
    # the next burst fills it faster than autovacuum's next analyze
    pool = await create_pool(database_url)
    async with pool.acquire() as conn:
        if vacuumed_empty:
            await conn.execute("VACUUM ANALYZE webhook_queue")
            await conn.execute("VACUUM ANALYZE webhook_events")
        await _seed(conn)
        await conn.execute("UPDATE webhook_queue SET locked_by = 'w' WHERE id < 60")
        plans = {name: await _nodes(conn, name, *args) for name, args in INBOX_STATEMENTS}
    await pool.close()
    scans = {name: sorted({n for n in ns if n[0] == "Seq Scan"}) for name, ns in plans.items()}
    assert {name: [] for name in plans} == scans


# 20,000 finished rows of each table under retention
RETAINED = {
    "purge_webhook_events": """INSERT INTO webhook_events (integration_id, event, dedup_key, body,
        status) SELECT 1, 'invitee.created', 'k' || g, repeat('x', 1000), 'processed'
        FROM generate_series(1, 20000) g""",
    "purge_sync_jobs": """INSERT INTO sync_jobs (integration_id, trigger, status, finished_at)
        SELECT 1, 'periodic', 'succeeded', now() FROM generate_series(1, 20000) g""",
    "purge_sync_logs": """INSERT INTO sync_logs (integration_id, trigger, status, window_start,
        window_end, notes) SELECT 1, 'periodic', 'succeeded', now(), now(), '[]'
        FROM generate_series(1, 20000) g""",
    "purge_outbox": """INSERT INTO outbox (user_id, appointment_id, type, payload, status)
        SELECT 1, g, 'appointment.created', '{}', 'delivered' FROM generate_series(1, 20000) g""",
}


@pytest.mark.parametrize("analyzed", [False, True])
@pytest.mark.parametrize("purge", sorted(RETAINED))
async def test_retention_reads_only_the_oldest_rows(
    database_url: str, purge: str, analyzed: bool
) -> None:
    # a pass reaches its table's rows through the primary key, whatever the statistics say
    pool = await create_pool(database_url)
    async with pool.acquire() as conn:
        await conn.execute(SEED[0])
        await conn.execute(RETAINED[purge])
        if analyzed:
            await conn.execute("ANALYZE")
        async with conn.transaction():
            await conn.execute(load_queries()["plan_purge_by_primary_key"])
            nodes = await _nodes(conn, purge, 30, 5000)
    await pool.close()
    scans = {node for node in nodes if node[0].endswith("Scan")}
    assert ({name for _, name in scans}, {kind for kind, _ in scans} - {"Index Only Scan"}) == (
        {f"{purge.removeprefix('purge_')}_pkey"},
        {"Index Scan"},
    )


@pytest.mark.parametrize("backlog", [20_000, 200_000])
async def test_outbox_claim_reads_about_what_it_takes_however_large_the_backlog(
    database_url: str, backlog: int
) -> None:
    # the main app was down: two notifications per appointment, all due again
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        """INSERT INTO outbox (user_id, appointment_id, type, payload, attempts)
        SELECT 1, n / 2, 'appointment.changed', '{}', 3 FROM generate_series(1, $1::integer) n""",
        backlog,
    )
    await conn.execute("ANALYZE outbox")
    text = await conn.fetchval(
        f"EXPLAIN (ANALYZE, FORMAT JSON) {load_queries()['claim_outbox']}", "w", 50, 30.0
    )
    plan = (json.loads(text) if isinstance(text, str) else text)[0]["Plan"]
    scans = [node for node in _walk(plan) if node["Node Type"].endswith("Scan")]
    claimed = await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'processing'")
    await conn.close()
    assert [node["Relation Name"] for node in scans if node["Node Type"] == "Seq Scan"] == []
    assert "outbox_due_idx" in {node.get("Index Name") for node in scans}
    assert claimed == 50
    # rows each scan returned, loops included: the 50 taken, the 50 passed over behind them and
    # one index probe of their appointments' older rows each
    assert sum(node["Actual Rows"] * node["Actual Loops"] for node in scans) < 400
