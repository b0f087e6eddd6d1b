"""Every route table of the service: create_app registers them, the OpenAPI document reads them."""

from __future__ import annotations

from aiohttp import web

from calendly_svc.http import (
    actions,
    appointments,
    health,
    integration,
    openapi_route,
    routing_forms,
    sync,
    webhooks,
)

ROUTE_TABLES: tuple[web.RouteTableDef, ...] = tuple(
    module.routes
    for module in (
        health,
        integration,
        webhooks,
        appointments,
        actions,
        routing_forms,
        sync,
        openapi_route,
    )
)
