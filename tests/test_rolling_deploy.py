"""Rolling deploys: the next release's migration adds columns while this release still runs.
Reads select named columns and map only known fields, so nothing here notices them."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from calendly_svc.http.appointments import PREFIX
from calendly_svc.http.openapi_route import OPENAPI_PATH
from calendly_svc.store.queries_loader import load_queries
from tests.conftest import MAIN_APP_SECRET, Api, MainAppReceiver, Sandbox
from tests.helpers import appointments, book, default_event_type, eventually, settled

NEXT_RELEASE = """ALTER TABLE {table}
    ADD COLUMN zz_next_release text DEFAULT 'x',
    ADD COLUMN zz_next_release_required text NOT NULL DEFAULT 'x'"""

# every GET route and what it answers; /oauth/callback is reached by a browser with a state
UNTESTED_GETS = {f"{PREFIX}/oauth/callback"}


async def _add_a_column_to_every_table(database_url: str) -> list[str]:
    """What the next release's migration might do; returns the tables altered."""
    conn = await asyncpg.connect(database_url)
    try:
        tables = [
            row["table_name"]
            for row in await conn.fetch(
                """SELECT table_name FROM information_schema.tables
                WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
                  AND table_name NOT LIKE '%yoyo%' ORDER BY table_name"""
            )
        ]
        for table in tables:
            await conn.execute(NEXT_RELEASE.format(table=table))
    finally:
        await conn.close()
    return tables


async def _get_every_route(api: Api) -> dict[str, int]:
    """Status of every GET route (path parameters filled with the user's own rows)."""
    [appointment, *_] = await appointments(api)
    _, logs = await api.call("GET", "/sync-logs")
    job = logs["items"][0]["id"]
    _, event_types = await api.call("GET", "/event-types")
    event_type = event_types["items"][0]["id"]
    times = "start_time=2030-01-07T14:00:00Z&end_time=2030-01-07T17:00:00Z"
    paths = {
        f"{PREFIX}/auth-url": f"{PREFIX}/auth-url",
        f"{PREFIX}/status": f"{PREFIX}/status",
        f"{PREFIX}/integration": f"{PREFIX}/integration",
        f"{PREFIX}/event-types": f"{PREFIX}/event-types",
        f"{PREFIX}/sync/jobs/{{job_id}}": f"{PREFIX}/sync/jobs/{job}",
        f"{PREFIX}/sync-logs": f"{PREFIX}/sync-logs",
        f"{PREFIX}/appointments": f"{PREFIX}/appointments",
        f"{PREFIX}/appointments/{{appointment_id}}": f"{PREFIX}/appointments/{appointment['id']}",
        f"{PREFIX}/clients": f"{PREFIX}/clients",
        f"{PREFIX}/webhook-events": f"{PREFIX}/webhook-events",
        f"{PREFIX}/routing-form-submissions": f"{PREFIX}/routing-form-submissions",
        f"{PREFIX}/event-types/{{event_type_id}}/available-times": (
            f"{PREFIX}/event-types/{event_type}/available-times?{times}"
        ),
        "/healthz": "/healthz",
        "/readyz": "/readyz",
        "/metrics": "/metrics",
        OPENAPI_PATH: OPENAPI_PATH,
    }
    routes = {
        route.resource.canonical
        for route in api.client.server.app.router.routes()
        if route.method == "GET" and route.resource is not None
    }
    assert routes - UNTESTED_GETS == set(paths), "a GET route is missing from this test"
    statuses: dict[str, int] = {}
    for template, path in paths.items():
        resp = await api.client.get(path, headers=api.headers(1))
        statuses[template] = resp.status
        await resp.release()
    return statuses


async def _sync(api: Api) -> str | None:
    """Run a manual full sync; its final status."""
    status, queued = await api.call("POST", "/sync/manual", json={"full": True})
    assert status == 202, queued

    async def finished() -> str | None:
        _, job = await api.call("GET", f"/sync/jobs/{queued['job_id']}")
        return None if job["status"] in ("queued", "running") else str(job["status"])

    return await eventually(finished, within=30)


async def _booking(api: Api, control: Sandbox, start: str, email: str) -> dict[str, Any]:
    """Book through the sandbox; the delivery is applied and its appointment returned."""
    booking = await book(control, await default_event_type(control), start,
                         {"name": "Ana Lima", "email": email})  # fmt: skip
    uri = booking["invitees"][0]["uri"]
    events = await settled(api)

    async def applied() -> dict[str, Any] | None:
        found = [a for a in await appointments(api) if a["calendly_invitee_uri"] == uri]
        return found[0] if found else None

    appointment = await eventually(applied)
    assert appointment is not None, events
    return appointment


async def _delivered(state: MainAppReceiver, count: int) -> bool:
    """Whether the main app received `count` notifications."""
    return len(state.received) >= count


async def test_a_column_added_by_the_next_release_breaks_nothing(
    start_service: Callable[..., Awaitable[Api]],
    control: Sandbox,
    database_url: str,
    main_app: tuple[MainAppReceiver, str],
) -> None:
    """The service runs (statements prepared, pools warm), then every table gets a nullable and
    a NOT NULL column with a default: the API, a webhook, a sync and a notification still work."""
    state, url = main_app
    api = await start_service(
        main_app_webhook_url=url, main_app_webhook_secret=MAIN_APP_SECRET, worker_poll_seconds=0.2
    )
    await api.connect()
    first = await _booking(api, control, "2030-01-07T10:00:00Z", "ana@example.com")
    before = (await _sync(api), await _get_every_route(api))
    tables = await _add_a_column_to_every_table(database_url)
    second = await _booking(api, control, "2030-01-08T10:00:00Z", "bia@example.com")
    synced = await _sync(api)
    after = await _get_every_route(api)
    delivered = await eventually(lambda: _delivered(state, 2))
    events = await settled(api)
    assert "integrations" in tables
    assert before == ("succeeded", dict.fromkeys(before[1], 200))
    assert (synced, after) == ("succeeded", dict.fromkeys(after, 200))
    assert (first["status"], second["status"]) == ("confirmed", "confirmed")
    assert {e["status"] for e in events} == {"processed"}
    assert delivered
    assert [n["appointment"]["id"] for n in state.received] == [first["id"], second["id"]]


async def test_no_query_returns_a_column_it_does_not_name(database_url: str) -> None:
    """Every named query selects named columns: after the next release's columns are added, none
    returns them (a `SELECT *` or `RETURNING *` would)."""
    await _add_a_column_to_every_table(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        returned = {}
        for name, sql in load_queries().items():
            statement = await conn.prepare(sql)
            returned[name] = [a.name for a in statement.get_attributes()]
    finally:
        await conn.close()
    leaking = sorted(name for name, columns in returned.items() if "zz_next_release" in columns)
    assert leaking == []


def test_every_insert_names_its_columns() -> None:
    """No INSERT relies on the table's column order (a new column would shift it)."""
    unnamed = [
        name
        for name, sql in load_queries().items()
        for insert in re.finditer(r"INSERT INTO \w+(?: AS \w+)?\s*(\S)", sql)
        if insert.group(1) != "("
    ]
    assert unnamed == []
