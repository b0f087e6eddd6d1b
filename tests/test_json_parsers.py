"""orjson on the hot paths reads what the standard library reads, and refuses what it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calendly_svc.ingest import inbox
from calendly_svc.store.storable import fast_loads

TRICKY = [
    '{"event": "invitee.created", "payload": {"name": "Zoë Ünal-Øster 山田"}}',
    '{"a": NaN}',
    '{"a": -Infinity}',
    '{"a": 1e999}',
    '{"a": -1e400000}',
    '{"a": 123456789012345678901234567890}',
    '{"a": -9223372036854775809}',
    '{"a": 18446744073709551616}',
    "[1, 123456789012345678901234]",
    "123456789012345678901234567890",
    '{"a":\n-12345678901234567890123}',
    '{"uri": "https://x/000000000000000000001a2b", "n": 1234567890123456789}',
    '{"a": 1.5e-300, "b": -0.0, "c": 1E+2}',
    '{"a": "\\ud800"}',
    '{"a": "\\udc00\\ud800"}',
    '{"a": "\\ud83d\\ude00"}',
    '{"a": "\\u0000"}',
    '{"a": "tab\there"}',
    '{"a": 1, "a": 2}',
    '\ufeff{"a": 1}',
    ' \n{"a": [1, 2, {"b": null}]}\t ',
    '{"a": 1,}',
    "[" * 500 + "]" * 500,
    "[" * 100_000 + "]" * 100_000,
    '"just a string"',
    "",
]


def _outcome(parse: Any, text: str) -> tuple[str, Any]:
    """("ok", value) or ("refused", None)."""
    try:
        return ("ok", parse(text))
    except (ValueError, RecursionError):
        return ("refused", None)


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_the_edge_accepts_and_refuses_as_the_standard_decoder(text: str) -> None:
    decode = inbox._DECODER.decode
    assert repr(_outcome(decode, text)) == repr(_outcome(lambda t: fast_loads(t, decode), text))


@pytest.mark.parametrize("text", [t for t in TRICKY if len(t) < 10_000], ids=str)
def test_the_worker_reads_what_json_loads_reads(text: str) -> None:
    expected = _outcome(json.loads, text)
    actual = _outcome(fast_loads, text)
    # NaN != NaN: compare the text forms
    assert repr(expected) == repr(actual)
