"""Appointments and clients as the main app reads them."""

from __future__ import annotations

from aiohttp import web

from calendly_svc.apply.domain import normalize_email
from calendly_svc.apply.erasure import erase_client
from calendly_svc.apply.tombstones import tombstones
from calendly_svc.errors import NotFound
from calendly_svc.http import responses, schemas
from calendly_svc.http.operations import DB, Reply, operation
from calendly_svc.http.pagination import cursor_time, decode_cursor, id_cursor, page_of
from calendly_svc.http.validation import path_int, query
from calendly_svc.http.views import appointment_model, client_view
from calendly_svc.keys import DEPS, USER_ID
from calendly_svc.store import queries

routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


def _filters(params: schemas.AppointmentsQuery) -> queries.AppointmentFilter:
    """The query's filters and keyset position."""
    before_at, before_id = None, None
    if params.cursor:
        raw_at, before_id = decode_cursor(params.cursor, (str, int))
        before_at = cursor_time(raw_at)
    return queries.AppointmentFilter(
        status=params.status, start_from=params.start_from, start_to=params.start_to,
        updated_after=params.updated_after, before_updated_at=before_at, before_id=before_id,
        limit=params.limit + 1,
    )  # fmt: skip


async def _with_clients(
    conn: queries.Conn, rows: list[queries.Appointment]
) -> dict[int, queries.Client]:
    """The clients of these appointments, by id."""
    ids = sorted({row.client_id for row in rows if row.client_id is not None})
    return {client.id: client for client in await queries.get_clients(conn, ids)}


@routes.get(f"{PREFIX}/appointments")
@operation(
    id="listAppointments", summary="The user's appointments, newest change first",
    tag="appointments", query=schemas.AppointmentsQuery, responses={200: responses.AppointmentPage},
    errors=DB,
)  # fmt: skip
async def list_appointments(request: web.Request) -> web.Response:
    """The user's appointments, newest change first."""
    params = query(request, schemas.AppointmentsQuery)
    async with request.app[DEPS].pool.acquire() as conn:
        rows = await queries.list_appointments(conn, request[USER_ID], _filters(params))
        page, cursor = page_of(rows, params.limit, lambda row: (row.updated_at.isoformat(), row.id))
        clients = await _with_clients(conn, page)
    items = [appointment_model(r, clients.get(r.client_id or 0)) for r in page]
    return responses.reply(responses.AppointmentPage(items=items, next_cursor=cursor))


@routes.get(f"{PREFIX}/appointments/{{appointment_id}}")
@operation(
    id="getAppointment", summary="One appointment", tag="appointments",
    path={"appointment_id": "the appointment's id"}, responses={200: responses.Appointment},
    errors=[{404: ["not_found", "appointment_not_found"]}, DB],
)  # fmt: skip
async def get_appointment(request: web.Request) -> web.Response:
    """One appointment; another user's is not found."""
    appointment_id = path_int(request, "appointment_id")
    async with request.app[DEPS].pool.acquire() as conn:
        row = await queries.get_appointment(conn, appointment_id, request[USER_ID])
        if row is None:
            raise NotFound("appointment not found", code="appointment_not_found")
        clients = await _with_clients(conn, [row])
    return responses.reply(appointment_model(row, clients.get(row.client_id or 0)))


@routes.get(f"{PREFIX}/clients")
@operation(
    id="listClients", summary="The user's clients in creation order", tag="appointments",
    query=schemas.ClientsQuery, responses={200: responses.ClientPage}, errors=DB,
)  # fmt: skip
async def list_clients(request: web.Request) -> web.Response:
    """The user's clients (optionally by email), in creation order."""
    params = query(request, schemas.ClientsQuery)
    after = id_cursor(params.cursor)
    async with request.app[DEPS].pool.acquire() as conn:
        rows = await queries.list_clients(
            conn, request[USER_ID], normalize_email(params.email), after, params.limit + 1
        )
    page, cursor = page_of(rows, params.limit, lambda row: (row.id,))
    items = [client_view(c) for c in page]
    return responses.reply(responses.ClientPage(items=items, next_cursor=cursor))


@routes.delete(f"{PREFIX}/clients/{{client_id}}")
@operation(
    id="eraseClient",
    summary="Erase a client and everything stored of them (LGPD/GDPR); the invitees' URIs are "
    "kept only as keyed hashes, so no sync, redelivery or replay brings them back",
    tag="appointments", path={"client_id": "the client's id"},
    responses={200: Reply("What was erased, counted per kind", responses.ClientErasure)},
    errors=[{404: ["not_found", "client_not_found"]}, DB],
)  # fmt: skip
async def delete_client(request: web.Request) -> web.Response:
    """Erase a client and everything stored of them; another user's client is not found."""
    client_id, user_id = path_int(request, "client_id"), request[USER_ID]
    deps = request.app[DEPS]
    async with deps.pool.acquire() as conn, conn.transaction():
        client = await queries.get_user_client(conn, client_id, user_id)
        if client is None:
            raise NotFound("client not found", code="client_not_found")
        integration = await queries.get_integration_by_user(conn, user_id)
        if integration is not None:
            await queries.lock_integration_apply(conn, integration.id)
        erased = await erase_client(conn, tombstones(deps.settings), client, integration)
    counts = responses.ErasedCounts(**erased)
    return responses.reply(responses.ClientErasure(client_id=client_id, erased=counts))
