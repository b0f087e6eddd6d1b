"""What a real invitee can type is accepted at the edge (200) and applied with the exact text:
the edge checks parsed strings, never raw bytes, and only the few it stores in key columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.conftest import Api, Sandbox
from tests.helpers import (
    appointments,
    book,
    default_event_type,
    envelope,
    invitee_payload,
    post_webhook,
    settled,
)

MARK = "@@TEXT@@"
MIB = 1024 * 1024
ASTRAL = "Zoë 🙂 \U0001d518\U0001d52b\U0001d526 👩\u200d👩\u200d👧"  # emoji, Fraktur, a ZWJ family


async def _delivery(api: Api, control: Sandbox) -> tuple[str, dict[str, Any]]:
    """Connect, book without delivery, and build the invitee.created Calendly would send."""
    integration = await api.connect()
    booking = await book(
        control, await default_event_type(control), "2030-01-07T10:00:00Z", deliver=False
    )
    payload = await invitee_payload(control, booking["invitees"][0]["uri"])
    return integration["public_id"], envelope("invitee.created", payload)


def _with(delivery: dict[str, Any], fragment: bytes, answers: int = 1) -> bytes:
    """The delivery as raw JSON, with name and answers holding `fragment` (raw JSON string
    content, escapes included) exactly as written."""
    delivery["payload"]["name"] = MARK
    delivery["payload"]["questions_and_answers"] = [
        {"question": f"Q{n}", "answer": MARK, "position": n} for n in range(answers)
    ]
    raw = json.dumps(delivery, ensure_ascii=False).encode()
    return raw.replace(MARK.encode(), fragment)


CASES: list[tuple[str, bytes, str]] = [
    ("emoji_astral", ASTRAL.encode(), ASTRAL),
    ("rtl", "مرحبا שלום \u200fabc".encode(), "مرحبا שלום \u200fabc"),
    ("escaped_backslash_u0000", b"C:\\\\u0000\\\\dir", "C:\\u0000\\dir"),
    ("backslashes", b"a\\\\b\\\\\\\\c", "a\\b\\\\c"),
    ("escaped_slash", b"a\\/b </script>", "a/b </script>"),
    ("surrogate_pair_escapes", b"smile \\ud83d\\ude00 \\uD83D\\uDE42", "smile 😀 🙂"),
    ("crlf_tab", b"line1\\r\\nline2\\tend", "line1\r\nline2\tend"),
    ("quotes_script", b"\\\"O'Brien\\\" <script>x</script>", "\"O'Brien\" <script>x</script>"),
    ("looks_like_number", b"1e5", "1e5"),
    ("control_escapes", b"bell\\u0007 esc\\u001b del\\u007f", "bell\u0007 esc\u001b del\u007f"),
    ("noncharacters", b"\\uffff \\ufffe \xef\xbf\xbf", "\uffff \ufffe \uffff"),
    # not storable in Postgres text: kept in the stored body, applied as U+FFFD, never lost
    ("real_nul", b"a\\u0000b", "a\ufffdb"),
    ("lone_high_surrogate", b"cut \\ud83d", "cut \ufffd"),
    ("lone_low_surrogate", b"\\udc00 x", "\ufffd x"),
    ("reversed_pair", b"\\ude00\\ud83d", "\ufffd\ufffd"),
]  # fmt: skip


@pytest.mark.parametrize(("fragment", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_what_an_invitee_types_is_accepted_and_applied(
    api: Api, control: Sandbox, database_url: str, fragment: bytes, text: str
) -> None:
    public_id, delivery = await _delivery(api, control)
    raw = _with(delivery, fragment)
    status, body = await post_webhook(api, public_id, raw)
    log = await settled(api)
    [appointment] = await appointments(api)
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT body FROM webhook_events")
    finally:
        await conn.close()
    assert (status, body["duplicate"]) == (200, False)
    assert [e["status"] for e in log] == ["processed"]
    assert stored == raw.decode()
    assert appointment["client"]["name"] == text
    assert appointment["questions_and_answers"][0]["answer"] == text


async def test_many_long_answers_near_the_size_limit_are_applied(
    api: Api, control: Sandbox
) -> None:
    public_id, delivery = await _delivery(api, control)
    answer = ("Résumé ✓ " * 1200)[:10_000]  # a long text answer
    sizes = {n: len(_with(dict(delivery), answer.encode(), answers=n)) for n in range(50, 90)}
    count = max(n for n, size in sizes.items() if size < MIB)
    raw = _with(delivery, answer.encode(), answers=count)
    assert MIB - 20_000 < len(raw) < MIB
    status, _ = await post_webhook(api, public_id, raw)
    log = await settled(api)
    [appointment] = await appointments(api)
    assert (status, [e["status"] for e in log]) == (200, ["processed"])
    assert [qa["answer"] for qa in appointment["questions_and_answers"]] == [answer] * count
    assert appointment["client"]["name"] == answer


@pytest.mark.parametrize(
    ("field", "value"),
    [("uri", "https://api.calendly.com/x\u0000"), ("updated_at", "2026-11-29\ud800")],
)
async def test_a_key_column_calendly_never_writes_that_way_is_a_clear_400(
    api: Api, control: Sandbox, field: str, value: str
) -> None:
    public_id, delivery = await _delivery(api, control)
    delivery["payload"][field] = value
    status, body = await post_webhook(api, public_id, json.dumps(delivery).encode())
    assert (status, body["error"]["code"]) == (400, "invalid_payload")
    assert "NUL" in body["error"]["message"]


async def test_a_sync_applies_text_postgres_cannot_hold_as_replacement_characters(
    api: Api, control: Sandbox
) -> None:
    from tests.test_sync import sync_now

    await api.connect()
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    invitee = {"name": "Ana\u0000 Lima", "email": "ana@example.com"}
    await book(control, await default_event_type(control), start.isoformat(), invitee,
               deliver=False)  # fmt: skip
    log = await sync_now(api)
    [appointment] = await appointments(api)
    assert log["job"]["status"] == "succeeded"
    assert appointment["client"]["name"] == "Ana\ufffd Lima"
