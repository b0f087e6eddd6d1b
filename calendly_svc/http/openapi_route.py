"""GET /api/v1/openapi.json: the service's OpenAPI 3.1 document (no credentials)."""

from __future__ import annotations

from aiohttp import web

from calendly_svc.http import responses
from calendly_svc.http.operations import Reply, operation

routes = web.RouteTableDef()
OPENAPI_PATH = "/api/v1/openapi.json"
# create_app builds it from its router (calendly_svc/http/openapi.py): static, the same for
# every app
OPENAPI_DOCUMENT = web.AppKey("openapi_document", bytes)


@routes.get(OPENAPI_PATH)
@operation(
    id="openapi", summary="This OpenAPI document", tag="health",
    responses={200: Reply("The document", responses.OpenApiDocument)},
)  # fmt: skip
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document describing every route."""
    return web.Response(body=request.app[OPENAPI_DOCUMENT], content_type="application/json")
