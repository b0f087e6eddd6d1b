"""Re-encrypt every stored secret under the first TOKEN_ENCRYPTION_KEY (key rotation)."""

from __future__ import annotations

import dataclasses

import asyncpg
import structlog

from calendly_svc.crypto import SecretCipher
from calendly_svc.store import queries
from calendly_svc.store.db import create_pool

log = structlog.get_logger(__name__)

# Each row is written by compare-and-set in its own statement: no lock is held across rows, and a
# token refresh or a new signing key committed after the read makes the write miss (re-read, retry).
MAX_ATTEMPTS = 5


class RotationIncomplete(Exception):
    """Some rows kept changing while they were re-encrypted; run `rotate-keys` again."""


def _rotated(cipher: SecretCipher, value: bytes | None) -> bytes | None:
    """One column under the newest key."""
    return None if value is None else cipher.rotate(value)


def _rotated_row(
    cipher: SecretCipher, row: queries.IntegrationSecrets
) -> queries.IntegrationSecrets:
    """An integration's secrets under the newest key."""
    return dataclasses.replace(
        row,
        access_token_enc=_rotated(cipher, row.access_token_enc),
        refresh_token_enc=_rotated(cipher, row.refresh_token_enc),
        webhook_signing_key_enc=_rotated(cipher, row.webhook_signing_key_enc),
    )


async def _rotate_integration(
    conn: asyncpg.Connection, cipher: SecretCipher, row: queries.IntegrationSecrets
) -> bool:
    """Re-encrypt one integration's secrets; False when gone or still changing after retries."""
    current: queries.IntegrationSecrets | None = row
    for _ in range(MAX_ATTEMPTS):
        if current is None:
            return False
        if await queries.replace_secrets(conn, current, _rotated_row(cipher, current)):
            return True
        current = await queries.integration_secrets(conn, row.id)
    log.warning("secret_rotation_conflict", integration_id=row.id)
    raise RotationIncomplete(f"integration {row.id} kept changing")


async def _rotate_state(
    conn: asyncpg.Connection, cipher: SecretCipher, state: queries.StateSecret
) -> bool:
    """Re-encrypt one pending verifier; False when it was used (or rotated) meanwhile."""
    rotated = dataclasses.replace(state, code_verifier_enc=cipher.rotate(state.code_verifier_enc))
    return await queries.replace_oauth_state_secret(conn, state, rotated)


async def rotate_secrets(pool: asyncpg.Pool, cipher: SecretCipher) -> int:
    """Re-encrypt integrations' tokens and keys and pending OAuth verifiers; returns rows."""
    failed: list[str] = []
    rotated = 0
    async with pool.acquire() as conn:
        for row in await queries.encrypted_secrets(conn):
            try:
                rotated += await _rotate_integration(conn, cipher, row)
            except RotationIncomplete as exc:
                failed.append(str(exc))
        for state in await queries.oauth_state_secrets(conn):
            rotated += await _rotate_state(conn, cipher, state)
    if failed:
        raise RotationIncomplete("; ".join(failed))
    return rotated


async def rotate(database_url: str, keys: list[str]) -> int:
    """The `rotate-keys` command."""
    pool = await create_pool(database_url, 1, 2)
    try:
        return await rotate_secrets(pool, SecretCipher(keys))
    finally:
        await pool.close()
