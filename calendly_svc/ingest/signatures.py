"""Calendly-style signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256(key, t + "." + body)>`."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass


class SignatureError(Exception):
    """A delivery's signature is missing, malformed, out of its time window or wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    """A parsed signature header; several v1 values may be present (key rotation)."""

    timestamp: int
    signatures: tuple[str, ...]


def sign(key: str, body: bytes, timestamp: int) -> str:
    """The hex v1 signature of a body at a time (the key is used as-is, not decoded)."""
    return hmac.digest(key.encode(), b"%d.%b" % (timestamp, body), "sha256").hex()


def signature_header(key: str, body: bytes, timestamp: int) -> str:
    """A complete header value."""
    return f"t={timestamp},v1={sign(key, body, timestamp)}"


def parse_header(value: str | None) -> SignatureHeader:
    """Split on ',' then '='; a header without t or v1 is malformed."""
    if not value:
        raise SignatureError("missing_signature")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        name, _, item = part.strip().partition("=")
        # isdigit() admits "²", which int() refuses; 18 digits keep int() and float math safe
        if name == "t" and item.isascii() and item.isdigit() and len(item) <= 18:
            timestamp = int(item)
        elif name == "v1" and item and item.isascii():  # compare_digest refuses other str
            signatures.append(item.strip().lower())
    if timestamp is None or not signatures:
        raise SignatureError("malformed_signature")
    return SignatureHeader(timestamp, tuple(signatures))


def verify(
    value: str | None, body: bytes, keys: Iterable[str], now: float, max_age: float,
    max_future: float,
) -> None:  # fmt: skip
    """Raise SignatureError unless some key signs the body at a time inside the window."""
    header = parse_header(value)
    if now - header.timestamp > max_age:
        raise SignatureError("stale_signature")
    if header.timestamp - now > max_future:
        raise SignatureError("future_signature")
    for key in keys:
        if key and _signed_by(key, body, header):
            return
    raise SignatureError("invalid_signature")


def _signed_by(key: str, body: bytes, header: SignatureHeader) -> bool:
    """Whether one of the header's v1 values is the key's signature (each compared in constant
    time; the next key is tried only when this one does not match)."""
    expected = sign(key, body, header.timestamp)
    matched = False
    for given in header.signatures:
        matched |= hmac.compare_digest(expected, given)
    return matched
