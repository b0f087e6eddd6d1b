"""Keyed hashes of erased Calendly URIs: what is left of an erased person, so nothing brings
them back.

A tombstone is HMAC-SHA256 of the URI under a key derived (HKDF-SHA256) from a secret of the
service: ERASURE_TOMBSTONE_KEYS when set, else TOKEN_ENCRYPTION_KEY. New tombstones use the first
key; every key is checked, so a key keeps matching the tombstones written under it for as long
as it stays listed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from calendly_svc.settings import Settings

_INFO = b"calendly-svc erasure tombstones v1"


def _derive(secret: str) -> bytes:
    """The HMAC key derived from one secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())


class Tombstones:
    """Hashes URIs under the first key for writing, under every key for matching."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("tombstones need at least one key")
        self._keys = [_derive(secret) for secret in secrets]

    def mark(self, uri: str) -> bytes:
        """The tombstone written for an erased URI."""
        return self._hash(self._keys[0], uri)

    def probes(self, uri: str) -> list[bytes]:
        """Every tombstone an erased URI may have been given."""
        return [self._hash(key, uri) for key in self._keys]

    @staticmethod
    def _hash(key: bytes, uri: str) -> bytes:
        """HMAC-SHA256 of a URI."""
        return hmac.new(key, uri.encode(), hashlib.sha256).digest()


@lru_cache(maxsize=8)
def _tombstones(secrets: tuple[str, ...]) -> Tombstones:
    """One Tombstones per key list (HKDF once)."""
    return Tombstones(secrets)


def tombstones(settings: Settings) -> Tombstones:
    """The service's tombstones: ERASURE_TOMBSTONE_KEYS, else TOKEN_ENCRYPTION_KEY."""
    secrets = settings.erasure_tombstone_keys or settings.token_encryption_key
    return _tombstones(tuple(secrets))
