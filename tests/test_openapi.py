"""The OpenAPI document: every route documented, every operation routed, valid OpenAPI 3.1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs
import schemathesis

from calendly_svc.app import create_app
from calendly_svc.http.openapi import build_document
from calendly_svc.settings import Settings
from tests.conftest import Api

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "options", "trace"})
PUBLIC = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/calendly/webhook"),
        ("GET", "/api/v1/calendly/oauth/callback"),
    }
)


def documented(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the document by (METHOD, path template)."""
    return {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def test_every_route_is_documented_and_every_operation_routed(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())
    routed = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert sorted(routed) == sorted(documented(build_document()))


def test_document_is_valid_openapi_3_1() -> None:
    document = build_document()
    schemathesis.openapi.from_dict(document).validate()
    assert document["openapi"].startswith("3.1.")


def test_every_schema_is_valid_json_schema_2020_12() -> None:
    document = build_document()
    invalid = []
    for name, schema in document["components"]["schemas"].items():
        try:
            jsonschema_rs.meta.validate(schema)
        except jsonschema_rs.ValidationError as error:
            invalid.append((name, str(error)))
    assert invalid == []


def test_security_is_bearer_and_user_id_together_except_on_public_routes() -> None:
    document = build_document()
    schemes = document["components"]["securitySchemes"]
    expected = {
        key: [] if key in PUBLIC else [{"bearerAuth": [], "userId": []}]
        for key in documented(document)
    }
    actual = {key: op["security"] for key, op in documented(document).items()}
    assert expected == actual
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "one of SERVICE_API_TOKENS",
    }
    assert (schemes["userId"]["type"], schemes["userId"]["in"], schemes["userId"]["name"]) == (
        "apiKey",
        "header",
        "X-User-Id",
    )


def test_authenticated_operations_document_401_and_400() -> None:
    document = build_document()
    missing = [
        key
        for key, op in documented(document).items()
        if key not in PUBLIC and not {"400", "401"} <= set(op["responses"])
    ]
    assert missing == []


def test_every_error_response_uses_the_shared_error_body() -> None:
    error_ref = {"$ref": "#/components/schemas/Error"}
    off_shape = [
        (key, status)
        for key, op in documented(build_document()).items()
        for status, response in op["responses"].items()
        if int(status) >= 400
        and response["content"]["application/json"]["schema"]["allOf"][0] != error_ref
    ]
    assert off_shape == []


async def test_document_is_served_without_credentials(api: Api) -> None:
    resp = await api.client.get("/api/v1/openapi.json")
    assert (resp.status, resp.content_type) == (200, "application/json")
    assert await resp.json() == build_document()
