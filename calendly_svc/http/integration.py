"""Routes for connecting Calendly and managing the integration and its event types."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web

from calendly_svc.apply import event_types
from calendly_svc.deps import Deps
from calendly_svc.errors import BadRequest, not_connected
from calendly_svc.http import responses, schemas
from calendly_svc.http.middleware import classify
from calendly_svc.http.operations import CALENDLY, DB, NOT_CONNECTED, Reply, operation
from calendly_svc.http.validation import body, path_int, query
from calendly_svc.http.views import event_type_view, integration_view, status_view
from calendly_svc.integrations import connect, lookup
from calendly_svc.keys import DEPS, USER_ID
from calendly_svc.store import queries

routes = web.RouteTableDef()
PREFIX = "/api/v1/calendly"


def _deps(request: web.Request) -> Deps:
    """The application's collaborators."""
    return request.app[DEPS]


@routes.get(f"{PREFIX}/auth-url")
@operation(
    id="getAuthUrl", summary="A Calendly authorization URL bound to the user", tag="connect",
    query=schemas.AuthUrlQuery,
    responses={200: Reply("Authorization URL and its state", responses.AuthUrl)},
    errors=[{422: ["redirect_uri_not_allowed"]}, DB],
)  # fmt: skip
async def auth_url(request: web.Request) -> web.Response:
    """A Calendly authorization URL bound to this user."""
    params = query(request, schemas.AuthUrlQuery)
    result = await connect.start_authorization(
        _deps(request), request[USER_ID], params.redirect_uri
    )
    return responses.reply(responses.AuthUrl(**result))


@routes.post(f"{PREFIX}/oauth-callback")
@operation(
    id="completeOAuth", summary="Finish the OAuth flow with the code and state", tag="connect",
    body=schemas.OAuthCallbackBody,
    responses={200: Reply("The connected integration", responses.Integration)},
    errors=[{400: ["invalid_code", "invalid_state"], 409: ["calendly_account_in_use"]},
            CALENDLY, DB],
)  # fmt: skip
async def oauth_callback(request: web.Request) -> web.Response:
    """Finish the OAuth flow for the calling user (the main app relays code and state); a
    state made for another user is refused before its code is exchanged."""
    data = await body(request, schemas.OAuthCallbackBody)
    integration = await connect.complete_authorization(
        _deps(request), data.code, data.state, request[USER_ID]
    )
    return responses.reply(integration_view(integration))


def _redirect(target: str, **params: str) -> web.HTTPFound:
    """A redirect to the frontend with parameters appended; the code must not leak onwards."""
    separator = "&" if "?" in target else "?"
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.HTTPFound(f"{target}{separator}{urlencode(params)}", headers=headers)


# What Calendly's redirect carries; the main app's page gets it unchanged.
FORWARDED_PARAMS = ("code", "state", "error", "error_description")


REDIRECT = Reply(
    "The browser is sent to OAUTH_COMPLETE_URL (or the deprecated OAUTH_SUCCESS_REDIRECT_URL) "
    "with Calendly's `code` and `state` (or `error`, `error_description` and `state`) appended; "
    "that main-app page completes the flow with POST /oauth-callback as its signed-in user. "
    "Nothing is connected here.",
    headers={"Location": {"required": True, "schema": {"type": "string", "format": "uri"}}},
)
AUTHORIZED = Reply(
    "Without OAUTH_COMPLETE_URL: the code and state for the main app to POST to "
    "/oauth-callback (nothing is connected here)",
    responses.BrowserAuthorized,
)


@routes.get(f"{PREFIX}/oauth/callback")
@operation(
    id="browserOAuthCallback",
    summary="Calendly's browser redirect: forwards code and state to the main app",
    tag="connect", query=schemas.BrowserCallbackQuery,
    responses={200: AUTHORIZED, 302: REDIRECT}, errors={400: ["authorization_failed"]},
)  # fmt: skip
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
    authorized = responses.BrowserAuthorized(
        status="authorized", code=params.code, state=params.state,
        next="the main app POSTs code and state to /api/v1/calendly/oauth-callback "
             "with the signed-in user's X-User-Id to connect the account",
    )  # fmt: skip
    answer = responses.reply(authorized)
    answer.headers["Cache-Control"] = "no-store"
    return answer


@routes.get(f"{PREFIX}/status")
@operation(
    id="getStatus", summary="Whether the user is connected and how the integration is doing",
    tag="integration", responses={200: responses.Status}, errors=DB,
)  # fmt: skip
async def status(request: web.Request) -> web.Response:
    """Whether the user is connected and how the integration is doing."""
    async with _deps(request).pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, request[USER_ID])
        since = await _retrying_since(conn, integration)
    return responses.reply(status_view(integration, since))


@routes.get(f"{PREFIX}/integration")
@operation(
    id="getIntegration", summary="The integration without secrets", tag="integration",
    responses={200: responses.Integration}, errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def get_integration(request: web.Request) -> web.Response:
    """The integration without secrets."""
    integration = await lookup.live_integration(_deps(request), request[USER_ID])
    async with _deps(request).pool.acquire() as conn:
        since = await _retrying_since(conn, integration)
    return responses.reply(integration_view(integration, since))


async def _retrying_since(
    conn: queries.Conn, integration: queries.Integration | None
) -> datetime | None:
    """When the integration's webhook deliveries began failing, as the health check saw it."""
    if integration is None:
        return None
    health = await queries.get_webhook_health(conn, integration.id)
    return health.retry_started_at if health is not None else None


@routes.put(f"{PREFIX}/integration/toggle")
@operation(
    id="toggleSync", summary="Turn syncing on or off", tag="integration",
    body=schemas.ToggleBody, responses={200: responses.Integration}, errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def toggle(request: web.Request) -> web.Response:
    """Turn syncing on or off."""
    data = await body(request, schemas.ToggleBody)
    async with _deps(request).pool.acquire() as conn:
        integration = await queries.set_sync_enabled(conn, request[USER_ID], data.sync_enabled)
    return await _integration_response(request, integration)


@routes.put(f"{PREFIX}/integration/sync-settings")
@operation(
    id="updateSyncSettings", summary="Change any subset of the sync settings", tag="integration",
    body=schemas.SyncSettingsBody, responses={200: responses.Integration},
    errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def sync_settings(request: web.Request) -> web.Response:
    """Change any subset of the sync settings."""
    data = await body(request, schemas.SyncSettingsBody)
    async with _deps(request).pool.acquire() as conn:
        integration = await queries.update_sync_settings(conn, request[USER_ID], data.changes())
    return await _integration_response(request, integration)


async def _integration_response(
    request: web.Request, integration: queries.Integration | None
) -> web.Response:
    """The updated integration; None means there is no live one to update."""
    if integration is None:
        raise not_connected()
    async with _deps(request).pool.acquire() as conn:
        since = await _retrying_since(conn, integration)
    return responses.reply(integration_view(integration, since))


@routes.delete(f"{PREFIX}/integration")
@operation(
    id="disconnect", summary="Unsubscribe, revoke the tokens, forget the secrets",
    tag="integration", responses={204: Reply("Disconnected")}, errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def delete_integration(request: web.Request) -> web.Response:
    """Disconnect: unsubscribe, revoke, forget the secrets."""
    await connect.disconnect(_deps(request), request[USER_ID])
    return web.Response(status=204)


@routes.get(f"{PREFIX}/event-types")
@operation(
    id="listEventTypes", summary="The user's event types and their mappings", tag="event-types",
    responses={200: responses.EventTypeList}, errors=[NOT_CONNECTED, DB],
)  # fmt: skip
async def list_event_types(request: web.Request) -> web.Response:
    """The user's event types and their mappings."""
    deps = _deps(request)
    integration = await lookup.live_integration(deps, request[USER_ID])
    items = await event_types.list_event_types(deps, integration.id)
    return responses.reply(responses.EventTypeList(items=[event_type_view(i) for i in items]))


@routes.post(f"{PREFIX}/event-types/refresh")
@operation(
    id="refreshEventTypes", summary="Re-read every event type from Calendly", tag="event-types",
    responses={200: responses.EventTypeRefresh}, errors=[NOT_CONNECTED, CALENDLY, DB],
)  # fmt: skip
async def refresh_event_types(request: web.Request) -> web.Response:
    """Re-read every event type from Calendly."""
    deps = _deps(request)
    integration = await lookup.live_integration(deps, request[USER_ID])
    counts = await event_types.refresh_event_types(deps, integration)
    items = await event_types.list_event_types(deps, integration.id)
    views = [event_type_view(item) for item in items]
    return responses.reply(responses.EventTypeRefresh(items=views, **counts))


@routes.put(f"{PREFIX}/event-types/{{event_type_id}}/mapping")
@operation(
    id="updateEventTypeMapping", summary="Map an event type to a local service", tag="event-types",
    path={"event_type_id": "the event type's id"}, body=schemas.MappingBody,
    responses={200: responses.EventType},
    errors=[{404: ["not_found", "not_connected", "event_type_not_found"]}, DB],
)  # fmt: skip
async def update_mapping(request: web.Request) -> web.Response:
    """Map an event type to a local service and set its flags."""
    event_type_id = path_int(request, "event_type_id")
    data = await body(request, schemas.MappingBody)
    deps = _deps(request)
    integration = await lookup.live_integration(deps, request[USER_ID])
    row = await event_types.update_mapping(deps, integration.id, event_type_id, data.changes())
    return responses.reply(event_type_view(row))
