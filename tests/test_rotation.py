"""Rotating TOKEN_ENCRYPTION_KEY: with "new,old" both decrypt; `rotate-keys` re-encrypts every
secret under the new key, after which the old key can be dropped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from cryptography.fernet import Fernet, InvalidToken

from calendly_svc.crypto import SecretCipher
from calendly_svc.integrations.rotation import rotate_secrets
from calendly_svc.keys import DEPS, SETTINGS
from calendly_svc.store import queries
from tests.conftest import Api, Sandbox
from tests.helpers import eventually


async def test_rotate_keys_command(api: Api, database_url: str) -> None:
    await api.connect()
    await api.call("GET", "/auth-url")
    old_key = api.client.server.app[SETTINGS].token_encryption_key[0]
    new_key = Fernet.generate_key().decode()
    old, new = SecretCipher([old_key]), SecretCipher([new_key])
    conn = await asyncpg.connect(database_url)
    before = await conn.fetchrow("SELECT * FROM integrations")
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "CALENDLY_CLIENT_ID": "x",
        "CALENDLY_CLIENT_SECRET": "x",
        "CALENDLY_WEBHOOK_SIGNING_KEY": "x",
        "BACKEND_URL": "http://127.0.0.1:1",
        "SERVICE_API_TOKENS": "x",
        "TOKEN_ENCRYPTION_KEY": f"{new_key},{old_key}",
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "calendly_svc", "rotate-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    after = await conn.fetchrow("SELECT * FROM integrations")
    verifiers = await conn.fetch("SELECT code_verifier_enc FROM oauth_states WHERE used_at IS NULL")
    await conn.close()
    assert result.returncode == 0, result.stderr
    for column in ("access_token_enc", "refresh_token_enc", "webhook_signing_key_enc"):
        assert new.decrypt(after[column]) == old.decrypt(before[column])
        with pytest.raises(InvalidToken):
            old.decrypt(after[column])
    assert len(verifiers) == 1
    assert len(new.decrypt(verifiers[0]["code_verifier_enc"])) == 64


async def _lock_held(database_url: str, integration_id: int) -> bool:
    """Whether another transaction holds the integration's row lock right now."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT id FROM integrations WHERE id = $1 FOR UPDATE NOWAIT", integration_id
            )
        return False
    except asyncpg.LockNotAvailableError:
        return True
    finally:
        await conn.close()


async def _waiting_on_a_lock(conn: asyncpg.Connection) -> bool:
    """Whether some other session of this database waits for a row lock."""
    waiting = await conn.fetchval(
        """SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock'"""
    )
    return bool(waiting)


async def test_rotation_during_a_refresh_keeps_the_refreshed_tokens(
    start_service: Callable[..., Awaitable[Api]], control: Sandbox, database_url: str
) -> None:
    """A refresh is in flight (slow token endpoint, row locked) while rotate-keys runs: the
    refreshed pair survives, so the next refresh works (no invalid_grant, no needs_reauth)."""
    new_key, old_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    api = await start_service(token_encryption_key=[new_key, old_key])
    deps = api.client.server.app[DEPS]
    await api.connect()
    async with deps.pool.acquire() as conn:
        integration = await queries.get_integration_by_user(conn, 1)
        assert integration is not None
        await conn.execute("UPDATE integrations SET token_expires_at = now() WHERE id = $1",
                           integration.id)  # fmt: skip
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 1500})
    refresh = asyncio.create_task(deps.tokens.token(integration.id, None))
    assert await eventually(lambda: _lock_held(database_url, integration.id))
    rotated = await rotate_secrets(deps.pool, SecretCipher([new_key, old_key]))
    refreshed = await refresh
    await control.call("POST", "/_sandbox/faults", {"latency_ms": 0})
    async with deps.pool.acquire() as conn:
        stored = await queries.get_integration(conn, integration.id)
        await conn.execute("UPDATE integrations SET token_expires_at = now() WHERE id = $1",
                           integration.id)  # fmt: skip
    assert stored is not None
    assert stored.access_token_enc is not None
    kept = deps.cipher.decrypt(stored.access_token_enc) == refreshed
    again, _ = await api.call("POST", "/event-types/refresh")
    _, status = await api.call("GET", "/status")
    assert (rotated, kept, again, status["status"]) == (1, True, 200, "active")


async def test_rotation_keeps_a_signing_key_changed_meanwhile(api: Api) -> None:
    """The test holds the row lock while rotate-keys runs, changes the signing key and commits:
    the rotated row keeps the new key, re-encrypted."""
    await api.connect()
    deps = api.client.server.app[DEPS]
    new_key = Fernet.generate_key().decode()
    cipher = SecretCipher([new_key, deps.settings.token_encryption_key[0]])
    async with deps.pool.acquire() as holder, deps.pool.acquire() as watcher:
        async with holder.transaction():
            row = await holder.fetchrow("SELECT id FROM integrations FOR UPDATE")
            rotation = asyncio.create_task(rotate_secrets(deps.pool, cipher))
            assert await eventually(lambda: _waiting_on_a_lock(watcher))
            await holder.execute(
                "UPDATE integrations SET webhook_signing_key_enc = $2 WHERE id = $1",
                row["id"], deps.cipher.encrypt("changed-signing-key"),
            )  # fmt: skip
        assert await rotation == 1
        stored = await holder.fetchval(
            "SELECT webhook_signing_key_enc FROM integrations WHERE id = $1", row["id"]
        )
    assert SecretCipher([new_key]).decrypt(stored) == "changed-signing-key"
