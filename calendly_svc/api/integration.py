"""Routes for connecting Calendly and managing the integration and its event types."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from calendly_svc import connect, event_types, queries
from calendly_svc.api import schemas
from calendly_svc.api.middleware import classify
from calendly_svc.api.validation import body, path_int, query
from calendly_svc.deps import Deps
from calendly_svc.errors import BadRequest, not_connected
from calendly_svc.keys import DEPS, USER_ID
from calendly_svc.views import event_type_view, integration_view, status_view

routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


def _deps(request: web.Request) -> Deps:
    """The application's collaborators."""
    return request.app[DEPS]


@routes.get(f"{PREFIX}/auth-url")
async def auth_url(request: web.Request) -> web.Response:
    """A Calendly authorization URL bound to this user."""
    params = query(request, schemas.AuthUrlQuery)
    result = await connect.start_authorization(
        _deps(request), request[USER_ID], params.redirect_uri
    )
    return web.json_response(result)


@routes.post(f"{PREFIX}/oauth-callback")
async def oauth_callback(request: web.Request) -> web.Response:
    """Finish the OAuth flow for the calling user (the main app relays code and state); a
    state made for another user is refused before its code is exchanged."""
    data = await body(request, schemas.OAuthCallbackBody)
    integration = await connect.complete_authorization(
        _deps(request), data.code, data.state, request[USER_ID]
    )
    return web.json_response(integration_view(integration))


def _redirect(target: str, **params: str) -> web.HTTPFound:
    """A redirect to the frontend with parameters appended; the code must not leak onwards."""
    separator = "&" if "?" in target else "?"
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.HTTPFound(f"{target}{separator}{urlencode(params)}", headers=headers)


# What Calendly's redirect carries; the main app's page gets it unchanged.
FORWARDED_PARAMS = ("code", "state", "error", "error_description")


@routes.get(f"{PREFIX}/oauth/callback")
async def browser_callback(request: web.Request) -> web.Response:
    """Calendly redirects the browser here. Whose browser it is only the main app knows, so
    nothing is connected here: code and state go on to the main app's page, which completes
    the flow with POST /oauth-callback as its signed-in user."""
    target = _deps(request).settings.oauth_forward_url
    try:
        params = query(request, schemas.BrowserCallbackQuery)
    except Exception as exc:
        failure = classify(exc)
        if target is None or failure is None:
            raise
        raise _redirect(
            target, error="invalid_request", error_description=failure.message
        ) from None
    forwarded = {name: value for name in FORWARDED_PARAMS
                 if (value := getattr(params, name)) is not None}  # fmt: skip
    if target is not None:
        raise _redirect(target, **forwarded)
    if params.error or not params.code or not params.state:
        raise BadRequest(params.error or "code and state are required", code="authorization_failed")
    body = {"status": "authorized", "code": params.code, "state": params.state,
            "next": "the main app POSTs code and state to /api/v1/calendly/oauth-callback "
                    "with the signed-in user's X-User-Id to connect the account"}  # fmt: skip
    return web.json_response(body, headers={"Cache-Control": "no-store"})


@routes.get(f"{PREFIX}/status")
async def status(request: web.Request) -> web.Response:
    """Whether the user is connected and how the integration is doing."""
    async with _deps(request).pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, request[USER_ID])
    return web.json_response(status_view(integration))


@routes.get(f"{PREFIX}/integration")
async def get_integration(request: web.Request) -> web.Response:
    """The integration without secrets."""
    integration = await connect.live_integration(_deps(request), request[USER_ID])
    return web.json_response(integration_view(integration))


@routes.put(f"{PREFIX}/integration/toggle")
async def toggle(request: web.Request) -> web.Response:
    """Turn syncing on or off."""
    data = await body(request, schemas.ToggleBody)
    async with _deps(request).pool.acquire() as conn:
        integration = await queries.set_sync_enabled(conn, request[USER_ID], data.sync_enabled)
    return _integration_response(integration)


@routes.put(f"{PREFIX}/integration/sync-settings")
async def sync_settings(request: web.Request) -> web.Response:
    """Change any subset of the sync settings."""
    data = await body(request, schemas.SyncSettingsBody)
    async with _deps(request).pool.acquire() as conn:
        integration = await queries.update_sync_settings(conn, request[USER_ID], data.changes())
    return _integration_response(integration)


def _integration_response(integration: queries.Integration | None) -> web.Response:
    """The updated integration; None means there is no live one to update."""
    if integration is None:
        raise not_connected()
    return web.json_response(integration_view(integration))


@routes.delete(f"{PREFIX}/integration")
async def delete_integration(request: web.Request) -> web.Response:
    """Disconnect: unsubscribe, revoke, forget the secrets."""
    await connect.disconnect(_deps(request), request[USER_ID])
    return web.Response(status=204)


@routes.get(f"{PREFIX}/event-types")
async def list_event_types(request: web.Request) -> web.Response:
    """The user's event types and their mappings."""
    deps = _deps(request)
    integration = await connect.live_integration(deps, request[USER_ID])
    items = await event_types.list_event_types(deps, integration.id)
    return web.json_response({"items": [event_type_view(item) for item in items]})


@routes.post(f"{PREFIX}/event-types/refresh")
async def refresh_event_types(request: web.Request) -> web.Response:
    """Re-read every event type from Calendly."""
    deps = _deps(request)
    integration = await connect.live_integration(deps, request[USER_ID])
    counts = await event_types.refresh_event_types(deps, integration)
    items = await event_types.list_event_types(deps, integration.id)
    return web.json_response({"items": [event_type_view(item) for item in items], **counts})


@routes.put(f"{PREFIX}/event-types/{{event_type_id}}/mapping")
async def update_mapping(request: web.Request) -> web.Response:
    """Map an event type to a local service and set its flags."""
    event_type_id = path_int(request, "event_type_id")
    data = await body(request, schemas.MappingBody)
    deps = _deps(request)
    integration = await connect.live_integration(deps, request[USER_ID])
    row = await event_types.update_mapping(deps, integration.id, event_type_id, data.changes())
    return web.json_response(event_type_view(row))
