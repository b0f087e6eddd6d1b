"""Parsing Calendly-Webhook-Signature headers: any malformed value is a clean SignatureError."""

from __future__ import annotations

import time

import pytest

from calendly_svc.ingest.signatures import SignatureError, sign, verify

KEY = "key"
BODY = b"{}"


@pytest.mark.parametrize(
    "timestamp", ["\u00b2", "1" * 5000, "1" + "0" * 400, "\u0661\u0662", "-5", "1e3"]
)
def test_a_timestamp_that_is_not_plain_seconds_is_malformed(timestamp: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(f"t={timestamp},v1=abc", BODY, [KEY], time.time(), 180, 60)
    assert caught.value.reason == "malformed_signature"


def test_a_current_signature_verifies() -> None:
    now = int(time.time())
    verify(f"t={now},v1={sign(KEY, BODY, now)}", BODY, [KEY], now, 180, 60)
