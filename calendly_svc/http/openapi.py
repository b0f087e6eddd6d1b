"""The OpenAPI 3.1 document, generated from the router and each handler's @operation.

Nothing here names a route or a field. For every route of the router the document takes:
- the path and its `{name}` parameters (positive 64-bit ids, described by the declaration);
- security from the auth middleware: bearer token + X-User-Id under /api/v1/calendly/, except
  its PUBLIC_PATHS; authenticated operations also answer 400 invalid_user_id and 401;
- query parameters, one per field of the declared query model (422, and 400 invalid_cursor when
  it has a cursor), header parameters likewise from the headers model; the request body from
  the declared body model (400 invalid_json, 408 body_timeout, 413, 422), or from the raw_body
  model of a handler that reads and parses the body itself (the same but 422);
- responses from the declared response models (calendly_svc/http/responses.py), with their
  nested models hoisted into components/schemas, and one error response per status, the shared
  Error body narrowed to the declared codes.

Adding a route is a few lines in its module, nothing here:

    @routes.delete(f"{PREFIX}/clients/{{client_id}}")
    @operation(id="eraseClient", summary="Erase a client", tag="appointments",
               path={"client_id": "the client's id"}, responses={200: responses.ClientErasure},
               errors=[{404: ["not_found", "client_not_found"]}, DB])
    async def delete_client(request: web.Request) -> web.Response: ...

A new route module is added to calendly_svc/http/routes.py:ROUTE_TABLES; a new response model
goes in calendly_svc/http/responses.py. tests/test_openapi.py fails when a route has no @operation.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Literal

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute
from pydantic import BaseModel

from calendly_svc.http import responses
from calendly_svc.http.middleware import API_PREFIX, PUBLIC_PATHS
from calendly_svc.http.operations import Errors, Operation, Reply, declaration, merge
from calendly_svc.http.routes import ROUTE_TABLES

Json = dict[str, Any]
Mode = Literal["validation", "serialization"]

REF = "#/components/schemas/{model}"
AUTHENTICATED: list[Json] = [{"bearerAuth": [], "userId": []}]
PUBLIC: list[Json] = []
ID: Json = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
REQUEST_ID_HEADER = {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}}
AUTH_ERRORS: Errors = {400: ["invalid_user_id"], 401: ["unauthorized"]}
# reading the body (validation.read_within, the size cap) and parsing it as JSON
RAW_BODY_ERRORS: Errors = {
    400: ["invalid_json"],
    408: ["body_timeout"],
    413: ["payload_too_large"],
}
BODY_ERRORS: Errors = merge(RAW_BODY_ERRORS, {422: ["validation_error"]})
QUERY_ERRORS: Errors = {422: ["validation_error"]}
CURSOR_ERRORS: Errors = {400: ["invalid_cursor"]}
STATUS_MEANINGS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    404: "Not found",
    408: "The body did not arrive within BODY_TIMEOUT_SECONDS",
    409: "Conflicts with the current state",
    410: "The integration was disconnected",
    413: "Body larger than 1 MiB",
    422: "Invalid fields",
    429: "Calendly's limit for this call is reached; retry after Retry-After seconds",
    502: "Calendly failed or refused",
    503: "A dependency is unavailable; retry later",
}
_PATH_PARAMETER = re.compile(r"{(\w+)}")


def ref(name: str) -> Json:
    """A reference to a component schema."""
    return {"$ref": REF.format(model=name)}


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


def _compact_nullable(node: Any) -> Any:
    """`anyOf: [{type: T, ...}, {type: null}]` written as `type: [T, "null"]` (enums admit null)."""
    if isinstance(node, list):
        return [_compact_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _compact_nullable(value) for key, value in node.items()}
    branches = node.get("anyOf")
    if not (isinstance(branches, list) and len(branches) == 2 and branches[1] == {"type": "null"}):
        return node
    simple = branches[0]
    if not isinstance(simple.get("type"), str):
        return node
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    compact = {**simple, **rest, "type": [simple["type"], "null"]}
    if "enum" in simple:
        compact["enum"] = [*simple["enum"], None]
    return compact


class Components:
    """The component schemas collected while the paths are built."""

    def __init__(self) -> None:
        """No schema yet."""
        self.schemas: Json = {}

    def add(self, name: str, schema: Json) -> None:
        """One component; two different schemas may not share a name."""
        if self.schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")

    def model(self, model: type[BaseModel], mode: Mode) -> Json:
        """A reference to the model's schema, with its nested models hoisted."""
        schema: Json = _clean(model.model_json_schema(by_alias=True, ref_template=REF, mode=mode))
        if mode == "serialization":
            schema = _compact_nullable(schema)
        for name, nested in schema.pop("$defs", {}).items():
            self.add(name, nested)
        if mode == "validation":  # request models: their docstrings are for developers
            schema.pop("description", None)
        self.add(model.__name__, schema)
        return ref(model.__name__)


def json_response(description: str, schema: Json, headers: Json | None = None) -> Json:
    """A JSON response."""
    return {
        "description": description,
        "headers": {**REQUEST_ID_HEADER, **(headers or {})},
        "content": {"application/json": {"schema": schema}},
    }


def success(answer: type[BaseModel] | Reply, components: Components) -> Json:
    """A declared success response."""
    if not isinstance(answer, Reply):
        described = (answer.__doc__ or answer.__name__).strip().splitlines()[0].rstrip(".")
        answer = Reply(described, answer)
    if answer.model is not None:
        schema = components.model(answer.model, "serialization")
        return json_response(answer.description, schema, answer.headers)
    result: Json = {
        "description": answer.description,
        "headers": {**REQUEST_ID_HEADER, **answer.headers},
    }
    if answer.content is not None:
        result["content"] = answer.content
    return result


def error_response(status: int, codes: tuple[str, ...]) -> Json:
    """The shared error body, narrowed to the codes this operation uses for this status."""
    narrowed = {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}}
    listed = ", ".join(f"`{code}`" for code in codes)
    return json_response(
        f"{STATUS_MEANINGS[status]}: {listed}", {"allOf": [ref("Error"), narrowed]}
    )


def _without_null(schema: Json) -> Json:
    """A query value is a string or absent, never null: drop pydantic's null branch."""
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    if len(branches) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**branches[0], **rest}


def query_parameters(model: type[BaseModel], where: str = "query") -> list[Json]:
    """One query (or header) parameter per field of a model, described by the field."""
    schema: Json = _clean(model.model_json_schema(by_alias=True, mode="validation"))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        described = _without_null(prop)
        description = described.pop("description")
        parameters.append({"name": name, "in": where, "required": name in required,
                           "description": description, "schema": described})  # fmt: skip
    return parameters


def path_parameters(path: str, op: Operation) -> list[Json]:
    """A positive 64-bit id for each `{name}` in the path (anything else is 404)."""
    return [
        {"name": name, "in": "path", "required": True, "description": op.path[name], "schema": ID}
        for name in _PATH_PARAMETER.findall(path)
    ]


def is_public(path: str) -> bool:
    """What auth_middleware lets through without credentials."""
    return not path.startswith(API_PREFIX) or path in PUBLIC_PATHS


def implied_errors(path: str, op: Operation) -> Errors:
    """The codes the middleware and validation answer for this operation."""
    groups: list[Errors] = [] if is_public(path) else [AUTH_ERRORS]
    if op.body is not None:
        groups.append(BODY_ERRORS)
    elif op.raw_body is not None:
        groups.append(RAW_BODY_ERRORS)
    if op.query is not None:
        groups.append(QUERY_ERRORS)
        if "cursor" in op.query.model_fields:
            groups.append(CURSOR_ERRORS)
    return merge(*groups)


def build_operation(path: str, op: Operation, components: Components) -> Json:
    """One operation of the document."""
    parameters = [*path_parameters(path, op), *op.parameters]
    if op.query is not None:
        parameters += query_parameters(op.query)
    if op.headers is not None:
        parameters += query_parameters(op.headers, "header")
    answers = {str(status): success(answer, components) for status, answer in op.responses.items()}
    errors = merge(op.errors, implied_errors(path, op))
    answers |= {str(status): error_response(status, codes) for status, codes in errors.items()}
    result: Json = {
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "security": PUBLIC if is_public(path) else AUTHENTICATED,
    }
    if parameters:
        result["parameters"] = parameters
    body = op.body or op.raw_body
    if body is not None:
        schema = components.model(body, "validation")
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    result["responses"] = dict(sorted(answers.items()))
    return result


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

RouteKey = tuple[str, str, Any]


def route_keys(routes: Iterable[AbstractRoute]) -> tuple[RouteKey, ...]:
    """(method, path template, handler) of every route but aiohttp's implicit HEADs."""
    return tuple(
        (route.method, route.resource.canonical, route.handler)
        for route in routes
        if route.method != "HEAD" and route.resource is not None
    )


def default_router() -> web.UrlDispatcher:
    """A router holding the service's routes, as create_app registers them."""
    router = web.UrlDispatcher()
    for table in ROUTE_TABLES:
        router.add_routes(table)
    return router


@lru_cache(maxsize=4)
def _document(keys: tuple[RouteKey, ...]) -> Json:
    """The document for these routes (the models are static, so it is built once per route set)."""
    components = Components()
    components.model(responses.Error, "serialization")
    paths: Json = {}
    for method, path, handler in keys:
        operation = build_operation(path, declaration(handler), components)
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "calendly-svc", "version": "1", "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
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


def build_document(router: web.UrlDispatcher | None = None) -> Json:
    """The whole OpenAPI 3.1 document for a router's routes (by default, the service's)."""
    keys = route_keys((router if router is not None else default_router()).routes())
    return copy.deepcopy(_document(keys))  # callers may change it; the cached one must not


def document_bytes(router: web.UrlDispatcher) -> bytes:
    """The document as served: compact JSON."""
    return json.dumps(_document(route_keys(router.routes())), separators=(",", ":")).encode()
