"""The edge and the worker parse with orjson where they can: each accepts and refuses what its
standard decoder does, and reads the same values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calendly_svc.ingest import inbox
from calendly_svc.store import storable

TRICKY = [
    '{"event": "invitee.created", "payload": {"name": "Zoë Ünal-Øster 山田"}}',
    '{"a": NaN}',
    '{"a": -Infinity}',
    '{"a": 1e999}',
    '{"a": -1e400000}',
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
BIG = ['{"a": 123456789012345678901234567890}', '{"a": -9223372036854775809}']
# where an integer beyond 64 bits can stand, and digit runs that are not numbers
LONG = [
    "123456789012345678901234567890",
    " -123456789012345678901234567890",
    "[1,-123456789012345678901234567890]",
    "[1, \n\t123456789012345678901234567890]",
    '{"a":123456789012345678901234567890}',
    '{"uri": "https://api.calendly.com/scheduled_events/r1000000000000000000000001"}',
    '{"a": "x: 123456789012345678901234567890", "b": 1.2345678901234567890123}',
    '{"a": 12345678901234567890123e-3, "b": 9223372036854775807}',
]


def _outcome(parse: Any, text: str) -> tuple[str, str]:
    """("ok", repr of the value) or ("refused", "")."""
    try:
        return ("ok", repr(parse(text)))
    except (ValueError, RecursionError):
        return ("refused", "")


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_the_edge_reads_what_the_standard_decoder_reads(text: str) -> None:
    assert _outcome(inbox._decode, text) == _outcome(inbox._DECODER.decode, text)


@pytest.mark.parametrize("text", BIG, ids=range(len(BIG)))
def test_an_integer_beyond_64_bits_is_accepted_as_before(text: str) -> None:
    envelope = '{"event": "invitee.created", "created_at": "x", "payload": {"n": %s}}'
    body = envelope % text[6:-1]
    assert (_outcome(inbox._decode, body)[0], _outcome(inbox._DECODER.decode, body)[0]) == (
        "ok",
        "ok",
    )


@pytest.mark.parametrize("text", [*TRICKY, *BIG, *LONG], ids=range(len(TRICKY + BIG + LONG)))
def test_the_worker_reads_what_json_loads_reads(text: str) -> None:
    assert _outcome(storable.loads, text) == _outcome(json.loads, text)


@pytest.mark.parametrize(
    "number", ["18446744073709551615", "18446744073709551616", "-9223372036854775808", "1" * 40]
)
def test_the_worker_keeps_every_integer_exact(number: str) -> None:
    value = storable.loads('{"payload": {"answer": "+1 555 0100", "n": ' + number + "}}")
    assert (value["payload"]["n"], type(value["payload"]["n"])) == (int(number), int)
