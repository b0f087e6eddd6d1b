"""GET /api/v1/openapi.json: the service's OpenAPI 3.1 document (no credentials)."""

from __future__ import annotations

import json

from aiohttp import web

from calendly_svc.openapi import OPENAPI_PATH, build_document

routes = web.RouteTableDef()
# bytes: built once at import from static data, immutable, the same for every app
DOCUMENT = json.dumps(build_document(), separators=(",", ":")).encode()


@routes.get(OPENAPI_PATH)
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document describing every route."""
    return web.Response(body=DOCUMENT, content_type="application/json")
