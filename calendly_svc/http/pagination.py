"""Opaque keyset cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from calendly_svc.errors import BadRequest

T = TypeVar("T")


def encode_cursor(*values: Any) -> str:
    """An opaque cursor for a keyset position."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fits(value: Any, kind: type) -> bool:
    """A value of the expected kind; ints must fit the bigint columns they are compared with."""
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    return not isinstance(value, int) or -(2**63) <= value < 2**63


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> list[Any]:
    """The position in a cursor; 400 when it was not made by encode_cursor for this list."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        ok = isinstance(values, list) and len(values) == len(kinds)
        if ok and all(_fits(v, k) for v, k in zip(values, kinds, strict=True)):
            return list(values)
    except (ValueError, UnicodeDecodeError):
        pass
    raise BadRequest("the cursor is not valid for this list", code="invalid_cursor")


def cursor_time(value: str) -> datetime:
    """A timezone-aware timestamp taken from a cursor (in UTC, which Postgres must represent)."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise BadRequest("the cursor is not valid for this list", code="invalid_cursor")


def page_of(
    rows: Sequence[T], limit: int, position: Callable[[T], tuple[Any, ...]]
) -> tuple[list[T], str | None]:
    """Split `limit + 1` fetched rows into a page and the cursor to the next one (if any)."""
    page = list(rows[:limit])
    more = len(rows) > limit
    return page, encode_cursor(*position(page[-1])) if more else None


def id_cursor(cursor: str | None) -> int | None:
    """The id a cursor of an id-ordered list points after (None for the first page)."""
    return decode_cursor(cursor, (int,))[0] if cursor else None
