"""Operation declarations: each handler says what it is, and calendly_svc/http/openapi.py reads it.

    @routes.get(f"{PREFIX}/clients")
    @operation(id="listClients", summary="...", tag="appointments", query=schemas.ClientsQuery,
               responses={200: responses.ClientPage}, errors=DB)

The declaration is stored on the handler; nothing here runs per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

Json = dict[str, Any]
Errors = Mapping[int, Sequence[str]]
H = TypeVar("H", bound=Callable[..., Any])
ATTRIBUTE = "__operation__"

# Error codes several operations share (status → codes).
DB: Errors = {503: ["service_unavailable"]}
NOT_CONNECTED: Errors = {404: ["not_connected"]}
CALENDLY: Errors = {409: ["missing_scope", "needs_reauth"], 502: ["calendly_error"]}


@dataclass(frozen=True)
class Reply:
    """A documented response: a JSON model, other content, or none (204, redirects)."""

    description: str
    model: type[BaseModel] | None = None
    content: Json | None = None
    headers: Json = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says about one handler."""

    id: str
    summary: str
    tag: str
    responses: Mapping[int, type[BaseModel] | Reply]
    errors: Mapping[int, tuple[str, ...]]
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    raw_body: type[BaseModel] | None = None
    path: Mapping[str, str] = field(default_factory=dict)
    parameters: tuple[Json, ...] = ()


def merge(*groups: Errors) -> dict[int, tuple[str, ...]]:
    """Error codes per status, from several groups, sorted and without repeats."""
    merged: dict[int, set[str]] = {}
    for group in groups:
        for status, codes in group.items():
            merged.setdefault(status, set()).update(codes)
    return {status: tuple(sorted(codes)) for status, codes in sorted(merged.items())}


def operation(
    *,
    id: str,
    summary: str,
    tag: str,
    responses: Mapping[int, type[BaseModel] | Reply],
    errors: Errors | Sequence[Errors] = (),
    query: type[BaseModel] | None = None,
    headers: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    raw_body: type[BaseModel] | None = None,
    path: Mapping[str, str] | None = None,
    parameters: Sequence[Json] = (),
) -> Callable[[H], H]:
    """Declare a handler's operation.

    `query` and `body` are the models validation.query/body check (their 4xx codes are implied);
    `headers` documents request headers, one per field (its alias is the header's name, e.g.
    `Idempotency-Key`); `raw_body` documents a body the handler reads and parses itself (its
    400 invalid_json, 408 and 413 are implied); `path` describes each `{name}`.
    """
    groups = [errors] if isinstance(errors, Mapping) else list(errors)
    declared = Operation(
        id=id, summary=summary, tag=tag, responses=dict(responses), errors=merge(*groups),
        query=query, headers=headers, body=body, raw_body=raw_body, path=dict(path or {}),
        parameters=tuple(parameters),
    )  # fmt: skip

    def declare(handler: H) -> H:
        """Store the declaration on the handler."""
        setattr(handler, ATTRIBUTE, declared)
        return handler

    return declare


def declaration(handler: object) -> Operation:
    """The handler's operation; every routed handler must declare one."""
    found = getattr(handler, ATTRIBUTE, None)
    if not isinstance(found, Operation):
        raise LookupError(f"{getattr(handler, '__qualname__', handler)} declares no @operation")
    return found
