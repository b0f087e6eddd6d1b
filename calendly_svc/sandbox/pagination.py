"""Calendly-style pagination: count validation, opaque page tokens, keyset and offset pages."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiDict
from yarl import URL

from .errors import invalid_argument
from .models import EventKey, from_micros, to_micros
from .state import SANDBOX_STATE

T = TypeVar("T")

DEFAULT_COUNT = 20
MAX_COUNT = 100


def parse_count(query: Mapping[str, str]) -> int:
    """The `count` parameter: an integer 1-100, default 20."""
    raw = query.get("count")
    if raw is None:
        return DEFAULT_COUNT
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_COUNT:
        raise invalid_argument("count", f"must be an integer between 1 and {MAX_COUNT}")
    return int(raw)


def encode_token(data: dict[str, Any]) -> str:
    """An opaque, URL-safe page token; it carries its issue time (`t`, unix seconds)."""
    raw = json.dumps({**data, "t": time.time()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str, ttl: float | None = None) -> dict[str, Any]:
    """Decode a page token; a malformed one, or one older than ttl seconds, is a 400 naming
    page_token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid_argument("page_token", "is invalid") from exc
    if not isinstance(data, dict):
        raise invalid_argument("page_token", "is invalid")
    issued = data.get("t")
    if ttl is not None and (not isinstance(issued, int | float) or time.time() - issued > ttl):
        raise invalid_argument("page_token", "has expired")
    return data


def token_ttl(request: web.Request) -> float | None:
    """The page_token_ttl_seconds fault (None: tokens never expire)."""
    return request.app[SANDBOX_STATE].faults.page_token_ttl_seconds


def page_url(request: web.Request, token: str | None) -> str | None:
    """The full URL of the page with `token`, keeping every other query parameter."""
    if token is None:
        return None
    base_url = request.app[SANDBOX_STATE].base_url
    query = MultiDict(request.query)
    query["page_token"] = token
    return str(URL(base_url + request.path).with_query(query))


def pagination_json(
    request: web.Request, count: int, next_token: str | None, prev_token: str | None
) -> dict[str, Any]:
    """The `pagination` object, all five keys present."""
    override = request.app[SANDBOX_STATE].faults.next_page_override
    return {
        "count": count,
        "next_page": override if override is not None else page_url(request, next_token),
        "previous_page": page_url(request, prev_token),
        "next_page_token": next_token,
        "previous_page_token": prev_token,
    }


def collection(
    request: web.Request,
    items: list[dict[str, Any]],
    next_token: str | None,
    prev_token: str | None,
) -> web.Response:
    """A `{"collection", "pagination"}` response."""
    pagination = pagination_json(request, len(items), next_token, prev_token)
    return web.json_response({"collection": items, "pagination": pagination})


def _offset(query: Mapping[str, str], ttl: float | None) -> int:
    """The offset carried by an offset page token (0 without one)."""
    token = query.get("page_token")
    if token is None:
        return 0
    offset = decode_token(token, ttl).get("o")
    if not isinstance(offset, int) or offset < 0:
        raise invalid_argument("page_token", "is invalid")
    return offset


def offset_page(
    request: web.Request, items: Sequence[T], render: Callable[[T], dict[str, Any]]
) -> web.Response:
    """Paginate an already filtered and sorted list by offset."""
    count = parse_count(request.query)
    offset = _offset(request.query, token_ttl(request))
    page = [render(item) for item in items[offset : offset + count]]
    next_token = encode_token({"o": offset + count}) if offset + count < len(items) else None
    prev_token = encode_token({"o": max(0, offset - count)}) if offset > 0 else None
    return collection(request, page, next_token, prev_token)


@dataclass(slots=True)
class KeysetQuery:
    """A window [lo, hi) of a sorted key index, traversal order and a filter."""

    keys: Sequence[EventKey]
    lo: int
    hi: int
    ascending: bool
    match: Callable[[EventKey], bool]


@dataclass(slots=True)
class KeysetPage:
    """One page of keys and whether pages exist on either side."""

    keys: list[EventKey]
    has_next: bool
    has_prev: bool


def encode_key_token(key: EventKey, backwards: bool) -> str:
    """A keyset page token pointing just after (or before) key."""
    return encode_token({"k": [to_micros(key[0]), key[1]], "d": "p" if backwards else "n"})


def decode_key_token(token: str, ttl: float | None = None) -> tuple[EventKey, bool]:
    """Decode a keyset page token into (cursor key, backwards)."""
    data = decode_token(token, ttl)
    key, direction = data.get("k"), data.get("d")
    if not isinstance(key, list) or len(key) != 2 or direction not in ("n", "p"):
        raise invalid_argument("page_token", "is invalid")
    if not isinstance(key[0], int) or not isinstance(key[1], str):
        raise invalid_argument("page_token", "is invalid")
    try:
        return (from_micros(key[0]), key[1]), direction == "p"
    except OverflowError as exc:
        raise invalid_argument("page_token", "is invalid") from exc


def _scan(query: KeysetQuery, start: int, step: int, limit: int) -> list[EventKey]:
    """Up to `limit` matching keys walking from start by step inside [lo, hi)."""
    pos = max(start, query.lo) if step > 0 else min(start, query.hi - 1)
    found: list[EventKey] = []
    while query.lo <= pos < query.hi and len(found) < limit:
        key = query.keys[pos]
        if query.match(key):
            found.append(key)
        pos += step
    return found


def _after(query: KeysetQuery, key: EventKey) -> tuple[int, int]:
    """Start position and step of the keys that come after key in traversal order."""
    if query.ascending:
        return bisect_right(query.keys, key), 1
    return bisect_left(query.keys, key) - 1, -1


def _before(query: KeysetQuery, key: EventKey) -> tuple[int, int]:
    """Start position and step of the keys that come before key, nearest first."""
    if query.ascending:
        return bisect_left(query.keys, key) - 1, -1
    return bisect_right(query.keys, key), 1


def keyset_page(
    query: KeysetQuery, cursor: EventKey | None, backwards: bool, count: int
) -> KeysetPage:
    """One page of matching keys relative to an optional cursor."""
    if cursor is None:
        start, step = (query.lo, 1) if query.ascending else (query.hi - 1, -1)
        keys = _scan(query, start, step, count)
    elif backwards:
        keys = _scan(query, *_before(query, cursor), count)[::-1]
    else:
        keys = _scan(query, *_after(query, cursor), count)
    if not keys:
        return KeysetPage([], False, False)
    has_next = bool(_scan(query, *_after(query, keys[-1]), 1))
    has_prev = bool(_scan(query, *_before(query, keys[0]), 1))
    return KeysetPage(keys, has_next, has_prev)
