"""Reading request bodies and query strings into pydantic models, with 400/422 errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from calendly_svc.errors import BadRequest, ServiceError, Unprocessable
from calendly_svc.keys import SETTINGS

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


class BodyTimeout(ServiceError):
    """The body did not arrive within BODY_TIMEOUT_SECONDS (408; the connection then closes)."""

    status = 408
    code = "body_timeout"


async def read_within(request: web.Request) -> bytes:
    """The raw body, read within BODY_TIMEOUT_SECONDS, so a slow upload cannot hold a handler
    (nothing reads the database before the body is complete)."""
    if request.content.is_eof():  # the whole body has arrived: no timer to arm (the common case)
        return await request.read()
    seconds = request.app[SETTINGS].body_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {seconds:g} s") from None


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body, or 400."""
    raw = await read_within(request)
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
