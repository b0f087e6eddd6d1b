"""Response models and operation declarations: the outbox payload matches the model, and the
OpenAPI document is generated from the routes and their @operation."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from aiohttp import web
from pydantic import BaseModel, Field

from calendly_svc.apply.erasure import ERASED_KINDS
from calendly_svc.apply.payloads import appointment_view
from calendly_svc.http import responses
from calendly_svc.http.openapi import build_document
from calendly_svc.http.operations import DB, Reply, merge, operation
from calendly_svc.store import queries
from calendly_svc.store.db import create_pool
from tests.conftest import Api, Sandbox
from tests.helpers import appointments, book, default_event_type, settled

PREFIX = "/api/v1/calendly"


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside a field's type (`X`, `X | None`, `list[X]`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = [nested_model(arg) for arg in get_args(annotation)]
    return next((model for model in found if model is not None), None)


def model_keys(model: type[BaseModel]) -> dict[str, Any]:
    """The model's field names, each with the keys of its nested model (None when it has none)."""
    keys: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        inner = nested_model(info.annotation)
        keys[name] = model_keys(inner) if inner is not None else None
    return keys


def mismatches(payload: dict[str, Any], keys: dict[str, Any], where: str) -> list[str]:
    """Where the payload's keys (recursively) differ from the model's."""
    found = [] if set(payload) == set(keys) else [f"{where}: {sorted(set(payload) ^ set(keys))}"]
    for name, inner in keys.items():
        value = payload.get(name)
        items = value if isinstance(value, list) else [] if value is None else [value]
        for item in items if inner is not None else []:
            found += mismatches(item, inner, f"{where}.{name}")
    return found


async def seed(api: Api, control: Sandbox) -> None:
    """User 1 with a booked, a canceled and a rescheduled appointment (every nested block set)."""
    await api.connect()
    event_type = await default_event_type(control)
    booked = [
        await book(control, event_type, f"2030-01-0{day}T10:00:00Z",
                   {"name": f"C{day}", "email": f"c{day}@example.com"})
        for day in (1, 2, 3)
    ]  # fmt: skip
    invitees = [booking["invitees"][0]["uri"] for booking in booked]
    await control.call("POST", "/_sandbox/invitees/cancel", {"invitee": invitees[1]})
    await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": invitees[2], "start_time": "2030-01-09T15:00:00Z"},
    )
    await settled(api)


async def test_outbox_payload_keys_are_the_appointment_models_fields_and_the_api_agrees(
    api: Api, control: Sandbox, database_url: str
) -> None:
    await seed(api, control)
    served = {item["id"]: item for item in await appointments(api)}
    pool = await create_pool(database_url, min_size=1, max_size=1)  # the service's JSON codecs
    latest = {}
    try:
        async with pool.acquire() as conn:
            for appointment_id in served:
                row = await queries.get_appointment(conn, appointment_id, 1)
                assert row is not None
                ids = [row.client_id] if row.client_id else []
                client = next(iter(await queries.get_clients(conn, ids)), None)
                # exactly what domain.py stores in the outbox for every applied delivery
                latest[appointment_id] = appointment_view(row, client)
    finally:
        await pool.close()
    keys = model_keys(responses.Appointment)
    nested = {"client", "cancellation", "history"}
    assert {name for name, inner in keys.items() if inner is not None} == nested
    found = [m for i, p in latest.items() for m in mismatches(p, keys, f"appointment {i}")]
    assert found == []
    # every nested block occurs, so the comparison covered the nested models too
    assert [name for name in sorted(nested) if not any(p[name] for p in latest.values())] == []
    # the API's model reads the outbox's payload back unchanged
    assert len(latest) == 3
    for appointment_id, payload in latest.items():
        rebuilt = responses.Appointment.model_validate(payload).model_dump(mode="json")
        assert (rebuilt, served[appointment_id]) == (payload, payload)


def router_with(handler: Any, path: str, method: str = "DELETE") -> web.UrlDispatcher:
    """A router with one route."""
    router = web.UrlDispatcher()
    router.add_route(method, path, handler)
    return router


def test_a_route_without_a_declaration_cannot_be_documented() -> None:
    async def undeclared(request: web.Request) -> web.Response:
        """No @operation."""
        return web.Response(status=204)

    with pytest.raises(LookupError, match="undeclared declares no @operation"):
        build_document(router_with(undeclared, f"{PREFIX}/clients/{{client_id}}"))


class IdempotencyHeaders(BaseModel):
    """A header model, as a future route may declare."""

    key: str = Field(alias="Idempotency-Key", max_length=64, description="retry-safe key")


def test_a_declared_route_is_documented_with_its_parameters_security_and_errors() -> None:
    @operation(
        id="eraseClient", summary="Erase a client", tag="appointments",
        path={"client_id": "the client's id"}, headers=IdempotencyHeaders,
        responses={204: Reply("Erased")},
        errors=merge({404: ["client_not_found"]}, DB),
    )  # fmt: skip
    async def erase(request: web.Request) -> web.Response:
        """A new route: the declaration is all the document needs."""
        return web.Response(status=204)

    document = build_document(router_with(erase, f"{PREFIX}/clients/{{client_id}}"))
    op = document["paths"][f"{PREFIX}/clients/{{client_id}}"]["delete"]
    codes = {
        status: answer["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"][
            "properties"
        ]["code"]["enum"]
        for status, answer in op["responses"].items()
        if int(status) >= 400
    }
    expected_parameter = {
        "name": "client_id", "in": "path", "required": True, "description": "the client's id",
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    }  # fmt: skip
    expected_header = {
        "name": "Idempotency-Key", "in": "header", "required": True,
        "description": "retry-safe key", "schema": {"type": "string", "maxLength": 64},
    }  # fmt: skip
    assert (op["operationId"], op["security"], op["parameters"]) == (
        "eraseClient",
        [{"bearerAuth": [], "userId": []}],
        [expected_parameter, expected_header],
    )
    assert codes == {
        "400": ["invalid_user_id"],
        "401": ["unauthorized"],
        "404": ["client_not_found"],
        "503": ["service_unavailable"],
    }
    assert op["responses"]["204"]["description"] == "Erased"


def test_response_schemas_are_closed_and_every_field_without_a_default_is_required() -> None:
    schemas = build_document()["components"]["schemas"]
    open_or_loose = []
    for name, model in vars(responses).items():
        if not (isinstance(model, type) and issubclass(model, responses.Closed)):
            continue
        if model is responses.Closed:
            continue
        schema = schemas[name]
        required = [n for n, info in model.model_fields.items() if info.is_required()]
        if schema.get("additionalProperties") is not False or schema["required"] != required:
            open_or_loose.append(name)
    assert open_or_loose == []
    assert schemas["SyncQueued"]["required"] == ["job_id", "status"]


def test_the_erasure_model_counts_every_kind_erasure_counts() -> None:
    assert list(responses.ErasedCounts.model_fields) == list(ERASED_KINDS)
