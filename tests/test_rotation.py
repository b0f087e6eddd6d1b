"""Rotating TOKEN_ENCRYPTION_KEY: with "new,old" both decrypt; `rotate-keys` re-encrypts every
secret under the new key, after which the old key can be dropped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest
from cryptography.fernet import Fernet, InvalidToken

from calendly_svc.crypto import SecretCipher
from calendly_svc.keys import SETTINGS
from tests.conftest import Api


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
