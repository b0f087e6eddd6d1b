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
    return text if _plain(text) else _UNSTORABLE.sub(REPLACEMENT, text)


def has_unstorable(text: str) -> bool:
    """Whether Postgres would refuse this text."""
    return not _plain(text) and _UNSTORABLE.search(text) is not None


def _plain(text: str) -> bool:
    """ASCII without NUL, storable as it is (the common case; a C scan, no regex run)."""
    return text.isascii() and "\x00" not in text


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


# orjson reads an integer beyond 64 bits as a float: a number token of 19 digits or more is left
# to json, which keeps every integer exact. Digit runs are found on a copy with every digit
# made "0" (a bytes scan; a regular expression over a 1 kB body took 20 µs).
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_RUN = b"0" * 19
_SPACE_OR_MINUS = frozenset(b" \t\n\r-")
_BEFORE_NUMBER = frozenset(b":,[")


def _long_integer(text: str) -> bool:
    """Whether a run of 19 digits starts a JSON number (after `:`, `,`, `[` or the start, and
    spaces or a minus); a run that only looks like one inside a string counts too."""
    data = text.encode("utf-8", "surrogatepass").translate(_ZEROS)
    at = data.find(_RUN)
    while at != -1:
        before = at - 1
        while before >= 0 and data[before] in _SPACE_OR_MINUS:
            before -= 1
        if before < 0 or data[before] in _BEFORE_NUMBER:
            return True
        end = at + len(_RUN)
        while end < len(data) and data[end] == 48:  # the rest of this run of digits
            end += 1
        at = data.find(_RUN, end)
    return False


def loads(text: str) -> Any:
    """json.loads's value, by orjson where that is the same (about 3x faster): a text with an
    integer of 19 digits or more, or one orjson refuses (NaN, Infinity, an escaped unpaired
    surrogate, deep nesting), is read by json."""
    if not _long_integer(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
