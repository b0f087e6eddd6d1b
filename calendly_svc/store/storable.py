"""Text Postgres can store: `text` and `jsonb` refuse U+0000 and unpaired surrogates.

JSON can carry both as escapes (`\\u0000`, `\\ud800`). A delivery holding one is stored as it was
signed (its raw body is ASCII there) and applied with each such character replaced by U+FFFD, so
the booking is never lost over one character.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# the only way either reaches a parsed string from UTF-8 JSON; also matches "\\u0000" (harmless)
_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_ESCAPE_BYTES = re.compile(_ESCAPE.pattern.encode())


def storable_text(text: str) -> str:
    """The text with NUL and unpaired surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def has_unstorable(text: str) -> bool:
    """Whether Postgres would refuse this text."""
    return _UNSTORABLE.search(text) is not None


def storable(value: Any) -> Any:
    """A parsed JSON value with every string (keys included) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def storable_json(raw: str | bytes, data: Any) -> Any:
    """data (parsed from raw) made storable; walked only when raw holds such an escape."""
    found = _ESCAPE.search(raw) if isinstance(raw, str) else _ESCAPE_BYTES.search(raw)
    return data if found is None else storable(data)


# orjson reads an integer beyond 64 bits as a float; 19 digits in a row (in a string or not) are
# left to json, which keeps every integer exact
_LONG_DIGITS = re.compile("[0-9]{19}")


def loads(text: str) -> Any:
    """json.loads's value, by orjson where that is the same (about 3x faster): a text with 19
    digits in a row, or one orjson refuses (NaN, Infinity, an escaped unpaired surrogate, deep
    nesting), is read by json."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
