"""Re-encrypt every stored secret under the first TOKEN_ENCRYPTION_KEY (key rotation)."""

from __future__ import annotations

import dataclasses

import asyncpg

from calendly_svc import queries
from calendly_svc.crypto import SecretCipher
from calendly_svc.db import create_pool


def _rotated(cipher: SecretCipher, value: bytes | None) -> bytes | None:
    """One column under the newest key."""
    return None if value is None else cipher.rotate(value)


async def rotate_secrets(pool: asyncpg.Pool, cipher: SecretCipher) -> int:
    """Re-encrypt integrations' tokens and keys and pending OAuth verifiers; returns rows."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await queries.encrypted_secrets(conn)
        for row in rows:
            await queries.replace_secrets(conn, dataclasses.replace(
                row,
                access_token_enc=_rotated(cipher, row.access_token_enc),
                refresh_token_enc=_rotated(cipher, row.refresh_token_enc),
                webhook_signing_key_enc=_rotated(cipher, row.webhook_signing_key_enc),
            ))  # fmt: skip
        states = await queries.oauth_state_secrets(conn)
        for state in states:
            rotated = cipher.rotate(state.code_verifier_enc)
            await queries.replace_oauth_state_secret(conn, dataclasses.replace(
                state, code_verifier_enc=rotated
            ))  # fmt: skip
    return len(rows) + len(states)


async def rotate(database_url: str, keys: list[str]) -> int:
    """The `rotate-keys` command."""
    pool = await create_pool(database_url, 1, 2)
    try:
        return await rotate_secrets(pool, SecretCipher(keys))
    finally:
        await pool.close()
