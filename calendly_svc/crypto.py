"""Encryption of secrets at rest (Fernet; several keys allow rotation)."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretCipher:
    """Encrypts with the first key, decrypts with any of them."""

    def __init__(self, keys: list[str]) -> None:
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> bytes:
        """Encrypt a secret for storage."""
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        """Decrypt a stored secret; raises InvalidToken when no key fits."""
        return self._fernet.decrypt(bytes(ciphertext)).decode()

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt a stored secret under the first (newest) key."""
        return self._fernet.rotate(bytes(ciphertext))


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string."""
    return secrets.token_urlsafe(nbytes)


def sha256(value: str) -> bytes:
    """Digest used to look up a secret without storing it."""
    return hashlib.sha256(value.encode()).digest()


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge for a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


__all__ = ["InvalidToken", "SecretCipher", "pkce_challenge", "random_token", "sha256"]
