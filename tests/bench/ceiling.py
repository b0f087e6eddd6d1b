"""The ceiling for ingest: a bare aiohttp + asyncpg endpoint that only inserts the body.

`python -m tests.bench.ceiling DSN PORT`
"""

from __future__ import annotations

import sys

import asyncpg
from aiohttp import web

POOL = web.AppKey("pool", asyncpg.Pool)


async def insert(request: web.Request) -> web.Response:
    """Store the raw body as text (as the service does), answer 200."""
    body = await request.read()
    async with request.app[POOL].acquire() as conn:
        await conn.execute("INSERT INTO bench_ceiling (body) VALUES ($1::text)", body.decode())
    return web.json_response({"ok": True})


async def keep_session(_conn: asyncpg.Connection) -> None:
    """No reset query on release, as in the service's pool."""


async def pool_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    """One pool, with the same size and release behaviour as the service's. The table is left
    out of autovacuum: it is measured in slices between the service's, and its vacuum and
    analyze (about 8 s) would otherwise run during those."""
    app[POOL] = await asyncpg.create_pool(sys.argv[1], min_size=2, max_size=10, reset=keep_session)
    async with app[POOL].acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_ceiling "
            "(id bigserial PRIMARY KEY, body text NOT NULL) WITH (autovacuum_enabled = false)"
        )
    yield
    await app[POOL].close()


def main() -> None:
    """Serve until killed."""
    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/ingest", insert)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)


if __name__ == "__main__":
    main()
