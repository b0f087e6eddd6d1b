"""Reading request bodies and query strings into pydantic models, with 400/422 errors."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from calendly_svc.errors import BadRequest, Unprocessable

M = TypeVar("M", bound=BaseModel)


def _field(loc: tuple[int | str, ...]) -> str:
    """A dotted field name from a pydantic location."""
    return ".".join(str(part) for part in loc) or "body"


def validation_details(error: ValidationError) -> list[dict[str, str]]:
    """One entry per invalid field."""
    return [
        {"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in error.errors()
    ]


def validate(model: type[M], data: Any) -> M:
    """Validate data against a model or raise 422 naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        details = validation_details(error)
        fields = ", ".join(d["field"] for d in details)
        raise Unprocessable(f"invalid fields: {fields}", details) from None


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body, or 400."""
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        raise BadRequest("the request body must be valid JSON", code="invalid_json") from None


async def body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated against model; the top level must be an object."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    return validate(model, data)


def query(request: web.Request, model: type[M]) -> M:
    """Query-string parameters validated against model (repeated keys: the last wins)."""
    return validate(model, dict(request.query))


def path_int(request: web.Request, name: str) -> int:
    """A positive integer path segment; 404 when it cannot be an id."""
    raw = request.match_info[name]
    # the length check first: int() refuses strings of more than 4300 digits with a ValueError
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) < 2**63:
        raise web.HTTPNotFound()
    return int(raw)
