"""Routing form submissions, as every connected member of the organization reads them."""

from __future__ import annotations

from aiohttp import web

from calendly_svc.http import responses, schemas
from calendly_svc.http.operations import DB, NOT_CONNECTED, operation
from calendly_svc.http.pagination import id_cursor, page_of
from calendly_svc.http.validation import query
from calendly_svc.integrations import lookup
from calendly_svc.keys import DEPS, USER_ID
from calendly_svc.store import queries

routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


def submission_view(row: queries.StoredSubmission) -> responses.RoutingFormSubmission:
    """A routing form submission."""
    return responses.RoutingFormSubmission(
        id=row.id,
        calendly_uri=row.uri,
        routing_form=row.routing_form_uri,
        questions_and_answers=row.questions_and_answers,
        submitter=row.submitter_uri,
        result=row.result,
        created_at=row.calendly_created_at or row.created_at,
    )


@routes.get(f"{PREFIX}/routing-form-submissions")
@operation(
    id="listRoutingFormSubmissions",
    summary="Routing form submissions of the user's Calendly organization, newest first",
    tag="routing-forms", query=schemas.RoutingFormSubmissionsQuery,
    responses={200: responses.RoutingFormSubmissionPage}, errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def list_submissions(request: web.Request) -> web.Response:
    """The submissions of the user's Calendly organization, newest first."""
    params = query(request, schemas.RoutingFormSubmissionsQuery)
    deps = request.app[DEPS]
    # Organization data is for connected members: a disconnected integration sees none of it.
    integration = await lookup.live_integration(deps, request[USER_ID])
    before = id_cursor(params.cursor)
    organization = integration.calendly_organization_uri
    rows: list[queries.StoredSubmission] = []
    if organization is not None:
        async with deps.pool.acquire() as conn:
            rows = await queries.list_routing_form_submissions(
                conn, organization, before, params.limit + 1
            )
    page, cursor = page_of(rows, params.limit, lambda row: (row.id,))
    items = [submission_view(r) for r in page]
    page_body = responses.RoutingFormSubmissionPage(items=items, next_cursor=cursor)
    return responses.reply(page_body)
