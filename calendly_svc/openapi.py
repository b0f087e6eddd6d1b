"""The OpenAPI 3.1 document of the service's HTTP API.

Request schemas come from the pydantic models that validate requests; response schemas mirror
calendly_svc/views.py field for field; tests/test_openapi.py keeps paths and router in step.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from calendly_svc.api import schemas
from calendly_svc.erasure import ERASED_KINDS

Json = dict[str, Any]

OPENAPI_PATH = "/api/v1/openapi.json"
PREFIX = "/api/v1/calendly"
AUTHENTICATED: list[Json] = [{"bearerAuth": [], "userId": []}]
PUBLIC: list[Json] = []
ID_MAX = 2**63 - 1


# --- schema helpers ------------------------------------------------------------------------------


def ref(name: str) -> Json:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Json) -> Json:
    """The same schema that also admits null."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    result = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        result["enum"] = [*schema["enum"], None]
    return result


def closed(properties: Json, optional: Json | None = None) -> Json:
    """An object with exactly these properties (all required but the optional ones)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": {**properties, **(optional or {})},
    }


def enum(*values: str) -> Json:
    """A string out of a fixed set."""
    return {"type": "string", "enum": list(values)}


STRING: Json = {"type": "string"}
BOOLEAN: Json = {"type": "boolean"}
COUNT: Json = {"type": "integer", "minimum": 0}
ID: Json = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
TIME: Json = {"type": "string", "format": "date-time"}
URI: Json = {"type": "string", "format": "uri"}
OBJECT: Json = {"type": "object"}


def _clean(node: Any) -> Any:
    """A pydantic schema without titles and null defaults (absent never means null here)."""
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    cleaned: Json = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and value is None):
            continue
        if key == "properties":
            cleaned[key] = {name: _clean(sub) for name, sub in value.items()}
        else:
            cleaned[key] = _clean(value)
    return cleaned


def model_schema(model: type[BaseModel]) -> Json:
    """The JSON Schema (2020-12, as OpenAPI 3.1 uses) of a request model."""
    schema: Json = _clean(model.model_json_schema(by_alias=True, mode="validation"))
    schema.pop("description", None)
    return schema


def _without_null(schema: Json) -> Json:
    """A query value is a string or absent, never null: drop pydantic's null branch."""
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    if len(branches) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**branches[0], **rest}


def query_parameters(model: type[BaseModel], descriptions: dict[str, str]) -> list[Json]:
    """One query parameter per field of a query-string model."""
    schema = model_schema(model)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": descriptions[name],
            "schema": _without_null(prop),
        }
        for name, prop in schema["properties"].items()
    ]


def path_id(name: str, what: str) -> Json:
    """A positive 64-bit id in the path (anything else is 404)."""
    return {"name": name, "in": "path", "required": True, "description": what, "schema": ID}


# --- response bodies (calendly_svc/views.py) -----------------------------------------------------

PUBLIC_STATUS = enum("not_connected", "active", "disabled", "needs_reauth")
SYNC_STATUS = enum("running", "succeeded", "partial", "failed")
ROUTING_FORMS = nullable(enum("active", "not_permitted", "error"))
TRIGGER = enum("initial", "manual", "periodic")

ERROR = closed(
    {
        "error": closed(
            {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                "message": STRING,
                "details": {"description": "null, or a list or object that explains the error"},
            }
        )
    }
)

SYNC_SETTINGS = closed(
    {
        "sync_past_days": {"type": "integer", "minimum": 0, "maximum": 365},
        "sync_future_days": {"type": "integer", "minimum": 1, "maximum": 365},
        "auto_confirm_bookings": BOOLEAN,
        "create_client_if_not_exists": BOOLEAN,
        "default_service_id": nullable(ID),
        "notification_on_booking": BOOLEAN,
    }
)

GRANTED_SCOPES: Json = {
    "type": ["array", "null"], "items": STRING,
    "description": "OAuth scopes Calendly granted; null when its token response named none "
                   "(a legacy grant with full access)",
}  # fmt: skip
MISSING_SCOPES: Json = {
    "type": "array", "items": STRING,
    "description": "Scopes the service's features need that were not granted ([] when unknown)",
}  # fmt: skip

STATUS = closed(
    {
        "connected": BOOLEAN,
        "status": PUBLIC_STATUS,
        "sync_enabled": BOOLEAN,
        "scheduling_url": nullable(STRING),
        "webhook_active": BOOLEAN,
        "last_sync_at": nullable(TIME),
        "last_sync_status": nullable(SYNC_STATUS),
        "routing_forms_webhook": ROUTING_FORMS,
        "granted_scopes": GRANTED_SCOPES,
        "missing_scopes": MISSING_SCOPES,
    }
)

INTEGRATION = closed(
    {
        "id": ID,
        "public_id": {"type": "string", "format": "uuid"},
        "user_id": ID,
        "status": PUBLIC_STATUS,
        "status_reason": nullable(STRING),
        "sync_enabled": BOOLEAN,
        "calendly_user_uri": STRING,
        "calendly_organization_uri": nullable(STRING),
        "scheduling_url": nullable(STRING),
        "name": nullable(STRING),
        "email": nullable(STRING),
        "timezone": nullable(STRING),
        "webhook_url": nullable(STRING),
        "webhook_uri": nullable(STRING),
        "webhook_active": BOOLEAN,
        "webhook_error": nullable(STRING),
        "routing_forms_webhook": ROUTING_FORMS,
        "granted_scopes": GRANTED_SCOPES,
        "missing_scopes": MISSING_SCOPES,
        "sync_settings": ref("SyncSettings"),
        "last_sync_at": nullable(TIME),
        "last_sync_status": nullable(SYNC_STATUS),
        "connected_at": TIME,
        "created_at": TIME,
        "updated_at": TIME,
    }
)

AUTH_URL = closed({"auth_url": URI, "state": STRING})
BROWSER_AUTHORIZED = closed(
    {"status": enum("authorized"), "code": STRING, "state": STRING, "next": STRING}
)

EVENT_TYPE = closed(
    {
        "id": ID,
        "calendly_event_type_uri": STRING,
        "name": STRING,
        "slug": nullable(STRING),
        "duration_minutes": nullable({"type": "integer"}),
        "active": BOOLEAN,
        "scheduling_url": nullable(STRING),
        "service_id": nullable(ID),
        "is_active": BOOLEAN,
        "auto_create_appointment": BOOLEAN,
        "updated_at": TIME,
    }
)

EVENT_TYPES = closed({"items": {"type": "array", "items": ref("EventType")}})

EVENT_TYPES_REFRESHED = closed(
    {
        "items": {"type": "array", "items": ref("EventType")},
        "added": COUNT,
        "updated": COUNT,
        "removed": COUNT,
    }
)

CLIENT = closed(
    {
        "id": ID,
        "name": nullable(STRING),
        "email": STRING,
        "phone": nullable(STRING),
        "first_name": nullable(STRING),
        "last_name": nullable(STRING),
        "timezone": nullable(STRING),
        "created_at": TIME,
        "updated_at": TIME,
    }
)

CLIENT_ERASURE = closed({"client_id": ID, "erased": closed(dict.fromkeys(ERASED_KINDS, COUNT))})

CLIENT_SUMMARY = closed(
    {"id": ID, "name": nullable(STRING), "email": STRING, "phone": nullable(STRING)}
)

CANCELLATION = closed(
    {
        "canceled_by": nullable(STRING),
        "reason": nullable(STRING),
        "canceler_type": nullable(STRING),
        "canceled_at": nullable(STRING),
    }
)

EARLIER_SLOT = closed(
    {
        "calendly_invitee_uri": STRING,
        "calendly_event_uri": nullable(STRING),
        "start_time": nullable(TIME),
        "end_time": nullable(TIME),
    }
)

APPOINTMENT = closed(
    {
        "id": ID,
        "status": enum("pending", "confirmed", "canceled"),
        "no_show": BOOLEAN,
        "start_time": TIME,
        "end_time": TIME,
        "timezone": nullable(STRING),
        "service_id": nullable(ID),
        "event_type_id": nullable(ID),
        "client": nullable(ref("ClientSummary")),
        "location": nullable(OBJECT),
        "questions_and_answers": {"type": "array", "items": OBJECT},
        "cancellation": nullable(ref("Cancellation")),
        "reschedule_count": COUNT,
        "history": {"type": "array", "items": ref("EarlierSlot")},
        "calendly_event_uri": STRING,
        "calendly_invitee_uri": STRING,
        "cancel_url": nullable(STRING),
        "reschedule_url": nullable(STRING),
        "created_at": TIME,
        "updated_at": TIME,
    }
)

WEBHOOK_EVENT = closed(
    {
        "id": ID,
        "event": STRING,
        "status": enum("received", "processing", "processed", "ignored", "failed"),
        "reason": nullable(STRING),
        "error": nullable(STRING),
        "attempts": COUNT,
        "duplicates": COUNT,
        "payload_uri": nullable(STRING),
        "calendly_created_at": nullable(TIME),
        "received_at": TIME,
        "processed_at": nullable(TIME),
    }
)

WEBHOOK_RECEIPT = closed({"id": ID, "duplicate": BOOLEAN})

WEBHOOK_ENVELOPE: Json = {
    "type": "object",
    "required": ["event", "created_at", "payload"],
    "properties": {
        "event": {"type": "string", "examples": ["invitee.created"]},
        "created_at": {"type": "string", "examples": ["2026-11-29T10:00:00.000000Z"]},
        "created_by": STRING,
        "payload": OBJECT,
    },
}

SYNC_QUEUED = closed(
    {"job_id": ID, "status": enum("queued", "running")},
    {"deduplicated": {"const": True, "description": "present when the sync already existed"}},
)

SYNC_JOB = closed(
    {
        "job_id": ID,
        "status": enum("queued", "running", "succeeded", "failed"),
        "trigger": TRIGGER,
        "attempts": COUNT,
        "created_at": TIME,
        "started_at": nullable(TIME),
        "finished_at": nullable(TIME),
        "sync_log_id": nullable(ID),
        "error": nullable(STRING),
    }
)

SYNC_LOG = closed(
    {
        "id": ID,
        "trigger": TRIGGER,
        "status": SYNC_STATUS,
        "full_pass": BOOLEAN,
        "started_at": TIME,
        "finished_at": nullable(TIME),
        "window_start": TIME,
        "window_end": TIME,
        "events_seen": COUNT,
        "invitees_fetched": COUNT,
        "appointments_created": COUNT,
        "appointments_updated": COUNT,
        "appointments_canceled": COUNT,
        "clients_created": COUNT,
        "repaired": COUNT,
        "api_calls": COUNT,
        "rate_limited_waits": COUNT,
        "notes": {"type": "array"},
        "error": nullable(STRING),
    }
)


ROUTING_FORM_SUBMISSION = closed(
    {
        "id": ID,
        "calendly_uri": STRING,
        "routing_form": nullable(STRING),
        "questions_and_answers": {"type": "array", "items": OBJECT},
        "submitter": nullable(STRING),
        "result": nullable(OBJECT),
        "created_at": TIME,
    }
)


def page(item: str) -> Json:
    """A keyset page: the items and the cursor to the next page (null on the last)."""
    return closed({"items": {"type": "array", "items": ref(item)}, "next_cursor": nullable(STRING)})


def response_schemas() -> Json:
    """Every response body, by component name."""
    return {
        "Error": ERROR,
        "Health": closed({"status": {"const": "ok"}}),
        "Ready": closed({"status": {"const": "ready"}}),
        "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"]},
        "AuthUrl": AUTH_URL,
        "BrowserAuthorized": BROWSER_AUTHORIZED,
        "Status": STATUS,
        "SyncSettings": SYNC_SETTINGS,
        "Integration": INTEGRATION,
        "EventType": EVENT_TYPE,
        "EventTypeList": EVENT_TYPES,
        "EventTypeRefresh": EVENT_TYPES_REFRESHED,
        "Client": CLIENT,
        "ClientSummary": CLIENT_SUMMARY,
        "ClientErasure": CLIENT_ERASURE,
        "ClientPage": page("Client"),
        "Cancellation": CANCELLATION,
        "EarlierSlot": EARLIER_SLOT,
        "Appointment": APPOINTMENT,
        "AppointmentPage": page("Appointment"),
        "WebhookEnvelope": WEBHOOK_ENVELOPE,
        "WebhookReceipt": WEBHOOK_RECEIPT,
        "WebhookEvent": WEBHOOK_EVENT,
        "WebhookEventPage": page("WebhookEvent"),
        "SyncQueued": SYNC_QUEUED,
        "SyncJob": SYNC_JOB,
        "SyncLog": SYNC_LOG,
        "SyncLogPage": page("SyncLog"),
        "RoutingFormSubmission": ROUTING_FORM_SUBMISSION,
        "RoutingFormSubmissionPage": page("RoutingFormSubmission"),
    }


BODY_MODELS: tuple[type[BaseModel], ...] = (
    schemas.OAuthCallbackBody,
    schemas.ToggleBody,
    schemas.SyncSettingsBody,
    schemas.MappingBody,
    schemas.ManualSyncBody,
)


# --- responses -----------------------------------------------------------------------------------

REQUEST_ID_HEADER = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
STATUS_MEANINGS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    404: "Not found",
    408: "The body did not arrive within BODY_TIMEOUT_SECONDS",
    409: "Conflicts with the current state",
    410: "The integration was disconnected",
    413: "Body larger than 1 MiB",
    422: "Invalid fields",
    502: "Calendly failed or refused",
    503: "A dependency is unavailable; retry later",
}


def json_response(description: str, schema: Json) -> Json:
    """A JSON response."""
    return {
        "description": description,
        "headers": REQUEST_ID_HEADER,
        "content": {"application/json": {"schema": schema}},
    }


def error_response(status: int, codes: tuple[str, ...]) -> Json:
    """The shared error body, narrowed to the codes this operation uses for this status."""
    narrowed = {"properties": {"error": {"properties": {"code": {"enum": sorted(codes)}}}}}
    listed = ", ".join(f"`{code}`" for code in sorted(codes))
    return json_response(
        f"{STATUS_MEANINGS[status]}: {listed}", {"allOf": [ref("Error"), narrowed]}
    )


Errors = dict[int, tuple[str, ...]]
AUTH_ERRORS: Errors = {400: ("invalid_user_id",), 401: ("unauthorized",)}
BODY_ERRORS: Errors = {
    400: ("invalid_json",),
    408: ("body_timeout",),
    413: ("payload_too_large",),
    422: ("validation_error",),
}
DB_ERRORS: Errors = {503: ("service_unavailable",)}
NOT_CONNECTED: Errors = {404: ("not_connected",)}
CALENDLY_ERRORS: Errors = {409: ("missing_scope", "needs_reauth"), 502: ("calendly_error",)}
QUERY_ERRORS: Errors = {422: ("validation_error",)}
CURSOR_ERRORS: Errors = {400: ("invalid_cursor",), 422: ("validation_error",)}


def merge(*groups: Errors) -> Errors:
    """Error codes per status, from several sources."""
    merged: dict[int, set[str]] = {}
    for group in groups:
        for status, codes in group.items():
            merged.setdefault(status, set()).update(codes)
    return {status: tuple(sorted(codes)) for status, codes in sorted(merged.items())}


Answers = tuple[Json, Errors]


def responses(ok: Json, *errors: Errors) -> Answers:
    """Success responses, and the error codes per status from several sources."""
    return ok, merge(*errors)


def operation(operation_id: str, summary: str, tag: str, answers: Answers, **extra: Any) -> Json:
    """An authenticated /api/v1/calendly operation unless `security` says otherwise."""
    ok, errors = answers
    if extra.get("security", AUTHENTICATED) == AUTHENTICATED:
        errors = merge(errors, AUTH_ERRORS)
    failing = {str(status): error_response(status, codes) for status, codes in errors.items()}
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": AUTHENTICATED,
        **extra,
        "responses": dict(sorted({**ok, **failing}.items())),
    }


def json_body(name: str) -> Json:
    """A required JSON request body."""
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


# --- operations ----------------------------------------------------------------------------------

CURSOR_TEXT = "opaque cursor: the previous page's next_cursor"
LIMIT_TEXT = "page size"


def health_paths() -> Json:
    """Probes, metrics and this document: no credentials."""
    return {
        "/healthz": {"get": operation(
            "healthz", "The process is up", "health",
            responses({"200": json_response("Alive", ref("Health"))}), security=PUBLIC,
        )},
        "/readyz": {"get": operation(
            "readyz", "The database answers and every migration is applied", "health",
            responses({"200": json_response("Ready", ref("Ready"))},
                      {503: ("database_unavailable", "migrations_pending")}),
            security=PUBLIC,
        )},
        "/metrics": {"get": operation(
            "metrics", "Prometheus text exposition", "health",
            responses({"200": {"description": "Metrics", "headers": REQUEST_ID_HEADER,
                               "content": {"text/plain": {"schema": STRING}}}}),
            security=PUBLIC,
        )},
        OPENAPI_PATH: {"get": operation(
            "openapi", "This OpenAPI document", "health",
            responses({"200": json_response("The document", ref("OpenApiDocument"))}),
            security=PUBLIC,
        )},
    }  # fmt: skip


def connect_paths() -> Json:
    """The OAuth connect flow."""
    browser_query = query_parameters(schemas.BrowserCallbackQuery, {
        "code": "authorization code from Calendly",
        "state": "the state issued by GET /auth-url",
        "error": "Calendly's error when the user refused",
        "error_description": "Calendly's description of that error",
    })  # fmt: skip
    redirect = {
        "description": "The browser is sent to OAUTH_COMPLETE_URL (or the deprecated "
        "OAUTH_SUCCESS_REDIRECT_URL) with Calendly's `code` and `state` (or `error`, "
        "`error_description` and `state`) appended; that main-app page completes the flow with "
        "POST /oauth-callback as its signed-in user. Nothing is connected here.",
        "headers": {**REQUEST_ID_HEADER, "Location": {"required": True, "schema": URI}},
    }
    connected = json_response("The connected integration", ref("Integration"))
    authorized = json_response(
        "Without OAUTH_COMPLETE_URL: the code and state for the main app to POST to "
        "/oauth-callback (nothing is connected here)",
        ref("BrowserAuthorized"),
    )
    return {
        f"{PREFIX}/auth-url": {"get": operation(
            "getAuthUrl", "A Calendly authorization URL bound to the user", "connect",
            responses({"200": json_response("Authorization URL and its state", ref("AuthUrl"))},
                      {422: ("validation_error", "redirect_uri_not_allowed")}, DB_ERRORS),
            parameters=query_parameters(schemas.AuthUrlQuery, {
                "redirect_uri": "defaults to BACKEND_URL/api/v1/calendly/oauth/callback; any "
                "other must be listed in OAUTH_REDIRECT_URIS",
            }),
        )},
        f"{PREFIX}/oauth-callback": {"post": operation(
            "completeOAuth", "Finish the OAuth flow with the code and state", "connect",
            responses({"200": connected}, BODY_ERRORS, {400: ("invalid_code", "invalid_state")},
                      {409: ("calendly_account_in_use",)}, CALENDLY_ERRORS, DB_ERRORS),
            requestBody=json_body("OAuthCallbackBody"),
        )},
        f"{PREFIX}/oauth/callback": {"get": operation(
            "browserOAuthCallback",
            "Calendly's browser redirect: forwards code and state to the main app", "connect",
            responses({"200": authorized, "302": redirect}, {400: ("authorization_failed",)},
                      QUERY_ERRORS),
            parameters=browser_query, security=PUBLIC,
        )},
    }  # fmt: skip


def integration_paths() -> Json:
    """The integration and its settings."""
    integration = {"200": json_response("The integration", ref("Integration"))}
    return {
        f"{PREFIX}/status": {"get": operation(
            "getStatus", "Whether the user is connected and how the integration is doing",
            "integration", responses({"200": json_response("Status", ref("Status"))}, DB_ERRORS),
        )},
        f"{PREFIX}/integration": {
            "get": operation(
                "getIntegration", "The integration without secrets", "integration",
                responses(integration, NOT_CONNECTED, DB_ERRORS),
            ),
            "delete": operation(
                "disconnect", "Unsubscribe, revoke the tokens, forget the secrets",
                "integration",
                responses({"204": {"description": "Disconnected", "headers": REQUEST_ID_HEADER}},
                          NOT_CONNECTED, DB_ERRORS),
            ),
        },
        f"{PREFIX}/integration/toggle": {"put": operation(
            "toggleSync", "Turn syncing on or off", "integration",
            responses(integration, BODY_ERRORS, NOT_CONNECTED, DB_ERRORS),
            requestBody=json_body("ToggleBody"),
        )},
        f"{PREFIX}/integration/sync-settings": {"put": operation(
            "updateSyncSettings", "Change any subset of the sync settings", "integration",
            responses(integration, BODY_ERRORS, NOT_CONNECTED, DB_ERRORS),
            requestBody=json_body("SyncSettingsBody"),
        )},
    }  # fmt: skip


def event_type_paths() -> Json:
    """Event types and their service mappings."""
    return {
        f"{PREFIX}/event-types": {"get": operation(
            "listEventTypes", "The user's event types and their mappings", "event-types",
            responses({"200": json_response("Event types", ref("EventTypeList"))},
                      NOT_CONNECTED, DB_ERRORS),
        )},
        f"{PREFIX}/event-types/refresh": {"post": operation(
            "refreshEventTypes", "Re-read every event type from Calendly", "event-types",
            responses({"200": json_response("Event types and what changed",
                                            ref("EventTypeRefresh"))},
                      NOT_CONNECTED, CALENDLY_ERRORS, DB_ERRORS),
        )},
        f"{PREFIX}/event-types/{{event_type_id}}/mapping": {"put": operation(
            "updateEventTypeMapping", "Map an event type to a local service", "event-types",
            responses({"200": json_response("The event type", ref("EventType"))}, BODY_ERRORS,
                      {404: ("not_found", "not_connected", "event_type_not_found")}, DB_ERRORS),
            parameters=[path_id("event_type_id", "the event type's id")],
            requestBody=json_body("MappingBody"),
        )},
    }  # fmt: skip


def webhook_paths() -> Json:
    """Calendly's deliveries and the webhook log."""
    signature_codes = ("missing_signature", "malformed_signature", "stale_signature",
                       "future_signature", "invalid_signature")  # fmt: skip
    receive_params = [
        {"name": "integration", "in": "query", "required": True,
         "description": "the integration's public id, from the subscription's callback URL",
         "schema": {"type": "string", "format": "uuid"}},
        {"name": "Calendly-Webhook-Signature", "in": "header", "required": True,
         "description": "`t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>`",
         "schema": {"type": "string", "maxLength": 1024}},
    ]  # fmt: skip
    events_query = query_parameters(schemas.WebhookEventsQuery, {
        "status": "only deliveries in this state", "event": "only this Calendly event",
        "limit": LIMIT_TEXT, "cursor": CURSOR_TEXT,
    })  # fmt: skip
    return {
        f"{PREFIX}/webhook": {"post": operation(
            "receiveWebhook", "A Calendly delivery: verified, stored, processed later",
            "webhooks",
            responses({"200": json_response("Stored (or a duplicate counted)",
                                            ref("WebhookReceipt"))},
                      {400: ("invalid_json", "invalid_payload"), 401: signature_codes,
                       404: ("unknown_integration",), 408: ("body_timeout",),
                       410: ("integration_disconnected",), 413: ("payload_too_large",)},
                      DB_ERRORS),
            parameters=receive_params, security=PUBLIC,
            requestBody={"required": True, "content": {
                "application/json": {"schema": ref("WebhookEnvelope")}}},
        )},
        f"{PREFIX}/webhook-events": {"get": operation(
            "listWebhookEvents", "The webhook log, newest first", "webhooks",
            responses({"200": json_response("A page of deliveries", ref("WebhookEventPage"))},
                      CURSOR_ERRORS, NOT_CONNECTED, DB_ERRORS),
            parameters=events_query,
        )},
        f"{PREFIX}/webhook-events/{{event_id}}/replay": {"post": operation(
            "replayWebhookEvent", "Queue a logged delivery again", "webhooks",
            responses({"202": json_response("Queued again", ref("WebhookEvent"))},
                      {404: ("not_found", "not_connected", "webhook_event_not_found"),
                       409: ("event_in_progress",)}, DB_ERRORS),
            parameters=[path_id("event_id", "the delivery's id in the webhook log")],
        )},
    }  # fmt: skip


def appointment_paths() -> Json:
    """Appointments and clients."""
    appointments_query = query_parameters(schemas.AppointmentsQuery, {
        "status": "only appointments in this status",
        "from": "only appointments starting at or after this time",
        "to": "only appointments starting before this time",
        "updated_after": "only appointments changed after this time",
        "limit": LIMIT_TEXT, "cursor": CURSOR_TEXT,
    })  # fmt: skip
    clients_query = query_parameters(schemas.ClientsQuery, {
        "email": "only the client with this email (case-insensitive)",
        "limit": LIMIT_TEXT, "cursor": CURSOR_TEXT,
    })  # fmt: skip
    return {
        f"{PREFIX}/appointments": {"get": operation(
            "listAppointments", "The user's appointments, newest change first", "appointments",
            responses({"200": json_response("A page of appointments", ref("AppointmentPage"))},
                      CURSOR_ERRORS, DB_ERRORS),
            parameters=appointments_query,
        )},
        f"{PREFIX}/appointments/{{appointment_id}}": {"get": operation(
            "getAppointment", "One appointment", "appointments",
            responses({"200": json_response("The appointment", ref("Appointment"))},
                      {404: ("not_found", "appointment_not_found")}, DB_ERRORS),
            parameters=[path_id("appointment_id", "the appointment's id")],
        )},
        f"{PREFIX}/clients": {"get": operation(
            "listClients", "The user's clients in creation order", "appointments",
            responses({"200": json_response("A page of clients", ref("ClientPage"))},
                      CURSOR_ERRORS, DB_ERRORS),
            parameters=clients_query,
        )},
        f"{PREFIX}/clients/{{client_id}}": {"delete": operation(
            "eraseClient",
            "Erase a client and everything stored of them (LGPD/GDPR); the invitees' URIs are "
            "kept only as keyed hashes, so no sync, redelivery or replay brings them back",
            "appointments",
            responses({"200": json_response("What was erased, counted per kind",
                                            ref("ClientErasure"))},
                      {404: ("not_found", "client_not_found")}, DB_ERRORS),
            parameters=[path_id("client_id", "the client's id")],
        )},
    }  # fmt: skip


def sync_paths() -> Json:
    """Manual syncs, sync jobs and sync logs."""
    return {
        f"{PREFIX}/sync/manual": {"post": operation(
            "requestManualSync", "Queue a sync now (or return the one queued or running)",
            "sync",
            responses({"202": json_response("Queued, or the sync already queued or running",
                                            ref("SyncQueued"))},
                      BODY_ERRORS, NOT_CONNECTED,
                      {409: ("integration_not_active", "sync_disabled")}, DB_ERRORS),
            requestBody=json_body("ManualSyncBody"),
        )},
        f"{PREFIX}/sync/jobs/{{job_id}}": {"get": operation(
            "getSyncJob", "One sync job", "sync",
            responses({"200": json_response("The sync job", ref("SyncJob"))},
                      {404: ("not_found", "not_connected", "sync_job_not_found")}, DB_ERRORS),
            parameters=[path_id("job_id", "the job_id POST /sync/manual returned")],
        )},
        f"{PREFIX}/sync-logs": {"get": operation(
            "listSyncLogs", "Sync logs, newest first", "sync",
            responses({"200": json_response("A page of sync logs", ref("SyncLogPage"))},
                      CURSOR_ERRORS, NOT_CONNECTED, DB_ERRORS),
            parameters=query_parameters(schemas.SyncLogsQuery,
                                        {"limit": LIMIT_TEXT, "cursor": CURSOR_TEXT}),
        )},
    }  # fmt: skip


def routing_form_paths() -> Json:
    """Routing form submissions of the user's Calendly organization."""
    return {
        f"{PREFIX}/routing-form-submissions": {"get": operation(
            "listRoutingFormSubmissions",
            "Routing form submissions of the user's Calendly organization, newest first",
            "routing-forms",
            responses({"200": json_response("A page of submissions",
                                            ref("RoutingFormSubmissionPage"))},
                      CURSOR_ERRORS, NOT_CONNECTED, DB_ERRORS),
            parameters=query_parameters(schemas.RoutingFormSubmissionsQuery,
                                        {"limit": LIMIT_TEXT, "cursor": CURSOR_TEXT}),
        )},
    }  # fmt: skip


SECURITY_SCHEMES: Json = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "one of SERVICE_API_TOKENS",
    },
    "userId": {
        "type": "apiKey",
        "in": "header",
        "name": "X-User-Id",
        "description": "the main app's user id: a positive 64-bit integer (400 otherwise)",
    },
}

DESCRIPTION = (
    "Connects professionals' Calendly accounts to the scheduling product. Every "
    "`/api/v1/calendly` route except the webhook and the browser OAuth callback needs both a "
    "bearer token and `X-User-Id`. Every error has one shape, `Error`; each response lists the "
    "`error.code` values it can carry. Every response carries `X-Request-Id`."
)


def build_document() -> Json:
    """The whole OpenAPI 3.1 document (reads no settings, so it is the same for every app)."""
    paths: Json = {}
    for part in (health_paths, connect_paths, integration_paths, event_type_paths,
                 webhook_paths, appointment_paths, sync_paths, routing_form_paths):  # fmt: skip
        paths.update(part())
    bodies = {model.__name__: model_schema(model) for model in BODY_MODELS}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "calendly-svc", "version": "1", "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": {**response_schemas(), **bodies},
            "securitySchemes": SECURITY_SCHEMES,
            "headers": {
                "RequestId": {
                    "description": "the caller's X-Request-Id when it was sane, else a new one",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                }
            },
        },
    }
    return copy.deepcopy(document)  # callers may change it; the constants it shares must not
